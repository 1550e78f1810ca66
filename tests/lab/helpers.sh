# SPDX-License-Identifier: MIT
# Helpers shared by the lab's end-to-end tests; source after tap.sh.

ms() { date +%s%3N; }

# wait_until TIMEOUT_MS CMD...: poll CMD every 100 ms until it succeeds;
# prints the elapsed ms; fails (printing TIMEOUT_MS) when time runs out.
wait_until() {
	local limit=$1 t0; shift
	t0=$(ms)
	while :; do
		if "$@" >/dev/null 2>&1; then echo $(( $(ms) - t0 )); return 0; fi
		[ $(( $(ms) - t0 )) -ge "$limit" ] && { echo "$limit"; return 1; }
		sleep 0.1
	done
}

# need_root: the lab needs network, PID and mount namespaces; fail loudly.
need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		tap_fail "running as root (the lab needs network, PID and mount namespaces)"
		tap_done
		exit 1
	fi
	lab_lock
}

# lab_lock: one lab at a time on this machine (its namespace names are
# fixed): wait for whoever holds it. Held until this shell exits; lab.sh
# closes it for the nodes it starts.
lab_lock() {
	exec 9>>/run/sup-lab.lock
	flock 9
}

# no_sanitizer_reports [WHAT]: one TAP line: no ASan/UBSan/LSan report in
# any node's log (stop the nodes first: LeakSanitizer reports at exit).
no_sanitizer_reports() {
	local reports
	reports=$(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LAB_DIR"/*/supervisor.log 2>/dev/null)
	[ -z "$reports" ] && tap_ok "no sanitizer report in the nodes' logs${1:+ ($1)}" ||
		tap_fail "no sanitizer report in the nodes' logs${1:+ ($1)}" \
			"$(grep -h -E -A8 'Sanitizer|runtime error' $reports | head -40)"
}
