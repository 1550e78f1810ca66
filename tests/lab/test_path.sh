#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The path to the hub (issue 15 §1, §3): a hub endpoint given as a host name
# follows the name when the hub's public address moves, with no reload;
# and the tunnel's MTU follows the path (cluster.mtu = "auto"), while a
# configured MTU above what the path allows is a reason with the value to use.
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-path LAB_HUB_ENDPOINT=hub.lab.test:51820
LAB="$TESTS/lab/lab.sh"
trap '[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root

hosts() { # hosts IP: every spoke's /etc/hosts names the hub IP (rewritten in place)
	for n in spoke-a spoke-b spoke-c; do
		printf '127.0.0.1 localhost\n%s hub.lab.test\n' "$1" > "$LAB_DIR/$n/hosts"
	done
}
fresh() { [ "$(ctl_json "$1" tunnel "d['tunnel']['state']")" = fresh ]; }
# moved NODE T: NODE uses the new address and had a handshake after T (ms)
moved() {
	[ "$(ctl_json "$1" tunnel "d['tunnel']['hub_endpoint']['address']")" = "192.0.2.2:51820" ] &&
		[ "$(ctl_json "$1" tunnel "d['tunnel']['peers'][0]['last_handshake_ms'] or 0")" -gt "$2" ]
}

# ---- a hub endpoint given as a name follows the name -------------------------
LAB_SKIP="spoke-a spoke-b spoke-c" "$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
hosts 192.0.2.1
# spoke-c's underlay carries 1400 bytes, not 1500: bigger frames die on the bridge
ip -n spoke-c link set eth0 mtu 1400
ip -n inet link set v-spoke-c mtu 1400
for n in spoke-a spoke-b spoke-c; do "$LAB" start "$n"; done
ok=1
for n in spoke-a spoke-b spoke-c; do wait_until 20000 fresh "$n" >/dev/null || ok=0; done
shown=$(ctl_json spoke-a tunnel "d['tunnel']['hub_endpoint']")
[ "$ok" = 1 ] && grep -q "'host': 'hub.lab.test'" <<<"$shown" && grep -q "'address': '192.0.2.1:51820'" <<<"$shown" &&
	tap_ok "spokes reach the hub by name; ctl tunnel shows the name and the address in use: $shown" ||
	tap_fail "spokes reach the hub by name" "$shown"
"$LAB" ctl spoke-a tunnel | grep -q "hub endpoint hub.lab.test -> 192.0.2.1:51820, resolved" &&
	tap_ok "ctl tunnel prints the hub endpoint line" || tap_fail "ctl tunnel prints the hub endpoint line" "$("$LAB" ctl spoke-a tunnel)"
e="d['tunnel']['hub_endpoint']"
status_endpoint() { [ "$(status_json spoke-a "$e['host'] == 'hub.lab.test' and $e['address'] == '192.0.2.1:51820' and bool($e['resolved_at'])")" = True ]; }
# (/status is the snapshot of once a second: it may lag ctl's by that much)
el=$(wait_until 3000 status_endpoint) &&
	tap_ok "/status shows the hub endpoint's name, address and when it was resolved (${el} ms after ctl did)" ||
	tap_fail "/status shows the hub endpoint" "$(status_json spoke-a "$e")" "$(lab_get spoke-a /status | head -c 400)"

# The hub's public address moves, and the name with it; nobody reloads.
t0=$(ms)
# (deleted first: deleting a primary address takes its secondaries with it)
ip -n hub addr del 192.0.2.1/24 dev eth0
ip -n hub addr add 192.0.2.2/24 dev eth0
hosts 192.0.2.2
for n in spoke-a spoke-b spoke-c; do
	if el=$(wait_until 30000 moved "$n" "$t0"); then
		tap_ok "hub moved: $n resolved the name again and handshook at 192.0.2.2 $(( $(ms) - t0 )) ms after the move (no reload)"
	else
		tap_fail "hub moved: $n follows it within 30 s" "$("$LAB" ctl "$n" tunnel 2>&1 | head -4)"
	fi
done
grep -q 'msg="hub endpoint resolved" host=hub.lab.test address=192.0.2.2:51820 was=192.0.2.1:51820' \
	"$LAB_DIR/spoke-b/supervisor.log" && tap_ok "the move is logged with both addresses" ||
	tap_fail "the move is logged with both addresses"
tcp_ok() { "$LAB" exec spoke-b bash -c 'exec 3<>/dev/tcp/10.88.0.11/5432' 2>/dev/null; }
wait_until 10000 tcp_ok >/dev/null && tap_ok "spoke-b reaches spoke-a's Postgres port through the moved hub" ||
	tap_fail "spoke-b reaches spoke-a through the moved hub"

# ---- path MTU ------------------------------------------------------------------
mtu_of() { ctl_json "$1" tunnel "(d['tunnel']['mtu']['value'], d['tunnel']['mtu']['auto'], d['tunnel']['mtu']['path'])"; }
[ "$(mtu_of spoke-c)" = "(1320, True, 1400)" ] && [ "$(mtu_of spoke-b)" = "(1420, True, 1500)" ] &&
	tap_ok "mtu auto: spoke-c on a 1400-byte path uses 1320, spoke-b on 1500 uses 1420" ||
	tap_fail "mtu auto follows each spoke's path" "spoke-c $(mtu_of spoke-c), spoke-b $(mtu_of spoke-b)"
"$LAB" exec spoke-a psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq \
	-c "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 40) AS v FROM generate_series(1, 20000) g" >/dev/null
rows_c() { [ "$("$LAB" exec spoke-c psql -h /run/supervisor/postgresql -U postgres -d postgres -XAtq -c 'SELECT count(*) FROM big' 2>/dev/null)" = 20000 ]; }
if el=$(wait_until 60000 rows_c); then
	tap_ok "with mtu auto, spoke-c (1400-byte path) cloned and streams: 20 000 rows of 1.3 kB there ($el ms)"
else
	tap_fail "with mtu auto, spoke-c clones and streams" "$("$LAB" ctl spoke-a replication 2>&1 | tail -4)"
fi
"$LAB" ctl spoke-c status | grep -q "mtu" && tap_fail "no mtu reason with auto" "$("$LAB" ctl spoke-c status)" ||
	tap_ok "no mtu reason with auto"
# forced 1420 on spoke-c, applied by a reload
sed -i 's/^cluster = { /cluster = { mtu = 1420; /' "$LAB_DIR/spoke-c/etc/cluster.conf"
"$LAB" ctl spoke-c reload >/dev/null
mtu_reason() { "$LAB" ctl spoke-c status 2>/dev/null | grep -q "mtu 1420 is above what the path allows (1400 - 80 = 1320).*cluster.mtu = 1320"; }
if el=$(wait_until 10000 mtu_reason); then
	tap_ok "cluster.mtu = 1420 on the 1400-byte path: the reason names the problem and the value to use ($el ms)"
else
	tap_fail "a forced mtu above the path is a reason" "$("$LAB" ctl spoke-c status 2>&1 | tail -4)"
fi
"$LAB" ctl spoke-c status >/dev/null; rc=$?
[ "$rc" = 1 ] && tap_ok "ctl status exits 1 (degraded) for it" || tap_fail "ctl status exits 1 for a too-large mtu" "rc=$rc"

"$LAB" down >/dev/null 2>&1
no_sanitizer_reports
tap_done
