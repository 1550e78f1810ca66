#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# High availability (issue 18), manual mode, real etcd and Postgres, with an
# acl that lists only primary<->replica 5432 (the derived flows must carry
# etcd and a switchover): bootstrap from an empty store; switchover under a
# steady write load (every acknowledged row on the new primary, the write
# gap measured, never two writable primaries); switchover back; failover
# refused while the lease lives; the primary cut off from the hub (nothing
# promoted by itself; failover after its lease expired; on healing it
# rewinds, its diverged row gone, the discarded bytes reported); kill -9 of
# the primary's node, failover, and the old primary back as a replica; the
# hub down. Then automatic mode: the primary cut off fences itself (its
# Postgres port closed in its own table, the others drop traffic to it) and
# a candidate is promoted; the hub down; a flapping link; two spokes down.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
. "$TESTS/lab/ha_helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-ha
LAB="$TESTS/lab/lab.sh"
W=/tmp/sup-ha-writer
# (the nodes' logs are kept in /tmp/sup-ha-logs: the lab goes, they explain a failure)
keep_logs() { rm -rf /tmp/sup-ha-logs; mkdir -p /tmp/sup-ha-logs
	for n in hub spoke-a spoke-b spoke-c; do cp "$LAB_DIR/$n/supervisor.log" "/tmp/sup-ha-logs/$n.log" 2>/dev/null; done; }
trap 'touch $W/stop 2>/dev/null; keep_logs; [ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1; rm -rf $W' EXIT

need_root
# (fresh_handshake stays at its default, 180 s: a shorter one makes every
# spoke re-handshake each time its hub peer reads stale, dropping the session,
# and a short cut at that moment then costs seconds instead of one)
export LAB_KEEPALIVE=5
export LAB_EXTRA='acl = (
  { from = [ "spoke-b", "spoke-c" ]; to = [ "spoke-a" ]; tcp = [ 5432 ]; },
  { from = [ "spoke-a" ]; to = [ "spoke-b", "spoke-c" ]; tcp = [ 5432 ]; }
);
ha = { mode = "manual"; ttl = 10; loop_wait = 2; retry_timeout = 3; };'

history() { ctl_json "$1" ha "' '.join('%s:%s:%s' % (h['kind'], h['node'], h.get('from')) for h in d['ha']['history'])"; }
state_is() { [ "$(ha "$1" "['state']")" = "$2" ]; }
# follows NODE: a replica that streams, as the store says now: LEADER_VIEW
# reads the store, and NODE's record is fresh (published every second; a node
# cut off cannot publish, and a view that cannot read would show old records)
follows() {
	[ "$(ha "$LEADER_VIEW" "['store']['reachable'] and (lambda m: m.get('role') == 'replica' and
		m.get('streaming') is True and __import__('time').time() * 1000 - m.get('at', 0) < 5000)(
		d['ha']['members'].get('$1', {}))")" = True ]
}
# renewed NODE: it reads the store and its lease was renewed within the last
# 2 s (ttl 10 s): the starting point of a timed cut
renewed() { [ "$(ha "$1" "['store']['reachable'] and (d['ha']['lease_remaining_s'] or 0) > 8")" = True ]; }
# replicated NODE...: a row written now on the leader reaches every NODE
has_row() { [ "$(psql_on "$1" "SELECT count(*) FROM w WHERE seq = $2" 2>/dev/null)" = 1 ]; }
replicated() {
	local mark=-$(( $(ms) % 1000000 + 1000000 )) n
	[ "$(psql_on "$LEADER_VIEW" "INSERT INTO w VALUES ($mark, 'mark') RETURNING seq" 2>/dev/null)" = "$mark" ] || return 1
	for n in "$@"; do wait_until 10000 has_row $n $mark >/dev/null || return 1; done
}

# ---- bootstrap from an empty store ------------------------------------------------
"$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
t=$(wait_until 120000 eligible spoke-a) &&
	tap_ok "bootstrap: spoke-a took the empty store's key, both candidates stream and are eligible ($t ms)" ||
	tap_fail "bootstrap: leader and eligible candidates" "$("$LAB" ctl spoke-a ha)"
tap_check "history: one bootstrap record by spoke-a" eval \
	"[ \"$(ha spoke-c "['history'][0]['kind'], d['ha']['history'][0]['node'], len(d['ha']['history'])")\" = 'bootstrap spoke-a 1' ]"
for n in spoke-a spoke-b spoke-c; do
	st=$(ctl_json $n status "[c['state'] for c in d['children'] if c['name'] == 'etcd']")
	[ "$st" = "['running']" ] && tap_ok "$n: etcd runs as a supervised child" || tap_fail "$n: etcd child" "$st"
done
tap_check "/status of spoke-b has ha{}: manual, leader spoke-a, follower" eval \
	"[ \"$(status_json spoke-b "d['ha']['mode'], d['ha']['leader'], d['ha']['state']")\" = 'manual spoke-a follower' ]"
tap_check "/status shows no lease ID (the store's, not the public's)" eval \
	"! lab_get spoke-b /status | grep -q '\"lease\"'"
code() { ip netns exec inet curl -s -o /dev/null -w '%{http_code}' -m 3 "http://$1:8000/primary"; }
tap_check "/primary: 200 on the leader, 503 on a replica" eval "[ $(code 192.0.2.11) = 200 ] && [ $(code 192.0.2.12) = 503 ]"
tap_check "metrics: supervisor_ha_is_leader 1 on spoke-a, 0 on spoke-b" eval \
	"lab_get spoke-a /metrics | grep -qx 'supervisor_ha_is_leader 1' && lab_get spoke-b /metrics | grep -qx 'supervisor_ha_is_leader 0'"

# ---- refusals and a dry run: nothing changes -------------------------------------
out=$("$LAB" ctl spoke-b switchover --to spoke-a 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "primary already" && tap_ok "switchover to the primary itself: refused (exit $rc)" ||
	tap_fail "switchover to the primary refused" "$rc $out"
out=$("$LAB" ctl spoke-b failover --to spoke-b 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "holds the leader key" && tap_ok "failover refused while spoke-a's lease lives (exit $rc)" ||
	tap_fail "failover refused while the lease lives" "$rc $out"
out=$("$LAB" ctl spoke-c switchover --dry-run 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "dry run: a switchover now would hand the primary role from spoke-a" &&
	leader_is spoke-c spoke-a && tap_ok "switchover --dry-run: a plan, no change" || tap_fail "switchover --dry-run" "$rc $out"

# ---- switchover under a steady write load ------------------------------------------
psql_on spoke-a "CREATE TABLE w (seq int PRIMARY KEY, node text)" >/dev/null
start_load 0; sleep 3
t0=$(ms); out=$("$LAB" ctl spoke-c switchover --to spoke-b 2>&1); rc=$?; took=$(( $(ms) - t0 ))
sleep 3; stop_load
echo "$out" | sed 's/^/# /'
[ $rc -eq 0 ] && tap_ok "switchover to spoke-b: exit 0 in $took ms, every member following" || tap_fail "switchover to spoke-b" "$rc $out"
LEADER_VIEW=spoke-b
tap_check "spoke-b is the primary on timeline 2; spoke-a and spoke-c stream from it" eval \
	"leader_is spoke-a spoke-b && [ \"$(ha spoke-b "['members']['spoke-b'].get('timeline')")\" = 2 ] && follows spoke-a && follows spoke-c"
n_acked=$(wc -l < $W/acked); lost=$(lost_on spoke-b); gap=$(max_gap_ms)
[ "$lost" = 0 ] && [ "$n_acked" -gt 8 ] && tap_ok "0 of $n_acked acknowledged commits lost on the new primary; write gap $gap ms" ||
	tap_fail "acknowledged commits on the new primary" "lost $lost of $n_acked"
echo "# bench: switchover write-unavailability ${gap} ms (target: median <= 5000, max <= 15000)"
two=$(awk '$2 > 1' $W/samples | head -3); n_s=$(wc -l < $W/samples)
[ -z "$two" ] && [ "$n_s" -gt 5 ] && tap_ok "never two writable primaries in $n_s samples" || tap_fail "two writable primaries" "$two"
grep -q "no rewind required" $LAB_DIR/spoke-a/supervisor.log && tap_ok "the old primary rejoined without a rewind (pg_rewind --dry-run: no rewind required)" ||
	tap_fail "old primary rejoined cleanly" "$(grep -i rewind $LAB_DIR/spoke-a/supervisor.log | tail -5)"
tap_check "history: bootstrap, then switchover to spoke-b from spoke-a" eval \
	"[ \"$(history spoke-a)\" = 'bootstrap:spoke-a:None switchover:spoke-b:spoke-a' ]"

# ---- and back ----------------------------------------------------------------------------
start_load 100000; sleep 2
out=$("$LAB" ctl spoke-b switchover --to spoke-a 2>&1); rc=$?
sleep 3; stop_load
LEADER_VIEW=spoke-a
lost=$(lost_on spoke-a); gap=$(max_gap_ms); n_acked=$(wc -l < $W/acked)
[ $rc -eq 0 ] && leader_is spoke-c spoke-a && [ "$lost" = 0 ] &&
	tap_ok "switchover back to spoke-a: 0 of $n_acked acknowledged commits lost; write gap $gap ms" ||
	tap_fail "switchover back" "rc $rc lost $lost: $out"
echo "# bench: switchover back write-unavailability ${gap} ms"
[ -z "$(awk '$2 > 1' $W/samples)" ] && tap_ok "never two writable primaries (switchover back)" ||
	tap_fail "two writable primaries (back)" "$(awk '$2 > 1' $W/samples | head -3)"
wait_until 60000 follows spoke-b >/dev/null && tap_ok "spoke-b streams from spoke-a again" || tap_fail "spoke-b follows" "$("$LAB" ctl spoke-a ha)"

# ---- the primary cut off from the hub (manual: nothing promoted by itself) -----------
wait_until 30000 follows spoke-c >/dev/null
cut_from_hub 192.0.2.11
psql_on spoke-a "INSERT INTO w VALUES (-1, 'written on the isolated primary')" >/dev/null &&
	tap_ok "manual mode: the isolated primary still takes local writes" || tap_fail "isolated primary takes local writes"
t=$(wait_until 40000 state_is spoke-b leaderless) &&
	tap_ok "spoke-a's key expired for the others after $t ms (ttl 10 s); spoke-b leaderless" ||
	tap_fail "leaderless after the ttl" "$("$LAB" ctl spoke-b ha)"
sleep 5
tap_check "manual mode: nobody promoted itself (spoke-b and spoke-c still replicas)" eval \
	"[ \"$(psql_on spoke-b 'SELECT pg_is_in_recovery()')$(psql_on spoke-c 'SELECT pg_is_in_recovery()')\" = tt ]"
"$LAB" ctl spoke-b status >/dev/null; rc=$?
[ $rc -eq 2 ] && "$LAB" ctl spoke-b status | grep -q "ha: no node holds the leader key" &&
	tap_ok "leaderless is critical in ctl status, with the runbook's command" || tap_fail "leaderless health" "rc $rc"
out=$("$LAB" ctl spoke-c failover --to spoke-b 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
LEADER_VIEW=spoke-b
[ $rc -eq 0 ] && echo "$out" | grep -q "at most 0 bytes of WAL lost" && leader_is spoke-c spoke-b &&
	tap_ok "failover --to spoke-b: done, 0 bytes lost as of spoke-a's last report" || tap_fail "failover to spoke-b" "$rc $out"
wait_until 30000 follows spoke-c >/dev/null && tap_ok "spoke-c follows spoke-b" || tap_fail "spoke-c follows spoke-b" "$("$LAB" ctl spoke-b ha)"
[ "$(psql_on spoke-b "INSERT INTO w VALUES (-2, 'after the failover') RETURNING seq")" = -2 ] &&
	tap_ok "the new primary takes writes" || tap_fail "a write on spoke-b after the failover"

# ---- healed: the old primary rewinds and follows ------------------------------------------
heal
t=$(wait_until 90000 follows spoke-a) && tap_ok "spoke-a back: a replica streaming from spoke-b after $t ms" ||
	tap_fail "spoke-a rejoins" "$("$LAB" ctl spoke-b ha; grep -i 'rewind' $LAB_DIR/spoke-a/supervisor.log | tail)"
negative_rows() { [ "$(psql_on spoke-a 'SELECT string_agg(seq::text, $$,$$ ORDER BY seq) FROM w WHERE seq < 0')" = -2 ]; }
wait_until 20000 negative_rows >/dev/null && tap_ok "its diverged row is gone, the failover's row is there" ||
	tap_fail "rows on spoke-a after its rewind" "$(psql_on spoke-a 'SELECT seq, node FROM w WHERE seq < 0')"
rw=$(ha spoke-b "['members']['spoke-a'].get('last_rewind')")
disc=$(ha spoke-b "['members']['spoke-a']['last_rewind'].get('discarded_bytes', 0)")
kept=$(ha spoke-b "['members']['spoke-a']['last_rewind'].get('wal_kept_at', '')")
[ "${disc:-0}" -gt 0 ] 2>/dev/null && "$LAB" exec spoke-a test -d "$kept/pg_wal" &&
	tap_ok "the rewind reported $disc discarded bytes; its WAL kept at $kept" || tap_fail "rewind report" "$rw"
tap_check "history: ... failover to spoke-b from spoke-a" eval \
	"[ \"$(history spoke-a)\" = 'bootstrap:spoke-a:None switchover:spoke-b:spoke-a switchover:spoke-a:spoke-b failover:spoke-b:spoke-a' ]"

# ---- kill -9 of the primary's whole node; failover; the old primary back -----------------
wait_until 30000 follows spoke-c >/dev/null
"$LAB" kill spoke-b
LEADER_VIEW=spoke-a
t=$(wait_until 40000 state_is spoke-a leaderless) &&
	tap_ok "spoke-b killed: leaderless after $t ms" || tap_fail "leaderless after kill" "$("$LAB" ctl spoke-a ha)"
out=$("$LAB" ctl spoke-a failover --to spoke-a 2>&1); rc=$?
[ $rc -ne 0 ] || out=ok
if [ "$out" != ok ]; then
	echo "$out" | sed 's/^/# /'
	out=$("$LAB" ctl spoke-a failover --to spoke-a --allow-data-loss 2>&1); rc=$?
fi
[ $rc -eq 0 ] && leader_is spoke-c spoke-a && tap_ok "failover --to spoke-a after kill -9 of spoke-b" || tap_fail "failover after kill" "$rc $out"
"$LAB" start spoke-b >/dev/null
t=$(wait_until 90000 follows spoke-b) && tap_ok "spoke-b restarted: a replica of spoke-a after $t ms" ||
	tap_fail "spoke-b back as a replica" "$("$LAB" ctl spoke-a ha)"
[ "$(psql_on spoke-a 'SELECT count(*) FROM w WHERE seq = -2')" = 1 ] && tap_ok "the row written on spoke-b after the first failover is on spoke-a" ||
	tap_fail "row -2 on spoke-a"

# ---- hub down (manual): nothing changes, local writes go on, replicas resume ---------
wait_until 30000 follows spoke-c >/dev/null
n_hist=$(ha spoke-a "['history'].__len__()")
"$LAB" stop hub
sleep 15
[ "$(psql_on spoke-a "INSERT INTO w VALUES (-3, 'hub down') RETURNING seq" 2>/dev/null)" = -3 ] && writable spoke-a &&
	! writable spoke-b && ! writable spoke-c &&
	tap_ok "manual, hub down 15 s (> ttl): spoke-a still takes writes, spoke-b and spoke-c stay replicas" ||
	tap_fail "manual, hub down: roles and writes unchanged" "$("$LAB" ctl spoke-a ha)"
"$LAB" start hub >/dev/null
both_follow() { LEADER_VIEW=spoke-a; follows spoke-b && follows spoke-c; }
t=$(wait_until 60000 both_follow) && replicated spoke-b spoke-c &&
	tap_ok "hub back: both replicas stream again after $t ms (a row written on spoke-a reaches both)" ||
	tap_fail "replicas resume after the hub outage" "$("$LAB" ctl spoke-a ha)"
tap_check "no role change and no new history record across the hub outage" eval \
	"leader_is spoke-b spoke-a && [ \"$(ha spoke-a "['history'].__len__()")\" = $n_hist ]"

# ---- automatic mode: the primary cut off from the hub fences itself, a candidate is promoted
wait_until 30000 follows spoke-c >/dev/null
for n in spoke-a spoke-b spoke-c; do
	sed -i 's/mode = "manual"/mode = "automatic"/' $LAB_DIR/$n/etc/cluster.conf
	"$LAB" ctl $n reload >/dev/null
done
tap_check "reloaded to automatic on every spoke" eval \
	"[ \"$(ha spoke-a "['mode']")$(ha spoke-b "['mode']")$(ha spoke-c "['mode']")\" = automaticautomaticautomatic ]"
start_load 200000; sleep 2
wait_until 20000 renewed spoke-a >/dev/null || tap_fail "spoke-a renews its lease before the cut" "$("$LAB" ctl spoke-a ha)"
cut_from_hub 192.0.2.11; t_cut=$(ms)
gone() { gone_on spoke-a; }
# (renewed every second, it fences loop_wait + retry_timeout = 5 s after
# its last renewal: 4-5 s after the cut, never before 3 s)
t=$(wait_until 20000 gone) && [ "$t" -ge 3000 ] &&
	tap_ok "the isolated primary fenced itself: postgres stopped $t ms after the cut (loop_wait + retry_timeout = 5 s, ttl 10 s)" ||
	tap_fail "isolated primary fenced 3-10 s after the cut" "after ${t:-?} ms; $("$LAB" ctl spoke-a ha)"
# nftables: the fenced node's first input rule closes its Postgres port (before
# lo, so its local clients are shut out too); the others drop output to it.
chain() { ip netns exec "$1" nft list chain inet supervisor "$2" 2>/dev/null; }
self_fenced() { chain "$1" input | grep -m1 -E 'tcp dport|iif(name)? "?lo' | grep -qE 'tcp dport 5432 counter packets [0-9]+ bytes [0-9]+ drop'; }
drops_to() { chain "$1" output | grep -qE "ip daddr $2 tcp dport 5432 counter packets [0-9]+ bytes [0-9]+ drop"; }
tap_check "fenced: spoke-a's input chain drops 5432 first, before lo" self_fenced spoke-a
new_leader() { l=$(ha spoke-c "['leader']"); [ "$l" = spoke-b ] || [ "$l" = spoke-c ]; }
t=$(wait_until 40000 new_leader) && tap_ok "automatic failover: $(ha spoke-c "['leader']") took the key $t ms after the fence" ||
	tap_fail "automatic failover" "$("$LAB" ctl spoke-c ha)"
LEADER_VIEW=$(ha spoke-c "['leader']")
both_drop() { drops_to spoke-b 10.88.0.11 && drops_to spoke-c 10.88.0.11; }
t=$(wait_until 15000 both_drop) && tap_ok "fenced: spoke-b and spoke-c drop output to spoke-a's 5432 (the failover's old primary)" ||
	tap_fail "others drop output to the fenced old primary" "$(chain spoke-b output)"
sleep 3; stop_load
echo "# bench: automatic failover, cut to new primary writable: $(( $(awk '$2 != "spoke-a" { print $3; exit }' $W/acked) - t_cut )) ms"
[ -z "$(awk '$2 > 1' $W/samples)" ] && tap_ok "never two writable primaries across the automatic failover ($(wc -l < $W/samples) samples)" ||
	tap_fail "two writable primaries (automatic)" "$(awk '$2 > 1' $W/samples | head -3)"
heal
t=$(wait_until 90000 follows spoke-a) && tap_ok "healed: spoke-a rewinds and follows $LEADER_VIEW after $t ms" ||
	tap_fail "spoke-a rejoins after the automatic failover" "$("$LAB" ctl $LEADER_VIEW ha)"
tap_check "history ends with an automatic failover from spoke-a" eval \
	"[ \"$(ha spoke-a "['history'][-1]['kind'], d['ha']['history'][-1]['from']")\" = 'failover spoke-a' ]"
unfenced() { ! self_fenced spoke-a && ! drops_to spoke-b 10.88.0.11 && ! drops_to spoke-c 10.88.0.11; }
t=$(wait_until 15000 unfenced) && tap_ok "rejoined as a replica: spoke-a's port open again, no spoke drops traffic to it" ||
	tap_fail "unfenced after the rejoin" "$(chain spoke-a input | head -5; chain spoke-b output)"
tap_check "the firewall reads back as applied on every spoke (no drift)" eval \
	"[ \"$(for n in spoke-a spoke-b spoke-c; do ctl_json $n firewall "d['firewall']['state']"; done | sort -u)\" = applied ]"

# ---- hub down (automatic): the primary stops writing, nobody is promoted, it resumes -----
L=$LEADER_VIEW
n_hist=$(ha spoke-a "['history'].__len__()"); fences=$(ha $L "['fences']")
"$LAB" stop hub; t_down=$(ms)
t=$(wait_until 20000 gone_on $L) &&
	tap_ok "automatic, hub down: $L stopped Postgres $t ms after the hub (loop_wait + retry_timeout = 5 s)" ||
	tap_fail "automatic, hub down: the primary stops writing" "$("$LAB" ctl $L ha)"
tap_check "automatic, hub down: $L's input chain drops 5432 first" self_fenced $L
sleep 8
others=$(for n in spoke-a spoke-b spoke-c; do [ $n != $L ] && writable $n && echo $n; done)
[ -z "$others" ] && tap_ok "nobody promoted while the hub is down" || tap_fail "a promotion during the hub outage" "$others"
"$LAB" start hub >/dev/null; t_up=$(ms)
t=$(wait_until 60000 writable $L) && tap_ok "hub back: $L takes writes again after $t ms" ||
	tap_fail "the primary resumes after the hub outage" "$("$LAB" ctl $L ha)"
tap_check "hub back: $L's port is open again" eval "! self_fenced $L"
# (a readable store is not a renewed lease: unfenced before its renewal, it
# would fence again at the next check, over and over)
tap_check "one fence for the whole outage, not a stop-start cycle" eval "[ \"\$(ha $L \"['fences']\")\" = $((fences + 1)) ]"
tap_check "no new leader across the outage (history unchanged)" eval \
	"[ \"$(ha $L "['history'].__len__()")\" = $n_hist ] && [ \"$(ha $L "['leader']")\" = $L ]"

others_follow_l() { local n; LEADER_VIEW=$L; for n in spoke-a spoke-b spoke-c; do [ $n = $L ] || follows $n || return 1; done; }

# ---- a flapping link (automatic): 1 s cuts change nothing (etcd's TCP and raft
# recover within ~2.5 s of such a cut, well inside loop_wait + retry_timeout) ----
wait_until 60000 others_follow_l >/dev/null
n_hist=$(ha $L "['history'].__len__()"); fences=$(ha $L "['fences']")
start_load 300000; sleep 1
for _ in 1 2 3 4; do
	cut_from_hub ${PUB[$L]}; sleep 1; heal; sleep 4
done
sleep 3; stop_load
tap_check "flapping link (4 cuts of 1 s): no fence, no failover, $L still the leader" eval \
	"[ \"$(ha $L "['fences']") $(ha $L "['history'].__len__()") $(ha $L "['leader']")\" = '$fences $n_hist $L' ]"
tap_check "flapping link: writes acknowledged only by $L, never two writable primaries" eval \
	"[ -z \"\$(awk -v l=$L '\$2 != l' $W/acked)\$(awk '\$2 > 1' $W/samples)\" ]"

# ---- two spokes down (automatic): no majority, the primary stops writing; both back, it resumes ----
R=$(for n in spoke-a spoke-b spoke-c; do [ $n != $L ] && echo $n; done | tr '\n' ' ')
n_hist=$(ha $L "['history'].__len__()"); fences=$(ha $L "['fences']")
for n in $R; do "$LAB" stop $n; done
t=$(wait_until 20000 gone_on $L) &&
	tap_ok "automatic, both other spokes down: $L stopped Postgres after $t ms (no majority, no renewal)" ||
	tap_fail "automatic, two spokes down: the primary stops writing" "$("$LAB" ctl $L ha)"
for n in $R; do "$LAB" start $n >/dev/null; done
# (the leader's own pg_stat_replication: the members' records from before
# the outage are still in the store until they publish new ones)
streams_from_l() { [ "$("$LAB" ctl $L replication --json 2>/dev/null | grep -o '"link":"streaming"' | wc -l)" = 2 ]; }
t0=$(ms)
wait_until 120000 writable $L >/dev/null && wait_until 120000 streams_from_l >/dev/null && t=$(( $(ms) - t0 )) &&
	tap_ok "both back: $L takes writes again and both stream from it after $t ms" ||
	tap_fail "two spokes back: the primary writes, both follow" "$("$LAB" ctl $L ha)"
tap_check "two spokes down and back: no new leader (history unchanged), one fence" eval \
	"[ \"$(ha $L "['history'].__len__()") $(ha $L "['leader']") $(ha $L "['fences']")\" = '$n_hist $L $((fences + 1))' ]"

for n in spoke-a spoke-b spoke-c; do "$LAB" stop $n; done
no_sanitizer_reports
tap_done
