#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A stop never kills Postgres in the middle of its shutdown checkpoint
# (issue 14). spoke-a (the primary) keeps its data directory on a
# loop-mounted ext4 whose writes the blkio throttle holds to 50 MB/s, a
# cloud volume's pace (this machine's own disk would write the lot in about
# a second); shared_buffers is 1 GB, and several hundred MB of dirty buffers
# are written just before a SIGTERM to PID 1. Postgres must exit 0 (its
# CHECKPOINT, then a fast shutdown, within the shutdown budget), and the
# next start must log no crash recovery. With the old 8 s budget and no
# CHECKPOINT this fails: Postgres is SIGKILLed mid-checkpoint.
#
# Sized between the two: through the throttle the writes went at 33 to 46
# MB/s (measured), so ~500 MB take 10 to 15 s: more than the old budget's
# 8 s, less than the 18 s the default budget gives the CHECKPOINT and the
# fast shutdown together. STOP_ROWS (default 256000 rows of 1.9 kB, 4 to a
# page) and STOP_THROTTLE_BPS (default 52428800) change it.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-stop
LAB="$TESTS/lab/lab.sh"
IMG=/tmp/sup-stop-disk.img
ROWS=${STOP_ROWS:-256000}
BPS=${STOP_THROTTLE_BPS:-52428800}
THROTTLE=/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device
LOOPDEV='' MM=''
cleanup() {
	[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1
	# the throttle outlives the loop device's detaching: lift it first
	[ -n "$MM" ] && echo "$MM 0" > "$THROTTLE" 2>/dev/null
	[ -z "${KEEP_LAB:-}" ] && [ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV" 2>/dev/null
	[ -n "${KEEP_LAB:-}" ] || rm -f "$IMG"
}
trap cleanup EXIT

need_root
# what an interrupted run left: its loop device, and the throttle on it
for dev in $(losetup -j "$IMG" 2>/dev/null | cut -d: -f1); do
	echo "$(lsblk -dno MAJ:MIN "$dev" | tr -d ' ') 0" > "$THROTTLE" 2>/dev/null
	losetup -d "$dev"
done

running() { [ "$(ctl_json spoke-a replication "d['postgres']['state']")" = running ]; }
psql_a() { "$LAB" exec spoke-a psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c "$1"; }
log_since() { tail -n +"$(($1 + 1))" "$LAB_DIR/spoke-a/supervisor.log"; }
# ms_between TEXT PATTERN1 PATTERN2: ms from the first line matching 1 to the next matching 2
ms_between() {
	python3 -c '
import re, sys, datetime
text, a, b = sys.argv[1:]
t0 = None
for line in text.splitlines():
    m = re.match(r"ts=(\S+)Z ", line)
    if not m:
        continue
    t = datetime.datetime.fromisoformat(m.group(1))
    if t0 is None and re.search(a, line):
        t0 = t
    elif t0 is not None and re.search(b, line):
        print(int((t - t0).total_seconds() * 1000)); break
' "$@"
}

[ -w "$THROTTLE" ] || {
	tap_fail "the blkio throttle is there ($THROTTLE, cgroup v1): it makes the slow disk"
	tap_done; exit 1
}
# The replicas stay down: the primary's stop is the point, and their WAL replay would
# only share the machine's disk.
LAB_SKIP="spoke-a spoke-b spoke-c" "$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
truncate -s 3G "$IMG"
LOOPDEV=$(losetup -f --show "$IMG") && mkfs.ext4 -q "$LOOPDEV" && mkdir -p "$LAB_DIR/spoke-a/pgdata" &&
	mount "$LOOPDEV" "$LAB_DIR/spoke-a/pgdata" && MM=$(lsblk -dno MAJ:MIN "$LOOPDEV" | tr -d ' ') &&
	echo "$MM $BPS" > "$THROTTLE" ||
	{ tap_fail "a loop-mounted ext4 for spoke-a's data, writes throttled to $BPS B/s"; tap_done; exit 1; }
"$LAB" start spoke-a
wait_until 90000 running >/dev/null || { tap_fail "spoke-a's primary runs" "$("$LAB" ctl spoke-a status 2>&1)"; tap_done; exit 1; }

# Room for the dirty data: 1 GB of buffers, and no checkpoint before the stop.
# (one statement per call: ALTER SYSTEM refuses a transaction block)
for set in "shared_buffers = '1GB'" "max_wal_size = '8GB'" "checkpoint_timeout = '1h'"; do
	psql_a "ALTER SYSTEM SET $set" >/dev/null
done
"$LAB" stop spoke-a
"$LAB" start spoke-a
wait_until 60000 running >/dev/null
sb=$(psql_a "SHOW shared_buffers")
psql_a "CREATE EXTENSION IF NOT EXISTS pg_buffercache; CREATE TABLE big (id int, v text)" >/dev/null
# INSERT, not CREATE TABLE AS or COPY: those write through a small ring of buffers.
t0=$(ms)
psql_a "INSERT INTO big SELECT g, repeat('x', 1900) FROM generate_series(1, $ROWS) g" >/dev/null
load_ms=$(( $(ms) - t0 ))
dirty=$(psql_a "SELECT count(*) FILTER (WHERE isdirty) * 8 / 1024 FROM pg_buffercache")
if [ "$sb" = 1GB ] && [ "${dirty:-0}" -ge 400 ]; then
	tap_ok "spoke-a: shared_buffers $sb, ${dirty} MB of dirty buffers written in ${load_ms} ms on a disk writing $((BPS / 1048576)) MB/s"
else
	tap_fail "spoke-a: shared_buffers 1GB and at least 400 MB of dirty buffers" "shared_buffers=$sb dirty=${dirty}MB"
fi

# ---- SIGTERM to PID 1 --------------------------------------------------------------------
lines=$(wc -l < "$LAB_DIR/spoke-a/supervisor.log")
t0=$(ms)
"$LAB" stop spoke-a
stop_ms=$(( $(ms) - t0 ))
stop_log=$(log_since "$lines")
# The CHECKPOINT either finishes, or is abandoned at its deadline (8 s of the 25 s budget)
# and the fast shutdown's checkpoint writes the rest.
ckpt_ms=$(sed -n 's/.*checkpoint before stopping postgres done" duration_ms=\([0-9]*\).*/\1/p' <<<"$stop_log" | head -1)
ckpt_end="done"
if [ -z "$ckpt_ms" ]; then
	ckpt_ms=$(sed -n 's/.*checkpoint before stopping postgres abandoned" after_ms=\([0-9]*\).*/\1/p' <<<"$stop_log" | head -1)
	ckpt_end="abandoned at its deadline"
fi
fast_ms=$(ms_between "$stop_log" 'msg="stopping" name=postgres .*signal=SIGINT' 'msg="exited" name=postgres')
pid1_ms=$(ms_between "$stop_log" 'msg="shutting down" reason=SIGTERM' 'msg="exiting"')
if grep -q 'msg="exited" name=postgres exit=0' <<<"$stop_log" && ! grep -q 'budget exceeded' <<<"$stop_log" &&
   grep -q 'msg="exiting" status=0' <<<"$stop_log"; then
	tap_ok "SIGTERM with ${dirty} MB dirty: PID 1 exited 0 after ${stop_ms} ms (its log: ${pid1_ms:-?} ms); CHECKPOINT ${ckpt_ms:-none} ms ($ckpt_end), then SIGINT to postgres exit 0 in ${fast_ms:-?} ms"
else
	tap_fail "SIGTERM with ${dirty} MB dirty: postgres exits 0 within the shutdown budget (stop took ${stop_ms} ms)" \
		"$(grep -E 'name=postgres|budget|checkpoint|shutdown' <<<"$stop_log" | cut -c1-200 | head -12)"
fi
# ... and SIGINT went out only after it
if [ -n "$ckpt_ms" ] && [ -n "$fast_ms" ] &&
   [ "$(ms_between "$stop_log" 'msg="checkpoint before stopping postgres"' 'signal=SIGINT')" -ge "$((ckpt_ms - 50))" ]; then
	tap_ok "a CHECKPOINT ran before SIGINT: ${ckpt_ms} ms, $ckpt_end; the fast shutdown then took ${fast_ms} ms"
else
	tap_fail "a CHECKPOINT ran before SIGINT" "$(grep -E 'checkpoint|before-stop|SIGINT' <<<"$stop_log" | cut -c1-200 | head -5)"
fi

# ---- the next start ---------------------------------------------------------------------------
lines=$(wc -l < "$LAB_DIR/spoke-a/supervisor.log")
"$LAB" start spoke-a
wait_until 90000 running >/dev/null
after=$(log_since "$lines")
if grep -q "database system was shut down at" <<<"$after" &&
   ! grep -q -E "not properly shut down|automatic recovery in progress|was interrupted|redo starts" <<<"$after"; then
	tap_ok "the next start logs no crash recovery (\"database system was shut down at\")"
else
	tap_fail "the next start logs no crash recovery" "$(grep -E 'database system|recovery|redo' <<<"$after" | cut -c1-200 | head -5)"
fi
n=$(psql_a "SELECT count(*) FROM big")
[ "$n" = "$ROWS" ] && tap_ok "every row is there ($n)" || tap_fail "every row is there" "count=$n, want $ROWS"

for n in hub spoke-a; do "$LAB" stop "$n"; done
no_sanitizer_reports
tap_done
