#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerate the firewall golden files after a deliberate change to the
# rules: NAME.nft is what check-config prints, NAME.netlink is the bytecode
# nft(8) itself makes of that text (`nft --debug=netlink`), which the unit
# tests hold our encoder to. Review the diff before committing it.
#   tests/firewall/regen.sh [BUILD_DIR]     (root: uses a scratch netns)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
ns=fw-regen-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
while read -r conf node name; do
	"$build/tests/fwtool" nft "$here/$conf" "$node" | sed '1,2d' > "$here/$name.nft"
	ip netns exec "$ns" nft flush ruleset
	ip netns exec "$ns" nft --debug=netlink -f "$here/$name.nft" > "$here/$name.netlink"
	echo "$name: $(grep -c '^inet supervisor' "$here/$name.netlink") rules"
done <<LIST
../../deploy/examples/cluster.conf spoke-a example-spoke-a
../../deploy/examples/cluster.conf hub example-hub
mixed.conf spoke-b mixed-spoke-b
mixed.conf spoke-a mixed-spoke-a
mixed.conf hub mixed-hub
../conf/valid/minimal.conf spoke-a minimal-spoke-a
../conf/valid/minimal.conf hub minimal-hub
LIST
