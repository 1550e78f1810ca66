#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `supervisor run` as PID 1 of a fresh PID namespace (unshare --pid --fork
# --mount-proc), with test children only: reaping, ordered shutdown with
# escalation, restart backoff, exec failures, signal hygiene, the control
# socket under abuse, and reload. Needs root; without it every case fails.
set -u
SUP=$1 TESTS=$2 NO_NFTABLES=${3:-}
. "$TESTS/tap.sh"

work=$(mktemp -d /tmp/sup-pid1.XXXXXX)
chmod 755 "$work"
SUP_PID=
cleanup() {
	[ -n "$SUP_PID" ] && kill -KILL "$SUP_PID" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ] || ! unshare --pid --fork --mount-proc true 2>/dev/null; then
	tap_fail "root and PID namespaces are available (unshare --pid)" \
		"these tests must run as root on a kernel with PID namespaces"
	tap_done
	exit 1
fi

HEAD='cluster = { network = "10.88.0.0/24"; };
hub = { name = "hub"; overlay_ip = "10.88.0.1"; endpoint = "203.0.113.10:51820";
        public_key = "FN+bZ6djGKzJiUTbK+nkFbc3vVlLBX7D2DhBAzsGIxs="; };'

# write_conf NAME SUPERVISOR_GROUP CHILDREN: a one-spoke cluster whose spoke runs CHILDREN.
write_conf() {
	cat > "$work/$1.conf" <<EOF
$HEAD
spokes = ( { name = "spoke-a"; overlay_ip = "10.88.0.11"; postgres = "primary";
    public_key = "M3i9WQyag4lUF0QfLXkiDK/gXA6kGGUBHiOxdgohQWA=";
    children = ( $3 ); } );
control = { socket = "$work/$1.sock"; };
backup = { dir = "$work/backups"; };
supervisor = { $2 };
# No key: the overlay stays down (and says why) without touching any network.
keys = { private_key_env = "SUP_TEST_NO_KEY"; };
EOF
}

# start NAME [ns|plain]: run the supervisor on NAME.conf in a new (empty)
# network namespace, as PID 1 of a new PID namespace with "ns"; SUP_PID is
# its pid as seen from here.
start() {
	local name=$1 mode=${2:-ns}
	rm -f "$work/$name.log"
	if [ "$mode" = ns ]; then
		# (WRAP: a command the supervisor runs under, e.g. setpriv)
		# shellcheck disable=SC2086
		unshare --pid --net --fork --mount-proc ${WRAP:-} "$SUP" run -v -c "$work/$name.conf" -n spoke-a \
			>"$work/$name.log" 2>&1 &
		local outer=$!
		for _ in $(seq 50); do
			SUP_PID=$(pgrep -P "$outer" -x supervisor) && break
			sleep 0.05
		done
		UNSHARE_PID=$outer
	else
		# Not PID 1, but still a network namespace of its own: the daemon
		# applies its firewall, which must never land on this machine's.
		unshare --net "$SUP" run -v -c "$work/$name.conf" -n spoke-a >"$work/$name.log" 2>&1 &
		SUP_PID=$!
		UNSHARE_PID=$SUP_PID
	fi
	for _ in $(seq 100); do
		[ -S "$work/$name.sock" ] && return 0
		sleep 0.05
	done
	echo "# supervisor did not open its control socket; log:"; sed 's/^/#   /' "$work/$name.log"
	return 1
}

# stop: SIGTERM the supervisor, wait for it; RC is its exit status.
stop() {
	kill -TERM "$SUP_PID"
	wait "$UNSHARE_PID"; RC=$?
	SUP_PID=
}

ctl() { "$SUP" ctl -s "$work/$CUR.sock" "$@"; }
# answers: the daemon replied to a status request (whatever its health).
answers() { ctl status --json | grep -q '"ok":true,"command":"status"'; }

# ms_of LINE: the log line's timestamp in milliseconds of the day.
ms_of() {
	sed -E 's/^ts=[0-9-]+T([0-9]+):([0-9]+):([0-9]+)\.([0-9]+)Z.*/\1 \2 \3 \4/' <<<"$1" |
		awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}

# ---- 1. orphans are reaped, as PID 1 --------------------------------------
CUR=reap
# (each sleep is started by a subshell that exits at once: it is an orphan
# from its first instant, whether or not the spawner would have reaped it)
write_conf reap '' '{ name = "spawner"; restart = "never";
    command = [ "/bin/sh", "-c", "for i in $(seq 100); do (sleep 0.3 &); done; echo spawned; exit 0" ]; }'
if start reap; then
	# The orphans end about 0.3 s after the spawner exits; each must be reaped
	# within 1 s of its end. Measured from the logs' timestamps (the spawner's
	# exit, the last reap), not from when this script looks: on a loaded CI
	# machine the spawner itself may start late.
	reaped=0 zombies=0
	for _ in $(seq 100); do
		reaped=$(grep -c 'msg="reaped orphan"' "$work/reap.log")
		zombies=$(ps -e -o ppid=,stat= | awk -v p="$SUP_PID" '$1 == p && $2 ~ /^Z/' | wc -l)
		[ "$reaped" -eq 100 ] && [ "$zombies" -eq 0 ] && break
		sleep 0.1
	done
	inside=$(grep -o 'pid1=yes' "$work/reap.log" | head -1)
	spawner_exit=$(grep -m1 'msg="exited" name=spawner' "$work/reap.log")
	last_reap=$(grep 'msg="reaped orphan"' "$work/reap.log" | tail -1)
	lag=
	[ -n "$spawner_exit" ] && [ -n "$last_reap" ] && lag=$(( $(ms_of "$last_reap") - $(ms_of "$spawner_exit") ))
	if [ "$zombies" -eq 0 ] && [ "$reaped" -eq 100 ] && [ "$inside" = pid1=yes ] &&
		[ -n "$lag" ] && [ "$lag" -le 1300 ]; then
		tap_ok "as PID 1: 100 orphans reaped within 1 s, no zombie left (the last ${lag} ms after the spawner exited; they sleep 0.3 s)"
	else
		tap_fail "as PID 1: 100 orphans reaped within 1 s, no zombie left" \
			"zombies=$zombies reaped=$reaped pid1=$inside last reap ${lag:-?} ms after the spawner's exit"
	fi
	stop
	[ "$RC" -eq 0 ] && tap_ok "supervisor exits 0 after SIGTERM" ||
		tap_fail "supervisor exits 0 after SIGTERM" "rc=$RC"
else
	tap_fail "as PID 1: 100 orphans reaped within 1 s, no zombie left" "did not start"
fi

# ---- 2. the same without PID 1: child subreaper ---------------------------
CUR=subreaper
write_conf subreaper '' '{ name = "spawner"; restart = "never";
    command = [ "/bin/sh", "-c", "for i in $(seq 20); do (sleep 0.2 &); done; exit 0" ]; }'
if start subreaper plain; then
	sleep 1
	reaped=$(grep -c 'msg="reaped orphan"' "$work/subreaper.log")
	zombies=$(ps -e -o ppid=,stat= | awk -v p="$SUP_PID" '$1 == p && $2 ~ /^Z/' | wc -l)
	if [ "$reaped" -eq 20 ] && [ "$zombies" -eq 0 ] && grep -q 'pid1=no' "$work/subreaper.log"; then
		tap_ok "not PID 1: orphans still come to the supervisor (subreaper) and are reaped"
	else
		tap_fail "not PID 1: orphans still come to the supervisor (subreaper) and are reaped" \
			"reaped=$reaped zombies=$zombies"
	fi
	stop
else
	tap_fail "not PID 1: orphans still come to the supervisor (subreaper) and are reaped"
fi

# ---- 3. ordered shutdown, escalation, exit only when all are gone ---------
CUR=order
write_conf order 'shutdown_budget = 8;' '
  { name = "base"; command = [ "/bin/sleep", "1000" ]; },
  { name = "middle"; command = [ "/bin/sleep", "1000" ]; after = [ "base" ]; },
  { name = "top"; command = [ "/bin/sleep", "1000" ]; after = [ "middle" ]; },
  { name = "stubborn"; after = [ "top" ]; stop = "SIGTERM/1s";
    command = [ "/bin/sh", "-c", "trap \"\" TERM; echo ready; while :; do sleep 0.1; done" ]; }'
if start order; then
	sleep 1
	# (the backup verify run every spoke starts at once is the supervisor's own)
	started=$(grep -o 'msg="started" name=[a-z]*' "$work/order.log" | sed 's/.*name=//' | grep -v -x backup | tr '\n' ' ')
	[ "$started" = "base middle top stubborn " ] && tap_ok "children start in dependency order" ||
		tap_fail "children start in dependency order" "got: $started"
	t0=$(date +%s%N)
	stop
	t1=$(date +%s%N)
	order=$(grep -o 'msg="stopping" name=[a-z]* pid=[0-9]* signal=SIGTERM' "$work/order.log" |
		sed -E 's/.*name=([a-z]*).*/\1/' | tr '\n' ' ')
	[ "$order" = "stubborn top middle base " ] && tap_ok "SIGTERM stops children in reverse dependency order" ||
		tap_fail "SIGTERM stops children in reverse dependency order" "got: $order"
	term=$(grep -m1 'name=stubborn .*signal=SIGTERM' "$work/order.log")
	kill9=$(grep -m1 'name=stubborn .*signal=SIGKILL' "$work/order.log")
	if [ -n "$term" ] && [ -n "$kill9" ]; then
		gap=$(( $(ms_of "$kill9") - $(ms_of "$term") ))
		if [ "$gap" -ge 950 ] && [ "$gap" -le 1300 ]; then
			tap_ok "a child ignoring SIGTERM is SIGKILLed at its 1 s timeout (after ${gap} ms)"
		else
			tap_fail "a child ignoring SIGTERM is SIGKILLed at its 1 s timeout" "gap=${gap}ms"
		fi
	else
		tap_fail "a child ignoring SIGTERM is SIGKILLed at its 1 s timeout" "no escalation logged"
	fi
	# top was stopped only after stubborn had exited
	l_stub_exit=$(grep -n 'msg="exited" name=stubborn' "$work/order.log" | cut -d: -f1)
	l_top_stop=$(grep -n 'msg="stopping" name=top' "$work/order.log" | cut -d: -f1)
	[ -n "$l_stub_exit" ] && [ -n "$l_top_stop" ] && [ "$l_stub_exit" -lt "$l_top_stop" ] &&
		tap_ok "a child is signalled only after its dependents exited" ||
		tap_fail "a child is signalled only after its dependents exited"
	left=$(pgrep -f "sleep 1000" | wc -l)
	if [ "$RC" -eq 0 ] && [ "$left" -eq 0 ] && tail -1 "$work/order.log" | grep -q 'msg="exiting" status=0'; then
		tap_ok "exit 0 only after every child is gone ($(( (t1 - t0) / 1000000 )) ms)"
	else
		tap_fail "exit 0 only after every child is gone" "rc=$RC left=$left"
	fi
else
	tap_fail "children start in dependency order" "did not start"
fi

# ---- 4. restart backoff, reset, exec failure -------------------------------
CUR=backoff
write_conf backoff 'backoff_max = 4; stable_after = 1;' '
  { name = "crasher"; command = [ "/bin/sh", "-c", "exit 3" ]; },
  { name = "steady"; command = [ "/bin/sh", "-c", "sleep 1.3; exit 1" ]; },
  { name = "missing"; command = [ "/nonexistent/binary" ]; restart = "never"; }'
if start backoff; then
	sleep 8.5
	delays=$(grep -o 'msg="restart scheduled" name=crasher delay_ms=[0-9]*' "$work/backoff.log" |
		sed 's/.*=//' | head -5 | tr '\n' ' ')
	[ "$delays" = "1000 2000 4000 4000 " ] &&
		tap_ok "a crashing child restarts after 1, 2, 4 s, capped at backoff_max" ||
		tap_fail "a crashing child restarts after 1, 2, 4 s, capped at backoff_max" "delays: $delays"
	steady=$(grep -o 'msg="restart scheduled" name=steady delay_ms=[0-9]*' "$work/backoff.log" |
		sed 's/.*=//' | sort -u | tr '\n' ' ')
	n_steady=$(grep -c 'msg="restart scheduled" name=steady' "$work/backoff.log")
	[ "$steady" = "1000 " ] && [ "$n_steady" -ge 3 ] &&
		tap_ok "a child that stayed up past stable_after restarts after 1 s each time" ||
		tap_fail "a child that stayed up past stable_after restarts after 1 s each time" "delays: $steady ($n_steady)"
	json=$(ctl status --json)
	if grep -q 'msg="cannot start" name=missing stage=exec path=/nonexistent/binary error="No such file or directory"' "$work/backoff.log" &&
	   python3 -c '
import json,sys
d = json.loads(sys.argv[1])
m = [c for c in d["children"] if c["name"] == "missing"][0]
assert m["state"] == "exited", m
assert m["last_error"] == "exec /nonexistent/binary: No such file or directory", m
assert m["restarts"] == 0
assert m["pid"] is None, m   # not running: no pid, not 0
' "$json"; then
		tap_ok "exec of a missing binary is reported as an exec failure, not a quick exit (pid null)"
	else
		tap_fail "exec of a missing binary is reported as an exec failure, not a quick exit" "$json"
	fi
	out=$(ctl status); rc=$?
	[ "$rc" -ge 1 ] && grep -q "child crasher is restarting after a failure" <<<"$out" &&
		tap_ok "ctl status reports children in backoff as a reason, not ok" ||
		tap_fail "ctl status reports children in backoff as a reason, not ok" "rc=$rc" "$out"
	stop
else
	tap_fail "a crashing child restarts after 1, 2, 4 s, capped at backoff_max" "did not start"
fi

# ---- 5. a required child that gives up ends the supervisor ----------------
CUR=giveup
write_conf giveup 'give_up_after = 2; backoff_max = 1;' '
  { name = "other"; command = [ "/bin/sleep", "1000" ]; },
  { name = "vital"; required = true; command = [ "/bin/sh", "-c", "exit 1" ]; }'
if start giveup; then
	wait "$UNSHARE_PID"; rc=$?; SUP_PID=
	if [ "$rc" -ne 0 ] && grep -q 'msg="gave up" name=vital' "$work/giveup.log" &&
	   grep -q 'msg="exited" name=other' "$work/giveup.log"; then
		tap_ok "a required child giving up stops the others and exits non-zero ($rc)"
	else
		tap_fail "a required child giving up stops the others and exits non-zero" "rc=$rc"
	fi
else
	tap_fail "a required child giving up stops the others and exits non-zero" "did not start"
fi

# ---- 6. signal mask and ignored signals of a child -------------------------
CUR=sigs
write_conf sigs '' "{ name = \"probe\"; restart = \"never\";
    command = [ \"/bin/sh\", \"-c\", \"grep -E '^Sig(Blk|Ign)' /proc/self/status > $work/child.sig\" ]; }"
# The plain process is started exactly as the supervisor is: what the
# environment gives the supervisor is what its children must get.
unshare --pid --fork --mount-proc grep -E '^Sig(Blk|Ign)' /proc/self/status > "$work/plain.sig" &
wait $!
if start sigs; then
	sleep 0.5
	if [ -s "$work/child.sig" ] && cmp -s "$work/plain.sig" "$work/child.sig"; then
		tap_ok "a child's blocked and ignored signals equal a plain process's ($(tr '\n' ' ' < "$work/child.sig"))"
	else
		tap_fail "a child's blocked and ignored signals equal a plain process's" \
			"plain: $(tr '\n' ' ' < "$work/plain.sig")" "child: $(tr '\n' ' ' < "$work/child.sig" 2>/dev/null)"
	fi
	stop
else
	tap_fail "a child's blocked and ignored signals equal a plain process's" "did not start"
fi

# ---- 7. the control socket --------------------------------------------------
CUR=ctl
write_conf ctl '' '{ name = "worker"; command = [ "/bin/sleep", "1000" ]; }'
if start ctl; then
	mode=$(stat -c %a "$work/ctl.sock")
	[ "$mode" = 600 ] && tap_ok "control socket is mode 0600" || tap_fail "control socket is mode 0600" "mode=$mode"

	# The socket opens first; the child and the overlay's first pass follow within moments.
	for _ in $(seq 30); do
		out=$(ctl status); rc=$?
		grep -q "^worker *running" <<<"$out" && grep -q "SUP_TEST_NO_KEY" <<<"$out" && break
		sleep 0.1
	done
	if [ $rc -eq 2 ] && grep -q "^worker *running" <<<"$out" && grep -q "(PID 1)" <<<"$out" &&
	   grep -q "tunnel down: private key: environment variable SUP_TEST_NO_KEY is not set" <<<"$out"; then
		tap_ok "ctl status shows the children, and exits 2 saying why the tunnel is down"
	else
		tap_fail "ctl status shows the children, and exits 2 saying why the tunnel is down" "rc=$rc" "$out"
	fi
	# Down from the start, no peer judged: no handshake age at all (was 0); peer_count is the configured peers (the hub), as in /status.
	got=$(ctl tunnel --json | python3 -c 'import json,sys; t=json.load(sys.stdin)["tunnel"]; print(t["state"], t["peer_count"], t["max_last_handshake_sec"])' 2>&1)
	[ "$got" = "down 1 None" ] &&
		tap_ok "ctl tunnel, down without a key: max_last_handshake_sec null, not 0 ($got)" ||
		tap_fail "ctl tunnel, down without a key: max_last_handshake_sec null, not 0" "$got"

	setpriv --reuid=65534 --regid=65534 --clear-groups "$SUP" ctl -s "$work/ctl.sock" status >/dev/null 2>&1; rc=$?
	[ $rc -eq 3 ] && tap_ok "another uid cannot use the 0600 socket (exit 3)" ||
		tap_fail "another uid cannot use the 0600 socket (exit 3)" "rc=$rc"
	# Even with the file opened up, SO_PEERCRED turns a foreign uid away.
	chmod 666 "$work/ctl.sock"
	# /usr/bin/python3: a per-user python (pyenv) is not executable by that uid.
	reply=$(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - "$work/ctl.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
try:
    s.sendall(b"status\n")   # the server may refuse and close before this lands
except OSError:
    pass
print(s.recv(4096).decode().strip())
PY
)
	chmod 600 "$work/ctl.sock"
	if grep -q '"permission denied"' <<<"$reply" && grep -q 'msg="refused client" uid=65534' "$work/ctl.log"; then
		tap_ok "a non-permitted uid is refused by peer credentials"
	else
		tap_fail "a non-permitted uid is refused by peer credentials" "reply: $reply"
	fi

	# Abuse on several connections at once, then a normal request in the middle.
	python3 - "$work/ctl.sock" "$SUP" > "$work/abuse.out" 2>&1 <<'PY'
import socket, subprocess, sys, time
path, sup = sys.argv[1], sys.argv[2]
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(path); return s
idle = [conn() for _ in range(8)]                 # connect and say nothing
big = conn(); big.sendall(b"x" * 4000)             # far over the request limit
garbage = conn(); garbage.sendall(b"\x00\xff\x01status\x02\n")
t0 = time.monotonic()
r = subprocess.run([sup, "ctl", "-s", path, "status", "--json"], capture_output=True, timeout=5)
dt = time.monotonic() - t0
def reply(s):
    s.settimeout(3)
    try:
        return s.recv(4096).decode(errors="replace").strip()
    except Exception as e:
        return "ERR " + type(e).__name__
print("good_rc", r.returncode, "good_ms", int(dt * 1000), "good_ok", b'"ok":true' in r.stdout)
print("big", reply(big))
print("garbage", reply(garbage))
t1 = time.monotonic()
print("idle", reply(idle[0]) or "closed", "after_ms", int((time.monotonic() - t0) * 1000))
half = conn(); half.sendall(b"stat")               # half a line, then end of input
time.sleep(0.2)
half.shutdown(socket.SHUT_WR)
print("half", reply(half))
PY
	if grep -q "good_rc [0-2] good_ms [0-9]* good_ok True" "$work/abuse.out" &&
	   [ "$(sed -n 's/.*good_ms \([0-9]*\).*/\1/p' "$work/abuse.out")" -lt 1000 ]; then
		tap_ok "a well-behaved client is served while others send garbage, too much, or nothing ($(grep -o 'good_ms [0-9]*' "$work/abuse.out"))"
	else
		tap_fail "a well-behaved client is served while others send garbage, too much, or nothing" "$(cat "$work/abuse.out")"
	fi
	grep -q 'big {"v":1,"ok":false,"error":"request too long"}' "$work/abuse.out" &&
		tap_ok "an oversized request is answered with an error and cut off" ||
		tap_fail "an oversized request is answered with an error and cut off" "$(cat "$work/abuse.out")"
	grep -q 'garbage {"v":1,"ok":false,"error":"malformed request: control characters"}' "$work/abuse.out" &&
		tap_ok "binary garbage is rejected" ||
		tap_fail "binary garbage is rejected" "$(cat "$work/abuse.out")"
	grep -q 'idle closed after_ms' "$work/abuse.out" && grep -q 'msg="client timed out"' "$work/ctl.log" &&
		tap_ok "idle clients are cut off at their deadline" ||
		tap_fail "idle clients are cut off at their deadline" "$(cat "$work/abuse.out")"
	grep -q 'half {"v":1,"ok":false,"command":"stat","error":"unknown command"}' "$work/abuse.out" &&
		tap_ok "a half-closed request without newline is still answered" ||
		tap_fail "a half-closed request without newline is still answered" "$(cat "$work/abuse.out")"
	answers && tap_ok "the daemon still answers after the abuse" ||
		tap_fail "the daemon still answers after the abuse"

	# ---- 8. reload ------------------------------------------------------------
	cp "$work/ctl.conf" "$work/ctl.good"
	sed -i 's|{ name = "worker";|{ name = "worker"; restart = "sometimes";|' "$work/ctl.conf"
	out=$(ctl reload 2>&1); rc=$?
	if [ $rc -eq 2 ] && grep -q "$work/ctl.conf:6: spokes\[0\].children\[0\].restart: \"sometimes\" is not one of" <<<"$out" &&
	   ctl status | grep -q "^worker *running" && ctl status --json | grep -q "previous configuration stays in force"; then
		tap_ok "reload of a broken file keeps the old configuration and says why"
	else
		tap_fail "reload of a broken file keeps the old configuration and says why" "rc=$rc" "$out"
	fi
	old_pid=$(ctl status --json | python3 -c 'import json,sys; print([c["pid"] for c in json.load(sys.stdin)["children"] if c["name"]=="worker"][0])')
	sed 's|children = ( { name = "worker"; command = \[ "/bin/sleep", "1000" \]; } );|children = ( { name = "worker"; command = [ "/bin/sleep", "1000" ]; }, { name = "added"; command = [ "/bin/sleep", "999" ]; } );|' \
		"$work/ctl.good" > "$work/ctl.conf"
	kill -HUP "$SUP_PID"
	sleep 0.5
	new=$(ctl status --json)
	if python3 -c '
import json,sys
d = json.loads(sys.argv[1]); c = {x["name"]: x for x in d["children"]}
assert c["added"]["state"] == "running", c
assert c["worker"]["pid"] == int(sys.argv[2]), "worker was restarted"
assert d["config"]["reloads"] == 1 and d["config"]["last_reload_error"] is None
' "$new" "$old_pid"; then
		tap_ok "SIGHUP reload adds a new child and leaves the unchanged one running"
	else
		tap_fail "SIGHUP reload adds a new child and leaves the unchanged one running" "$new"
	fi
	cp "$work/ctl.good" "$work/ctl.conf"
	out=$(ctl reload); rc=$?
	sleep 0.3
	[ $rc -eq 0 ] && ! ctl status | grep -q "^added" &&
		tap_ok "ctl reload removes a child that left the file" ||
		tap_fail "ctl reload removes a child that left the file" "rc=$rc $(ctl status)"

	# ---- 9. a second supervisor on the same socket refuses to start ---------
	timeout 5 unshare --net "$SUP" run -c "$work/ctl.conf" -n spoke-a >"$work/second.log" 2>&1; rc=$?
	[ $rc -eq 1 ] && grep -q "another supervisor is running" "$work/second.log" &&
		tap_ok "a second supervisor on the same control socket refuses to start" ||
		tap_fail "a second supervisor on the same control socket refuses to start" "rc=$rc"
	stop
	[ ! -e "$work/ctl.sock" ] && tap_ok "the socket is removed on exit" ||
		tap_fail "the socket is removed on exit"
else
	tap_fail "ctl status shows the children, and exits 2 saying why the tunnel is down" "did not start"
fi

# ---- 10. a stale socket file is replaced ----------------------------------
CUR=stale
write_conf stale '' '{ name = "worker"; command = [ "/bin/sleep", "1000" ]; }'
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$work/stale.sock"
if [ -S "$work/stale.sock" ] && start stale && answers && grep -q 'msg="replacing stale socket"' "$work/stale.log"; then
	tap_ok "a stale socket left by a crash is detected and replaced"
	stop
else
	tap_fail "a stale socket left by a crash is detected and replaced"
	[ -n "$SUP_PID" ] && stop
fi

# ---- 11. a kernel without nf_tables: reported, not crashed on ----------------
CUR=nonft
write_conf nonft '' '{ name = "worker"; command = [ "/bin/sleep", "1000" ]; }'
# (an ASan build must be told the shim may come before its runtime)
if [ -f "$NO_NFTABLES" ] && LD_PRELOAD=$NO_NFTABLES ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start nonft; then
	fw=$(ctl firewall --json); rc=$?
	why=$(ctl status --json | python3 -c 'import json,sys; print([r for r in json.load(sys.stdin)["reasons"] if r.startswith("firewall")])')
	if [ $rc -eq 2 ] && grep -q '"state":"unsupported"' <<<"$fw" && grep -q 'no nf_tables' <<<"$fw" &&
	   grep -q 'firewall unsupported' <<<"$why" && answers; then
		tap_ok "no nf_tables in the kernel: the firewall says unsupported (ctl firewall exit 2), the daemon runs on"
	else
		tap_fail "no nf_tables in the kernel: reported as unsupported" "rc=$rc $fw" "$why"
	fi
	stop
else
	tap_fail "no nf_tables in the kernel: reported as unsupported" "did not start (shim: ${NO_NFTABLES:-none})"
fi

# ---- 12. no CAP_NET_ADMIN (a container without cap_add NET_ADMIN) ---------
# The kernel refuses the batch with EPERM: the reason names the capability,
# not a missing nf_tables (found by booting the spoke image without it).
CUR=nocap
write_conf nocap '' '{ name = "worker"; command = [ "/bin/sleep", "1000" ]; }'
if WRAP="setpriv --bounding-set -net_admin --inh-caps -all" start nocap; then
	fw=$(ctl firewall --json); rc=$?
	if [ $rc -eq 2 ] && grep -q '"state":"failed"' <<<"$fw" && grep -q 'Operation not permitted (no CAP_NET_ADMIN?' <<<"$fw" &&
	   ! grep -q 'no nf_tables' <<<"$fw" && answers; then
		tap_ok "without CAP_NET_ADMIN: the firewall fails saying so (not \"no nf_tables\"), the daemon runs on"
	else
		tap_fail "without CAP_NET_ADMIN: the firewall's reason names the capability" "rc=$rc $fw"
	fi
	stop
else
	tap_fail "without CAP_NET_ADMIN: the firewall's reason names the capability" "did not start"
fi

# Every daemon here ran in a network namespace of its own: its firewall
# table must not have reached this machine's.
nft list table inet supervisor >/dev/null 2>&1 &&
	tap_fail "no firewall table was left in this machine's own network namespace" ||
	tap_ok "no firewall table was left in this machine's own network namespace"

# Under ASan/UBSan a report lands in a daemon log, which the exit status alone may not show.
reports=$(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$work"/*.log 2>/dev/null)
[ -z "$reports" ] && tap_ok "no sanitizer report in any daemon log" ||
	tap_fail "no sanitizer report in any daemon log" "$(cat $reports | grep -E -A5 'Sanitizer|runtime error' | head -40)"

tap_done
