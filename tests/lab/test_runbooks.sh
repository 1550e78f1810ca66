#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The spec's runbooks (§9) as `supervisor cluster` commands, applied live in
# the lab: rotate a spoke's key, add a spoke (it joins, clones and streams),
# remove it again; each by editing the one cluster file, copying it to every
# node and `ctl reload`. Other peers keep their WireGuard sessions (the hub's
# byte counters never go back to 0) and Postgres keeps running (same pid).
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-runbooks
LAB="$TESTS/lab/lab.sh"
trap '[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT
need_root

CONF=$LAB_DIR/cluster.conf
BUNDLES=$LAB_DIR/bundles
streaming() { # streaming N: the primary sees N streaming replicas
	[ "$(ctl_json spoke-a replication "sum(1 for r in d['replication']['members'] if r.get('link')=='streaming')")" = "$1" ]
}
# hub_bytes PUBKEY: rx+tx the hub has counted for that peer (wg show dump; 0 if absent)
hub_bytes() { "$LAB" exec hub wg show wg0 dump | awk -v k="$1" '$1 == k { print $6 + $7; f = 1 } END { if (!f) print 0 }'; }
pub_of() { python3 - "$CONF" "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r'name = "%s";[^}]*?public_key = "([^"]+)"' % re.escape(sys.argv[2]), text)
print(m.group(1) if m else "")
EOF
}
distribute_and_reload() { # copy the cluster file everywhere, reload every running node
	local n failed=""
	for n in hub spoke-a spoke-b spoke-c ${EXTRA:-}; do
		cp "$CONF" "$LAB_DIR/$n/etc/cluster.conf"
		"$LAB" ctl "$n" reload >/dev/null 2>&1 || failed="$failed $n"
	done
	[ -z "$failed" ] || { echo "reload failed on$failed"; return 1; }
}
pg_pid() { "$LAB" exec spoke-a sh -c 'head -1 /var/lib/postgresql/data/postmaster.pid'; }
fresh() { # fresh NODE: its tunnel is fresh
	[ "$(ctl_json "$1" tunnel "d.get('tunnel', d).get('state')")" = fresh ]
}

"$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
wait_until 90000 streaming 2 >/dev/null || { tap_fail "replicas streaming" "$("$LAB" ctl spoke-a replication)"; tap_done; exit 1; }
pid0=$(pg_pid)

# ---- rotate-key spoke-c -------------------------------------------------------------
pa=$(pub_of spoke-a) pb=$(pub_of spoke-b) pc_old=$(pub_of spoke-c)
a0=$(hub_bytes "$pa") b0=$(hub_bytes "$pb")
out=$("$SUP" cluster rotate-key spoke-c -c "$CONF" --bundle "$BUNDLES" 2>&1); rc=$?
pc=$(pub_of spoke-c)
key=$(sed -n 's/^WG_PRIVATE_KEY=//p' "$BUNDLES/spoke-c/spoke.env")
perm=$(stat -c %a "$BUNDLES/spoke-c/spoke.env")
if [ $rc = 0 ] && [ -n "$pc" ] && [ "$pc" != "$pc_old" ] && [ "$(printf '%s\n' "$key" | "$SUP" pubkey)" = "$pc" ] &&
   [ "$perm" = 600 ] && ! grep -q "$key" "$CONF" && ! grep -q "$key" <<<"$out"; then
	tap_ok "cluster rotate-key spoke-c: new public key in the file, the private key only in its 0600 bundle (not printed)"
else
	tap_fail "cluster rotate-key spoke-c" "rc=$rc perm=$perm $out"
fi
umask 077; printf '%s\n' "$key" > "$LAB_DIR/spoke-c/etc/wg.key"; umask 022
t0=$(ms)
distribute_and_reload
new_session() { [ "$(hub_bytes "$pc")" -gt 0 ]; }
psql_on() { "$LAB" exec "$1" runuser -u postgres -- psql -h /run/supervisor/postgresql -XAtq -c "$2" postgres 2>/dev/null; }
psql_on spoke-a "CREATE TABLE IF NOT EXISTS rb (id int); INSERT INTO rb VALUES (1)" >/dev/null
seen_on_c() { [ "$(psql_on spoke-c "SELECT count(*) FROM rb")" = 1 ]; }
if el=$(wait_until 30000 new_session) && wait_until 30000 seen_on_c >/dev/null; then
	tap_ok "after copy + ctl reload everywhere, spoke-c has a session under its new key in $el ms and a row written on spoke-a reaches it"
else
	tap_fail "spoke-c back with its new key" "$("$LAB" exec hub wg show wg0 2>&1 | head -20)"
fi
a1=$(hub_bytes "$pa") b1=$(hub_bytes "$pb") old=$(hub_bytes "$pc_old")
if [ "$a1" -ge "$a0" ] && [ "$b1" -ge "$b0" ] && [ "$a0" -gt 0 ] && [ "$old" = 0 ] && [ "$(pg_pid)" = "$pid0" ]; then
	tap_ok "spoke-a and spoke-b kept their sessions on the hub (bytes $a0 -> $a1, $b0 -> $b1), the old key is gone, Postgres kept running (pid $pid0)"
else
	tap_fail "other sessions kept, Postgres not restarted" "a $a0->$a1 b $b0->$b1 old=$old pid $pid0->$(pg_pid)"
fi

# ---- add-spoke spoke-d ----------------------------------------------------------------
out=$("$SUP" cluster add-spoke spoke-d -c "$CONF" --bundle "$BUNDLES" 2>&1); rc=$?
ip=$(grep -o 'spoke-d"; overlay_ip = "[0-9.]*' "$CONF" | grep -o '[0-9.]*$')
[ $rc = 0 ] && [ "$ip" = 10.88.0.14 ] && grep -q 'name = "spoke-d".*postgres = "replica"; upstream = "spoke-a"' "$CONF" &&
	tap_ok "cluster add-spoke spoke-d: next free overlay IP $ip, a replica of the primary" ||
	tap_fail "cluster add-spoke spoke-d" "rc=$rc ip=$ip $out"
"$LAB" add-node spoke-d 192.0.2.14
umask 077; sed -n 's/^WG_PRIVATE_KEY=//p' "$BUNDLES/spoke-d/spoke.env" > "$LAB_DIR/spoke-d/etc/wg.key"; umask 022
distribute_and_reload # spoke-d got the file from add-node; it starts below
a0=$(hub_bytes "$pa")
"$LAB" start spoke-d
if el=$(wait_until 90000 streaming 3); then
	tap_ok "spoke-d joins: fresh tunnel, cloned by pg_basebackup through the hub, streaming ($el ms after start)"
else
	tap_fail "spoke-d streams" "$("$LAB" ctl spoke-a replication 2>&1 | tail -5)"
fi
row=$("$LAB" exec spoke-d runuser -u postgres -- psql -h /run/supervisor/postgresql -XAtq -c "SELECT pg_is_in_recovery()" postgres 2>&1)
[ "$row" = t ] && [ "$(hub_bytes "$pa")" -ge "$a0" ] && [ "$(pg_pid)" = "$pid0" ] &&
	tap_ok "spoke-d answers as a replica; spoke-a's session and Postgres were untouched by the change" ||
	tap_fail "spoke-d is a replica, others untouched" "row=$row pid=$(pg_pid)/$pid0"

# ---- remove-spoke spoke-d ------------------------------------------------------------------
pd=$(pub_of spoke-d)
out=$("$SUP" cluster remove-spoke spoke-d -c "$CONF" 2>&1); rc=$?
EXTRA=spoke-d distribute_and_reload >/dev/null 2>&1 # spoke-d itself is no longer in the file: its reload fails
gone() { [ "$(hub_bytes "$pd")" = 0 ] && [ "$(ctl_json spoke-a replication "[r['name'] for r in d['replication']['members'] if r['name']=='spoke-d']")" = "[]" ]; }
if [ $rc = 0 ] && ! grep -q spoke-d "$CONF" && wait_until 15000 gone >/dev/null && [ "$(pg_pid)" = "$pid0" ]; then
	tap_ok "cluster remove-spoke spoke-d + reload: the hub has no peer for it, the primary no longer lists it"
else
	tap_fail "remove-spoke spoke-d" "rc=$rc $out hub=$(hub_bytes "$pd")"
fi
reach=$("$LAB" exec spoke-d timeout 3 bash -c 'echo > /dev/tcp/10.88.0.11/5432' 2>&1 && echo reached || echo blocked)
[ "$reach" = blocked ] && tap_ok "spoke-d cannot reach spoke-a over the overlay any more" ||
	tap_fail "removed spoke cut off" "$reach"
"$LAB" stop spoke-d
wait_until 30000 streaming 2 >/dev/null && tap_ok "the remaining replicas stream on" || tap_fail "remaining replicas stream"

# ---- refusals ------------------------------------------------------------------------------------
cp "$CONF" "$LAB_DIR/before.conf"
"$SUP" cluster remove-spoke spoke-a -c "$CONF" >/dev/null 2>&1; r1=$?
"$SUP" cluster add-spoke spoke-b -c "$CONF" >/dev/null 2>&1; r2=$?
"$SUP" cluster add-spoke 'Bad!' -c "$CONF" >/dev/null 2>&1; r3=$?
cmp -s "$CONF" "$LAB_DIR/before.conf" && [ $r1 = 1 ] && [ $r2 = 1 ] && [ $r3 = 78 ] &&
	tap_ok "refused, file unchanged: removing the primary (1), a duplicate name (1), a name that would not load (78)" ||
	tap_fail "refusals leave the file unchanged" "r=$r1,$r2,$r3"

"$LAB" down >/dev/null 2>&1
no_sanitizer_reports
tap_done
