#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The overlay end to end in the lab: handshakes, spoke-to-spoke TCP through
# the hub, repairs, stale detection across a hub outage, and a hub reload
# that leaves the other peers' sessions alone. Needs root (namespaces).
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-test
LAB="$TESTS/lab/lab.sh"
trap '"$LAB" down >/dev/null 2>&1' EXIT

need_root

peer() { # peer NODE NAME FIELD: a field of the peer NAME in NODE's ctl tunnel
	ctl_json "$1" tunnel "[p for p in d['tunnel']['peers'] if p['name']=='$2'][0]['$3']"
}
all_fresh_on_hub() { [ "$(ctl_json hub tunnel "d['tunnel']['fresh_peer_count']")" = 3 ]; }
fresh() { [ "$(ctl_json "$1" tunnel "d['tunnel']['state']")" = fresh ]; }
stale() { [ "$(ctl_json "$1" tunnel "d['tunnel']['state']")" = stale ]; }

# ---- refuses to run without root -----------------------------------------
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$LAB" up 2>&1); rc=$?
[ $rc -ne 0 ] && grep -q "must run as root" <<<"$out" &&
	tap_ok "the lab refuses to run without root, and says why" ||
	tap_fail "the lab refuses to run without root, and says why" "rc=$rc $out"

# ---- session A: the default threshold --------------------------------------
t0=$(ms)
if ! "$LAB" up >/dev/null; then
	tap_fail "lab up"
	tap_done
	exit 1
fi
log_ms() { # log_ms LINE: ms of the day from a log line's ts=
	sed -E 's/^ts=[0-9-]+T([0-9]+):([0-9]+):([0-9]+)\.([0-9]+)Z.*/\1 \2 \3 \4/' <<<"$1" |
		awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}
if el=$(wait_until 15000 all_fresh_on_hub); then
	# From the daemons' own logs: the first supervisor running -> the hub all fresh.
	first=$(for n in hub spoke-a spoke-b spoke-c; do
		log_ms "$(grep -m1 'msg="running"' "$LAB_DIR/$n/supervisor.log")"; done | sort -n | head -1)
	done_ms=$(log_ms "$(grep 'msg="tunnel" state=fresh' "$LAB_DIR/hub/supervisor.log" | head -1)")
	total=$(( done_ms - first ))
	if [ "$total" -le 5000 ]; then
		tap_ok "all three spokes handshake with the hub within 5 s of start (${total} ms; lab up to all fresh $(( $(ms) - t0 )) ms)"
	else
		tap_fail "all three spokes handshake with the hub within 5 s of start" "took ${total} ms"
	fi
else
	tap_fail "all three spokes handshake with the hub within 5 s of start" "$("$LAB" ctl hub tunnel)"
fi
for s in spoke-a spoke-b spoke-c; do
	fresh "$s" && tap_ok "$s reports its hub tunnel fresh" || tap_fail "$s reports its hub tunnel fresh"
done

# spec §8 item 2: spoke-a reaches a TCP listener on spoke-b's overlay IP through the hub
"$LAB" exec spoke-b socat TCP-LISTEN:7777,bind=10.88.0.12,reuseaddr,fork SYSTEM:'echo overlay-ok' &
sleep 0.5
got=$("$LAB" exec spoke-a socat -T3 - TCP:10.88.0.12:7777,connect-timeout=3 2>&1)
[ "$got" = overlay-ok ] && tap_ok "spoke-a reaches a TCP listener on spoke-b's overlay IP through the hub" ||
	tap_fail "spoke-a reaches a TCP listener on spoke-b's overlay IP through the hub" "got: $got"
via=$("$LAB" exec spoke-a ip route get 10.88.0.12)
grep -q "dev wg0" <<<"$via" && ! grep -q "via" <<<"$via" &&
	tap_ok "spoke-a's only route to spoke-b's overlay IP is wg0" ||
	tap_fail "spoke-a's only route to spoke-b's overlay IP is wg0" "$via"
"$LAB" exec spoke-b socat TCP-LISTEN:7778,bind=192.0.2.12,reuseaddr SYSTEM:'echo public' &
sleep 0.3
got=$("$LAB" exec spoke-a socat -T2 - TCP:192.0.2.12:7778,connect-timeout=2 2>/dev/null)
[ -z "$got" ] && tap_ok "spokes cannot reach each other outside the overlay (public side blocked)" ||
	tap_fail "spokes cannot reach each other outside the overlay (public side blocked)" "got: $got"
"$LAB" exec spoke-b pkill socat

# repairs
"$LAB" exec spoke-b ip addr del 10.88.0.12/24 dev wg0
if el=$(wait_until 5000 sh -c "\"$LAB\" exec spoke-b ip -4 addr show wg0 | grep -q 10.88.0.12/24"); then
	tap_ok "a deleted wg0 address is restored (${el} ms)"
else
	tap_fail "a deleted wg0 address is restored"
fi
"$LAB" exec spoke-b ip route del 10.88.0.0/24 dev wg0 2>/dev/null
if el=$(wait_until 5000 sh -c "\"$LAB\" exec spoke-b ip route show 10.88.0.0/24 | grep -q wg0"); then
	tap_ok "a deleted overlay route is restored (${el} ms)"
else
	tap_fail "a deleted overlay route is restored"
fi
repairs=$(ctl_json spoke-b tunnel "d['tunnel']['repairs']")
[ "${repairs:-0}" -ge 2 ] && tap_ok "repairs are counted ($repairs)" || tap_fail "repairs are counted" "repairs=$repairs"

old_hs=$(peer hub spoke-c last_handshake)
"$LAB" exec spoke-c pkill -KILL -x wireguard-go
sleep 0.2
"$LAB" exec spoke-c ip link show wg0 >/dev/null 2>&1 && gone=no || gone=yes
c_back() { # spoke-c's tunnel fresh with its link up, and its address back
	[ "$(ctl_json spoke-c tunnel "d['tunnel']['state'], d['tunnel']['link_up']")" = 'fresh True' ] &&
		"$LAB" exec spoke-c ip -4 addr show wg0 | grep -q 10.88.0.13/24
}
c_newer() { [ "$(peer hub spoke-c last_handshake)" -gt "$old_hs" ]; }
if el=$(wait_until 8000 c_back); then
	# The hub sees the new handshake at its next poll (every second when fresh).
	wait_until 2000 c_newer >/dev/null
	new_hs=$(peer hub spoke-c last_handshake)
	if [ "$gone" = yes ] && [ "$el" -le 5000 ] && [ "$new_hs" -gt "$old_hs" ]; then
		tap_ok "wireguard-go killed (wg0 gone): restarted, reconfigured, fresh handshake again in ${el} ms"
	else
		tap_fail "wireguard-go killed: restarted, reconfigured, fresh again within 5 s" "gone=$gone el=$el hs $old_hs -> $new_hs"
	fi
else
	tap_fail "wireguard-go killed: restarted, reconfigured, fresh again within 5 s" "$("$LAB" ctl spoke-c tunnel)"
fi

# reload on the hub: spoke-c removed, spoke-d added; the others' sessions continue
before=$("$LAB" ctl hub tunnel --json)
newkey=$("$SUP" genkey | "$SUP" pubkey)
conf=$LAB_DIR/hub/etc/cluster.conf
python3 - "$conf" "$newkey" <<'PY'
import re, sys
path, key = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r',\n  \{ name = "spoke-c";[^}]*\}', '', text)
text = text.replace('\n);', ',\n  { name = "spoke-d"; overlay_ip = "10.88.0.14"; public_key = "%s"; postgres = "none"; }\n);' % key, 1)
open(path, "w").write(text)
PY
out=$("$LAB" ctl hub reload 2>&1); rc=$?
sleep 1.2
after=$("$LAB" ctl hub tunnel --json)
if [ $rc -eq 0 ] && python3 - "$before" "$after" <<'PY'
import json, sys
b = {p["name"]: p for p in json.loads(sys.argv[1])["tunnel"]["peers"]}
a = {p["name"]: p for p in json.loads(sys.argv[2])["tunnel"]["peers"]}
assert set(a) == {"spoke-a", "spoke-b", "spoke-d"}, a.keys()
for n in ("spoke-a", "spoke-b"):
    assert a[n]["last_handshake"] >= b[n]["last_handshake"] > 0, (n, b[n], a[n])
    assert a[n]["rx_bytes"] >= b[n]["rx_bytes"] and a[n]["tx_bytes"] >= b[n]["tx_bytes"], (n, b[n], a[n])
    assert a[n]["state"] == "fresh", a[n]
assert a["spoke-d"]["state"] == "connecting" and a["spoke-d"]["handshake_age_s"] is None, a["spoke-d"]
PY
then
	tap_ok "hub reload removes spoke-c, adds spoke-d, keeps the other sessions (handshakes and counters)"
else
	tap_fail "hub reload removes spoke-c, adds spoke-d, keeps the other sessions" "rc=$rc $out" "$after"
fi
got=$("$LAB" exec spoke-a socat -T3 - TCP:10.88.0.12:7777,connect-timeout=3 2>&1 </dev/null)
"$LAB" exec spoke-b socat TCP-LISTEN:7779,bind=10.88.0.12,reuseaddr SYSTEM:'echo still-ok' &
sleep 0.3
got=$("$LAB" exec spoke-a socat -T3 - TCP:10.88.0.12:7779,connect-timeout=3 2>&1)
[ "$got" = still-ok ] && tap_ok "traffic between the remaining spokes still flows after the reload" ||
	tap_fail "traffic between the remaining spokes still flows after the reload" "got: $got"
for n in hub spoke-a spoke-b spoke-c; do "$LAB" stop "$n"; done
no_sanitizer_reports "session A"
"$LAB" down >/dev/null

# ---- session B: a short threshold and a hub outage -------------------------
FRESH=10
LAB_FRESH=$FRESH "$LAB" up >/dev/null || { tap_fail "lab up (short threshold)"; tap_done; exit 1; }
wait_until 8000 all_fresh_on_hub >/dev/null
"$LAB" stop hub
t_stop=$(ms)
# Each spoke must say stale within 2 s of its handshake age crossing the
# threshold: all three are watched together, each first "stale" timed.
python3 - "$LAB" "$FRESH" > "$LAB_DIR.stale" <<'PY'
import json, subprocess, sys, time
lab, fresh = sys.argv[1], int(sys.argv[2])
def tunnel(node):
    out = subprocess.run([lab, "ctl", node, "tunnel", "--json"], capture_output=True).stdout
    return json.loads(out)["tunnel"]
first = {}
deadline = time.time() + 40
while len(first) < 3 and time.time() < deadline:
    for s in ("spoke-a", "spoke-b", "spoke-c"):
        if s in first:
            continue
        t = tunnel(s)
        if t["state"] == "stale":
            lh = t["peers"][0]["last_handshake_ms"]
            first[s] = int(time.time() * 1000) - (lh + fresh * 1000)
    time.sleep(0.05)
for s in ("spoke-a", "spoke-b", "spoke-c"):
    print(s, first.get(s, "never"))
PY
while read -r s late; do
	if [ "$late" != never ] && [ "$late" -le 2000 ]; then
		tap_ok "$s reports stale within 2 s of crossing ${FRESH} s (seen ${late} ms after)"
	else
		tap_fail "$s reports stale within 2 s of crossing ${FRESH} s" "late=$late"
	fi
done < "$LAB_DIR.stale"
rm -f "$LAB_DIR.stale"
st=$("$LAB" ctl spoke-a status >/dev/null 2>&1; echo $?)
[ "$st" -eq 1 ] && tap_ok "ctl status on a spoke exits 1 (degraded) while its tunnel is stale" ||
	tap_fail "ctl status on a spoke exits 1 (degraded) while its tunnel is stale" "rc=$st"
"$LAB" start hub
keepalive=25
for s in spoke-a spoke-b spoke-c; do
	if el=$(wait_until $(( (keepalive + 5) * 1000 )) fresh "$s"); then
		tap_ok "$s fresh again ${el} ms after the hub returned (limit keepalive + 5 s)"
	else
		tap_fail "$s fresh again within keepalive + 5 s of the hub's return" "$("$LAB" ctl "$s" tunnel)"
	fi
done
for n in hub spoke-a spoke-b spoke-c; do "$LAB" stop "$n"; done
no_sanitizer_reports "session B"
"$LAB" down >/dev/null

# ---- down leaves nothing behind ---------------------------------------------
left_ns=$(ip netns list | grep -E -c '^(hub|spoke-[abc]|inet)( |$)')
left_proc=$(pgrep -f "$LAB_DIR" | wc -l)
left_mnt=$(grep -l "$LAB_DIR" /proc/[0-9]*/mountinfo 2>/dev/null | wc -l)
left_link=$(ip -o link | grep -c -E 'v-(hub|spoke)')
if [ "$left_ns" -eq 0 ] && [ "$left_proc" -eq 0 ] && [ "$left_mnt" -eq 0 ] && [ "$left_link" -eq 0 ] && [ ! -e "$LAB_DIR" ]; then
	tap_ok "lab down leaves no namespace, process, mount, link or state behind"
else
	tap_fail "lab down leaves no namespace, process, mount, link or state behind" \
		"ns=$left_ns proc=$left_proc mounts=$left_mnt links=$left_link"
fi

tap_done
