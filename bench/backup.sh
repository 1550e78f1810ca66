#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Backup benchmark in the lab (needs root): a pgbench database (scale 50 by
# default) on the primary, then, alternating in one run,
#   bare        pg_dump -Fc of that database into a file (what a cron script does)
#   supervised  `supervisor ctl backup-now` on the same node, timed from the
#               request to the catalog saying ok: pg_dumpall -g, pg_dump -Fc of
#               every database, the full-read verify, sha256, fsync, rename,
#               re-check of every kept backup and retention
# Target (issue #8): supervised / bare <= 1.05 (wall time).
# Environment: SCALE (default 50), ROUNDS (default 3).
set -eu
cd "$(dirname "$0")/.."
SCALE=${SCALE:-50}
ROUNDS=${ROUNDS:-3}
LAB=tests/lab/lab.sh
export LAB_DIR=/tmp/sup-lab-bench-backup SUP=${SUP:-$PWD/build/supervisor}
BIN=/usr/lib/postgresql/15/bin
trap '"$LAB" down >/dev/null 2>&1' EXIT
ms() { date +%s%3N; }
on_a() { "$LAB" exec spoke-a runuser -u postgres -- "$@"; }
last_finished() {
	"$LAB" ctl spoke-a backups --json 2>/dev/null | python3 -c \
		'import json,sys; b=json.load(sys.stdin)["backup"]; r=b["last_run"] or {}; print(r.get("finished_at"), r.get("ok"), b["state"])'
}

# Keep one backup at a time, so every supervised run re-checks the same amount.
LAB_EXTRA='backup = { keep_daily = 0; keep_weekly = 0; keep_monthly = 0; };' "$LAB" up >/dev/null
for _ in $(seq 120); do
	"$LAB" ctl spoke-a status --json 2>/dev/null | grep -q '"state":"running"' && break
	sleep 0.5
done
sleep 3
t0=$(ms)
on_a psql -h /run/supervisor/postgresql -XAtq -c "CREATE DATABASE bench" postgres
on_a "$BIN/pgbench" -h /run/supervisor/postgresql -i -q -s "$SCALE" bench >/dev/null 2>&1
size=$(on_a psql -h /run/supervisor/postgresql -XAtq -c "SELECT pg_size_pretty(pg_database_size('bench'))" postgres)
echo "pgbench scale $SCALE: $size, loaded in $(( $(ms) - t0 )) ms"
on_a psql -h /run/supervisor/postgresql -XAtq -c "CHECKPOINT" postgres

# the bare dump goes to the same file system, as postgres
mkdir -p "$LAB_DIR/spoke-a/backups/bare" && chown postgres "$LAB_DIR/spoke-a/backups/bare"
CATALOG=$LAB_DIR/spoke-a/backups/spoke-a/catalog.json
bare=() sup=() verify=()
for r in $(seq "$ROUNDS"); do
	rm -f "$LAB_DIR/spoke-a/backups/bare/bench.dump"
	t0=$(ms)
	on_a sh -c "PGHOST=/run/supervisor/postgresql $BIN/pg_dump -Fc -d bench -f /var/backups/bare/bench.dump"
	bare+=($(( $(ms) - t0 )))
	rm -f "$LAB_DIR/spoke-a/backups/bare/bench.dump"

	# wait by the catalog's mtime: polling ctl from Python would steal the CPU pg_dump needs
	touch -d '1 second ago' "$LAB_DIR/marker"
	t0=$(ms)
	"$LAB" ctl spoke-a backup-now >/dev/null
	until [ "$CATALOG" -nt "$LAB_DIR/marker" ]; do sleep 0.01; done
	sup+=($(( $(ms) - t0 )))
	now=$(last_finished)
	[ "$(cut -d' ' -f2 <<<"$now")" = True ] || { echo "supervised run failed: $("$LAB" ctl spoke-a backups)"; exit 1; }
	steps=$(python3 - "$LAB_DIR/spoke-a/backups/spoke-a" <<'EOF'
import json, sys, os
d = sys.argv[1]; c = json.load(open(os.path.join(d, "catalog.json")))
m = json.load(open(os.path.join(d, c["last_run"]["backup"], "manifest.json")))
dump = sum(f.get("dump_ms", 0) for f in m["files"]); ver = sum(f.get("verify_ms", 0) for f in m["files"])
big = [f for f in m["files"] if f.get("database") == "bench"][0]
print(f"pg_dump steps {dump} ms (bench alone {big['dump_ms']} ms), verify reads {ver} ms, hash+fsync {m['hash_ms']} ms")
EOF
)
	verify+=($(sed -E 's/.*verify reads ([0-9]+) ms.*/\1/' <<<"$steps"))
	echo "round $r: bare ${bare[-1]} ms, supervised ${sup[-1]} ms ($(awk -v a="${sup[-1]}" -v b="${bare[-1]}" 'BEGIN { printf "%.2f", a / b }')x): $steps"
done
med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mb=$(med "${bare[@]}") msu=$(med "${sup[@]}")
ratios=() noverify=()
for i in "${!bare[@]}"; do
	ratios+=($(awk -v a="${sup[$i]}" -v b="${bare[$i]}" 'BEGIN { printf "%.3f", a / b }'))
	noverify+=($(awk -v a="${sup[$i]}" -v v="${verify[$i]}" -v b="${bare[$i]}" 'BEGIN { printf "%.3f", (a - v) / b }'))
done
echo "median: bare pg_dump ${mb} ms, supervised backup ${msu} ms"
echo "ratio supervised/bare, median of the paired rounds: $(med "${ratios[@]}") (target <= 1.05)"
echo "  without the full-read verify (pg_restore -f /dev/null): $(med "${noverify[@]}")"
"$LAB" ctl spoke-a backups | sed -n '1,4p'
