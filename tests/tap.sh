# SPDX-License-Identifier: MIT
# Minimal TAP helpers for shell tests: ok/not ok lines, a plan at the end,
# exit status 1 when anything failed. Source it, call tap_ok/tap_fail or
# tap_check, then tap_done.
TAP_N=0
TAP_FAILED=0

tap_ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1"; }
tap_fail() {
	TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $1"
	shift
	for line in "$@"; do printf '#   %s\n' "$line"; done
}
# tap_check NAME CMD...: passes when CMD exits 0.
tap_check() {
	local name=$1; shift
	if "$@"; then tap_ok "$name"; else tap_fail "$name" "command failed: $*"; fi
}
tap_done() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}
