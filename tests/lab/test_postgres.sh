#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PostgreSQL on the overlay, end to end in the lab: gated start, bootstrap
# of a primary and two replicas, replication of real rows, listen address,
# an absent replica, a frozen postmaster, and a clean restart.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-pg
LAB="$TESTS/lab/lab.sh"
trap '[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root

row() { ctl_json "$1" replication "[r for r in d['replication']['members'] if r['name']=='$2'][0]['$3']"; }
both_streaming() {
	[ "$(ctl_json spoke-a replication "sum(1 for r in d['replication']['members'] if r.get('link')=='streaming')")" = 2 ]
}
psql_on() { # psql_on NODE SQL
	"$LAB" exec "$1" psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c "$2"
}
pg_state() { ctl_json "$1" replication "d['postgres']['state']"; }
running() { [ "$(pg_state "$1")" = running ]; }

# ---- gated start: the hub held down -----------------------------------------
LAB_SKIP=hub "$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
sleep 4
states=$(for s in spoke-a spoke-b spoke-c; do pg_state "$s"; done | sort -u | tr '\n' ' ')
procs=$(for s in spoke-a spoke-b spoke-c; do "$LAB" exec "$s" pgrep -c -x postgres; done | awk '{ n += $1 } END { print n + 0 }')
files=$(ls "$LAB_DIR"/spoke-a/pgdata/data 2>/dev/null | wc -l)
if [ "$states" = "waiting_for_tunnel " ] && [ "$procs" = 0 ] && [ "$files" = 0 ]; then
	tap_ok "with the hub down, no spoke starts or even initialises Postgres (waiting_for_tunnel)"
else
	tap_fail "with the hub down, no spoke starts or even initialises Postgres" "states=$states procs=$procs files=$files"
fi
reason=$(ctl_json spoke-a status "d['reasons']")
grep -q "waiting for a fresh hub handshake" <<<"$reason" &&
	tap_ok "ctl status says Postgres waits for the tunnel" ||
	tap_fail "ctl status says Postgres waits for the tunnel" "$reason"

t0=$(ms)
"$LAB" start hub
if el=$(wait_until 60000 both_streaming); then
	tap_ok "hub up: primary bootstrapped, both replicas cloned and streaming in $(( $(ms) - t0 )) ms (limit 60 s)"
else
	tap_fail "both replicas streaming within 60 s" "$("$LAB" ctl spoke-a replication 2>&1)"
fi
for s in spoke-a spoke-b spoke-c; do
	fresh=$(grep -m1 'msg="tunnel" state=fresh' "$LAB_DIR/$s/supervisor.log" | cut -c4-26)
	pgstart=$(grep -m1 'msg="started" name=postgres' "$LAB_DIR/$s/supervisor.log" | cut -c4-26)
	if [ -n "$fresh" ] && [ -n "$pgstart" ] && [[ "$pgstart" > "$fresh" ]]; then
		tap_ok "$s started Postgres only after its first fresh handshake ($fresh < $pgstart)"
	else
		tap_fail "$s started Postgres only after its first fresh handshake" "fresh=$fresh pg=$pgstart"
	fi
done

# ---- data flows --------------------------------------------------------------
psql_on spoke-a "CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 10000) g;"
sum_a=$(psql_on spoke-a "SELECT count(*), sum(id) FROM t")
for s in spoke-b spoke-c; do
	if wait_until 15000 sh -c "[ \"\$(\"$LAB\" exec $s psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c 'SELECT count(*), sum(id) FROM t' 2>/dev/null)\" = '$sum_a' ]" >/dev/null; then
		tap_ok "10 000 rows written on spoke-a are readable on $s"
	else
		tap_fail "10 000 rows written on spoke-a are readable on $s" "primary: $sum_a"
	fi
done
caught_up() {
	[ "$(ctl_json spoke-a replication "sorted((r['link'], r['replay_lag_bytes']) for r in d['replication']['members'] if not r['self'])")" = "[('streaming', 0), ('streaming', 0)]" ]
}
if wait_until 10000 caught_up >/dev/null; then
	tap_ok "ctl replication on spoke-a: both replicas streaming, replay lag 0 B after catch-up"
else
	tap_fail "ctl replication on spoke-a: both replicas streaming, replay lag 0 B" "$("$LAB" ctl spoke-a replication)"
fi
out=$("$LAB" ctl spoke-a replication); rc=$?
[ $rc -eq 0 ] && grep -q "^spoke-b .*streaming .*spoke_b (reserved) *0 B" <<<"$out" &&
	tap_ok "ctl replication prints the table (exit 0)" ||
	tap_fail "ctl replication prints the table (exit 0)" "rc=$rc" "$out"
out=$("$LAB" ctl spoke-c replication); rc=$?
[ $rc -eq 0 ] && grep -q "^spoke-c .*replica *running .*streaming" <<<"$out" &&
	tap_ok "ctl replication works on a replica (its own link)" ||
	tap_fail "ctl replication works on a replica (its own link)" "rc=$rc" "$out"

# ---- reachability: the overlay IP only ---------------------------------------
for s in spoke-a spoke-b spoke-c; do
	l=$("$LAB" exec "$s" ss -Hltn 'sport = :5432' | awk '{print $4}' | sort | tr '\n' ' ')
	ip=$(grep -o "name = \"$s\"; overlay_ip = \"[0-9.]*\"" "$LAB_DIR/cluster.conf" | grep -o '10\.[0-9.]*')
	[ "$l" = "$ip:5432 " ] && tap_ok "$s: Postgres listens on $ip:5432 and nowhere else" ||
		tap_fail "$s: Postgres listens on $ip:5432 and nowhere else" "listening: $l"
done
ip netns exec inet socat -T2 /dev/null TCP:192.0.2.11:5432,connect-timeout=2 2>/dev/null &&
	tap_fail "5432 is unreachable from inet (the public side)" ||
	tap_ok "5432 is unreachable from inet (the public side)"
# The firewall stops the hub before pg_hba (which would refuse it too) is asked.
out=$("$LAB" exec hub psql "host=10.88.0.11 user=postgres dbname=postgres connect_timeout=3" -c "select 1" 2>&1)
grep -q 'timeout expired\|Operation not permitted' <<<"$out" &&
	tap_ok "the hub cannot reach Postgres on a spoke over the overlay (firewall)" ||
	tap_fail "the hub cannot reach Postgres on a spoke over the overlay" "$out"

# ---- a replica goes away and comes back ------------------------------------------
"$LAB" stop spoke-b
# A clean stop closes the connection at once; if that is lost, wal_sender_timeout (20 s).
b_absent() { [ "$(row spoke-a spoke-b link)" = absent ]; }
if el=$(wait_until 30000 b_absent); then
	tap_ok "with spoke-b stopped, the primary shows it absent (after ${el} ms)"
else
	tap_fail "with spoke-b stopped, the primary shows it absent" "$("$LAB" ctl spoke-a replication)"
fi
"$LAB" ctl spoke-a replication >/dev/null; rc=$?
[ $rc -eq 1 ] && tap_ok "ctl replication exits 1 (degraded) with a replica absent" ||
	tap_fail "ctl replication exits 1 (degraded) with a replica absent" "rc=$rc"
psql_on spoke-a "INSERT INTO t SELECT g, 'while away' FROM generate_series(10001, 10500) g"
sum_a=$(psql_on spoke-a "SELECT count(*), sum(id) FROM t")
"$LAB" start spoke-b
if wait_until 30000 both_streaming >/dev/null &&
   wait_until 15000 sh -c "[ \"\$(\"$LAB\" exec spoke-b psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c 'SELECT count(*), sum(id) FROM t' 2>/dev/null)\" = '$sum_a' ]" >/dev/null; then
	tap_ok "spoke-b back: streaming again, and has every row, including those written while it was away"
else
	tap_fail "spoke-b back: streaming again with every row" "$("$LAB" ctl spoke-a replication)"
fi

# ---- a frozen postmaster ----------------------------------------------------------
pm=$("$LAB" exec spoke-a head -1 /var/lib/postgresql/data/postmaster.pid)
pm_outer=$(pgrep -f "postgres -D /var/lib/postgresql/data" | while read -r p; do
	[ "$(awk '/^NSpid/ {print $NF}' /proc/$p/status)" = "$pm" ] &&
	[ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/$("$LAB" pid spoke-a)/ns/net)" ] && echo "$p"; done | head -1)
# Time the ctl call itself, inside the node (no nsenter or Python in the
# figure); the same call with Postgres healthy is the baseline, since a
# sanitizer build's client alone takes tens of ms to start.
ctl_ms() {
	"$LAB" exec spoke-a bash -c "t0=\$(date +%s%N); out=\$($SUP ctl replication --json); t1=\$(date +%s%N);
	echo \$(( (t1 - t0) / 1000000 )) \$(grep -o '\"state\":\"[a-z_]*\",\"reason' <<<\"\$out\" | head -1 | cut -d'\"' -f4)"
}
base=$(for _ in 1 2 3; do ctl_ms | cut -d' ' -f1; done | sort -n | sed -n 2p)
kill -STOP "$pm_outer"
sleep 4
read -r el st < <(ctl_ms)
kill -CONT "$pm_outer"
if [ "$st" = unresponsive ] && [ "$el" -le $(( base + 100 )) ]; then
	tap_ok "postmaster SIGSTOPped: ctl answers unresponsive, at most 100 ms slower than with Postgres healthy (${el} ms vs ${base} ms)"
else
	tap_fail "postmaster SIGSTOPped: ctl answers unresponsive, at most 100 ms slower than with Postgres healthy" "state=$st in ${el} ms (${base} ms with Postgres healthy)"
fi
if wait_until 10000 running spoke-a >/dev/null; then
	tap_ok "SIGCONT: running again"
else
	tap_fail "SIGCONT: running again"
fi

# ---- a replica's data directory from another cluster is refused, never wiped -----
"$LAB" stop spoke-c
cdata=$LAB_DIR/spoke-c/pgdata/data
mv "$cdata" "$cdata.orig"
foreign=$(mktemp -d /tmp/foreign-cluster.XXXXXX)
chown postgres "$foreign"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$foreign/data" >/dev/null 2>&1 ||
	tap_fail "initdb of a foreign cluster for the test"
mv "$foreign/data" "$cdata"
rmdir "$foreign"
[ -f "$cdata/PG_VERSION" ] || tap_fail "the foreign cluster is in place"
sum_before=$(find "$cdata" -type f -exec md5sum {} + | sort -k2 | md5sum)
"$LAB" start spoke-c
if wait_until 20000 sh -c "\"$LAB\" ctl spoke-c replication --json | grep -q 'belongs to another cluster'" >/dev/null; then
	tap_ok "a replica whose data directory belongs to another cluster refuses to start, and says why"
else
	tap_fail "a replica whose data directory belongs to another cluster refuses to start" "$("$LAB" ctl spoke-c status 2>&1 | head -5)"
fi
"$LAB" stop spoke-c
[ "$(find "$cdata" -type f -exec md5sum {} + | sort -k2 | md5sum)" = "$sum_before" ] &&
	! grep -q 'msg="started" name=postgres' <(tail -20 "$LAB_DIR/spoke-c/supervisor.log") &&
	tap_ok "the foreign data directory is left byte for byte as it was" ||
	tap_fail "the foreign data directory is left byte for byte as it was"
rm -rf "$cdata"
mv "$cdata.orig" "$cdata"
"$LAB" start spoke-c
wait_until 30000 both_streaming >/dev/null &&
	grep -q "system identifier matches the upstream" "$LAB_DIR/spoke-c/supervisor.log" &&
	tap_ok "its own directory back: identifier checked, streaming again" ||
	tap_fail "its own directory back: identifier checked, streaming again" "$("$LAB" ctl spoke-a replication)"

# ---- a killed postmaster: no restart while its old backends live on -------------
outer_of() { # outer_of NODE NSPID: the pid seen from here of a process in NODE
	local node_ns
	node_ns=$(readlink /proc/"$("$LAB" pid "$1")"/ns/pid)
	for p in $(pgrep -x postgres); do
		[ "$(readlink /proc/$p/ns/pid 2>/dev/null)" = "$node_ns" ] &&
		[ "$(awk '/^NSpid/ {print $NF}' /proc/$p/status)" = "$2" ] && { echo "$p"; return; }
	done
}
"$LAB" exec spoke-a psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c "select pg_sleep(60)" >/dev/null 2>&1 &
sleep 1
backend=$(psql_on spoke-a "select pid from pg_stat_activity where query like 'select pg_sleep(60)%' limit 1")
b_outer=$(outer_of spoke-a "$backend")
pm=$("$LAB" exec spoke-a head -1 /var/lib/postgresql/data/postmaster.pid)
pm_outer=$(outer_of spoke-a "$pm")
lines=$(wc -l < "$LAB_DIR/spoke-a/supervisor.log")
if [ -n "$b_outer" ] && [ -n "$pm_outer" ]; then
	kill -STOP "$b_outer"     # the old backend cannot go away by itself
	kill -KILL "$pm_outer"
	sleep 3
	restarted=$(tail -n +"$((lines + 1))" "$LAB_DIR/spoke-a/supervisor.log" | grep -c 'msg="started" name=postgres')
	waited=$(tail -n +"$((lines + 1))" "$LAB_DIR/spoke-a/supervisor.log" | grep -c 'waiting for old postgres processes')
	kill -CONT "$b_outer"     # now it notices the dead postmaster and exits
	if [ "$restarted" -eq 0 ] && [ "$waited" -ge 1 ]; then
		tap_ok "postmaster SIGKILLed: no new one starts while an old backend lives on"
	else
		tap_fail "postmaster SIGKILLed: no new one starts while an old backend lives on" "restarted=$restarted waited=$waited"
	fi
	if wait_until 20000 running spoke-a >/dev/null &&
	   ! kill -0 "$b_outer" 2>/dev/null; then
		tap_ok "once the old backend is reaped, Postgres restarts and runs"
	else
		tap_fail "once the old backend is reaped, Postgres restarts and runs" "$("$LAB" ctl spoke-a status)"
	fi
else
	tap_fail "postmaster SIGKILLed: no new one starts while an old backend lives on" "backend=$backend pm=$pm not found"
fi
wait_until 30000 both_streaming >/dev/null

# ---- a clean stop leaves a cluster that needs no crash recovery -----------------
"$LAB" stop spoke-a
grep -q 'msg="exited" name=postgres exit=0' "$LAB_DIR/spoke-a/supervisor.log" &&
	tap_ok "SIGTERM: postgres stopped cleanly (fast shutdown, exit 0)" ||
	tap_fail "SIGTERM: postgres stopped cleanly (fast shutdown, exit 0)" "$(grep 'name=postgres' "$LAB_DIR/spoke-a/supervisor.log" | tail -3)"
lines=$(wc -l < "$LAB_DIR/spoke-a/supervisor.log")
"$LAB" start spoke-a
wait_until 20000 running spoke-a >/dev/null
after=$(tail -n +"$((lines + 1))" "$LAB_DIR/spoke-a/supervisor.log")
if grep -q "database system was shut down at" <<<"$after" &&
   ! grep -q -E "not properly shut down|automatic recovery in progress|was interrupted" <<<"$after"; then
	tap_ok "the next start logs no crash recovery"
else
	tap_fail "the next start logs no crash recovery" "$(grep -E 'database system|recovery' <<<"$after" | head -5)"
fi

for n in hub spoke-a spoke-b spoke-c; do "$LAB" stop "$n"; done
no_sanitizer_reports
tap_done
