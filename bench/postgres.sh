#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Postgres benchmark in the lab (needs root):
#  1. gate latency: from the spoke's fresh hub handshake to Postgres accepting
#     on the overlay IP (the daemon's log), beside Postgres' own start time
#     measured alone on the same data directory (postgres started by hand,
#     pg_isready polled every 10 ms). Target: own start + <= 0.5 s.
#  2. `ctl replication` latency inside the primary, idle and under pgbench.
# Environment: ROUNDS (default 3), CALLS (default 50).
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-50}
LAB=tests/lab/lab.sh
export LAB_DIR=/tmp/sup-lab-bench SUP=${SUP:-$PWD/build/supervisor}
BIN=/usr/lib/postgresql/15/bin
trap '"$LAB" down >/dev/null 2>&1; rm -rf /tmp/bench-pgsock' EXIT

ms_of() {
	sed -E 's/^ts=[0-9-]+T([0-9]+):([0-9]+):([0-9]+)\.([0-9]+)Z.*/\1 \2 \3 \4/' <<<"$1" |
		awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}
stats() { sort -n | awk '{ a[NR] = $1; s += $1 } END {
	printf "min %d  median %d  max %d  mean %.1f (n=%d)", a[1], a[int((NR + 1) / 2)], a[NR], s / NR, NR }'; }
streaming() {
	"$LAB" ctl spoke-a replication --json 2>/dev/null | grep -o '"link":"streaming"' | wc -l | grep -qx 2
}

"$LAB" up >/dev/null
for _ in $(seq 120); do streaming && break; sleep 0.5; done
data=$LAB_DIR/spoke-a/pgdata/data

echo "== 1. fresh handshake -> Postgres accepting on 10.88.0.11 (spoke-a, warm data dir)"
gate=()
for r in $(seq "$ROUNDS"); do
	"$LAB" stop spoke-a
	lines=$(wc -l < "$LAB_DIR/spoke-a/supervisor.log")
	"$LAB" start spoke-a
	for _ in $(seq 100); do
		tail -n +"$((lines + 1))" "$LAB_DIR/spoke-a/supervisor.log" | grep -q 'postgres accepting' && break
		sleep 0.1
	done
	log=$(tail -n +"$((lines + 1))" "$LAB_DIR/spoke-a/supervisor.log")
	f=$(grep -m1 'msg="tunnel" state=fresh' <<<"$log")
	a=$(grep -m1 'msg="postgres accepting' <<<"$log")
	gate+=($(( $(ms_of "$a") - $(ms_of "$f") )))
done
echo "  supervised (fresh -> accepting), ms: $(printf '%s\n' "${gate[@]}" | stats)"

"$LAB" stop spoke-a
mkdir -p /tmp/bench-pgsock && chown postgres /tmp/bench-pgsock
# The lab's state is root-only; postgres started by hand must pass through.
chmod 711 "$LAB_DIR" "$LAB_DIR/spoke-a" "$LAB_DIR/spoke-a/pgdata"
alone=()
for r in $(seq "$ROUNDS"); do
	t0=$(date +%s%3N)
	setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$data" -c listen_addresses='' \
		-c unix_socket_directories=/tmp/bench-pgsock -c hba_file="$data/pg_hba.supervisor.conf" \
		-c ident_file="$data/pg_ident.supervisor.conf" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 3000); do
		"$BIN/pg_isready" -q -h /tmp/bench-pgsock && break
		kill -0 "$pid" 2>/dev/null || { echo "postgres alone did not start" >&2; exit 1; }
		sleep 0.01
	done
	alone+=($(( $(date +%s%3N) - t0 )))
	kill -INT "$pid"; wait "$pid" || true
done
echo "  postgres alone (exec -> ready), ms:    $(printf '%s\n' "${alone[@]}" | stats)"
sm=$(printf '%s\n' "${gate[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
am=$(printf '%s\n' "${alone[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "  median overhead of the gate: $((sm - am)) ms (target <= 500 ms)"
"$LAB" start spoke-a
for _ in $(seq 120); do streaming && break; sleep 0.5; done

echo "== 2. ctl replication latency inside spoke-a ($CALLS calls)"
lat() {
	"$LAB" exec spoke-a bash -c "for i in \$(seq $CALLS); do t0=\$(date +%s%N); $SUP ctl replication --json >/dev/null; echo \$(( (\$(date +%s%N) - t0) / 1000 )); done"
}
echo "  idle, us:        $(lat | stats)"
"$LAB" exec spoke-a runuser -u postgres -- "$BIN/pgbench" -h /run/supervisor/postgresql -i -q -s 10 postgres >/dev/null 2>&1
"$LAB" exec spoke-a runuser -u postgres -- "$BIN/pgbench" -h /run/supervisor/postgresql -c 8 -j 2 -T 30 postgres > "$LAB_DIR/pgbench.out" 2>&1 &
sleep 3
echo "  under pgbench, us: $(lat | stats)"
wait
echo "  pgbench: $(grep -E '^tps' "$LAB_DIR/pgbench.out" | head -1)"
