# SPDX-License-Identifier: MIT
# High availability in the lab: queries, cutting a spoke off the hub, and the
# writer and sampler that test_ha.sh and bench/ha.sh both run. Sourced after
# helpers.sh; needs LAB and W (a scratch directory) set.

ha() { ctl_json "$1" ha "d['ha']$2"; }
psql_on() { timeout 20 "$LAB" exec "$1" psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c "$2"; }
leader_is() { [ "$(ha "$1" "['leader']")" = "$2" ] && [ "$(ha "$2" "['members']['$2'].get('role')")" = primary ]; }
eligible() { [ "$(ha "$1" "['candidates'] and all(c['eligible'] for c in d['ha']['candidates'])")" = True ]; }
writable() { [ "$(psql_on "$1" "SELECT NOT pg_is_in_recovery()" 2>/dev/null)" = t ]; }
gone_on() { ! psql_on "$1" "SELECT 1" >/dev/null 2>&1; }

# cut_from_hub PUBLIC_IP / heal: the lab's bridge drops a spoke's underlay
# traffic both ways (spokes reach each other only through the hub anyway).
cut_from_hub() { ip netns exec inet nft add rule bridge lab forward ip saddr "$1" drop &&
		 ip netns exec inet nft add rule bridge lab forward ip daddr "$1" drop; }
heal() { ip netns exec inet nft flush chain bridge lab forward &&
	 ip netns exec inet nft add rule bridge lab forward ip saddr 192.0.2.11-192.0.2.19 ip daddr 192.0.2.11-192.0.2.19 drop; }
declare -A PUB=([spoke-a]=192.0.2.11 [spoke-b]=192.0.2.12 [spoke-c]=192.0.2.13)

# start_load FIRST_SEQ [FIRST_NODE]: the writer inserts FIRST_SEQ+1, +2, ...
# into table w on whichever node takes writes (FIRST_NODE, default spoke-a,
# tried first), logging each acknowledged commit as "SEQ NODE MS" in
# $W/acked; the sampler asks every node four times a second whether it takes
# writes, logging "MS COUNT NODES..." in $W/samples. stop_load ends both.
# Each failed attempt is logged as "SEQ NODE START_MS TOOK_MS" in $W/attempts
# (a gap in $W/acked is either the servers' or the writer's own).
start_load() {
	rm -rf "$W"; mkdir -p "$W"; : > "$W/acked"; : > "$W/samples"; : > "$W/attempts"
	( seq=$1 cur=${2:-spoke-a}
	  while [ ! -f "$W/stop" ]; do
		seq=$((seq + 1))
		for n in $cur spoke-a spoke-b spoke-c; do
			t=$(ms)
			if [ "$(psql_on $n "INSERT INTO w VALUES ($seq, '$n') RETURNING seq" 2>/dev/null)" = $seq ]; then
				echo "$seq $n $(ms)" >> "$W/acked"; cur=$n; break
			fi
			echo "$seq $n $t $(( $(ms) - t ))" >> "$W/attempts"
		done
		sleep 0.05
	  done ) &
	( while [ ! -f "$W/stop" ]; do
		t=$(ms)
		for n in spoke-a spoke-b spoke-c; do
			( writable $n && echo $n > "$W/rw.$n" || rm -f "$W/rw.$n" ) &
		done
		wait
		who=$(cat "$W"/rw.* 2>/dev/null | tr '\n' ' ')
		echo "$t $(echo $who | wc -w) $who" >> "$W/samples"
		sleep 0.25
	  done ) &
}
stop_load() { touch "$W/stop"; wait; }
acked_on_since() { awk -v n="$1" -v t="$2" '$2 == n && $3 >= t { f = 1 } END { exit !f }' "$W/acked"; } # NODE MS
max_gap_ms() { awk 'NR > 1 && $3 - t > g { g = $3 - t } { t = $3 } END { print g + 0 }' "$W/acked"; }
lost_on() { # lost_on NODE: how many acknowledged seqs are missing on NODE ("?": it did not answer)
	psql_on "$1" "SELECT seq FROM w ORDER BY 1" > "$W/present" || { echo "?"; return; }
	cut -d' ' -f1 "$W/acked" | sort | comm -23 - <(sort "$W/present") | wc -l
}
two_writable() { awk '$2 > 1' "$W/samples" | wc -l; }
