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
# the primary's node, failover, and the old primary back as a replica.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-ha
LAB="$TESTS/lab/lab.sh"
W=/tmp/sup-ha-writer
trap 'touch $W/stop 2>/dev/null; [ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1; rm -rf $W' EXIT

need_root
export LAB_KEEPALIVE=5 LAB_FRESH=30
export LAB_EXTRA='acl = (
  { from = [ "spoke-b", "spoke-c" ]; to = [ "spoke-a" ]; tcp = [ 5432 ]; },
  { from = [ "spoke-a" ]; to = [ "spoke-b", "spoke-c" ]; tcp = [ 5432 ]; }
);
ha = { mode = "manual"; ttl = 10; loop_wait = 2; retry_timeout = 3; };'

ha() { ctl_json "$1" ha "d['ha']$2"; }
history() { ctl_json "$1" ha "' '.join('%s:%s:%s' % (h['kind'], h['node'], h.get('from')) for h in d['ha']['history'])"; }
state_is() { [ "$(ha "$1" "['state']")" = "$2" ]; }
psql_on() { "$LAB" exec "$1" psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c "$2"; }
leader_is() { [ "$(ha "$1" "['leader']")" = "$2" ] && [ "$(ha "$2" "['members']['$2'].get('role')")" = primary ]; }
eligible() { [ "$(ha "$1" "['candidates'] and all(c['eligible'] for c in d['ha']['candidates'])")" = True ]; }
follows() { # follows NODE LEADER: a replica that streams, as the store says
	[ "$(ha "$LEADER_VIEW" "['members'].get('$1', {}).get('role')")" = replica ] &&
		[ "$(ha "$LEADER_VIEW" "['members']['$1'].get('streaming')")" = True ]
}
cut_from_hub() { ip netns exec inet nft add rule bridge lab forward ip saddr "$1" drop &&
		 ip netns exec inet nft add rule bridge lab forward ip daddr "$1" drop; }
heal() { ip netns exec inet nft flush chain bridge lab forward &&
	 ip netns exec inet nft add rule bridge lab forward ip saddr 192.0.2.11-192.0.2.19 ip daddr 192.0.2.11-192.0.2.19 drop; }

# ---- the writer and the sampler --------------------------------------------------
# The writer inserts seq 1, 2, ... on whichever node takes writes, logging
# each acknowledged commit with the time; the sampler asks every node four
# times a second whether it takes writes.
start_load() { # start_load FIRST_SEQ
	rm -rf $W; mkdir -p $W
	( seq=$1 cur=spoke-a
	  while [ ! -f $W/stop ]; do
		seq=$((seq + 1))
		for n in $cur spoke-a spoke-b spoke-c; do
			if [ "$(psql_on $n "INSERT INTO w VALUES ($seq, '$n') RETURNING seq" 2>/dev/null)" = $seq ]; then
				echo "$seq $n $(ms)" >> $W/acked; cur=$n; break
			fi
		done
		sleep 0.05
	  done ) &
	( while [ ! -f $W/stop ]; do
		t=$(ms)
		for n in spoke-a spoke-b spoke-c; do
			( [ "$(psql_on $n "SELECT NOT pg_is_in_recovery()" 2>/dev/null)" = t ] && echo $n > $W/rw.$n || rm -f $W/rw.$n ) &
		done
		wait
		who=$(cat $W/rw.* 2>/dev/null | tr '\n' ' ')
		echo "$t $(echo $who | wc -w) $who" >> $W/samples
		sleep 0.25
	  done ) &
}
stop_load() { touch $W/stop; wait; }
max_gap_ms() { awk 'NR > 1 && $3 - t > g { g = $3 - t } { t = $3 } END { print g + 0 }' $W/acked; }
lost_on() { # acknowledged seqs missing on NODE
	psql_on "$1" "SELECT seq FROM w ORDER BY 1" > $W/present
	cut -d' ' -f1 $W/acked | sort | comm -23 - <(sort $W/present) | wc -l
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

# ---- automatic mode: the primary cut off from the hub fences itself, a candidate is promoted
wait_until 30000 follows spoke-c >/dev/null
for n in spoke-a spoke-b spoke-c; do
	sed -i 's/mode = "manual"/mode = "automatic"/' $LAB_DIR/$n/etc/cluster.conf
	"$LAB" ctl $n reload >/dev/null
done
tap_check "reloaded to automatic on every spoke" eval \
	"[ \"$(ha spoke-a "['mode']")$(ha spoke-b "['mode']")$(ha spoke-c "['mode']")\" = automaticautomaticautomatic ]"
start_load 200000; sleep 2
cut_from_hub 192.0.2.11; t_cut=$(ms)
gone() { ! psql_on spoke-a "SELECT 1" >/dev/null 2>&1; }
t=$(wait_until 20000 gone) && tap_ok "the isolated primary fenced itself: postgres stopped $t ms after the cut (ttl 10 s)" ||
	tap_fail "isolated primary fenced within the ttl" "$("$LAB" ctl spoke-a ha)"
new_leader() { l=$(ha spoke-c "['leader']"); [ "$l" = spoke-b ] || [ "$l" = spoke-c ]; }
t=$(wait_until 40000 new_leader) && tap_ok "automatic failover: $(ha spoke-c "['leader']") took the key $t ms after the fence" ||
	tap_fail "automatic failover" "$("$LAB" ctl spoke-c ha)"
LEADER_VIEW=$(ha spoke-c "['leader']")
sleep 3; stop_load
echo "# bench: automatic failover, cut to new primary writable: $(( $(awk '$2 != "spoke-a" { print $3; exit }' $W/acked) - t_cut )) ms"
[ -z "$(awk '$2 > 1' $W/samples)" ] && tap_ok "never two writable primaries across the automatic failover ($(wc -l < $W/samples) samples)" ||
	tap_fail "two writable primaries (automatic)" "$(awk '$2 > 1' $W/samples | head -3)"
heal
t=$(wait_until 90000 follows spoke-a) && tap_ok "healed: spoke-a rewinds and follows $LEADER_VIEW after $t ms" ||
	tap_fail "spoke-a rejoins after the automatic failover" "$("$LAB" ctl $LEADER_VIEW ha)"
tap_check "history ends with an automatic failover from spoke-a" eval \
	"[ \"$(ha spoke-a "['history'][-1]['kind'], d['ha']['history'][-1]['from']")\" = 'failover spoke-a' ]"

for n in spoke-a spoke-b spoke-c; do "$LAB" stop $n; done
no_sanitizer_reports
tap_done
