#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Another firewall on the hub (issue 15 §4): Docker or UFW set the
# `ip filter FORWARD` policy to drop, and a drop in any base chain wins over
# our accept, so spoke-to-spoke traffic dies while every tunnel is fresh.
# The hub must say so (ctl tunnel, ctl firewall, /status), naming the chain
# and the command that fixes it; running that command must restore the
# traffic and clear the reason. Cases: a plain `iptables -P FORWARD DROP`,
# Docker's chains (DOCKER-USER first, policy drop), an nft table's drop.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-hubfw
LAB="$TESTS/lab/lab.sh"
trap '[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root
for t in iptables-nft socat; do
	command -v "$t" >/dev/null || { tap_fail "$t is installed (scripts/setup)"; tap_done; exit 1; }
done

# The hub's reasons about other firewalls, from ctl tunnel (no read on request:
# what the event-driven re-check found).
foreign_reasons() { ctl_json hub tunnel "'\n'.join(r for r in d['reasons'] if 'another firewall' in r)"; }
blocked() { [ -n "$(foreign_reasons)" ]; }
unblocked() { [ -z "$(foreign_reasons)" ]; }
reach() { "$LAB" exec "$1" socat -T2 /dev/null "TCP:$2:$3,connect-timeout=2" 2>/dev/null; }
hub_nft() { ip netns exec hub "$@"; }
both_streaming() {
	[ "$(ctl_json spoke-a replication "sum(1 for r in d['replication']['members'] if r.get('link')=='streaming')")" = 2 ]
}
# logged T0 TEXT: ms from T0 (ms since the epoch) to the hub's first log line
# after it that contains TEXT: how long the daemon itself took, without ctl.
logged() {
	python3 - "$1" "$2" "$LAB_DIR/hub/supervisor.log" <<-'PY'
	import sys, datetime
	t0, text = int(sys.argv[1]), sys.argv[2]
	for line in open(sys.argv[3], errors="replace"):
	    if text not in line or not line.startswith("ts="):
	        continue
	    ts = datetime.datetime.strptime(line[3:27], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
	    ms = int(ts.timestamp() * 1000) - t0
	    if ms >= 0:
	        print(ms); break
	else:
	    print("?")
	PY
}
hint_on_primary() {
	ctl_json spoke-a status "[r for r in d['reasons'] if 'spoke-b is absent' in r][0]" | grep -q "tunnel is fresh"
}

"$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
if el=$(wait_until 90000 both_streaming); then
	tap_ok "both replicas stream through the hub ($el ms)"
else
	tap_fail "both replicas stream through the hub" "$("$LAB" ctl spoke-a replication 2>&1)"
fi
"$LAB" exec spoke-a sh -c 'socat TCP-LISTEN:7000,bind=10.88.0.11,reuseaddr,fork SYSTEM:true >/dev/null 2>&1 &'
sleep 0.3
reach spoke-b 10.88.0.11 7000 && unblocked && [ "$(ctl_json hub firewall "d['health']")" = ok ] &&
	tap_ok "before: spoke-b reaches spoke-a (7000), the hub reports no other firewall" ||
	tap_fail "before: spoke-b reaches spoke-a, the hub reports no other firewall" "$(foreign_reasons)"

# ---- iptables -P FORWARD DROP -----------------------------------------------------------
t0=$(ms)
hub_nft iptables-nft -P FORWARD DROP
if el=$(wait_until 10000 blocked); then
	tap_ok "iptables -P FORWARD DROP on the hub: ctl tunnel says so after $(( $(ms) - t0 )) ms (logged after $(logged "$t0" "another firewall drops") ms)"
else
	tap_fail "iptables -P FORWARD DROP on the hub: ctl tunnel says so" "$("$LAB" ctl hub tunnel 2>&1)"
fi
why=$(foreign_reasons)
fix=$(ctl_json hub firewall "d['firewall']['foreign']['blocking'][0]['fix']")
! reach spoke-b 10.88.0.11 7000 && ! reach spoke-c 10.88.0.11 5432 &&
	tap_ok "spoke-to-spoke TCP is dropped at the hub (b->a:7000, c->a:5432)" ||
	tap_fail "spoke-to-spoke TCP is dropped at the hub"
grep -q 'chain ip filter FORWARD: policy drop' <<<"$why" &&
	grep -q 'fix on the hub: iptables -I FORWARD -i wg0 -o wg0 -j ACCEPT$' <<<"$why" &&
	[ "$fix" = "iptables -I FORWARD -i wg0 -o wg0 -j ACCEPT" ] &&
	tap_ok "the reason names the chain and gives the command ($why)" ||
	tap_fail "the reason names the chain and gives the command" "why=$why fix=$fix"
h_t=$(ctl_json hub tunnel "d['health']") h_f=$(ctl_json hub firewall "d['health']")
s_why=$(status_json hub "d['overall'], [r for r in d['reasons'] if 'ip filter FORWARD' in r] != []")
[ "$h_t" = degraded ] && [ "$h_f" = degraded ] && [ "$s_why" = "degraded True" ] &&
	tap_ok "degraded in ctl tunnel, ctl firewall and /status, with the reason" ||
	tap_fail "degraded in ctl tunnel, ctl firewall and /status" "tunnel=$h_t firewall=$h_f status=$s_why"
# The primary sees its replica go (wal_sender_timeout 20 s) while its own tunnel is fresh.
if el=$(wait_until 60000 hint_on_primary); then
	tap_ok "the primary's reason for the absent replica points at the hub's firewall ($el ms)"
else
	tap_fail "the primary's reason for the absent replica points at the hub's firewall" \
		"$(ctl_json spoke-a status "d['reasons']")"
fi
t0=$(ms)
hub_nft sh -c "$fix"
if el=$(wait_until 10000 unblocked); then
	tap_ok "the printed fix run on the hub: the reason clears after $(( $(ms) - t0 )) ms (logged after $(logged "$t0" "no longer drops") ms)"
else
	tap_fail "the printed fix run on the hub: the reason clears" "$(foreign_reasons)"
fi
reach spoke-b 10.88.0.11 7000 && reach spoke-c 10.88.0.11 5432 &&
	tap_ok "spoke-to-spoke TCP works again (b->a:7000, c->a:5432)" ||
	tap_fail "spoke-to-spoke TCP works again"
if el=$(wait_until 60000 both_streaming); then
	tap_ok "both replicas stream again ($el ms)"
else
	tap_fail "both replicas stream again" "$("$LAB" ctl spoke-a replication 2>&1)"
fi

# ---- Docker's chains: FORWARD jumps to DOCKER-USER first, policy drop ------------------------
hub_nft sh -c 'iptables-nft -F FORWARD && iptables-nft -N DOCKER-USER && iptables-nft -N DOCKER-FORWARD &&
	iptables-nft -A FORWARD -j DOCKER-USER && iptables-nft -A FORWARD -j DOCKER-FORWARD &&
	iptables-nft -A DOCKER-FORWARD -i docker0 -j ACCEPT && iptables-nft -A DOCKER-USER -j RETURN'
if el=$(wait_until 10000 blocked); then
	fix=$(ctl_json hub firewall "d['firewall']['foreign']['blocking'][0]['fix']")
	[ "$fix" = "iptables -I DOCKER-USER -i wg0 -o wg0 -j ACCEPT" ] && ! reach spoke-b 10.88.0.11 7000 &&
		tap_ok "Docker's chains: the reason gives Docker's fix, in DOCKER-USER ($el ms)" ||
		tap_fail "Docker's chains: the reason gives Docker's fix" "fix=$fix"
else
	tap_fail "Docker's chains: the hub says so" "$("$LAB" ctl hub tunnel 2>&1)"
fi
hub_nft sh -c "$fix"
if el=$(wait_until 10000 unblocked) && reach spoke-b 10.88.0.11 7000; then
	tap_ok "Docker's fix run: the reason clears ($el ms), spoke-b reaches spoke-a"
else
	tap_fail "Docker's fix run: the reason clears, spoke-b reaches spoke-a" "$(foreign_reasons)"
fi
hub_nft sh -c 'iptables-nft -F FORWARD && iptables-nft -P FORWARD ACCEPT'

# ---- an nft table of someone else's that drops wg0 traffic --------------------------------------
hub_nft nft -f - <<-'EOF'
table inet other {
	chain fwd_in { type filter hook forward priority filter + 5; policy accept; oifname "wg*" counter drop; }
}
EOF
if el=$(wait_until 10000 blocked); then
	fix=$(ctl_json hub firewall "d['firewall']['foreign']['blocking'][0]['fix']")
	why=$(foreign_reasons)
	[ "$fix" = 'nft insert rule inet other fwd_in iifname "wg0" oifname "wg0" accept' ] &&
		grep -q 'chain inet other fwd_in: rule 1 (handle [0-9]*) drops every packet' <<<"$why" &&
		tap_ok "an nft table's drop: named with its rule, fixed by nft insert rule ($el ms)" ||
		tap_fail "an nft table's drop: named with its rule" "why=$why fix=$fix"
else
	tap_fail "an nft table's drop: the hub says so" "$("$LAB" ctl hub tunnel 2>&1)"
fi
hub_nft sh -c "$fix"
if el=$(wait_until 10000 unblocked) && reach spoke-b 10.88.0.11 7000; then
	tap_ok "nft's fix run: the reason clears ($el ms), spoke-b reaches spoke-a"
else
	tap_fail "nft's fix run: the reason clears, spoke-b reaches spoke-a" "$(foreign_reasons)"
fi
[ "$(ctl_json hub firewall "d['firewall']['repairs']")" = 0 ] &&
	tap_ok "our own table was never touched (0 repairs)" ||
	tap_fail "our own table was never touched" "repairs=$(ctl_json hub firewall "d['firewall']['repairs']")"

for n in hub spoke-a spoke-b spoke-c; do "$LAB" stop "$n"; done
no_sanitizer_reports
tap_done
