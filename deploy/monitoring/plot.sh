#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Draws the README's picture of the dashboard's key panels through a hub
# outage: handshake age per peer, replay lag per replica (seconds and
# bytes), streaming per replica, from /metrics samples the lab recorded in
# the spec checklist's hub-outage test:
#
#   LAB_RECORD_DIR=/tmp/rec meson test -C build checklist    # (root; takes the lab lock)
#   cp /tmp/rec/hub-outage.tsv /tmp/rec/hub-outage.events deploy/monitoring/lab/
#   deploy/monitoring/plot.sh                                 # -> deploy/monitoring/hub-outage.png
#
# usage: plot.sh [SERIES.tsv [EVENTS [OUT.png]]]
# SERIES.tsv: "MS<TAB>NODE<TAB>METRIC{LABELS} VALUE" per sample (MS: ms since
# the recording began, NODE: whose /metrics); EVENTS: "MS<TAB>what happened".
# A series' gaps (no sample: the figure was unknown, or the node down) stay gaps.
# Needs gnuplot (Debian gnuplot-nox) and awk.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tsv=${1:-$here/lab/hub-outage.tsv}
events=${2:-$here/lab/hub-outage.events}
out=${3:-$here/hub-outage.png}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
[ -s "$tsv" ] || { echo "plot.sh: no samples in $tsv" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# split NAME AWK_FILTER TITLE_EXPR: one data file per series, a blank line at each gap
# (> 5 s without a sample; the recorder samples every ~2 s); prints "file<TAB>title" lines.
split() {
	awk -F'\t' -v dir="$tmp" -v kind="$1" "
	{
		node = \$2; metric = \$3; value = metric; sub(/.* /, \"\", value); sub(/ [^ ]*\$/, \"\", metric)
		name = metric; sub(/\\{.*/, \"\", name)
		peer = \"\"; if (match(metric, /peer=\"[^\"]*\"/)) peer = substr(metric, RSTART + 6, RLENGTH - 7)
		member = \"\"; if (match(metric, /member=\"[^\"]*\"/)) member = substr(metric, RSTART + 8, RLENGTH - 9)
		if (!($2)) next
		title = $3
		key = title; gsub(/[^a-zA-Z0-9]/, \"_\", key)
		f = dir \"/\" kind \"_\" key \".dat\"
		t = \$1 / 1000
		if ((f in last) && t - last[f] > 5) print \"\" > f
		print t, value > f
		last[f] = t
		if (!(f in seen)) { seen[f] = 1; order[++n] = f; titles[f] = title }
	}
	END { for (i = 1; i <= n; i++) print order[i] \"\t\" titles[order[i]] }" "$tsv"
}

# handshake age: every node's view of each of its peers
hs=$(split hs 'name == "supervisor_wireguard_handshake_age_seconds"' 'node " → " peer')
# replay lag, seconds and bytes: the primary's view of each replica, and each replica's own
lag=$(split lag 'name == "supervisor_replication_lag_seconds"' \
	'member " (" (node == member ? "its own view" : "seen from " node) ")"')
lagb=$(split lagb 'name == "supervisor_replication_lag_bytes"' \
	'member " (" (node == member ? "its own view" : "seen from " node) ")"')
# streaming or not, as the primary sees each replica (why the lag is unknown)
stream=$(split stream 'name == "supervisor_replication_streaming" && node != member' 'member " (seen from " node ")"')

xmax=$(awk -F'\t' '$1 / 1000 > m { m = $1 / 1000 } END { print int(m) + 1 }' "$tsv")

# plot_lines LIST: the gnuplot "plot" arguments for "file<TAB>title" lines
plot_lines() {
	local sep="" f t
	while IFS=$'\t' read -r f t; do
		[ -n "$f" ] || continue
		printf '%s"%s" using 1:2 with linespoints pt 7 ps 0.35 lw 1.6 title "%s"' "$sep" "$f" "$t"
		sep=", "
	done <<<"$1"
}

# the outage as a shaded band, every event as a labelled line
objects=""
if [ -s "$events" ]; then
	down=$(awk -F'\t' '$2 == "hub stopped" { print $1 / 1000 }' "$events")
	up=$(awk -F'\t' '$2 == "hub started" { print $1 / 1000 }' "$events")
	[ -n "$down" ] && [ -n "$up" ] &&
		objects="set object 1 rect from $down, graph 0 to $up, graph 1 behind fillcolor rgb '#f3d6d6' fillstyle solid noborder"
fi
arrows=$(awk -F'\t' '{ printf "set arrow from %s, graph 0 to %s, graph 1 nohead dashtype 3 lc rgb \"#888888\"\n", $1 / 1000, $1 / 1000 }' "$events" 2>/dev/null || true)
# (a label within 4 s of the one before goes lower, so they do not overlap)
labels=$(awk -F'\t' '{ y = (NR > 1 && $1 - prev < 4000) ? 0.55 : 0.97; prev = $1
	printf "set label \"%s\" at %s, graph %s rotate by 90 right offset -0.6,0 font \",9\" tc rgb \"#555555\"\n", $2, $1 / 1000, y }' "$events" 2>/dev/null || true)

gnuplot <<-EOF
	set terminal pngcairo noenhanced size 1200,1500 font "DejaVu Sans,11"
	set output "$out"
	set multiplot layout 4,1 title "The lab's /metrics through a 60 s hub outage under a steady write load (tests/lab/test_checklist.sh)" font ",13"
	set grid ytics lc rgb "#dddddd"
	set key outside right top font ",10"
	set xlabel "seconds since the recording began"
	set xrange [0:$xmax]
	set lmargin 12
	set rmargin 38
	$objects
	$arrows
	$labels
	set title "WireGuard handshake age per peer (supervisor_wireguard_handshake_age_seconds); fresh up to 180 s"
	set ylabel "seconds"
	set yrange [0:*]
	plot $(plot_lines "$hs")
	unset label
	set title "Replay lag per replica (supervisor_replication_lag_seconds); absent while unknown; max_replica_lag 300 s"
	set ylabel "seconds"
	plot $(plot_lines "$lag")
	set title "Replay lag per replica (supervisor_replication_lag_bytes)"
	set ylabel "bytes"
	set format y "%.0s %cB"
	plot $(plot_lines "$lagb")
	set title "Replica streaming (supervisor_replication_streaming): 1 streaming, 0 not (absent, catching up)"
	set ylabel ""
	set format y "%g"
	set yrange [-0.1:1.1]
	set ytics 0, 1, 1
	plot $(plot_lines "$stream" | sed 's/with linespoints pt 7 ps 0.35/with steps/g')
	unset multiplot
EOF
echo "plot.sh: wrote $out from $(wc -l < "$tsv") samples"
