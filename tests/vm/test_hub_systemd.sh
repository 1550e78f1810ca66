#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The hub under systemd, for real: a VM (tests/vm/vm.sh: Debian's kernel
# with wireguard.ko, a bookworm root filesystem) boots systemd as PID 1 and
# runs hub_systemd_driver.sh from a oneshot unit. The driver installs the hub
# with deploy/hub/setup-hub.sh as an operator would, and checks the unit:
# Type=notify, hardening, kernel WireGuard, spokes joining, a live reload,
# an idempotent second set-up, crash restart, the watchdog, a clean stop,
# and exit 78 not restarted. Its TAP lines come back on the serial console
# ("VMTAP ..."); this script repeats them as its own, and fails when the
# VM cannot boot, times out, or a line or the plan is missing.
#
#   test_hub_systemd.sh SUPERVISOR_BINARY SOURCE_ROOT
set -u
SUP=$1 ROOT=$2
. "$ROOT/tests/tap.sh"
VM_TIMEOUT=${VM_TIMEOUT:-900}

work=$(mktemp -d /tmp/sup-vmtest.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ "$(id -u)" -ne 0 ]; then
	tap_fail "running as root (the VM's root filesystem is built with mmdebstrap --mode=root)"
	tap_done
	exit 1
fi

# What goes into the VM: the binary and deploy/hub as an operator has them, the
# driver, its unit, and a drop-in that makes multi-user.target want it.
mkdir -p "$work/sup/deploy" "$work/units"
cp "$SUP" "$work/sup/supervisor"
cp -r "$ROOT/deploy/hub" "$work/sup/deploy/hub"
cat > "$work/units/vm-test.service" <<'EOF'
[Unit]
Description=the hub under systemd: test driver
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /vm/hub_systemd_driver.sh
TimeoutStartSec=infinity
EOF
printf '[Unit]\nWants=vm-test.service\n' > "$work/units/vm-test.conf"

start=$(date +%s)
bash "$ROOT/tests/vm/vm.sh" run --init /lib/systemd/systemd --timeout "$VM_TIMEOUT" \
	"$work/sup:/opt/sup" \
	"$ROOT/tests/vm/hub_systemd_driver.sh:/vm/hub_systemd_driver.sh" \
	"$work/units/vm-test.service:/etc/systemd/system/vm-test.service" \
	"$work/units/vm-test.conf:/etc/systemd/system/multi-user.target.d/vm-test.conf" \
	> "$work/console" 2>&1
rc=$?
took=$(( $(date +%s) - start ))

# Repeat the guest's results: "not ok" keeps its "#" detail lines.
results=0 plan=""
while IFS= read -r line; do
	case $line in
	"ok "*) tap_ok "${line#ok * - }"; results=$((results + 1)) ;;
	"not ok "*) tap_fail "${line#not ok * - }"; results=$((results + 1)) ;;
	"1.."*) plan=${line#1..} ;;
	"#"*) echo "$line" ;;
	esac
done < <(tr -d '\r' < "$work/console" | sed -n 's/^VMTAP //p')

if [ "$rc" -eq 124 ] || [ "$rc" -eq 125 ] || [ -z "$plan" ] || [ "$plan" != "$results" ] || [ "$results" -lt 20 ]; then
	tap_fail "the VM booted systemd and the driver ran to its end (${took} s)" \
		"vm.sh exit $rc, $results results, plan '${plan:-none}'" "console (last 60 lines):" \
		"$(tr -d '\r' < "$work/console" | tail -60)"
else
	tap_ok "the VM booted systemd and the driver ran to its end: $results checks, ${took} s from boot to power-off (QEMU TCG)"
fi
tap_done
