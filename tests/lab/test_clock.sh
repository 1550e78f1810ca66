#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Clock steps do not change what is fresh (issue 15 §2): spoke-b's
# supervisor runs under libfaketime and its wall clock is stepped by hours
# while the hub is down and up. Freshness is judged on the monotonic clock:
# stepped back with the hub down it still goes stale (it used to read
# fresh, age 0, for hours); stepped forward with the hub up it stays fresh
# (it used to read stale and re-arm).
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-clock LAB_FRESH=30 LAB_FAKETIME_NODES=spoke-b
LAB="$TESTS/lab/lab.sh"
trap '[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1' EXIT

need_root
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] ||
	{ tap_fail "libfaketime is installed (scripts/setup)"; tap_done; exit 1; }

state() { ctl_json spoke-b tunnel "d['tunnel']['state']"; }
age() { ctl_json spoke-b tunnel "d['tunnel']['peers'][0]['handshake_age_s']"; }
rearms() { ctl_json spoke-b tunnel "d['tunnel']['rearms']"; }
is_state() { [ "$(state)" = "$1" ]; }
step() { echo "$1" > "$LAB_DIR/spoke-b/faketime"; }

LAB_SKIP="spoke-a spoke-c" "$LAB" up >/dev/null || { tap_fail "lab up"; tap_done; exit 1; }
wait_until 20000 is_state fresh >/dev/null ||
	{ tap_fail "spoke-b fresh" "$("$LAB" ctl spoke-b tunnel 2>&1)"; tap_done; exit 1; }
wall=$("$LAB" exec spoke-b date +%s) # the node's own date is not faked: only the supervisor is

# ---- stepped back by 3 h, hub down: goes stale all the same ---------------
step "-3h"
"$LAB" stop hub
t0=$(ms)
sleep 3
a1=$(age); sleep 2; a2=$(age)
if [ -n "$a1" ] && [ "$a1" != None ] && [ "$a2" -gt "$a1" ] 2>/dev/null; then
	tap_ok "clock stepped back 3 h: the handshake age keeps counting ($a1 s, then $a2 s), not 0"
else
	tap_fail "clock stepped back 3 h: the handshake age keeps counting" "ages: $a1, $a2"
fi
if el=$(wait_until 45000 is_state stale); then
	tap_ok "clock stepped back 3 h, hub down: stale $(( $(ms) - t0 )) ms after the hub stopped (fresh_handshake 30 s)"
else
	tap_fail "clock stepped back 3 h, hub down: goes stale" "$("$LAB" ctl spoke-b tunnel 2>&1)"
fi
outside() {
	status_json spoke-b "d['tunnel']['state'], d['tunnel']['peers'][0]['handshake_age_s']"
}
outside_stale() { [ "$(outside | cut -d' ' -f1)" = stale ]; }
# /status is rendered once a second: within 2 s of ctl's verdict
wait_until 2000 outside_stale >/dev/null && tap_ok "/status from outside agrees: tunnel $(outside) s" ||
	tap_fail "/status from outside says stale" "got: $(outside)"

# ---- stepped forward by 3 h, hub up: stays fresh ---------------------------
step "+3h"
"$LAB" start hub
if el=$(wait_until 30000 is_state fresh); then
	tap_ok "clock stepped forward 3 h, hub back: fresh in $el ms"
else
	tap_fail "clock stepped forward 3 h, hub back: fresh" "$("$LAB" ctl spoke-b tunnel 2>&1)"
fi
r0=$(rearms) bad=""
for _ in $(seq 8); do
	s=$(state); [ "$s" = fresh ] || bad="$bad $s"
	sleep 1
done
r1=$(rearms)
if [ -z "$bad" ] && [ "$r1" = "$r0" ]; then
	tap_ok "clock stepped forward 3 h: fresh for 8 s with no re-arm (age $(age) s)"
else
	tap_fail "clock stepped forward 3 h: stays fresh, no re-arm" "states:$bad rearms $r0 -> $r1"
fi
shown=$(ctl_json spoke-b tunnel "d['tunnel']['peers'][0]['last_handshake']")
[ -n "$shown" ] && [ "$shown" != None ] && [ "$shown" -ge "$wall" ] 2>/dev/null &&
	tap_ok "the last handshake is still shown as the device's wall-clock time ($shown)" ||
	tap_fail "the last handshake is shown as the device's wall-clock time" "shown=$shown wall=$wall"

"$LAB" down >/dev/null 2>&1
no_sanitizer_reports
tap_done
