#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interrupted bootstraps heal by themselves (field faults, issue 14 §1-2):
# an initdb killed with PID 1, and a clone of a few hundred MB stopped by
# SIGTERM (docker stop), by kill -9 of pg_basebackup and by kill -9 of
# PID 1. Each node comes back streaming with every row, without a person.
# Meanwhile the primary's view is sampled every 0.2 s: a replica being
# cloned reads "cloning" with progress, never "streaming" before its own
# postmaster runs. A half-made directory we did not make is still refused.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-boot
LAB="$TESTS/lab/lab.sh"
SCALE=${BOOT_SCALE:-10} # pgbench scale: ~160 MB, a clone of several seconds
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root

link_of() { ctl_json spoke-a replication "[r for r in d['replication']['members'] if r['name']=='$1'][0].get('link')"; }
streaming() { [ "$(link_of "$1")" = streaming ]; }
not_streaming() { ! streaming "$1"; }
pg_state() { ctl_json "$1" replication "d['postgres']['state']"; }
running() { [ "$(pg_state "$1")" = running ]; }
redone() { ctl_json "$1" replication "d['postgres']['bootstraps_redone']"; }
psql_on() { # psql_on NODE SQL
	"$LAB" exec "$1" psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c "$2"
}
stage() { echo "$LAB_DIR/$1/pgdata/data/.supervisor-bootstrap"; }
# staged_mb NODE: megabytes the node's bootstrap wrote so far
staged_mb() { du -sm "$(stage "$1")" 2>/dev/null | cut -f1; }
staged_over() { [ "$(staged_mb "$1")" -ge "$2" ] 2>/dev/null; }
# log_ms NODE PATTERN: the time of the last matching log line, in ms
log_ms() {
	local ts
	ts=$(grep "$2" "$LAB_DIR/$1/supervisor.log" | tail -1 | sed -n 's/^ts=\([^ ]*\) .*/\1/p')
	[ -n "$ts" ] && date -d "$ts" +%s%3N
}
same_rows() { [ "$(psql_on "$1" "SELECT count(*) FROM pgbench_accounts" 2>/dev/null)" = "$WANT" ]; }

# sample NODE FILE: the primary's view of NODE every 0.2 s ("ms link clone-text")
sample() {
	while :; do
		printf '%s %s\n' "$(ms)" "$(ctl_json spoke-a replication "' '.join(str(x) for x in [([r for r in d['replication']['members'] if r['name']=='$1'] or [{}])[0].get(k) for k in ('link', 'clone')])")"
		sleep 0.2
	done >"$2"
}
# never_streaming_early NODE FILE WHAT: no sample before NODE's postmaster started says streaming
never_streaming_early() {
	local started early n cloning
	started=$(log_ms "$1" 'msg="started" name=postgres')
	early=$(awk -v t="$started" '$1 < t && $2 == "streaming"' "$2" | head -3)
	n=$(wc -l <"$2")
	cloning=$(grep -c " cloning " "$2")
	if [ -n "$started" ] && [ -z "$early" ] && [ "$cloning" -gt 0 ]; then
		tap_ok "$3: $n samples of the primary's view, $cloning say cloning, none says streaming before $1's postmaster ran"
	else
		tap_fail "$3: no sample says streaming before $1's postmaster ran" "started=$started samples=$n cloning=$cloning" "$early"
	fi
}

# ---- an interrupted initdb on the primary ------------------------------------
LAB_SKIP="spoke-b spoke-c" "$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
if wait_until 30000 test -e "$(stage spoke-a)/global" >/dev/null; then
	"$LAB" kill spoke-a
	top=$(ls -A "$LAB_DIR/spoke-a/pgdata/data" | tr '\n' ' ')
	[ "$top" = ".supervisor-bootstrap " ] &&
		tap_ok "initdb killed with PID 1: the half-made cluster is only in the staging directory (data dir: $top)" ||
		tap_fail "initdb killed with PID 1: the half-made cluster is only in the staging directory" "data dir: $top"
	"$LAB" start spoke-a
	if el=$(wait_until 60000 running spoke-a); then
		tap_ok "the primary removed the unfinished initdb, redid it and runs in $el ms (redone: $(redone spoke-a))"
	else
		tap_fail "the primary heals an interrupted initdb" "$("$LAB" ctl spoke-a status 2>&1)"
	fi
	[ "$(redone spoke-a)" = 1 ] && grep -q "unfinished bootstrap" "$LAB_DIR/spoke-a/supervisor.log" &&
		tap_ok "it says so: bootstraps_redone 1 and a log line" ||
		tap_fail "it says so: bootstraps_redone 1 and a log line" "redone=$(redone spoke-a)"
else
	tap_fail "initdb started in the staging directory" "$(ls -A "$LAB_DIR/spoke-a/pgdata/data" 2>&1)"
fi

# ---- a primary worth cloning --------------------------------------------------
wait_until 30000 running spoke-a >/dev/null
t0=$(ms)
"$LAB" exec spoke-a /usr/lib/postgresql/15/bin/pgbench -h /run/supervisor/postgresql -U postgres \
	-i -q -s "$SCALE" postgres >/dev/null 2>&1
WANT=$(psql_on spoke-a "SELECT count(*) FROM pgbench_accounts")
size=$(psql_on spoke-a "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
[ "$WANT" = "$((SCALE * 100000))" ] && tap_ok "primary holds $WANT rows ($size) after $(( $(ms) - t0 )) ms" ||
	tap_fail "pgbench -i -s $SCALE on the primary" "rows=$WANT"

# interrupted NODE WHAT HOW: start NODE's clone, interrupt it HOW once 40 MB are
# staged, and check that it comes back streaming with every row by itself.
interrupted() {
	local n=$1 what=$2 how=$3 el t0 samples=$LAB_DIR/samples-$1-$3
	# NODE was stopped streaming just before: the primary's view (probed once a
	# second) may say so for a moment more; sample the new clone only
	wait_until 15000 not_streaming "$n" >/dev/null
	sample "$n" "$samples" &
	local sampler=$!
	"$LAB" start "$n"
	if ! wait_until 60000 staged_over "$n" 40 >/dev/null; then
		tap_fail "$what: the clone is staged" "$(ls -A "$LAB_DIR/$n/pgdata/data" 2>&1)"
		kill "$sampler"
		return
	fi
	local mid
	mid=$(ctl_json "$n" replication "[r for r in d['reasons'] if 'cloning' in r]")
	case $how in
	sigterm)
		t0=$(ms)
		"$LAB" stop "$n"
		el=$(( $(ms) - t0 ))
		if grep -q 'bootstrap step stopped for shutdown.* step=pg_basebackup' "$LAB_DIR/$n/supervisor.log" &&
			[ "$el" -lt 10000 ]; then
			tap_ok "$what: pg_basebackup's group stopped and waited for, PID 1 exited in $el ms"
		else
			tap_fail "$what: pg_basebackup's group stopped and waited for" "stop took $el ms"
		fi
		"$LAB" start "$n" ;;
	kill-tool)
		# the parent only: its WAL streamer is left to exit by itself
		"$LAB" exec "$n" sh -c 'kill -9 $(pgrep -o -x pg_basebackup)' ;;
	kill-pid1)
		"$LAB" kill "$n"
		"$LAB" start "$n" ;;
	esac
	t0=$(ms)
	if el=$(wait_until 120000 streaming "$n"); then
		tap_ok "$what: healed by itself, streaming $el ms later (bootstraps redone: $(redone "$n"))"
	else
		tap_fail "$what: healed by itself, streaming again" "$("$LAB" ctl "$n" status 2>&1 | tail -5)"
	fi
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
	if wait_until 30000 same_rows "$n" >/dev/null; then
		tap_ok "$what: $n holds the primary's $WANT rows"
	else
		tap_fail "$what: $n holds the primary's rows" "want $WANT"
	fi
	[ "$(redone "$n")" -ge 1 ] 2>/dev/null && [ ! -e "$(stage "$n")" ] &&
		tap_ok "$what: the unfinished clone was counted and is gone" ||
		tap_fail "$what: the unfinished clone was counted and is gone" "redone=$(redone "$n")"
	never_streaming_early "$n" "$samples" "$what"
	[ -n "$mid" ] && [ "$mid" != "[]" ] && echo "# mid-clone, $n says: $mid"
}

interrupted spoke-b "clone stopped by SIGTERM (docker stop)" sigterm
interrupted spoke-c "clone with pg_basebackup killed -9" kill-tool

# kill -9 of PID 1: clone spoke-c again into an empty data directory.
"$LAB" stop spoke-c
rm -rf "$LAB_DIR/spoke-c/pgdata/data"
interrupted spoke-c "clone with PID 1 killed -9" kill-pid1

# The progress the DBA sees, from a replica's own view and the primary's.
progress=$(grep -h -o "cloning {[^}]*'done_bytes': [1-9][^}]*}" "$LAB_DIR"/samples-* | head -1)
[ -n "$progress" ] && tap_ok "the primary's view showed clone progress: $progress" ||
	tap_fail "the primary's view showed clone progress" "$(head -5 "$LAB_DIR"/samples-spoke-b-sigterm)"

# ---- a half-made directory that is not ours stays untouched ------------------
"$LAB" stop spoke-c
rm -f "$LAB_DIR/spoke-c/pgdata/data/global/pg_control"
"$LAB" start spoke-c
if wait_until 20000 sh -c "\"$LAB\" ctl spoke-c status 2>/dev/null | grep -q 'incomplete cluster'" >/dev/null &&
	[ -e "$LAB_DIR/spoke-c/pgdata/data/PG_VERSION" ] &&
	[ "$("$LAB" exec spoke-c pgrep -c -x postgres)" = 0 ]; then
	tap_ok "a data dir with PG_VERSION but no pg_control that we did not stage: refused with the reason, kept, postmaster never started"
else
	tap_fail "a half-made data dir that is not ours is refused" "$("$LAB" ctl spoke-c status 2>&1 | tail -3)"
fi

"$LAB" down >/dev/null 2>&1
no_sanitizer_reports
tap_done
