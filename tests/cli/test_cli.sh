#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The supervisor binary as a user runs it: check-config on good and bad
# files (exit codes, FILE:LINE messages), key commands against wg(8),
# private-key checks, help and usage errors, ctl against a fake daemon.
set -u
SUP=$1 TESTS=$2 ROOT=$3
. "$TESTS/tap.sh"
EX=$ROOT/deploy/examples/cluster.conf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for node in hub spoke-a spoke-b spoke-c; do
	out=$("$SUP" check-config -c "$EX" -n "$node" 2>"$tmp/err"); rc=$?
	if [ $rc -eq 0 ] && grep -qx "configuration OK" <<<"$out" && grep -q "^node $node " <<<"$out"; then
		tap_ok "check-config example -n $node"
	else
		tap_fail "check-config example -n $node" "rc=$rc" "$(cat "$tmp/err")"
	fi
done

out=$("$SUP" check-config -c "$EX" -n spoke-b 2>/dev/null)
if grep -q "upstream spoke-a (10.88.0.11:5432) as replicator" <<<"$out" &&
   grep -q "in  spoke-a      -> spoke-b      tcp/5432" <<<"$out" &&
   grep -q "allowed_ips 10.88.0.0/24" <<<"$out"; then
	tap_ok "plan of spoke-b shows upstream, peers and ACL flows"
else
	tap_fail "plan of spoke-b shows upstream, peers and ACL flows" "$out"
fi

# The firewall plan: the table in nft syntax, its hash the SHA-256 of that text.
table=$(sed -n '/^table inet supervisor {/,/^}/p' <<<"$out")
hash=$(grep -o 'rules hash sha256:[0-9a-f]*' <<<"$out" | sed 's/.*sha256://')
if grep -q 'iifname "wg0" ip saddr . tcp dport @acl_tcp accept' <<<"$table" &&
   grep -q '10.88.0.11 . 5432' <<<"$table" &&
   [ -n "$hash" ] && [ "$(printf '%s\n' "$table" | sha256sum | cut -c1-16)" = "$hash" ]; then
	tap_ok "plan of spoke-b shows its nftables table, and its hash is sha256 of that text"
else
	tap_fail "plan of spoke-b shows its nftables table with a hash of that text" "hash=$hash" "$table"
fi

# The ha group: its section of the plan, the flows it derives marked as such
# and in the firewall, a warning (not an error) with only two etcd members.
grep -qx "ha: off" <<<"$out" && tap_ok "plan without an ha group says ha: off" ||
	tap_fail "plan without an ha group says ha: off" "$out"
HA=$TESTS/conf/valid
out=$("$SUP" check-config -c "$HA/ha.conf" -n spoke-c 2>"$tmp/err"); rc=$?
if [ $rc -eq 0 ] &&
   grep -qx "ha: automatic, bootstrap primary spoke-a (once the cluster runs, the leader lives in etcd)" <<<"$out" &&
   grep -qx "  candidates: spoke-a spoke-b spoke-c" <<<"$out" &&
   grep -qx "  etcd members: 3, a majority is 2 (elections survive losing 1)" <<<"$out" &&
   grep -qx "    spoke-b      peer http://10.88.0.12:2380" <<<"$out" &&
   grep -q "^  etcd client http://127.0.0.1:12379, binary /opt/etcd/bin/etcd, data /srv/etcd$" <<<"$out" &&
   grep -qx "  ttl 40s, loop_wait 5s, retry_timeout 15s, maximum_lag_on_failover 5000000000 bytes" <<<"$out" &&
   grep -qx "  in  spoke-b      -> spoke-c      tcp/5432  (derived: ha)" <<<"$out" &&
   grep -qx "  in  spoke-a      -> spoke-c      tcp/2380  (derived: ha)" <<<"$out" &&
   grep -qx "  in  spoke-a      -> spoke-c      tcp/5432" <<<"$out" &&
   grep -q '10.88.0.12 . 5432' <<<"$out" && grep -q '10.88.0.11 . 2380' <<<"$out" &&
   ! grep -q "etcd members" "$tmp/err"; then
	tap_ok "check-config of an ha file: its section, derived flows marked and in the firewall"
else
	tap_fail "check-config of an ha file: its section, derived flows marked and in the firewall" "rc=$rc" "$out" "$(cat "$tmp/err")"
fi
out=$("$SUP" check-config -c "$HA/ha_nofailover.conf" -n spoke-a 2>/dev/null); rc=$?
if [ $rc -eq 0 ] && grep -qx "  candidates: spoke-a spoke-b" <<<"$out" &&
   grep -qx "  not candidates (failover = false): spoke-c" <<<"$out" &&
   grep -qx "    spoke-c      peer http://10.88.0.13:2380" <<<"$out"; then
	tap_ok "check-config names the spokes with failover = false, still etcd members"
else
	tap_fail "check-config names the spokes with failover = false, still etcd members" "rc=$rc" "$out"
fi
"$SUP" check-config -c "$HA/ha_two.conf" -n spoke-a >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ $rc -eq 0 ] && grep -qx "configuration OK" "$tmp/out" &&
   grep -q "^warning: $HA/ha_two.conf:13: ha: only 2 etcd members (spoke-a, spoke-b): etcd needs a majority" "$tmp/err"; then
	tap_ok "two etcd members: a warning with FILE:LINE, exit 0"
else
	tap_fail "two etcd members: a warning with FILE:LINE, exit 0" "rc=$rc" "$(cat "$tmp/err")"
fi
"$SUP" check-config -c "$HA/fresh_short.conf" -n spoke-a >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ $rc -eq 0 ] && grep -qx "configuration OK" "$tmp/out" &&
   grep -q "^warning: $HA/fresh_short.conf:2: cluster: fresh_handshake = 30 is below WireGuard's rekey interval (120 s)" "$tmp/err" &&
   ! grep -q "fresh_handshake" <("$SUP" check-config -c "$HA/minimal.conf" -n spoke-a 2>&1); then
	tap_ok "fresh_handshake under the rekey interval: a warning with FILE:LINE, exit 0 (none at the default)"
else
	tap_fail "fresh_handshake under the rekey interval: a warning" "rc=$rc" "$(cat "$tmp/err")"
fi
"$SUP" check-config -c "$TESTS/conf/invalid/ha_candidates.conf" -n spoke-a >"$tmp/out" 2>"$tmp/err"; rc=$?
if [ $rc -eq 78 ] && ! grep -q "configuration OK" "$tmp/out" &&
   grep -q "^$TESTS/conf/invalid/ha_candidates.conf:12: ha.mode: \"manual\" needs at least 2 failover candidates" "$tmp/err"; then
	tap_ok "an ha file with one candidate exits 78 with FILE:LINE"
else
	tap_fail "an ha file with one candidate exits 78 with FILE:LINE" "rc=$rc" "$(cat "$tmp/err")"
fi

# Every invalid file: exit 78 and each expected FILE:LINE: message on stderr.
for f in "$TESTS"/conf/invalid/*.conf; do
	name=$(basename "$f")
	node=$(sed -n 's/^# node: //p' "$f"); node=${node:-spoke-a}
	"$SUP" check-config -c "$f" -n "$node" >/dev/null 2>"$tmp/err"; rc=$?
	missing=$(sed -n 's/^# expect: //p' "$f" | while IFS= read -r exp; do
		grep -qxF "$f:$exp" "$tmp/err" || echo "$f:$exp"; done)
	if [ $rc -eq 78 ] && [ -z "$missing" ] && [ -s "$tmp/err" ]; then
		tap_ok "check-config $name exits 78 with its lines"
	else
		tap_fail "check-config $name exits 78 with its lines" "rc=$rc" "missing: $missing"
	fi
done

"$SUP" check-config -c /nonexistent.conf -n a >/dev/null 2>"$tmp/err"; rc=$?
if [ $rc -eq 78 ] && grep -q "^/nonexistent.conf:0: cannot read the file" "$tmp/err"; then
	tap_ok "missing cluster file exits 78"
else
	tap_fail "missing cluster file exits 78" "rc=$rc"
fi

# Keys, byte-compatible with wg(8).
if ! command -v wg >/dev/null; then
	tap_fail "wg(8) is installed (needed to check key compatibility)"
else
	for i in 1 2 3; do
		k=$("$SUP" genkey)
		if [ "$(wg pubkey <<<"$k")" = "$("$SUP" pubkey <<<"$k")" ]; then
			tap_ok "pubkey of genkey #$i matches wg pubkey"
		else
			tap_fail "pubkey of genkey #$i matches wg pubkey"
		fi
	done
	k=$(wg genkey)
	if [ "$(wg pubkey <<<"$k")" = "$("$SUP" pubkey <<<"$k")" ]; then
		tap_ok "pubkey of a wg genkey key matches wg pubkey"
	else
		tap_fail "pubkey of a wg genkey key matches wg pubkey"
	fi
fi
echo "not a key" | "$SUP" pubkey >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] && tap_ok "pubkey rejects garbage" || tap_fail "pubkey rejects garbage" "rc=$rc"

# check-config checks this node's private key when it is at hand.
priv=$("$SUP" genkey)
pub=$("$SUP" pubkey <<<"$priv")
sed "s|M3i9WQyag4lUF0QfLXkiDK/gXA6kGGUBHiOxdgohQWA=|$pub|" "$EX" > "$tmp/c.conf"
WG_PRIVATE_KEY=$priv "$SUP" check-config -c "$tmp/c.conf" -n spoke-a >"$tmp/out" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "private key matches the public key" "$tmp/out" && ! grep -qF "$priv" "$tmp/out"; then
	tap_ok "matching private key from the environment accepted, never printed"
else
	tap_fail "matching private key from the environment accepted, never printed" "rc=$rc"
fi
WG_PRIVATE_KEY=$("$SUP" genkey) "$SUP" check-config -c "$tmp/c.conf" -n spoke-a >"$tmp/out" 2>&1; rc=$?
if [ $rc -eq 78 ] && grep -q "the private key does not match spoke-a's public_key" "$tmp/out" &&
   ! grep -q "configuration OK" "$tmp/out"; then
	tap_ok "a private key of another node is refused: exit 78, one verdict (no 'configuration OK')"
else
	tap_fail "a private key of another node is refused: exit 78, one verdict (no 'configuration OK')" "rc=$rc" \
		"$(grep -E "configuration OK|does not match" "$tmp/out")"
fi
umask 022
echo "$priv" > "$tmp/wg.key"; chmod 644 "$tmp/wg.key"
sed "s|keys = { private_key_env = \"WG_PRIVATE_KEY\"; };|keys = { private_key_file = \"$tmp/wg.key\"; };|" "$tmp/c.conf" > "$tmp/f.conf"
"$SUP" check-config -c "$tmp/f.conf" -n spoke-a >"$tmp/out" 2>&1; rc=$?
if [ $rc -eq 78 ] && grep -q "accessible by group or others (mode 0644)" "$tmp/out" && ! grep -qF "$priv" "$tmp/out" &&
   ! grep -q "configuration OK" "$tmp/out"; then
	tap_ok "a group/world-readable key file is refused"
else
	tap_fail "a group/world-readable key file is refused" "rc=$rc" "$(cat "$tmp/out")"
fi
chmod 600 "$tmp/wg.key"
"$SUP" check-config -c "$tmp/f.conf" -n spoke-a >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 0 ] && tap_ok "a 0600 key file is accepted" || tap_fail "a 0600 key file is accepted" "rc=$rc"

# Help and usage.
"$SUP" --help | grep -q "check-config" && tap_ok "--help lists commands" || tap_fail "--help lists commands"
"$SUP" check-config --help | grep -q "usage: supervisor check-config" &&
	tap_ok "per-command help" || tap_fail "per-command help"
"$SUP" frobnicate >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] && tap_ok "unknown command exits 64" || tap_fail "unknown command exits 64" "rc=$rc"
"$SUP" check-config -x >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] && tap_ok "unknown option exits 64" || tap_fail "unknown option exits 64" "rc=$rc"
"$SUP" version | grep -q "^supervisor [0-9]" && tap_ok "version" || tap_fail "version"

# ctl and the daemon speak one version of the control protocol: a reply of
# another version is refused with a clear message (exit 3, unknown health).
fake_daemon() { # fake_daemon SOCKET REPLY: answer one request with REPLY
	rm -f "$1"
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); c.recv(512); c.sendall(sys.argv[2].encode() + b"\n"); c.close()' "$1" "$2" &
	for _ in $(seq 50); do [ -S "$1" ] && return; sleep 0.1; done
}
for v in 1 2; do
	fake_daemon "$tmp/ctl.sock" '{"v":'$v',"ok":true,"command":"ping","health":"ok"}'
	"$SUP" ctl -s "$tmp/ctl.sock" --json ping >"$tmp/out" 2>&1; rc=$?
	wait
	if [ $v = 1 ] && [ $rc -eq 0 ] && grep -q '"v":1' "$tmp/out"; then
		tap_ok "ctl takes a reply of its protocol version"
	elif [ $v = 2 ] && [ $rc -eq 3 ] &&
	     grep -qx "supervisor ctl: the daemon speaks control protocol version 2, this client 1 (use the ctl of the running supervisor's build)" "$tmp/out"; then
		tap_ok "ctl refuses a reply of another protocol version"
	else
		tap_fail "ctl and a reply of protocol version $v" "rc=$rc" "$(cat "$tmp/out")"
	fi
done

tap_done
