#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A backup's age is the age of its data (issue #14): replica spoke-b with
# its WAL replay paused while the primary writes 50 000 rows must not make
# a "fresh" backup of old data. It takes none and says why (ctl backups,
# /status, exit 69 by hand), a backup forced with --allow-lag carries its
# data's true age, the replica itself is degraded while paused, and after
# pg_wal_replay_resume() and catch-up the next run is good again.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
BOUND=20 # backup.max_replica_lag for this lab, seconds
export SUP LAB_DIR=/tmp/sup-lab-asof LAB_EXTRA="backup = { max_replica_lag = $BOUND; };"
LAB="$TESTS/lab/lab.sh"
BIN=/usr/lib/postgresql/15/bin
cleanup() { [ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1; }
trap cleanup EXIT
need_root
"$LAB" down >/dev/null 2>&1

psql_on() { # psql_on NODE SQL
	"$LAB" exec "$1" runuser -u postgres -- psql -h /run/supervisor/postgresql -d postgres -XAtq -c "$2"
}
last_run_at() { ctl_json "$1" backups "(d['backup']['last_run'] or {}).get('finished_at')"; }
run_ended() { [ "$(last_run_at "$1")" != "$2" ] && [ "$(ctl_json "$1" backups "d['backup']['state']")" != running ]; }
run_backup() { # ctl backup-now, wait for the end; prints ok or FAILED: error
	local before
	before=$(last_run_at "$1")
	"$LAB" ctl "$1" backup-now >/dev/null || { echo refused; return 1; }
	wait_until 120000 run_ended "$1" "$before" >/dev/null
	ctl_json "$1" backups "'ok' if d['backup']['last_run']['ok'] else 'FAILED: ' + str(d['backup']['last_run']['error'])"
}
both_streaming() {
	[ "$(ctl_json spoke-a status "sum(1 for r in d['replication']['members'] if r.get('link') == 'streaming')")" = 2 ]
}
rows_on() { psql_on "$1" "SELECT count(*) FROM t" 2>/dev/null; }
rows_are() { [ "$(rows_on "$1")" = "$2" ]; }
manifest() { # manifest NODE BACKUP EXPR: over the backup's manifest as d
	json_file "$LAB_DIR/$1/backups/$1/$2/manifest.json" "$3"
}
dumped_rows() { # rows of table t in a backup's dump of database postgres
	"$BIN/pg_restore" -a -t t -f - "$LAB_DIR/$1/backups/$1/$2/db_postgres.dump" |
		awk '/^COPY /{c=1; next} /^\\\./{c=0} c' | wc -l
}
reasons() { ctl_json "$1" status "d['reasons']"; }

"$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
wait_until 90000 both_streaming >/dev/null || { tap_fail "replicas streaming" "$("$LAB" ctl spoke-a replication)"; tap_done; exit 1; }
psql_on spoke-a "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (0, 'before')" >/dev/null
wait_until 30000 rows_are spoke-b 1 >/dev/null || { tap_fail "the fixture reached spoke-b"; tap_done; exit 1; }

# ---- caught up and idle: the last commit is old, the data is not ----------------------
sleep $((BOUND + 5)) # longer than the bound since the last commit; only keepalives flow
r=$(run_backup spoke-b)
base=$(ctl_json spoke-b backups "d['backup']['last_backup']")
got=$(ctl_json spoke-b backups "d['backup']['as_of_source'], d['backup']['age_s'] is not None and d['backup']['age_s'] < $BOUND, d['backup']['replica_lag']['seconds']")
[ "$r" = ok ] && [ "$got" = "caught_up True 0.0" ] &&
	tap_ok "an idle, caught-up replica whose last commit is $((BOUND + 5)) s old backs up: data as of its upstream's last message, lag 0" ||
	tap_fail "idle caught-up replica backs up as current" "run=$r got=$got"

# ---- the failing input: replay paused, 50 000 rows on the primary, backup-now ------------
psql_on spoke-b "SELECT pg_wal_replay_pause()" >/dev/null
t_pause=$(date +%s)
psql_on spoke-a "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 50000) g" >/dev/null
want=50001
sleep 1
r=$(run_backup spoke-b)
lag=$(ctl_json spoke-b backups "d['backup']['last_run']['replica_lag']")
lag_b=$(ctl_json spoke-b backups "d['backup']['last_run']['replica_lag']['bytes']")
lag_s=$(ctl_json spoke-b backups "round(d['backup']['last_run']['replica_lag']['seconds'])")
if grep -q "paused" <<<"$r" && grep -q "no backup was taken" <<<"$r" && [ "$(ctl_json spoke-b backups "d['backup']['last_backup']")" = "$base" ] &&
   [ "${lag_b:-0}" -gt 1000000 ] && [ "${lag_s:-0}" -gt "$BOUND" ]; then
	tap_ok "replay paused, 50 000 rows written: ctl backup-now takes no backup and says why (lag ${lag_b} B, ${lag_s} s): \"${r:0:100}...\""
else
	tap_fail "a replica paused behind its primary takes no backup" "run=$r lag=$lag newest=$(ctl_json spoke-b backups "d['backup']['last_backup']") (base $base)"
fi
out=$("$LAB" ctl spoke-b backups 2>&1); crc=$?
st=$(ctl_json spoke-b status "d['overall'], any('last run failed' in r and 'paused' in r for r in d['reasons'])")
"$LAB" ctl spoke-b status >/dev/null 2>&1; src=$?
doc=$("$LAB" exec spoke-b curl -s http://10.88.0.12:8000/status)
http=$(json_eval "$doc" "d['backup']['state'], any('paused' in r for r in d['reasons'])")
[ $crc = 1 ] && grep -q "FAILED: .*paused" <<<"$out" && grep -q "replay paused" <<<"$out" && [ "$st" = "degraded True" ] &&
   [ $src = 1 ] && [ "$http" = "failed True" ] &&
	tap_ok "ctl backups (exit 1) shows the refusal and the lag, /status backup.state failed with the reason, ctl status exits 1" ||
	tap_fail "the refusal is reported" "ctl backups rc=$crc status=$st rc=$src http=$http" "$(head -4 <<<"$out")"
hand=$("$LAB" exec spoke-b "$SUP" backup run -c /etc/supervisor/cluster.conf -n spoke-b 2>&1); hrc=$?
[ $hrc = 69 ] && grep -q "paused" <<<"$hand" &&
	tap_ok "supervisor backup run by hand exits 69 with the reason" ||
	tap_fail "backup run by hand refuses" "rc=$hrc $(tail -2 <<<"$hand")"

# ---- forced anyway: the backup's age is its data's -----------------------------------------
"$LAB" exec spoke-b "$SUP" backup run -c /etc/supervisor/cluster.conf -n spoke-b --allow-lag >/dev/null 2>&1; frc=$?
sleep 6 # the daemon re-reads the catalog every 5 s
forced=$(ctl_json spoke-b backups "d['backup']['last_backup']")
m=$(manifest spoke-b "$forced" "d['as_of_source'], d['as_of'] <= $t_pause, d['replica_lag']['replay_paused'], d['replica_lag']['bytes'] > 1000000, d['finished_at'] - d['as_of']")
age=$(ctl_json spoke-b backups "d['backup']['age_s']")
n=$(dumped_rows spoke-b "$forced")
case "$m" in
"last_replayed_commit True True True "*) mok=1 ;;
*) mok=0 ;;
esac
[ $frc = 0 ] && [ $mok = 1 ] && [ "${age:-0}" -gt "$BOUND" ] && [ "$n" = 1 ] &&
	tap_ok "--allow-lag takes it: manifest as_of = the last replayed commit ($(awk '{print $NF}' <<<"$m") s before it finished), age_s $age (not 0), and it holds $n row of $want, as its age says" ||
	tap_fail "a backup forced on a lagging replica is as old as its data" "rc=$frc manifest=$m age=$age rows=$n"

# ---- the replica itself is degraded while replay stays paused --------------------------------
paused_reason() { ctl_json spoke-b status "any('has been paused for' in r for r in d['reasons'])" | grep -q True; }
el=$(wait_until $(( (BOUND + 15) * 1000 )) paused_reason)
[ $? = 0 ] && tap_ok "spoke-b's own ctl status names the paused replay once it is paused longer than max_replica_lag (${BOUND} s; seen after $el ms of waiting)" ||
	tap_fail "a paused replica is degraded in its own status" "$(reasons spoke-b)"

# ---- resume, catch up: the next run is good, the reasons go -----------------------------------
psql_on spoke-b "SELECT pg_wal_replay_resume()" >/dev/null
el=$(wait_until 60000 rows_are spoke-b $want) || tap_fail "spoke-b catches up after resume" "$(rows_on spoke-b)"
r=$(run_backup spoke-b)
good=$(ctl_json spoke-b backups "d['backup']['last_backup']")
got=$(ctl_json spoke-b backups "d['backup']['state'], d['backup']['as_of_source'], d['backup']['age_s'] < $BOUND")
n=$(dumped_rows spoke-b "$good")
[ "$r" = ok ] && [ "$got" = "ok caught_up True" ] && [ "$n" = $want ] &&
	tap_ok "after pg_wal_replay_resume() and catch-up ($el ms), the next run is good: as of now, all $n rows" ||
	tap_fail "the next run after catch-up is good" "run=$r got=$got rows=$n"
reasons_clear() { [ "$(ctl_json spoke-b status "[r for r in d['reasons'] if 'paused' in r or 'backup:' in r or 'behind' in r]")" = "[]" ]; }
el=$(wait_until 10000 reasons_clear)
[ $? = 0 ] && "$LAB" ctl spoke-b status >/dev/null 2>&1 &&
	tap_ok "the paused-replay and backup reasons are gone; ctl status exits 0" ||
	tap_fail "the reasons clear after catch-up" "$(reasons spoke-b)"

"$LAB" down >/dev/null 2>&1
no_sanitizer_reports
tap_done
