#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The overlay on a real kernel's WireGuard (issue 17 §2): boots Debian's
# cloud kernel under QEMU (tests/vm/vm.sh), runs the lab inside it on the
# kernel backend (tests/vm/kernel_wg_guest.sh), and re-emits the guest's
# checks as TAP. A VM that cannot boot, runs out of time or loses lines
# fails: the guest's plan must be exactly KERNEL_WG_CHECKS lines.
#
#   test_kernel_wg.sh SUPERVISOR TESTS_DIR
#
# Needs root (the root filesystem is built with mmdebstrap) and QEMU; the
# first run downloads the kernel and builds the root filesystem (cached).
# Environment: VM_TIMEOUT (default 600 s), KEEP_CONSOLE (a path: keep the
# VM's console there), KERNEL_WG_DEBUG (set: the guest prints the nodes' logs
# even when every check passed).
set -u
SUP=$1 TESTS=$2
. "$TESTS/tap.sh"
# The checks the guest makes: change with kernel_wg_guest.sh.
KERNEL_WG_CHECKS=24

fail_all() { tap_fail "$@"; tap_done; exit 1; }
[ "$(id -u)" -eq 0 ] || fail_all "running as root (the VM's root filesystem is built with mmdebstrap)"
command -v qemu-system-x86_64 >/dev/null || fail_all "qemu-system-x86_64 is installed (run scripts/setup)"
[ -x "$SUP" ] || fail_all "a supervisor binary at $SUP"

work=$(mktemp -d /tmp/sup-kwg.XXXXXX)
# shellcheck disable=SC2064
trap "rm -rf '$work'" EXIT
# The tests' shell pieces the guest uses: tap.sh and the lab.
mkdir -p "$work/tests/lab"
cp "$TESTS/tap.sh" "$work/tests/"
cp "$TESTS"/lab/*.sh "$work/tests/lab/"

# The first run fetches the kernel and builds the root filesystem: not timed with the boot.
t0=$(date +%s%3N)
"$TESTS/vm/vm.sh" rootfs >/dev/null 2>"$work/rootfs.err" ||
	fail_all "the VM's kernel and root filesystem are there (tests/vm/vm.sh rootfs)" "$(tail -5 "$work/rootfs.err")"
t_rootfs=$(( $(date +%s%3N) - t0 ))

t0=$(date +%s%3N)
"$TESTS/vm/vm.sh" run --timeout "${VM_TIMEOUT:-600}" \
	"$SUP:/vm/supervisor" "$work/tests:/vm/tests" "$TESTS/vm/kernel_wg_guest.sh:/vm/test" \
	${KERNEL_WG_DEBUG:+"$work/tests/tap.sh:/vm/debug"} \
	> "$work/console" 2> "$work/vm.err"
rc=$?
took=$(( $(date +%s%3N) - t0 ))
[ -n "${KEEP_CONSOLE:-}" ] && cp "$work/console" "$KEEP_CONSOLE"

# The guest's TAP, renumbered here; its comments passed through.
plan="" guest_fail=0 n=0
while IFS= read -r line; do
	case $line in
	"ok "[0-9]*) n=$((n + 1)); tap_ok "${line#ok * - }" ;;
	"not ok "[0-9]*) n=$((n + 1)); guest_fail=$((guest_fail + 1)); tap_fail "${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	1..[0-9]*) plan=${line#1..} ;;
	esac
done < <(tr -d '\r' < "$work/console")
boot=$(tr -d '\r' < "$work/console" | grep -m1 -o '^vm-init: kernel .*')
echo "# $boot; root filesystem ready in ${t_rootfs} ms; VM boot to poweroff ${took} ms"

if [ $rc -eq 0 ] && [ "$plan" = "$KERNEL_WG_CHECKS" ] && [ "$n" = "$KERNEL_WG_CHECKS" ] && [ "$guest_fail" = 0 ]; then
	tap_ok "the VM ran all $KERNEL_WG_CHECKS checks and powered off cleanly in ${took} ms"
else
	# the console's tail (guest logs are prefixed "log| ") and vm.sh's complaint
	tap_fail "the VM ran all $KERNEL_WG_CHECKS checks and powered off cleanly" \
		"vm.sh exit $rc (124: timed out, 125: no status from the guest); plan '${plan}', $n checks seen, $guest_fail failed" \
		"$(cat "$work/vm.err")" "$(tr -d '\r' < "$work/console" | grep -v -E '^(ok|not ok) [0-9]' | tail -60)"
fi
tap_done
