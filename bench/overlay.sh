#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Overlay benchmark in the lab (needs root):
#  1. time from `supervisor run` to the first fresh handshake, per spoke,
#     from the daemons' own log timestamps, over ROUNDS lab starts;
#  2. RSS and CPU of each supervisor with three idle tunnels for SECONDS,
#     side by side with the baseline the earlier deployment used: a shell
#     loop running `wg show wg0 dump` every second (on the hub, same time).
# Targets (design.md §6): RSS <= 4 MiB, idle CPU < 0.5 % of a core.
# Environment: ROUNDS (default 5), SECONDS_IDLE (default 60).
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
IDLE=${SECONDS_IDLE:-60}
LAB=tests/lab/lab.sh
export LAB_DIR=/tmp/sup-lab-bench SUP=${SUP:-$PWD/build/supervisor}
trap '"$LAB" down >/dev/null 2>&1' EXIT
hz=$(getconf CLK_TCK)

ms_of() { # log line -> ms of the day
	sed -E 's/^ts=[0-9-]+T([0-9]+):([0-9]+):([0-9]+)\.([0-9]+)Z.*/\1 \2 \3 \4/' <<<"$1" |
		awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}

echo "== time from supervisor run to a fresh hub handshake ($ROUNDS rounds x 3 spokes)"
times=()
for r in $(seq "$ROUNDS"); do
	"$LAB" up >/dev/null
	for _ in $(seq 80); do
		all=1
		for s in spoke-a spoke-b spoke-c; do
			grep -q 'msg="tunnel" state=fresh' "$LAB_DIR/$s/supervisor.log" || all=0
		done
		[ $all = 1 ] && break
		sleep 0.1
	done
	for s in spoke-a spoke-b spoke-c; do
		start=$(grep -m1 'msg="running"' "$LAB_DIR/$s/supervisor.log")
		fresh=$(grep -m1 'msg="tunnel" state=fresh' "$LAB_DIR/$s/supervisor.log" || true)
		[ -n "$fresh" ] && times+=($(( $(ms_of "$fresh") - $(ms_of "$start") )))
	done
	[ "$r" -lt "$ROUNDS" ] && "$LAB" down >/dev/null
done
printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END {
	printf "  samples %d  min %d ms  median %d ms  max %d ms\n", NR, a[1], a[int((NR + 1) / 2)], a[NR] }'

# Idle means settled: Postgres bootstrapped and both replicas streaming.
for _ in $(seq 120); do
	[ "$("$LAB" ctl spoke-a replication --json 2>/dev/null | grep -o '"link":"streaming"' | wc -l)" = 2 ] && break
	sleep 0.5
done
sleep 2
echo "== idle for ${IDLE}s: supervisor vs. a 'wg show' polling loop (baseline)"
# The supervisor's own CPU (utime + stime), not its reaped children's (initdb, ...).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A before
for n in hub spoke-a spoke-b spoke-c; do
	pid=$("$LAB" pid "$n"); before[$n]=$(cpu_ticks "$pid")
done
# The baseline runs in the hub, timed by bash itself (children's CPU included).
"$LAB" exec hub bash -c "time (for i in \$(seq $IDLE); do wg show wg0 dump >/dev/null; sleep 1; done)" \
	2> "$LAB_DIR/baseline.time"
printf '  %-8s %10s %10s %10s %12s %10s\n' node rss_kib pss_kib anon_kib cpu_ms cpu_pct
for n in hub spoke-a spoke-b spoke-c; do
	pid=$("$LAB" pid "$n")
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	# Pss shares library pages among the processes using them; anonymous is ours alone.
	pss=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")
	anon=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status")
	used=$(( ( $(cpu_ticks "$pid") - ${before[$n]} ) * 1000 / hz ))
	printf '  %-8s %10s %10s %10s %12s %9s%%\n' "$n" "$rss" "$pss" "$anon" "$used" "$(awk -v u="$used" -v s="$IDLE" 'BEGIN { printf "%.3f", u / (s * 10) }')"
	[ "$n" = hub ] && hub_ms=$used && hub_rss=$rss
done
base_ms=$(awk '/^(user|sys)/ { split($2, t, "m"); sub("s", "", t[2]); s += t[1] * 60 + t[2] } END { printf "%d", s * 1000 }' "$LAB_DIR/baseline.time")
printf '  %-8s %10s %10s %10s %12s %9s%%\n' baseline "-" "-" "-" "$base_ms" "$(awk -v u="$base_ms" -v s="$IDLE" 'BEGIN { printf "%.3f", u / (s * 10) }')"
awk -v b="$base_ms" -v h="$hub_ms" 'BEGIN { if (h < 1) h = 1; printf "  baseline / hub supervisor CPU: %.1fx (the supervisor also polls every peer each second and repairs)\n", b / h }'
echo "  targets: RSS <= 4096 KiB, idle CPU < 0.5 %"
