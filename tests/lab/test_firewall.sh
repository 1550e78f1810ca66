#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The firewall end to end in the lab, with real packets: port scans from
# the internet side, connections over the overlay with and without an acl,
# a foreign table left alone, drift repaired, a failed batch changing
# nothing, the table outliving its supervisor, and Postgres kept down
# while the firewall cannot be applied.
set -u
SUP=$1 TESTS=$2 FWTOOL=$3
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-fw
LAB="$TESTS/lab/lab.sh"
SCAN="$TESTS/lab/scan.py"
HOLDER=
trap '[ -n "$HOLDER" ] && kill -- -$HOLDER 2>/dev/null; [ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root

ACL='acl = ( { from = [ "spoke-b", "spoke-c" ]; to = [ "spoke-a" ]; tcp = [ 5432 ]; },
        { from = [ "spoke-a" ]; to = [ "spoke-b", "spoke-c" ]; tcp = [ 5432 ]; } );'

both_streaming() {
	[ "$(ctl_json spoke-a replication "sum(1 for r in d['replication']['members'] if r.get('link')=='streaming')")" = 2 ]
}
# reach FROM IP PORT: a TCP connection from node FROM succeeds within 2 s.
reach() { "$LAB" exec "$1" socat -T2 /dev/null "TCP:$2:$3,connect-timeout=2" 2>/dev/null; }
listing() { ip netns exec "$1" nft list table inet supervisor 2>&1 | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'; }
has_table() { ip netns exec "$1" nft list table inet supervisor >/dev/null 2>&1; }
fw_applied() { [ "$(ctl_json "$1" firewall "d['firewall']['state']")" = applied ]; }
pg_running() { [ "$(ctl_json "$1" replication "d['postgres']['state']")" = running ]; }
no_rule_for() { ! ip netns exec "$1" nft list table inet supervisor | grep -q "dport $2"; }
declare -A PUBLIC=([spoke-a]=192.0.2.11 [spoke-b]=192.0.2.12 [spoke-c]=192.0.2.13)
genid() { ip netns exec "$1" "$FWTOOL" check "$LAB_DIR/cluster.conf" "$1" | sed -E 's/.*genid=([0-9]+).*/\1/'; }

LAB_EXTRA=$ACL "$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }

# ---- applied, and exactly what nft makes of the printed text -------------------
states=$(for n in hub spoke-a spoke-b spoke-c; do printf '%s=%s ' "$n" "$(ctl_json "$n" firewall "d['firewall']['state']")"; done)
[ "$states" = "hub=applied spoke-a=applied spoke-b=applied spoke-c=applied " ] &&
	tap_ok "every node applied its table at start" || tap_fail "every node applied its table at start" "$states"
if el=$(wait_until 60000 both_streaming); then
	tap_ok "replication works through the acl: both replicas streaming ($el ms)"
else
	tap_fail "replication works through the acl" "$("$LAB" ctl spoke-a replication 2>&1)"
fi
ip netns add fw-scratch 2>/dev/null || { ip netns del fw-scratch; ip netns add fw-scratch; }
for n in hub spoke-a; do
	ip netns exec fw-scratch nft flush ruleset
	"$SUP" check-config -c "$LAB_DIR/cluster.conf" -n "$n" 2>/dev/null |
		sed -n '/^table inet supervisor {/,/^}/p' > "$LAB_DIR/$n.nft"
	ip netns exec fw-scratch nft -f "$LAB_DIR/$n.nft"
	ours=$(listing "$n")
	theirs=$(ip netns exec fw-scratch nft list table inet supervisor | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/')
	[ -n "$ours" ] && [ "$ours" = "$theirs" ] &&
		tap_ok "$n: the applied table lists exactly as nft -f of check-config's text ($(wc -l <<<"$ours") lines)" ||
		tap_fail "$n: the applied table lists exactly as nft -f of check-config's text" "$(diff <(echo "$ours") <(echo "$theirs") | head -20)"
done
ip netns del fw-scratch

# ---- from the internet side --------------------------------------------------------
for s in spoke-a spoke-b spoke-c; do
	"$LAB" exec "$s" sh -c 'socat TCP-LISTEN:7000,reuseaddr,fork SYSTEM:true >/dev/null 2>&1 &'
done
sleep 0.3
for s in spoke-a spoke-b spoke-c; do
	got=$(ip netns exec inet python3 "$SCAN" tcp "${PUBLIC[$s]}")
	[ "$got" = 8000 ] && tap_ok "$s: of all 65535 TCP ports only 8000 answers from the internet" ||
		tap_fail "$s: of all 65535 TCP ports only 8000 answers from the internet" "answered: $got"
done
got=$(ip netns exec inet python3 "$SCAN" tcp 192.0.2.1)
[ "$got" = 22 ] && tap_ok "hub: of all 65535 TCP ports only 22 answers from the internet" ||
	tap_fail "hub: of all 65535 TCP ports only 22 answers from the internet" "answered: $got"
UDP_SAMPLE="53 67 123 161 500 4500 5353 5432 7000 8000 51821 60000"
got=$(for ip in 192.0.2.1 192.0.2.11 192.0.2.12 192.0.2.13; do ip netns exec inet python3 "$SCAN" udp "$ip" $UDP_SAMPLE; done | tr -d '\n')
control=$(ip netns exec inet python3 "$SCAN" udp 192.0.2.254 53 123)
[ -z "$got" ] && [ "$control" = "53 123" ] &&
	tap_ok "no node answers a sample of 12 UDP ports (the same probe to an open host gets ICMP back)" ||
	tap_fail "no node answers a sample of UDP ports" "answered: '$got' control: '$control'"
[ "$(ctl_json hub firewall "d['firewall']['state']")" = applied ] && overall=$(ctl_json spoke-b replication "d['overall']") && [ "$overall" != critical ] &&
	tap_ok "51820/udp is open on the hub: every spoke's tunnel is up through it" ||
	tap_fail "51820/udp is open on the hub" "$("$LAB" ctl spoke-b tunnel 2>&1)"

# ---- over the overlay, with the acl ---------------------------------------------------
"$LAB" exec spoke-a sh -c 'socat TCP-LISTEN:7001,bind=10.88.0.11,reuseaddr,fork SYSTEM:true >/dev/null 2>&1 &'
sleep 0.2
reach spoke-b 10.88.0.11 5432 && reach spoke-c 10.88.0.11 5432 &&
	tap_ok "acl: spoke-b and spoke-c reach 5432 on spoke-a" ||
	tap_fail "acl: spoke-b and spoke-c reach 5432 on spoke-a"
! reach spoke-b 10.88.0.11 7001 && ! reach spoke-b 10.88.0.11 7000 &&
	tap_ok "acl: spoke-b cannot reach another port on spoke-a (7000, 7001 listen)" ||
	tap_fail "acl: spoke-b cannot reach another port on spoke-a"
! reach spoke-b 10.88.0.13 5432 && ! reach spoke-c 10.88.0.12 7000 &&
	tap_ok "acl: a spoke pair not in the acl cannot connect (b->c:5432, c->b:7000)" ||
	tap_fail "acl: a spoke pair not in the acl cannot connect"
! reach hub 10.88.0.11 5432 && ! reach hub 10.88.0.12 7000 && ! reach hub 10.88.0.13 8000 &&
	tap_ok "the hub cannot open a connection to any spoke over the overlay" ||
	tap_fail "the hub cannot open a connection to any spoke over the overlay"
# Pairs outside the acl are already dropped at the hub; the spokes' own acl is the second line.
h=$(ctl_json hub firewall "[x['packets'] for x in d['firewall']['drops'] if x['chain'] == 'forward' and 'pairs not allowed' in x['why']][0]")
o=$(ctl_json hub firewall "[x['packets'] for x in d['firewall']['drops'] if x['chain'] == 'output'][0]")
[ "${h:-0}" -gt 0 ] && [ "${o:-0}" -gt 0 ] &&
	tap_ok "ctl firewall counts the drops (hub: forward $h, own output $o packets)" ||
	tap_fail "ctl firewall counts the drops" "hub-forward=$h hub-output=$o"

# ---- a foreign table is left alone, by apply and by repair -----------------------------
"$LAB" stop spoke-b
ip netns exec spoke-b nft -f - <<-'EOF'
table ip docker-bridges {
	map filter-forward-in-jumps { type ifname : verdict; elements = { "docker0" : accept } }
	chain filter-FORWARD { type filter hook forward priority filter; policy accept; iifname vmap @filter-forward-in-jumps; }
}
EOF
before=$(ip netns exec spoke-b nft list table ip docker-bridges)
"$LAB" start spoke-b
wait_until 5000 fw_applied spoke-b >/dev/null
after=$(ip netns exec spoke-b nft list table ip docker-bridges)
[ -n "$before" ] && [ "$before" = "$after" ] &&
	tap_ok "a foreign table (docker-bridges) is untouched when our table is applied" ||
	tap_fail "a foreign table is untouched when our table is applied" "$(diff <(echo "$before") <(echo "$after"))"

# ---- drift: deleted or edited, restored within 2 s -------------------------------------
want=$(listing spoke-b)
ip netns exec spoke-b nft delete table inet supervisor
if el=$(wait_until 2000 has_table spoke-b); then
	tap_ok "our table deleted with nft: restored in $el ms (limit 2000)"
else
	tap_fail "our table deleted with nft: restored within 2 s"
fi
sleep 0.3
[ "$(listing spoke-b)" = "$want" ] && [ "$(ip netns exec spoke-b nft list table ip docker-bridges)" = "$before" ] &&
	tap_ok "the restored table is the same, and the foreign table is still untouched" ||
	tap_fail "the restored table is the same, and the foreign table is still untouched"
ip netns exec spoke-b nft add rule inet supervisor input tcp dport 7000 accept
if el=$(wait_until 2000 no_rule_for spoke-b 7000); then
	tap_ok "a rule added to our table by hand: removed in $el ms (limit 2000)"
else
	tap_fail "a rule added to our table by hand: removed within 2 s"
fi
sleep 0.3
repairs=$(ctl_json spoke-b firewall "d['firewall']['repairs']")
last=$(ctl_json spoke-b firewall "d['firewall']['last_repair']")
[ "$repairs" = 2 ] && grep -q "rule that is not ours" <<<"$last" &&
	tap_ok "ctl firewall counts 2 repairs and says what the last one fixed ($last)" ||
	tap_fail "ctl firewall counts 2 repairs and says what the last one fixed" "repairs=$repairs last=$last"

# ---- a batch that fails midway changes nothing --------------------------------------------
g0=$(genid spoke-b)
l0=$(listing spoke-b)
out=$(ip netns exec spoke-b "$FWTOOL" apply-broken "$LAB_DIR/cluster.conf" spoke-b); rc=$?
sleep 0.5
if [ $rc -ne 0 ] && grep -q 'chain xxx.*: ' <<<"$out" && [ "$(genid spoke-b)" = "$g0" ] &&
   [ "$(listing spoke-b)" = "$l0" ] && [ "$(ctl_json spoke-b firewall "d['firewall']['repairs']")" = 2 ]; then
	tap_ok "a batch refused at its last chain: error reported, generation $g0 and the table unchanged"
else
	tap_fail "a batch that fails midway changes nothing" "rc=$rc out=$out gen $g0 -> $(genid spoke-b)"
fi

# ---- the table outlives its supervisor -------------------------------------------------------
"$LAB" kill spoke-c
pol=$(ip netns exec spoke-c nft list chain inet supervisor input 2>/dev/null | grep -c 'policy drop')
got=$(ip netns exec inet python3 "$SCAN" tcp 192.0.2.13 7000 7000)
[ "$pol" = 1 ] && [ -z "$got" ] &&
	tap_ok "after SIGKILL of its supervisor, spoke-c's table and its policy drop stay" ||
	tap_fail "after SIGKILL of its supervisor, spoke-c's table stays" "policy-drop=$pol 7000 answered=$got"

# ---- Postgres stays down while the firewall cannot be applied --------------------------------
# Another process owns a table of our name (NFT_TABLE_F_OWNER): ours cannot replace it.
ip netns exec spoke-c nft delete table inet supervisor
setsid ip netns exec spoke-c sh -c "(echo 'add table inet supervisor { flags owner; }'; exec sleep 600) | nft -i" >/dev/null 2>&1 &
HOLDER=$!
sleep 0.5
"$LAB" start spoke-c
sleep 3
st=$("$LAB" ctl spoke-c status --json)
fw=$(json_eval "$st" "d['firewall']['state']")
pg=$(json_eval "$st" "d['postgres']['state']")
why=$(json_eval "$st" "[r for r in d['reasons'] if r.startswith('firewall')]")
procs=$("$LAB" exec spoke-c pgrep -c -x postgres)
"$LAB" ctl spoke-c status >/dev/null; rc=$?
if [ "$fw" = failed ] && [ "$pg" = waiting_for_firewall ] && [ "$procs" = 0 ] && [ $rc = 2 ] &&
   grep -q 'Operation not permitted' <<<"$why"; then
	tap_ok "firewall not applicable: Postgres stays down, status critical and says why"
else
	tap_fail "firewall not applicable: Postgres stays down, status critical and says why" \
		"firewall=$fw postgres=$pg procs=$procs rc=$rc why=$why"
fi
kill -- -$HOLDER; HOLDER=
if el=$(wait_until 40000 pg_running spoke-c); then
	tap_ok "once the table can be applied (retry), Postgres starts ($el ms)"
else
	tap_fail "once the table can be applied, Postgres starts" "$("$LAB" ctl spoke-c status 2>&1 | head -5)"
fi

# ---- reload without an acl: spokes trust each other fully ----------------------------------
h0=$(ctl_json spoke-b firewall "d['firewall']['rules_hash']")
grep -v -e '^acl = ' -e '^        { from = \[ "spoke-a" \]' "$LAB_DIR/cluster.conf" > "$LAB_DIR/noacl.conf"
for n in hub spoke-a spoke-b spoke-c; do
	cp "$LAB_DIR/noacl.conf" "$LAB_DIR/$n/etc/cluster.conf"
	"$LAB" ctl "$n" reload >/dev/null
done
h1=$(ctl_json spoke-b firewall "d['firewall']['rules_hash']")
for s in spoke-b spoke-c; do # restarted above: their listeners went with them
	"$LAB" exec "$s" sh -c 'socat TCP-LISTEN:7000,reuseaddr,fork SYSTEM:true >/dev/null 2>&1 &'
done
sleep 0.3
if [ "$h0" != "$h1" ] && reach spoke-b 10.88.0.13 7000 && reach spoke-a 10.88.0.12 7000 && reach spoke-b 10.88.0.13 5432; then
	tap_ok "reload without acl: re-applied ($h0 -> $h1), spokes reach each other on any port"
else
	tap_fail "reload without acl: spokes reach each other on any port" "hash $h0 -> $h1"
fi
! reach hub 10.88.0.12 7000 && ! reach hub 10.88.0.11 5432 &&
	tap_ok "without acl, the hub still cannot connect to any spoke" ||
	tap_fail "without acl, the hub still cannot connect to any spoke"

# Every supervisor exits (under ASan, LeakSanitizer reports at exit).
for n in hub spoke-a spoke-b spoke-c; do "$LAB" stop "$n"; done
no_sanitizer_reports
tap_done
