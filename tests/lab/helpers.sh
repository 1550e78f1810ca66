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
	[ -n "${LAB_LOCKED:-}" ] && return # reopening fd 9 would let go of it
	exec 9>>/run/sup-lab.lock
	flock 9
	LAB_LOCKED=1
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

# node_pgrep NODE ARGS..., node_pkill NODE ARGS...: pgrep/pkill over NODE's
# processes (its PID namespace), run from here: a spoke image has no procps.
node_pgrep() { local n=$1; shift; pgrep --ns "$("$LAB" pid "$n")" --nslist pid "$@"; }
node_pkill() { local n=$1; shift; pkill --ns "$("$LAB" pid "$n")" --nslist pid "$@"; }

# ---- JSON answers -------------------------------------------------------------
# Each helper below prints print(EXPR): EXPR is a Python expression with d bound
# to the parsed JSON, printed as Python does (None, True, ['a'], 'a b' for
# "x, y"). Invalid JSON (an empty answer included) or an EXPR that raises:
# one line "json error [N]: ..." on stdout, N unique to the call, so no
# comparison (not even of two failed answers), emptiness or grep check can
# pass on it; what it got on stderr; and status 1.

# json_query SOURCE EXPR: over the JSON read on stdin; SOURCE names it in errors.
json_query() {
	python3 -c '
import json, sys, time
source, expr = sys.argv[1], sys.argv[2]
text = sys.stdin.read()
try:
    d = json.loads(text)
except ValueError as e:
    print("json error [%d]: %s: not JSON (details on stderr)" % (time.monotonic_ns(), source))
    sys.exit("json error: %s: not JSON (%s); got %d bytes: %.600r" % (source, e, len(text), text))
try:
    exec("print(%s)" % expr, {"d": d})
except Exception as e:
    print("json error [%d]: %s: the expression raised %s (details on stderr)" % (time.monotonic_ns(), source, type(e).__name__))
    sys.exit("json error: %s: %s raised %r over: %.600r" % (source, expr, e, text))
' "$1" "$2"
}
# ctl_json NODE COMMAND EXPR: over `supervisor ctl COMMAND --json` in NODE.
ctl_json() { "$LAB" ctl "$1" "$2" --json 2>/dev/null | json_query "ctl $1 $2 --json" "$3"; }
# status_json NODE EXPR: over NODE's /status (lab_get).
status_json() { lab_get "$1" /status | json_query "/status of $1" "$2"; }
# json_file FILE EXPR: over the file (for answers too big for an argument).
json_file() { cat "$1" 2>/dev/null | json_query "$1" "$2"; }
# json_eval JSON EXPR: over the string JSON (an answer kept in a variable).
json_eval() { printf '%s' "$1" | json_query "the answer kept" "$2"; }

# lab_get NODE PATH: the body of NODE's status service at PATH, asked from the
# internet side (namespace inet); the hub's port is local, so from inside it.
lab_get() {
	local -A public=([spoke-a]=192.0.2.11 [spoke-b]=192.0.2.12 [spoke-c]=192.0.2.13)
	if [ "$1" = hub ]; then
		"$LAB" exec hub curl -s -m 3 "http://127.0.0.1:8000$2"
	else
		ip netns exec inet curl -s -m 3 "http://${public[$1]}:8000$2"
	fi
}
