#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# High availability benchmark in the lab (needs root; issue 18), real etcd and
# Postgres, with test_ha.sh's acl (only primary<->replica 5432 listed) and its
# timings (ttl 10 s, loop_wait 2 s, retry_timeout 3 s). A writer inserts one
# row about every 50 ms on whichever node takes writes and logs each
# acknowledged commit with its time; a sampler asks every node four times a
# second whether it takes writes. Figures, not pass/fail:
#  1. manual mode: ROUNDS switchovers (spoke-a -> spoke-b -> spoke-a ...)
#     under the writer: the largest gap between consecutive acknowledged
#     commits (write-unavailability), the time `ctl switchover` took (it
#     returns once every member follows), acknowledged commits missing on the
#     new primary, two writable primaries seen, and the old primary streaming
#     again. Target (failover-anchors.md §5 #1): gap median <= 5 s, max <= 15 s.
#  2. baseline, HA off (a second lab with the acl only): the same writer over
#     ROUNDS restarts of the primary (lab.sh stop spoke-a; lab.sh start
#     spoke-a), the way a primary changed hands before HA: the write gap, and
#     the ratio HA switchover median / restart median.
#  3. automatic mode (a third lab, mode = "automatic", same timings): FROUNDS
#     rounds of the current primary cut from the hub: (a) cut -> its Postgres
#     stops answering (its fence), (b) cut -> the first acknowledged commit on
#     another node, (c) samples with two writable primaries; then healed,
#     heal -> the old primary streams again. Target (§5 #4/#5): new primary
#     writable <= ttl + loop_wait + 5 = 17 s.
# A round that times out is printed as such and its figure left out.
# Environment: ROUNDS (default 6), FROUNDS (default 3), SECTIONS (which of
# 1 2 3 to run, default all), SUP (the binary, default build/supervisor),
# KEEP_LAB (leave the last lab up).
set -u
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${ROUNDS:-6}
FROUNDS=${FROUNDS:-3}
SECTIONS=${SECTIONS:-1 2 3}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
LAB=$PWD/tests/lab/lab.sh
export LAB_DIR=/tmp/sup-lab-bench-ha SUP=${SUP:-$PWD/build/supervisor}
W=/tmp/sup-bench-ha
FIGS=/tmp/sup-bench-ha.figs
TTL=10 LOOP_WAIT=2 RETRY=3
TARGET_FAILOVER_MS=$(( (TTL + LOOP_WAIT + 5) * 1000 ))
. tests/lab/helpers.sh
. tests/lab/ha_helpers.sh

[ "$(id -u)" -eq 0 ] || { echo "bench/ha.sh: run as root (the lab needs namespaces)" >&2; exit 1; }
[ -x "$SUP" ] || { echo "bench/ha.sh: no binary at $SUP" >&2; exit 1; }
lab_lock
cleanup() {
	touch $W/stop 2>/dev/null; wait 2>/dev/null
	[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1
	rm -rf $W $FIGS
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: > $FIGS

export LAB_KEEPALIVE=5 # (fresh_handshake at its default: see tests/lab/test_ha.sh)
ACL='acl = (
  { from = [ "spoke-b", "spoke-c" ]; to = [ "spoke-a" ]; tcp = [ 5432 ]; },
  { from = [ "spoke-a" ]; to = [ "spoke-b", "spoke-c" ]; tcp = [ 5432 ]; }
);'
ha_block() { echo "ha = { mode = \"$1\"; ttl = $TTL; loop_wait = $LOOP_WAIT; retry_timeout = $RETRY; };"; }

# (the median of an even count is the mean of the middle two)
stats() { sort -n | awk '{ a[NR] = $1; s += $1 } END {
	if (NR == 0) { printf "no completed round"; exit }
	printf "min %d  median %.0f  max %d  mean %.0f (n=%d)", a[1], (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2, a[NR], s / NR, NR }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%.0f\n", (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2 }'; }
maximum() { sort -n | tail -1; }
log() { echo "$@"; }

# ---- lab queries ----------------------------------------------------------------
follows() { # follows NODE LEADER: a replica that streams, as the store says now (see test_ha.sh)
	[ "$(ha "$2" "['store']['reachable'] and (lambda m: m.get('role') == 'replica' and
		m.get('streaming') is True and __import__('time').time() * 1000 - m.get('at', 0) < 5000)(
		d['ha']['members'].get('$1', {}))")" = True ]
}
others_follow() { # others_follow LEADER: every other spoke streams from it
	local n
	for n in spoke-a spoke-b spoke-c; do
		[ $n = "$1" ] || follows $n "$1" || return 1
	done
}
ready() { leader_is spoke-c "$1" && others_follow "$1" && eligible "$1"; }
streaming() { # HA off: spoke-a's two replicas stream
	[ "$("$LAB" ctl spoke-a replication --json 2>/dev/null | grep -o '"link":"streaming"' | wc -l)" = 2 ]
}

# server_gap OLD NEW: from the node logs, the old primary's "stopping postgres"
# for the handover to the new one's promotion done, in ms: the unavailability
# as the servers saw it, without the writer's own round trips (lab exec and
# psql per node, tried one after the other) that the write gap includes.
log_ms() { grep -E "$2" "$LAB_DIR/$1/supervisor.log" | tail -1 |
	sed -E 's/^ts=[0-9-]+T([0-9]+):([0-9]+):([0-9]+)\.([0-9]+)Z.*/\1 \2 \3 \4/' |
	awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'; }
server_gap() {
	local a b
	a=$(log_ms "$1" 'handing the primary role') b=$(log_ms "$2" 'promoting: the store names this node the leader done')
	[ -n "$a" ] && [ -n "$b" ] && echo $(( b - a ))
}

lab_up() { # lab_up NAME: a fresh lab with LAB_EXTRA as set
	"$LAB" down >/dev/null 2>&1
	"$LAB" up >/dev/null || { echo "lab up failed ($1)"; exit 1; }
}
bootstrap() { # the first leader spoke-a, its followers streaming
	local t
	t=$(wait_until 180000 ready spoke-a) ||
		{ echo "  bootstrap: not ready after $t ms"; "$LAB" ctl spoke-a ha; exit 1; }
	psql_on spoke-a "CREATE TABLE w (seq int PRIMARY KEY, node text)" >/dev/null
	echo "  bootstrap: spoke-a leader, every member following after $t ms"
}
fig() { echo "$1 $2" >> "$FIGS"; } # fig NAME VALUE
figs() { awk -v n="$1" '$1 == n { print $2 }' "$FIGS"; }

# ==== 1. switchover, manual mode ============================================================
if want 1; then
echo "== 1. switchover under the writer, manual mode ($ROUNDS rounds; target: gap median <= 5000 ms, max <= 15000 ms)"
LAB_EXTRA="$ACL
$(ha_block manual)"; export LAB_EXTRA
lab_up switchover
bootstrap
cur=spoke-a
for r in $(seq "$ROUNDS"); do
	[ $cur = spoke-a ] && to=spoke-b || to=spoke-a
	if ! wait_until 90000 ready $cur >/dev/null; then
		echo "  round $r: $cur not ready (a leader with every member following) after 90 s: skipped"
		"$LAB" ctl $cur ha | sed 's/^/    /'; continue
	fi
	start_load $((r * 1000000)) $cur; sleep 2
	t0=$(ms); out=$("$LAB" ctl spoke-c switchover --to $to 2>&1); rc=$?; took=$(( $(ms) - t0 ))
	if wait_until 60000 acked_on_since $to $t0 >/dev/null; then resumed=1; else resumed=0; fi
	sleep 2; stop_load
	{ echo "# switchover requested at $t0 ms, ctl returned after $took ms"; cat $W/acked; } > "/tmp/bench-ha-acked-switchover-r$r"
	cp $W/attempts "/tmp/bench-ha-attempts-switchover-r$r"
	gap=$(max_gap_ms); n=$(wc -l < $W/acked); lost=$(lost_on $to); two=$(two_writable)
	wait_until 60000 follows $cur $to >/dev/null && back="$cur streaming again $(( $(ms) - t0 )) ms after the request" ||
		back="$cur NOT streaming 60 s after ctl returned"
	if [ $rc -ne 0 ] || [ $resumed = 0 ]; then
		echo "  round $r $cur -> $to: FAILED/TIMED OUT (ctl exit $rc after $took ms; writes on $to: $([ $resumed = 1 ] && echo resumed || echo 'none within 60 s')); gap $gap ms; lost $lost of $n"
		echo "$out" | tail -5 | sed 's/^/    /'
		leader_is spoke-c $to && cur=$to
		continue
	fi
	sgap=$(server_gap $cur $to)
	fig sw_gap "$gap"; fig sw_ctl "$took"; fig sw_lost "$lost"; fig sw_two "$two"; [ -n "$sgap" ] && fig sw_sgap "$sgap"
	echo "  round $r $cur -> $to: write gap $gap ms (servers: ${sgap:-?} ms from the old primary stopping to the new one promoted); ctl $took ms; lost $lost of $n acknowledged; two writable in $two of $(wc -l < $W/samples) samples; $back"
	cur=$to
done
echo "  write gap, ms:  $(figs sw_gap | stats)"
echo "  servers' gap, ms: $(figs sw_sgap | stats)"
echo "  ctl took, ms:   $(figs sw_ctl | stats)"
echo "  acknowledged commits lost, total: $(figs sw_lost | awk '{ s += $1 } END { print s + 0 }'); samples with two writable primaries, total: $(figs sw_two | awk '{ s += $1 } END { print s + 0 }')"
for n in spoke-a spoke-b spoke-c; do cp "$LAB_DIR/$n/supervisor.log" "/tmp/bench-ha-switchover-$n.log" 2>/dev/null; done
fi

# ==== 2. baseline: restart of the primary, HA off ===========================================
if want 2; then
echo "== 2. baseline, HA off: restart of the primary (lab.sh stop spoke-a; lab.sh start spoke-a) under the writer ($ROUNDS rounds)"
export LAB_EXTRA="$ACL"
lab_up restart
t=$(wait_until 180000 streaming) || { echo "  replicas not streaming after $t ms"; exit 1; }
psql_on spoke-a "CREATE TABLE w (seq int PRIMARY KEY, node text)" >/dev/null
echo "  up: spoke-a primary, both replicas streaming after $t ms"
for r in $(seq "$ROUNDS"); do
	wait_until 90000 streaming >/dev/null || echo "  round $r: replicas not streaming before the restart (going on)"
	start_load $((r * 1000000)) spoke-a; sleep 2
	t0=$(ms); "$LAB" stop spoke-a; t_stop=$(( $(ms) - t0 )); "$LAB" start spoke-a; took=$(( $(ms) - t0 ))
	if wait_until 120000 acked_on_since spoke-a $t0 >/dev/null; then resumed=1; else resumed=0; fi
	sleep 2; stop_load
	gap=$(max_gap_ms); n=$(wc -l < $W/acked); lost=$(lost_on spoke-a)
	if [ $resumed = 0 ]; then
		echo "  round $r: TIMED OUT: no write on spoke-a within 120 s of the start; gap so far $gap ms"; continue
	fi
	fig rs_gap "$gap"
	echo "  round $r: write gap $gap ms (stop $t_stop ms, stop+start $took ms); lost $lost of $n acknowledged"
done
echo "  write gap, ms:  $(figs rs_gap | stats)"
for n in spoke-a spoke-b spoke-c; do cp "$LAB_DIR/$n/supervisor.log" "/tmp/bench-ha-restart-$n.log" 2>/dev/null; done
fi

# ==== 3. automatic failover: the primary cut from the hub ==================================
if want 3; then
echo "== 3. automatic failover: the primary cut from the hub ($FROUNDS rounds; ttl $TTL, loop_wait $LOOP_WAIT, retry_timeout $RETRY; target: new primary writable <= $TARGET_FAILOVER_MS ms)"
LAB_EXTRA="$ACL
$(ha_block automatic)"; export LAB_EXTRA
lab_up failover
bootstrap
cur=spoke-a
for r in $(seq "$FROUNDS"); do
	if ! wait_until 90000 ready $cur >/dev/null; then
		echo "  round $r: $cur not ready (a leader with every member following) after 90 s: stopped here"
		"$LAB" ctl $cur ha | sed 's/^/    /'; break
	fi
	sleep 3 # a lease or two renewed since the last change
	start_load $((r * 1000000)) $cur; sleep 2
	cut_from_hub ${PUB[$cur]}; t_cut=$(ms)
	if wait_until 40000 gone_on $cur >/dev/null; then fence=$(( $(ms) - t_cut )); else fence=; fi
	first_other() { awk -v n="$cur" -v t="$t_cut" '$2 != n && $3 >= t { print $3, $2; exit }' $W/acked | grep .; }
	if wait_until 60000 first_other >/dev/null; then
		read -r t_new new < <(first_other); unavail=$(( t_new - t_cut ))
	else new=; unavail=; fi
	sleep 2; stop_load
	two=$(two_writable); n_s=$(wc -l < $W/samples)
	last_old=$(awk -v n="$cur" '$2 == n { t = $3 } END { printf "%.0f\n", t }' $W/acked)
	after_cut=$(awk -v n="$cur" -v t="$t_cut" '$2 == n && $3 >= t' $W/acked | wc -l)
	lost=; [ -n "$new" ] && lost=$(lost_on $new)
	heal; t_heal=$(ms)
	if [ -n "$new" ] && wait_until 120000 follows $cur $new >/dev/null; then rejoin=$(( $(ms) - t_heal )); else rejoin=; fi
	[ -n "$fence" ] && fig fo_fence "$fence"; [ -n "$unavail" ] && fig fo_unavail "$unavail"
	[ -n "$rejoin" ] && fig fo_rejoin "$rejoin"; fig fo_two "$two"
	echo "  round $r $cur cut: (a) fenced ${fence:-TIMED OUT (40 s)}${fence:+ ms}; (b) first commit on ${new:-another node} ${unavail:-TIMED OUT (60 s)}${unavail:+ ms}" \
		"; (c) two writable in $two of $n_s samples; last commit on $cur $(( last_old - t_cut )) ms after the cut ($after_cut acknowledged after the cut)" \
		"; lost on ${new:-?}: ${lost:-?} of $(wc -l < $W/acked) acknowledged; healed: $cur streaming after ${rejoin:-TIMED OUT (120 s)}${rejoin:+ ms}"
	[ -z "$new" ] && { echo "  no new primary: stopped here"; "$LAB" ctl spoke-c ha | sed 's/^/    /'; break; }
	cur=$new
done
echo "  (a) cut -> fenced, ms:               $(figs fo_fence | stats)"
echo "  (b) cut -> writable elsewhere, ms:   $(figs fo_unavail | stats)  (target <= $TARGET_FAILOVER_MS)"
echo "  heal -> old primary streaming, ms:   $(figs fo_rejoin | stats)"
echo "  (c) samples with two writable primaries, total: $(figs fo_two | awk '{ s += $1 } END { print s + 0 }')"
for n in spoke-a spoke-b spoke-c; do cp "$LAB_DIR/$n/supervisor.log" "/tmp/bench-ha-failover-$n.log" 2>/dev/null; done
fi

# ==== summary ===================================================================================
echo "== summary"
sm=$(figs sw_gap | median); sx=$(figs sw_gap | maximum); rm_=$(figs rs_gap | median)
echo "  switchover write gap: median ${sm:-?} ms, max ${sx:-?} ms (target <= 5000 / <= 15000)"
echo "  switchover, servers' gap (old primary stopping -> new one promoted): median $(figs sw_sgap | median) ms, max $(figs sw_sgap | maximum) ms"
echo "  restart write gap:    median ${rm_:-?} ms, max $(figs rs_gap | maximum) ms"
[ -n "$sm" ] && [ -n "$rm_" ] && [ "$rm_" -gt 0 ] &&
	echo "  ratio switchover median / restart median: $(awk -v a="$sm" -v b="$rm_" 'BEGIN { printf "%.2f", a / b }')"
echo "  automatic failover, cut -> writable elsewhere: median $(figs fo_unavail | median) ms, max $(figs fo_unavail | maximum) ms (target <= $TARGET_FAILOVER_MS)"
echo "  automatic failover, cut -> fenced: median $(figs fo_fence | median) ms, max $(figs fo_fence | maximum) ms"
echo "  (nodes' logs: /tmp/bench-ha-{switchover,restart,failover}-NODE.log; each switchover's acknowledged commits: /tmp/bench-ha-acked-switchover-rN)"
