#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A hub with many spokes (needs root; no lab, so no lab lock: every run is
# in anonymous network, mount and PID namespaces of its own, wireguard-go
# as the backend). For each size in SIZES (default "10 250 1000"):
#  1. the reconcile pass: build/bench/reconcile brings the hub's overlay up
#     and times PASSES passes (median, p90, max wall; our own CPU a pass);
#  2. `supervisor run` as that hub: once every peer is configured and it has
#     settled, its PSS, RSS and anonymous memory, and its CPU over IDLE s
#     (the spokes never connect, so the hub polls at the fast 100 ms rate).
# Printed figures, not pass/fail. Environment: SIZES, PASSES (50), IDLE (10).
set -eu
cd "$(dirname "$0")/.."
SIZES=${SIZES:-10 250 1000}
PASSES=${PASSES:-50}
IDLE=${IDLE:-10}
SUP=${SUP:-$PWD/build/supervisor}
RECONCILE=${RECONCILE:-$PWD/build/bench/reconcile}
work=$(mktemp -d /tmp/sup-bench-peers.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 1
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
[ "$(id -u)" = 0 ] || { echo "bench/peers.sh: needs root (namespaces)" >&2; exit 1; }
[ -x "$RECONCILE" ] || { echo "bench/peers.sh: build first ($RECONCILE)" >&2; exit 1; }

# inside DIR CMD...: CMD in fresh net/mount/PID namespaces, DIR's etc/run/wg
# bound where the supervisor looks for them.
inside() {
	local d=$1; shift
	mkdir -p "$d/etc" "$d/run" "$d/wg"
	chmod 700 "$d/run"
	exec unshare --net --pid --fork --mount --mount-proc --propagation private /bin/sh -c \
		"mount --bind $d/etc /etc/supervisor && mount --bind $d/run /run/supervisor &&
		 mount --bind $d/wg /var/run/wireguard && ip link set lo up && exec \"\$@\"" sh "$@"
}

printf '%6s %12s %10s %10s %14s %9s %9s %9s %12s\n' spokes pass_med_ms p90_ms max_ms own_cpu_ms/pass pss_kib rss_kib anon_kib idle_cpu_pct
for n in $SIZES; do
	d=$work/$n
	python3 tests/lab/gen_cluster.py "$n" "$d/gen" >/dev/null
	mkdir -p "$d/etc"
	install -m 0600 "$d/gen/hub.key" "$d/etc/wg.key"
	install -m 0644 "$d/gen/cluster.conf" "$d/etc/cluster.conf"
	# 1. the pass
	line=$(inside "$d" "$RECONCILE" /etc/supervisor/cluster.conf hub "$PASSES" 2>/dev/null | tail -1)
	med=$(sed -E 's/.*median_us=([0-9]+).*/\1/' <<<"$line")
	p90=$(sed -E 's/.*p90_us=([0-9]+).*/\1/' <<<"$line")
	max=$(sed -E 's/.*max_us=([0-9]+).*/\1/' <<<"$line")
	own=$(sed -E 's/.*own_cpu_us_per_pass=([0-9]+).*/\1/' <<<"$line")
	rm -rf "$d/run" "$d/wg"
	# 2. the daemon
	inside "$d" "$SUP" run -c /etc/supervisor/cluster.conf -n hub >"$d/supervisor.log" 2>&1 &
	outer=$!; pids+=("$outer")
	configured() {
		"$SUP" ctl -s "$d/run/ctl.sock" tunnel --json 2>/dev/null |
			python3 -c "import json,sys; sys.exit(len(json.load(sys.stdin)['tunnel']['peers']) != $n)" 2>/dev/null
	}
	for _ in $(seq 300); do configured && break; sleep 0.1; done
	configured || { echo "  $n: the hub did not configure $n peers; see $d/supervisor.log" >&2; tail -5 "$d/supervisor.log" >&2; exit 1; }
	sleep 3
	pid=$(pgrep -P "$outer" -x supervisor | head -1)
	c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	sleep "$IDLE"
	c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	pss=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	anon=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status")
	kill -TERM "$pid"
	for _ in $(seq 50); do kill -0 "$outer" 2>/dev/null || break; sleep 0.1; done
	printf '%6s %12s %10s %10s %14s %9s %9s %9s %12s\n' "$n" \
		"$(awk -v v="$med" 'BEGIN { printf "%.2f", v / 1000 }')" \
		"$(awk -v v="$p90" 'BEGIN { printf "%.2f", v / 1000 }')" \
		"$(awk -v v="$max" 'BEGIN { printf "%.2f", v / 1000 }')" \
		"$(awk -v v="$own" 'BEGIN { printf "%.2f", v / 1000 }')" "$pss" "$rss" "$anon" \
		"$(awk -v t="$(( c1 - c0 ))" -v hz="$hz" -v s="$IDLE" 'BEGIN { printf "%.2f", t * 100 / hz / s }')"
done
echo "  pass: wall time of one reconcile pass (wireguard-go's reply included); own_cpu: this process's CPU"
echo "  memory and idle CPU: the hub's supervisor, every spoke configured and none connected (100 ms polls)"
