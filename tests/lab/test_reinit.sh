#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `supervisor ctl reinit` (issue 14 §5): a replica whose slot lost its WAL
# while it was down cannot catch up; both its own view and the primary's
# say so and name the command; `ctl reinit` stops it, moves its data
# directory aside (kept), clones again with progress and streams. Refused
# on the primary.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-reinit
LAB="$TESTS/lab/lab.sh"
trap '[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root

row() { ctl_json "$1" replication "[r for r in d['replication']['members'] if r['name']=='$2'][0].get('$3')"; }
psql_on() { # psql_on NODE SQL
	"$LAB" exec "$1" psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c "$2"
}
reason_has() { "$LAB" ctl "$1" status 2>/dev/null | grep -q -- "$2"; }
both_streaming() {
	[ "$(row spoke-a spoke-b link)" = streaming ] && [ "$(row spoke-a spoke-c link)" = streaming ]
}

"$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
wait_until 60000 both_streaming >/dev/null || { tap_fail "both replicas streaming" "$("$LAB" ctl spoke-a replication)"; tap_done; exit 1; }
psql_on spoke-a "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g"

# ---- spoke-c's slot loses its WAL while spoke-c is down ----------------------
psql_on spoke-a "ALTER SYSTEM SET max_slot_wal_keep_size = '48MB'" >/dev/null # not in a transaction
psql_on spoke-a "SELECT pg_reload_conf()" >/dev/null
"$LAB" stop spoke-c
# Eight WAL segments (128 MB of WAL positions) past the slot, then checkpoints remove them.
for i in $(seq 8); do
	psql_on spoke-a "INSERT INTO t VALUES ($i); SELECT pg_switch_wal();" >/dev/null
done
psql_on spoke-a "CHECKPOINT" >/dev/null
psql_on spoke-a "INSERT INTO t VALUES (9); SELECT pg_switch_wal(); CHECKPOINT;" >/dev/null
lost() { [ "$(row spoke-a spoke-c slot_wal_status)" = lost ]; }
wait_until 10000 lost >/dev/null
status=$(row spoke-a spoke-c slot_wal_status)
[ "$status" = lost ] && tap_ok "spoke-c's slot lost its WAL while spoke-c was down (max_slot_wal_keep_size 48MB)" ||
	tap_fail "spoke-c's slot lost its WAL while spoke-c was down" "wal_status=$status"
"$LAB" start spoke-c
if el=$(wait_until 60000 reason_has spoke-c "no longer has the WAL this replica needs"); then
	tap_ok "spoke-c's own ctl status says its upstream no longer has the WAL it needs, and names ctl reinit ($el ms)"
else
	tap_fail "spoke-c's own ctl status says what happened" "$("$LAB" ctl spoke-c status 2>&1 | tail -4)"
fi
"$LAB" ctl spoke-c status >/dev/null 2>&1
[ $? = 2 ] && tap_ok "spoke-c's ctl status exits 2 (critical)" || tap_fail "spoke-c's ctl status exits 2"
reason_has spoke-a "slot of spoke-c lost its WAL.*ctl reinit" &&
	tap_ok "the primary's view says the slot lost its WAL and names ctl reinit on spoke-c" ||
	tap_fail "the primary's view names ctl reinit" "$("$LAB" ctl spoke-a status 2>&1 | tail -4)"

# ---- refused on the primary --------------------------------------------------
out=$("$LAB" ctl spoke-a reinit 2>&1); rc=$?
if [ "$rc" != 0 ] && grep -q "primary" <<<"$out" && [ "$(ctl_json spoke-a replication "d['postgres']['state']")" = running ]; then
	tap_ok "ctl reinit on the primary is refused (exit $rc: $out), its Postgres keeps running"
else
	tap_fail "ctl reinit on the primary is refused" "rc=$rc $out"
fi

# ---- ctl reinit on spoke-c ---------------------------------------------------
pid_before=$("$LAB" exec spoke-c pgrep -o -x postgres)
t0=$(ms)
out=$(timeout 180 "$LAB" ctl spoke-c reinit 2>&1); rc=$?
el=$(( $(ms) - t0 ))
echo "$out" | sed 's/^/# /'
aside=$(sed -n 's/.*data directory goes to \([^ ]*\) .*/\1/p' <<<"$out")
if [ "$rc" = 0 ] && grep -q "streaming again" <<<"$out"; then
	tap_ok "ctl reinit on spoke-c: stopped, moved aside, cloned and streaming again in $el ms (exit 0)"
else
	tap_fail "ctl reinit on spoke-c ends streaming (exit 0)" "rc=$rc"
fi
grep -q "cloning" <<<"$out" && tap_ok "ctl reinit showed the clone as it went" ||
	tap_fail "ctl reinit showed the clone as it went"
if [ -n "$aside" ] && [ -e "$LAB_DIR/spoke-c/pgdata/${aside#/var/lib/postgresql/}/PG_VERSION" ]; then
	tap_ok "the old data directory is kept at $aside"
else
	tap_fail "the old data directory is kept" "aside=$aside"
fi
want=$(psql_on spoke-a "SELECT count(*) FROM t")
same() { [ "$(psql_on spoke-c "SELECT count(*) FROM t" 2>/dev/null)" = "$want" ]; }
wait_until 20000 same >/dev/null && tap_ok "spoke-c holds the primary's $want rows" ||
	tap_fail "spoke-c holds the primary's rows" "want $want"
[ "$(row spoke-a spoke-c slot_wal_status)" != lost ] && ! reason_has spoke-c "no longer has the WAL" &&
	[ "$("$LAB" exec spoke-c pgrep -o -x postgres)" != "$pid_before" ] &&
	tap_ok "the slot holds WAL again ($(row spoke-a spoke-c slot_wal_status)) and no reason is left about it" ||
	tap_fail "the slot holds WAL again and no reason is left" "$("$LAB" ctl spoke-c status 2>&1 | tail -3)"
out=$("$LAB" ctl spoke-c reinit --no-wait 2>&1); rc=$?
grep -q "goes to" <<<"$out" && [ "$rc" != 0 ] &&
	tap_ok "ctl reinit --no-wait returns at once (exit $rc, degraded while it re-clones)" ||
	tap_fail "ctl reinit --no-wait returns at once" "rc=$rc $out"
out=$("$LAB" ctl spoke-c reinit --no-wait 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "running already" <<<"$out" &&
	tap_ok "a second reinit while one runs is refused as busy (exit 1: $out)" ||
	tap_fail "a second reinit while one runs is refused as busy" "rc=$rc $out"

"$LAB" down >/dev/null 2>&1
no_sanitizer_reports
tap_done
