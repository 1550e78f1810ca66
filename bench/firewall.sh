#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Firewall benchmark (needs root; uses scratch network namespaces only):
#  1. apply time of the hub's table for 250 spokes with a full-mesh 5432
#     acl (62 250 pairs), through our libnftnl batch, side by side in the
#     same run with `nft -f` of the same ruleset (check-config's text), over
#     ROUNDS alternating rounds, both replacing an existing table; plus the
#     drift check's read-back of that table;
#  2. packets/s through a spoke's input chain (UDP, 64 bytes, one sender
#     core) with no table, with our set of 10 and of 60 000 acl entries, and
#     side by side with the same acl written one rule per pair (10 and 6 000
#     rules), the shape a rule-per-pair script produces.
# Targets (design.md §6): apply <= 100 ms and <= 0.5x nft -f; per-packet
# cost flat in the number of pairs.
# Environment: ROUNDS (default 7), PKT_SECONDS (default 3), BUILD (default build).
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
SECS=${PKT_SECONDS:-3}
BUILD=${BUILD:-build}
FWTOOL=$BUILD/tests/fwtool
BLAST=$BUILD/bench/udpblast
work=$(mktemp -d /tmp/sup-fwbench.XXXXXX)
cleanup() {
	for ns in fwb-apply fwb-src fwb-dst; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "bench/firewall.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$FWTOOL" ] && [ -x "$BLAST" ] || { echo "build first (ninja -C $BUILD)" >&2; exit 1; }

# gen_conf FILE SPOKES SOURCES PORTS: SPOKES spokes s000.. on 10.88.0.0/16;
# an acl from the first SOURCES spokes (after s000) to s000 on PORTS (a
# "tcp"/"udp" list), or a full mesh when SOURCES is "mesh".
gen_conf() {
	python3 - "$@" <<-'EOF'
	import base64, sys
	path, n, sources, ports = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
	key = lambda i: base64.b64encode(bytes([i % 256, i // 256, 9]) + bytes(29)).decode()
	out = ['cluster = { network = "10.88.0.0/16"; };',
	       'hub = { name = "hub"; overlay_ip = "10.88.0.1"; endpoint = "192.0.2.1:51820"; public_key = "%s"; };' % key(65535),
	       'spokes = (']
	names = []
	for i in range(n):
	    ip = "10.88.%d.%d" % ((11 + i) // 256, (11 + i) % 256)
	    names.append('"s%03d"' % i)
	    out.append('  %s{ name = "s%03d"; overlay_ip = "%s"; public_key = "%s"; postgres = "%s"; }'
	               % ("," if i else "", i, ip, key(i), "primary" if i == 0 else "none"))
	out.append(');')
	if sources == "mesh":
	    out.append('acl = ( { from = [ %s ]; to = [ %s ]; %s; } );' % (", ".join(names), ", ".join(names), ports))
	else:
	    out.append('acl = ( { from = [ %s ]; to = [ "s000" ]; %s; } );' % (", ".join(names[1:1 + int(sources)]), ports))
	open(path, "w").write("\n".join(out) + "\n")
	EOF
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "== apply: hub of 250 spokes, full-mesh 5432 acl ($ROUNDS rounds, alternating, each replacing the table)"
gen_conf "$work/mesh.conf" 250 mesh 'tcp = [ 5432 ]'
"$FWTOOL" nft "$work/mesh.conf" hub > "$work/mesh.nft"
elems=$(grep -c ' : accept' "$work/mesh.nft")
ip netns add fwb-apply
ip netns exec fwb-apply "$FWTOOL" apply "$work/mesh.conf" hub >/dev/null # the table to replace
ours=() ours_wall=() nft=() check=()
for _ in $(seq "$ROUNDS"); do
	t=$(date +%s%N)
	out=$(ip netns exec fwb-apply "$FWTOOL" apply "$work/mesh.conf" hub)
	ours_wall+=($(ms_since "$t"))
	ours+=($(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$out"))
	t=$(date +%s%N)
	ip netns exec fwb-apply nft -f "$work/mesh.nft"
	nft+=($(ms_since "$t"))
	t=$(date +%s%N)
	ip netns exec fwb-apply "$FWTOOL" check "$work/mesh.conf" hub >/dev/null
	check+=($(ms_since "$t"))
done
o=$(printf '%s\n' "${ours[@]}" | median)
ow=$(printf '%s\n' "${ours_wall[@]}" | median)
n=$(printf '%s\n' "${nft[@]}" | median)
c=$(printf '%s\n' "${check[@]}" | median)
echo "set elements: $elems; messages per batch: $(sed -E 's/.*messages=([0-9]+).*/\1/' <<<"$out")"
printf 'our batch (fw_apply):        median %6.1f ms  (runs: %s us)\n' "$(echo "$o / 1000" | bc -l)" "${ours[*]}"
printf 'fwtool process, wall:        median %6d ms  (incl. loading the cluster file)\n' "$ow"
printf 'nft -f, wall:                median %6d ms  (runs: %s ms)\n' "$n" "${nft[*]}"
printf 'ratio ours/nft -f:           %.2f (batch), %.2f (process)   target <= 0.5, and <= 100 ms\n' \
	"$(echo "$o / 1000 / $n" | bc -l)" "$(echo "$ow / $n" | bc -l)"
printf 'drift read-back of it:       median %6d ms (fwtool check, wall)\n' "$c"
ip netns del fwb-apply

echo
echo "== packets/s through a spoke's input chain (UDP 64 B, ${SECS} s each, one sender core)"
ip netns add fwb-src
ip netns add fwb-dst
ip -n fwb-src link add veth0 type veth peer name wg0 netns fwb-dst
ip -n fwb-src addr add 10.88.0.12/16 dev veth0
ip -n fwb-dst addr add 10.88.0.11/16 dev wg0
for ns in fwb-src fwb-dst; do ip -n "$ns" link set lo up; done
ip -n fwb-src link set veth0 up
ip -n fwb-dst link set wg0 up
# s000 is 10.88.0.11; s001 (10.88.0.12, the sender) is always in the acl, on port 5432.
gen_conf "$work/set10.conf" 11 10 'udp = [ 5432 ]'
gen_conf "$work/set60k.conf" 250 249 "udp = [ $(seq -s ', ' 5432 5672) ]"
"$FWTOOL" nft "$work/set10.conf" s000 > "$work/set10.nft"
# rules: the same acl, one rule per (source, port) pair, the matching one last
rules() { # rules COUNT
	python3 - "$1" > "$work/rules$1.nft" <<-'EOF'
	import sys
	n = int(sys.argv[1])
	print("table inet supervisor\ndelete table inet supervisor\ntable inet supervisor {\n chain input {\n  type filter hook input priority filter; policy drop;")
	print('  ct state established,related accept')
	for i in range(n - 1):
	    print('  iifname "wg0" ip saddr 10.88.%d.%d udp dport %d accept' % (1 + i // 250, i % 250, 6000 + i % 1000))
	print('  iifname "wg0" ip saddr 10.88.0.12 udp dport 5432 accept\n }\n}')
	EOF
}
rules 10
rules 6000
rate() { # rate LABEL
	ip netns exec fwb-dst "$BLAST" recv 5432 "$SECS" > "$work/recv" &
	local rp=$!
	sleep 0.3
	ip netns exec fwb-src "$BLAST" send 10.88.0.11 5432 "$SECS" >/dev/null
	wait "$rp"
	local pps
	pps=$(sed -E 's/.*pps=([0-9]+).*/\1/' "$work/recv")
	printf '%-44s %10s pkt/s' "$1" "$pps"
	[ -n "${BASE:-}" ] && printf '   %.2fx of no table' "$(echo "$pps / $BASE" | bc -l)"
	echo
	LAST=$pps
}
BASE=
rate "no table"
BASE=$LAST
ip netns exec fwb-dst "$FWTOOL" apply "$work/set10.conf" s000 >/dev/null
rate "our table, acl set of 10 entries"
ip netns exec fwb-dst "$FWTOOL" apply "$work/set60k.conf" s000 >/dev/null
XX
rate "our table, acl set of $n60 entries"
ip netns exec fwb-dst nft -f "$work/rules10.nft"
rate "baseline: 10 rules, one per pair"
ip netns exec fwb-dst nft -f "$work/rules6000.nft"
rate "baseline: 6000 rules, one per pair"
