#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Backups end to end in the lab (issue #8): pg_dump on a replica and on the
# primary, restored into a scratch cluster and compared table by table;
# overlapping runs; kill -9 of pg_dump, of a run and of the supervisor;
# a full loop-mounted ext4; flipped bytes; staleness; pgBackRest on the
# primary with its verify output read, and WAL archiving failures.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-backup
LAB="$TESTS/lab/lab.sh"
LOOP_MNT=$LAB_DIR/spoke-c/backups
SCRATCH=/tmp/sup-backup-scratch
cleanup() {
	[ -n "${KEEP_LAB:-}" ] && return
	"$LAB" down >/dev/null 2>&1
	umount "$LOOP_MNT" 2>/dev/null
	[ -n "${LOOPDEV:-}" ] && losetup -d "$LOOPDEV" 2>/dev/null
	scratch_stop
	rm -rf "$SCRATCH" /tmp/sup-backup-disk.img
}
BIN=/usr/lib/postgresql/15/bin
scratch_stop() { [ -d "$SCRATCH/data" ] && runuser -u postgres -- "$BIN/pg_ctl" -D "$SCRATCH/data" -m immediate stop >/dev/null 2>&1; }
trap cleanup EXIT
need_root
# what an interrupted run left: the loop device of its small disk
"$LAB" down >/dev/null 2>&1
losetup -j /tmp/sup-backup-disk.img 2>/dev/null | cut -d: -f1 | xargs -r -n1 losetup -d

psql_on() { # psql_on NODE DB SQL
	"$LAB" exec "$1" runuser -u postgres -- psql -h /run/supervisor/postgresql -d "$2" -XAtq -c "$3"
}
last_run_id() { ctl_json "$1" backups "(d['backup']['last_run'] or {}).get('finished_at')"; }
# run_backup NODE: ctl backup-now and wait for the run to end; prints ok|FAILED: error
run_backup() {
	local before
	before=$(last_run_id "$1")
	"$LAB" ctl "$1" backup-now >/dev/null || { echo "refused"; return 1; }
	wait_until 120000 run_ended "$1" "$before" >/dev/null
	ctl_json "$1" backups "'ok' if d['backup']['last_run']['ok'] else 'FAILED: ' + str(d['backup']['last_run']['error'])"
}
run_ended() { [ "$(last_run_id "$1")" != "$2" ] && [ "$(state "$1")" != running ]; }
state() { ctl_json "$1" backups "d['backup']['state']"; }
state_is() { [ "$(state "$1")" = "$2" ]; }
pg_running() {
	[ "$(ctl_json "$1" status "d['postgres']['state']")" = running ]
}
both_streaming() {
	[ "$(ctl_json spoke-a replication "sum(1 for r in d['replication']['members'] if r.get('link')=='streaming')")" = 2 ]
}
newest() { ctl_json "$1" backups "d['backup']['last_backup']"; }
tree_sums() { # every file under a node's backup dir except the catalog, with its sha256
	(cd "$LAB_DIR/$1/backups/$1" && find . -path ./.inprogress -prune -o -type f ! -name catalog.json ! -name '.catalog*' -print0 |
		sort -z | xargs -0 -r sha256sum)
}
finals() { ls "$LAB_DIR/$1/backups/$1" | grep -c '^[0-9]\{8\}T' ; }
inprogress() { ls -A "$LAB_DIR/$1/backups/$1/.inprogress" 2>/dev/null | wc -l; }

"$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
wait_until 90000 both_streaming >/dev/null || { tap_fail "replicas streaming" "$("$LAB" ctl spoke-a replication)"; tap_done; exit 1; }

# ---- fixture ---------------------------------------------------------------------
psql_on spoke-a postgres "CREATE ROLE app_owner LOGIN"
psql_on spoke-a postgres "CREATE DATABASE app OWNER app_owner"
psql_on spoke-a postgres "CREATE DATABASE big"
psql_on spoke-a app "
CREATE TABLE accounts (id bigserial PRIMARY KEY, name text COLLATE \"C\", balance numeric(12,2),
                       doubled numeric GENERATED ALWAYS AS (balance * 2) STORED, tags jsonb);
INSERT INTO accounts (name, balance, tags) SELECT 'n' || g, g * 1.5, jsonb_build_object('g', g) FROM generate_series(1, 20000) g;
CREATE TABLE notes (id int PRIMARY KEY, body text, at timestamptz DEFAULT '2026-01-01');
INSERT INTO notes (id, body) SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 5000) g;
SELECT setval('accounts_id_seq', 424242);
SELECT lo_from_bytea(4242, 'large object bytes');
ALTER TABLE accounts OWNER TO app_owner; ALTER TABLE notes OWNER TO app_owner;" >/dev/null
# big: incompressible enough that its dump takes seconds and megabytes
psql_on spoke-a big "CREATE TABLE blob (id int PRIMARY KEY, v text);
INSERT INTO blob SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
  || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) FROM generate_series(1, 120000) g;" >/dev/null
SUMS_SQL="SELECT 'accounts', count(*), md5(string_agg(t::text, '' ORDER BY id)) FROM accounts t
 UNION ALL SELECT 'notes', count(*), md5(string_agg(t::text, '' ORDER BY id)) FROM notes t
 UNION ALL SELECT 'seq', last_value, '' FROM accounts_id_seq
 UNION ALL SELECT 'lo', 1, md5(lo_get(4242)) UNION ALL SELECT 'owner', 0, pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'app'"
want=$(psql_on spoke-a app "$SUMS_SQL" | tr '\n' ' ')
want_big=$(psql_on spoke-a big "SELECT count(*), md5(string_agg(v, '' ORDER BY id)) FROM blob")
case "$want $want_big" in
*"accounts|20000|"*"120000|"*) ;;
*) tap_fail "the fixture is in place" "$want $want_big"; tap_done; exit 1 ;;
esac
caught_up() { [ "$(psql_on "$1" big "SELECT count(*) FROM blob" 2>/dev/null)" = 120000 ]; }
wait_until 30000 caught_up spoke-b >/dev/null; wait_until 30000 caught_up spoke-c >/dev/null

# ---- status before any backup: honest, not degraded --------------------------------
st=$(ctl_json spoke-b backups "d['backup']['state'], d['backup']['last_ok_at'], d['backup']['age_s'], d['backup']['next_at'] > 0")
[ "$st" = "none None None True" ] &&
	tap_ok "before any backup: state none, last_ok_at/age_s null (never 0), next_at set" ||
	tap_fail "before any backup: state none, nulls, next_at" "$st"

# ---- backups on a replica and on the primary ---------------------------------------------
t0=$(ms); r=$(run_backup spoke-b); tb=$(( $(ms) - t0 ))
[ "$r" = ok ] && tap_ok "ctl backup-now on replica spoke-b: a good backup in $tb ms" ||
	tap_fail "ctl backup-now on replica spoke-b" "$r $("$LAB" ctl spoke-b backups)"
r=$(run_backup spoke-a)
[ "$r" = ok ] && tap_ok "ctl backup-now on primary spoke-a: a good backup" || tap_fail "backup on spoke-a" "$r"
nb=$(newest spoke-b)
files=$(ls "$LAB_DIR/spoke-b/backups/spoke-b/$nb" | tr '\n' ' ')
perms=$(stat -c '%a %U' "$LAB_DIR/spoke-b/backups/spoke-b/$nb"/* | sort -u | tr '\n' ' ')
[ "$files" = "db_app.dump db_big.dump db_postgres.dump globals.sql manifest.json " ] && [ "$perms" = "600 postgres " ] &&
	tap_ok "a backup is one directory: globals, one -Fc dump per database, manifest; files 0600 postgres" ||
	tap_fail "backup layout" "files=$files perms=$perms"
m=$(python3 - "$LAB_DIR/spoke-b/backups/spoke-b/$nb/manifest.json" <<'EOF'
import json, sys, hashlib, os
m = json.load(open(sys.argv[1])); d = os.path.dirname(sys.argv[1])
ok = all(hashlib.sha256(open(os.path.join(d, f['name']), 'rb').read()).hexdigest() == f['sha256'] and
         os.path.getsize(os.path.join(d, f['name'])) == f['size'] for f in m['files'])
print(ok, m['in_recovery'], bool(m['system_identifier']), m['timeline'], bool(m['lsn']),
      all(f.get('verify_exit', 0) == 0 and f['dump_exit'] == 0 for f in m['files']))
EOF
)
[ "$m" = "True True True 1 True True" ] &&
	tap_ok "manifest: sha256 and size of every file match, taken on a replica, system id, timeline, LSN, exit codes 0" ||
	tap_fail "manifest content" "$m"
doc=$("$LAB" exec spoke-b curl -s http://10.88.0.12:8000/status)
sb=$(json_eval "$doc" "d['backup']['state'], d['backup']['last_ok_at'] > 0, 0 <= d['backup']['age_s'] < 120,
	d['backup']['size_bytes'] > 1000000, d['backup']['next_at'] > d['backup']['last_ok_at'], d['backup']['last_error']")
[ "$sb" = "ok True True True True None" ] &&
	tap_ok "/status backup: state ok, last_ok_at, age_s, size_bytes, next_at, last_error null" ||
	tap_fail "/status backup section" "$sb"
mt=$("$LAB" exec spoke-b curl -s http://10.88.0.12:8000/metrics | grep -c -E '^supervisor_backup_(age_seconds|size_bytes|last_success_timestamp_seconds|next_run_timestamp_seconds) ')
[ "$mt" = 4 ] && tap_ok "/metrics has backup age, size, last success and next run" || tap_fail "backup metrics" "$mt"

# ---- restore into a scratch cluster, compare -----------------------------------------------
restore_check() { # restore_check NODE
	scratch_stop; rm -rf "$SCRATCH"; mkdir -p "$SCRATCH/sock"; chown -R postgres "$SCRATCH"
	runuser -u postgres -- "$BIN/initdb" -D "$SCRATCH/data" -A peer >/dev/null 2>&1 &&
	runuser -u postgres -- "$BIN/pg_ctl" -D "$SCRATCH/data" -l "$SCRATCH/log" -w \
		-o "-p 5499 -c listen_addresses='' -c unix_socket_directories=$SCRATCH/sock" start >/dev/null 2>&1 || return 1
	"$LAB" exec "$1" "$SUP" restore -c /etc/supervisor/cluster.conf -n "$1" \
		--target "host=$SCRATCH/sock port=5499 user=postgres" >"$SCRATCH/restore.out" 2>&1 || return 2
	got=$(runuser -u postgres -- psql -h "$SCRATCH/sock" -p 5499 -d app -XAtq -c "$SUMS_SQL" | tr '\n' ' ')
	got_big=$(runuser -u postgres -- psql -h "$SCRATCH/sock" -p 5499 -d big -XAtq -c "SELECT count(*), md5(string_agg(v, '' ORDER BY id)) FROM blob")
	[ "$got" = "$want" ] && [ "$got_big" = "$want_big" ]
}
for n in spoke-b spoke-a; do
	if restore_check $n; then
		tap_ok "restore of $n's newest backup into a fresh cluster: per-table counts and md5, sequence, large object, owner role all equal"
	else
		tap_fail "restore of $n's backup equals the primary" "want=$want got=${got:-} $(tail -5 "$SCRATCH/restore.out" 2>/dev/null)"
	fi
done
# restoring again into the same cluster refuses to merge into the existing database
"$LAB" exec spoke-b "$SUP" restore -c /etc/supervisor/cluster.conf -n spoke-b \
	--target "host=$SCRATCH/sock port=5499 user=postgres" >"$SCRATCH/again.out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "already exists" "$SCRATCH/again.out" &&
	tap_ok "restore into a cluster that already has the database stops (exit $rc), never merges" ||
	tap_fail "restore refuses an existing database" "rc=$rc $(tail -3 "$SCRATCH/again.out")"
scratch_stop

# ---- overlapping runs --------------------------------------------------------------------------
"$LAB" ctl spoke-b backup-now >/dev/null
out=$("$LAB" ctl spoke-b backup-now 2>&1); rc=$?
manual=$("$LAB" exec spoke-b "$SUP" backup run -c /etc/supervisor/cluster.conf -n spoke-b 2>&1); mrc=$?
[ $rc -ne 0 ] && grep -q "already running" <<<"$out" && [ $mrc = 75 ] && grep -q "already running" <<<"$manual" &&
	tap_ok "while a run is going, a second backup-now is refused (exit $rc) and a run by hand exits 75, both \"already running\"" ||
	tap_fail "overlapping runs refused" "ctl rc=$rc: $out / manual rc=$mrc: $(tail -2 <<<"$manual")"
wait_until 60000 state_is spoke-b ok >/dev/null

# ---- kill -9 of pg_dump mid-run ----------------------------------------------------------------
kill_mid_run() { # kill_mid_run NODE PATTERN: start a run, SIGKILL the process matching PATTERN
	local pid
	"$LAB" ctl "$1" backup-now >/dev/null || return 1
	for _ in $(seq 200); do
		pid=$("$LAB" exec "$1" pgrep -f "$2" | head -1)
		[ -n "$pid" ] && break
		sleep 0.05
	done
	[ -n "$pid" ] || return 1
	sleep 0.3
	"$LAB" exec "$1" kill -9 "$pid"
}
before=$(tree_sums spoke-b); nbefore=$(finals spoke-b); good_before=$(newest spoke-b)
kill_mid_run spoke-b "pg_dump -Fc --no-password -d big"
wait_until 30000 state_is spoke-b failed >/dev/null
err=$(ctl_json spoke-b backups "d['backup']['last_error']")
after=$(tree_sums spoke-b)
if grep -q "SIGKILL" <<<"$err" && [ "$before" = "$after" ] && [ "$(finals spoke-b)" = "$nbefore" ] &&
   [ "$(inprogress spoke-b)" = 0 ] && [ "$(newest spoke-b)" = "$good_before" ]; then
	tap_ok "pg_dump killed -9 mid-run: run failed (\"$err\"), partial removed, no new backup, older ones byte-identical"
else
	tap_fail "pg_dump killed -9 mid-run" "err=$err finals=$(finals spoke-b)/$nbefore inprogress=$(inprogress spoke-b) same=$([ "$before" = "$after" ] && echo y)"
fi
h=$(ctl_json spoke-b status "d['overall'], any('last run failed' in r for r in d['reasons'])")
[ "$h" = "degraded True" ] && tap_ok "a failed run makes the node degraded with the reason" || tap_fail "failed run degrades" "$h"

# ---- kill -9 of the run itself: its tools die with it; the next run sweeps -------------------------
kill_mid_run spoke-b "supervisor backup run"
wait_until 30000 state_is spoke-b failed >/dev/null
err=$(ctl_json spoke-b backups "d['backup']['last_error']")
sleep 0.5
left=$("$LAB" exec spoke-b pgrep -c -f "pg_dump" || true)
partial=$(inprogress spoke-b)
r=$(run_backup spoke-b)
if grep -q "killed by SIGKILL" <<<"$err" && [ "${left:-0}" = 0 ] && [ "$partial" -ge 1 ] && [ "$r" = ok ] &&
   [ "$(inprogress spoke-b)" = 0 ] && grep -q "sweeping what an earlier run left" "$LAB_DIR/spoke-b/supervisor.log"; then
	tap_ok "the run killed -9: reported, its pg_dump died with it, its partial stayed under .inprogress until the next run swept it"
else
	tap_fail "run killed -9" "err=$err pg_dump_left=$left partial=$partial next=$r now=$(inprogress spoke-b)"
fi

# ---- kill -9 of the supervisor mid-run -------------------------------------------------------------
before=$(tree_sums spoke-b); nbefore=$(finals spoke-b); good_before=$(newest spoke-b)
"$LAB" ctl spoke-b backup-now >/dev/null
wait_until 20000 "$LAB" exec spoke-b pgrep -f "pg_dump -Fc --no-password -d big" >/dev/null
sleep 0.3
"$LAB" kill spoke-b
partial=$(inprogress spoke-b)
mid=$(tree_sums spoke-b)
"$LAB" start spoke-b
not_verifying() { local s; s=$(state "$1"); [ -n "$s" ] && [ "$s" != verifying ]; }
wait_until 60000 not_verifying spoke-b >/dev/null
sleep 1
if [ "$partial" -ge 1 ] && [ "$before" = "$mid" ] && [ "$(finals spoke-b)" = "$nbefore" ] &&
   [ "$(inprogress spoke-b)" = 0 ] && [ "$(newest spoke-b)" = "$good_before" ] && [ "$(tree_sums spoke-b)" = "$before" ]; then
	tap_ok "supervisor killed -9 mid-run: nothing under a final name, the next start swept the partial, newest good unchanged"
else
	tap_fail "supervisor killed -9 mid-run" "partial=$partial finals=$(finals spoke-b)/$nbefore now=$(inprogress spoke-b) newest=$(newest spoke-b)/$good_before"
fi

# ---- flipped bytes ---------------------------------------------------------------------------------
victim=$(newest spoke-b)
python3 - "$LAB_DIR/spoke-b/backups/spoke-b/$victim/db_app.dump" <<'EOF'
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(200); b = f.read(4); f.seek(200); f.write(bytes(x ^ 0xff for x in b))
EOF
list=$("$LAB" exec spoke-b "$SUP" backup list -c /etc/supervisor/cluster.conf -n spoke-b 2>&1); lrc=$?
rest=$("$LAB" exec spoke-b "$SUP" restore -c /etc/supervisor/cluster.conf -n spoke-b --backup "$victim" --target "host=/nonexistent" 2>&1); rrc=$?
# a run reads sizes only; the verify run (at start, daily, or by hand) re-reads checksums
"$LAB" exec spoke-b "$SUP" backup verify -c /etc/supervisor/cluster.conf -n spoke-b >/dev/null 2>&1
sleep 6
seen=$(ctl_json spoke-b backups "[x['good'] for x in d['backup']['backups'] if x['name']=='$victim']")
r=$(run_backup spoke-b) # the verdict stands across a backup run
bad=$(ctl_json spoke-b backups "[x['problem'] for x in d['backup']['backups'] if x['name']=='$victim']")
h=$(ctl_json spoke-b status "d['overall'], any('$victim is not good' in r for r in d['reasons'])")
if [ $lrc = 1 ] && grep -q "$victim.*NO.*sha256" <<<"$list" && [ $rrc = 1 ] && grep -q "not good" <<<"$rest" &&
   [ "$seen" = "[False]" ] && [ "$r" = ok ] &&
   grep -q "sha256 differs" <<<"$bad" && [ "$h" = "degraded True" ] && [ "$(newest spoke-b)" != "$victim" ]; then
	tap_ok "flipped bytes: backup list exits 1 and marks it, restore refuses it, the verify run reports it and the verdict stands; never counted as good"
else
	tap_fail "flipped bytes detected" "list=$lrc restore=$rrc seen=$seen run=$r bad=$bad health=$h newest=$(newest spoke-b)"
fi

# ---- staleness: degraded once the newest good backup is older than max_age -------------------------
conf=$("$LAB" conf)
for n in hub spoke-a spoke-b spoke-c; do echo 'backup = { max_age = 60; };' >> "$LAB_DIR/$n/etc/cluster.conf"; done
rm -rf "$LAB_DIR/spoke-b/backups/spoke-b/$victim" # the operator deals with the bad one
"$LAB" ctl spoke-b reload >/dev/null
sleep 6
stale() {
	[ "$(ctl_json spoke-b status "any('old (max_age' in r for r in d['reasons'])")" = True ]
}
el=$(wait_until 75000 stale)
st=$(ctl_json spoke-b backups "d['backup']['state']")
[ "$st" = stale ] && tap_ok "no run failed, yet once the newest good backup is over max_age (60 s) the node is degraded (after $el ms)" ||
	tap_fail "stale backup degrades" "state=$st $("$LAB" ctl spoke-b backups | tail -3)"

# ---- disk full: a small loop-mounted ext4 at spoke-c's /var/backups -------------------------------------
"$LAB" stop spoke-c
r1=$(run_backup spoke-b) # size reference
size=$(ctl_json spoke-b backups "d['backup']['size_bytes']")
mb=$(( size * 5 / 2 / 1048576 + 3 ))
truncate -s "${mb}M" /tmp/sup-backup-disk.img
mkfs.ext4 -q -F -m 0 /tmp/sup-backup-disk.img
LOOPDEV=$(losetup -f --show /tmp/sup-backup-disk.img)
rm -rf "$LOOP_MNT"; mkdir -p "$LOOP_MNT"; mount "$LOOPDEV" "$LOOP_MNT"
"$LAB" start spoke-c
wait_until 60000 pg_running spoke-c >/dev/null
run_by_hand() { "$LAB" exec spoke-c "$SUP" backup run -c /etc/supervisor/cluster.conf -n spoke-c "$@" >"$SCRATCH.out" 2>&1; }
mkdir -p "$(dirname "$SCRATCH")"
run_by_hand --no-precheck; a=$?; run_by_hand --no-precheck; b=$?
seeded=$(finals spoke-c); before=$(tree_sums spoke-c)
r=$(run_backup spoke-c)
if [ $a = 0 ] && [ $b = 0 ] && [ "$seeded" = 2 ] && grep -q "not enough free space" <<<"$r"; then
	tap_ok "disk full (${mb} MiB ext4, 2 backups of $((size / 1048576)) MiB): the precheck refuses and says why"
else
	tap_fail "precheck refuses on a nearly full disk" "seed=$a,$b finals=$seeded run=$r"
fi
run_by_hand --no-precheck; rc=$?
if [ $rc = 1 ] && grep -q -i "no space left" "$SCRATCH.out" && [ "$(tree_sums spoke-c)" = "$before" ] &&
   [ "$(finals spoke-c)" = 2 ] && [ "$(inprogress spoke-c)" = 0 ]; then
	tap_ok "precheck defeated: ENOSPC mid-write reported (exit 1), partial removed, both old backups byte-identical, none deleted"
else
	tap_fail "ENOSPC mid-write" "rc=$rc finals=$(finals spoke-c) inprogress=$(inprogress spoke-c) $(grep -i -m2 'space\|error' "$SCRATCH.out")"
fi
sleep 6
err=$(ctl_json spoke-c backups "d['backup']['last_error']")
grep -q -i "no space left" <<<"$err" && tap_ok "the daemon reports a run started by hand: \"${err:0:90}...\"" ||
	tap_fail "ENOSPC failure shows in ctl backups" "$err"
"$LAB" stop spoke-c
umount "$LOOP_MNT" && losetup -d "$LOOPDEV" && LOOPDEV=

# ---- pgBackRest on the primary ----------------------------------------------------------------------------
for n in hub spoke-a spoke-b spoke-c; do
	sed -i 's/^backup = { max_age = 60; };/backup = { method = "pgbackrest"; max_age = 3600; };/' "$LAB_DIR/$n/etc/cluster.conf"
done
"$LAB" stop spoke-a; "$LAB" start spoke-a
wait_until 60000 pg_running spoke-a >/dev/null
r=$(run_backup spoke-a)
pb=$(ctl_json spoke-a backups "[(x['type'], x['good']) for x in d['backup']['backups'] if x['method']=='pgbackrest']")
arch=$(ctl_json spoke-a status "d['postgres']['archiver']['archived_count'] > 0, d['postgres']['archiver']['failing']")
[ "$r" = ok ] && [ "$pb" = "[('full', True)]" ] && [ "$arch" = "True False" ] &&
	tap_ok "pgBackRest on the primary: stanza created, full backup verified, WAL archived (pg_stat_archiver)" ||
	tap_fail "pgBackRest full backup" "run=$r backups=$pb archiver=$arch"
r=$(run_backup spoke-b)
note=$(ctl_json spoke-b backups "d['backup']['last_run'].get('note')")
[ "$r" = ok ] && grep -q "primary only" <<<"$note" && tap_ok "a replica with method pgbackrest takes a pg_dump and says so" ||
	tap_fail "replica falls back to pg_dump" "$r note=$note"
r=$(run_backup spoke-a)
pb=$(ctl_json spoke-a backups "[x['type'] for x in d['backup']['backups'] if x['method']=='pgbackrest']")
[ "$r" = ok ] && [ "$pb" = "['full', 'diff']" ] && tap_ok "the next pgBackRest run is a diff on the week's full" ||
	tap_fail "pgBackRest diff" "$r $pb"
f=$(find "$LAB_DIR/spoke-a/backups/pgbackrest/backup/main" -path '*F/pg_data/base/*' -name '*.zst' -size +8k | head -1)
printf 'XXXXXXXX' | dd of="$f" bs=1 seek=64 conv=notrunc 2>/dev/null
vout=$("$LAB" exec spoke-a runuser -u postgres -- pgbackrest --config=/var/backups/pgbackrest/pgbackrest.conf --stanza=main verify >/dev/null 2>&1; echo $?)
"$LAB" exec spoke-a "$SUP" backup verify -c /etc/supervisor/cluster.conf -n spoke-a >/dev/null 2>&1
sleep 6
bad=$(ctl_json spoke-a backups "[x['good'] for x in d['backup']['backups'] if x['method']=='pgbackrest']")
h=$("$LAB" ctl spoke-a backups >/dev/null 2>&1; echo $?)
[ "$vout" = 0 ] && [ "$bad" = "[False, False]" ] && [ "$h" = 1 ] &&
	tap_ok "a corrupted repository file: pgbackrest verify still exits 0, the supervisor reads its output and marks the backups not good" ||
	tap_fail "pgBackRest corruption detected" "verify_rc=$vout good=$bad ctl=$h"
# archiving fails when the repository cannot take WAL: reported, not silent
chmod 000 "$LAB_DIR/spoke-a/backups/pgbackrest/archive"
psql_on spoke-a app "INSERT INTO notes (id, body) VALUES (999999, 'x'); SELECT pg_switch_wal();" >/dev/null
failing() { [ "$(ctl_json spoke-a status "any('archiving is failing' in r for r in d['reasons'])")" = True ]; }
el=$(wait_until 30000 failing) && tap_ok "WAL archiving failing (repository unwritable) is a reason in ctl status within $el ms" ||
	tap_fail "archive failure reported" "$("$LAB" ctl spoke-a status | tail -4)"
# LAB_RECORD_DIR=DIR keeps spoke-a's /metrics of this moment (archiving failing, backups not
# good): a fixture of tests/monitoring (the archiver's counters appear only with pgBackRest).
if [ -n "${LAB_RECORD_DIR:-}" ]; then
	mkdir -p "$LAB_RECORD_DIR/backup"
	sleep 1.2 # a snapshot after the reason
	"$LAB" exec spoke-a curl -s -m 3 http://127.0.0.1:8000/metrics > "$LAB_RECORD_DIR/backup/spoke-a-archive-failing.metrics"
	echo "# recorded spoke-a's /metrics into $LAB_RECORD_DIR/backup"
fi
chmod 700 "$LAB_DIR/spoke-a/backups/pgbackrest/archive"

"$LAB" down >/dev/null 2>&1
no_sanitizer_reports
tap_done
