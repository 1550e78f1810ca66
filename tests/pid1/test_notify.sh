#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `supervisor run` under a service manager's eyes (Type=notify): the test
# plays systemd's notify socket (NOTIFY_SOCKET, a unix datagram socket it
# reads with the sender's credentials) and checks that READY=1 comes only
# once wg0 is up and the firewall applied (the sender is frozen with
# SIGSTOP the moment READY=1 arrives, and its network namespace looked
# at), and never while the firewall cannot be applied or the key is
# missing; STATUS= when the health line changes; WATCHDOG=1 at half of
# WATCHDOG_USEC; RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
# SIGHUP, a `ctl reload` and a refused file; STOPPING=1 on SIGTERM; and
# that no child inherits the socket. Each daemon is the hub, in network
# and mount namespaces of its own (wireguard-go's socket directory is
# private). Needs root.
set -u
SUP=$1 TESTS=$2 NO_NFTABLES=${3:-}
. "$TESTS/tap.sh"

work=$(mktemp -d /tmp/sup-notify.XXXXXX)
chmod 755 "$work"
SUP_PID='' LISTENER=''
cleanup() {
	[ -n "$SUP_PID" ] && kill -KILL "$SUP_PID" 2>/dev/null
	[ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ] || ! unshare --net --mount true 2>/dev/null; then
	tap_fail "root and namespaces are available (unshare --net --mount)" \
		"these tests must run as root on a kernel with network and mount namespaces"
	tap_done
	exit 1
fi

# The service manager's end: one line per message, "MONO_US PID MSG" with the
# message's newlines as "|". At the first READY=1 it freezes the sender and
# records what its network namespace holds then: "CHECK wg0=yes|no table=yes|no".
cat > "$work/listen.py" <<'PY'
import os, signal, socket, struct, subprocess, sys, time
path, out = sys.argv[1], open(sys.argv[2], "a", buffering=1)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
ready_seen = False
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = 0
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    text = msg.decode(errors="replace")
    out.write("%d %d %s\n" % (time.monotonic_ns() // 1000, pid, text.replace("\n", "|")))
    if "READY=1" in text.split("\n") and not ready_seen and pid:
        ready_seen = True
        os.kill(pid, signal.SIGSTOP)
        try:
            ns = ["nsenter", "-t", str(pid), "-n"]
            wg = subprocess.run(ns + ["ip", "-o", "-4", "addr", "show", "dev", "wg0", "up"],
                                capture_output=True, text=True).stdout
            table = subprocess.run(ns + ["nft", "list", "table", "inet", "supervisor"],
                                   capture_output=True, text=True).returncode == 0
            out.write("CHECK wg0=%s table=%s\n" % ("yes" if "10.88.0.1/" in wg else "no",
                                                  "yes" if table else "no"))
        finally:
            os.kill(pid, signal.SIGCONT)
PY

mkdir -p /var/run/wireguard # the mount point; each daemon binds its own directory over it
(umask 077; "$SUP" genkey > "$work/hub.key")
chmod 600 "$work/hub.key"
HUB_PUB=$("$SUP" pubkey < "$work/hub.key")

# write_conf NAME KEYFILE: a hub with one spoke that never connects.
write_conf() {
	cat > "$work/$1.conf" <<EOF
cluster = { network = "10.88.0.0/24"; };
hub = { name = "hub"; overlay_ip = "10.88.0.1"; endpoint = "192.0.2.1:51820"; public_key = "$HUB_PUB";
        children = ( { name = "sleeper"; command = [ "/bin/sleep", "1000" ]; } ); };
spokes = ( { name = "spoke-a"; overlay_ip = "10.88.0.11"; postgres = "primary";
             public_key = "M3i9WQyag4lUF0QfLXkiDK/gXA6kGGUBHiOxdgohQWA="; } );
keys = { private_key_file = "$2"; };
control = { socket = "$work/$1.sock"; };
EOF
}

# start NAME [VAR=VALUE...]: the listener on NAME.notify, then the hub on
# NAME.conf with NOTIFY_SOCKET (and the given variables) in its environment.
start() {
	local name=$1; shift
	rm -f "$work/$name.notify" "$work/$name.log" "$work/$name.msgs"
	mkdir -p "$work/$name.wg"
	python3 "$work/listen.py" "$work/$name.notify" "$work/$name.msgs" &
	LISTENER=$!
	for _ in $(seq 50); do [ -S "$work/$name.notify" ] && break; sleep 0.05; done
	env NOTIFY_SOCKET="$work/$name.notify" "$@" unshare --net --mount /bin/sh -c \
		'mount --bind "$0" /var/run/wireguard && exec "$1" run -c "$2" -n hub' \
		"$work/$name.wg" "$SUP" "$work/$name.conf" >"$work/$name.log" 2>&1 &
	SUP_PID=$!
}

# stop: SIGTERM, wait; RC is the exit status. Then the listener goes.
stop() {
	kill -TERM "$SUP_PID"
	wait "$SUP_PID"; RC=$?
	SUP_PID=
	sleep 0.2
	kill "$LISTENER" 2>/dev/null
	wait "$LISTENER" 2>/dev/null
	LISTENER=
}

# wait_for NAME REGEX [SECONDS]: until a message matches (grep -E on the message part).
wait_for() {
	for _ in $(seq $((${3:-15} * 10))); do
		msgs "$1" | grep -q -E "$2" && return 0
		sleep 0.1
	done
	return 1
}
msgs() { cut -d' ' -f3- "$work/$1.msgs" 2>/dev/null; }
count() { msgs "$1" | grep -c -x -E "$2"; }
show() { echo "messages:"; sed 's/^/  /' "$work/$1.msgs"; echo "log:"; tail -15 "$work/$1.log" | sed 's/^/  /'; }

# ---- 1. the hub: READY=1 after wg0 and the firewall, STATUS=, WATCHDOG=1 ---
write_conf hub "$work/hub.key"
start hub WATCHDOG_USEC=1000000
if wait_for hub '^READY=1$' 20; then
	check=$(grep '^CHECK' "$work/hub.msgs")
	before=$(msgs hub | sed '/^READY=1$/q' | grep -c '^STATUS=')
	[ "$check" = "CHECK wg0=yes table=yes" ] && [ "$before" -ge 1 ] &&
		tap_ok "READY=1 once wg0 is up (10.88.0.1) and our nftables table is in force (sender frozen on arrival); STATUS= before it" ||
		tap_fail "READY=1 once wg0 is up and the firewall applied" "$check, STATUS before READY: $before" "$(show hub)"
	[ "$(grep -c 'READY=1' "$work/hub.msgs")" -eq 1 ] && grep -q " $SUP_PID READY=1\$" "$work/hub.msgs" &&
		tap_ok "READY=1 is sent once, by the main process" ||
		tap_fail "READY=1 is sent once, by the main process (pid $SUP_PID)" "$(show hub)"
else
	tap_fail "READY=1 once wg0 is up and the firewall applied" "no READY=1 within 20 s" "$(show hub)"
	tap_fail "READY=1 is sent once, by the main process"
fi
if wait_for hub '^STATUS=degraded: tunnel connecting \(0/1 peers fresh\), firewall applied; tunnel: no handshake yet$' 10; then
	dups=$(msgs hub | grep '^STATUS=' | uniq -d | wc -l)
	[ "$dups" -eq 0 ] && tap_ok "STATUS= is the health line (degraded: tunnel connecting (0/1 peers fresh), firewall applied; ...), sent only when it changes" ||
		tap_fail "STATUS= sent only when it changes" "$dups repeated" "$(show hub)"
else
	tap_fail "STATUS= is the health line" "$(show hub)"
fi
n0=$(count hub 'WATCHDOG=1'); sleep 2.2; n1=$(count hub 'WATCHDOG=1')
[ $((n1 - n0)) -ge 3 ] && [ $((n1 - n0)) -le 6 ] &&
	tap_ok "WATCHDOG=1 every half of WATCHDOG_USEC (1 s): $((n1 - n0)) in 2.2 s" ||
	tap_fail "WATCHDOG=1 every half of WATCHDOG_USEC" "$((n1 - n0)) in 2.2 s" "$(show hub)"
# A child from the cluster file, and wireguard-go when the kernel has no WireGuard.
kids=$(pgrep -P "$SUP_PID" -x 'sleep|wireguard-go')
leaked=""
for k in $kids; do
	leaked+=$(tr '\0' ' ' < "/proc/$k/environ" | grep -o -E '(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=[^ ]*' | tr '\n' ' ')
done
[ -n "$kids" ] && [ -z "$leaked" ] &&
	tap_ok "children ($(pgrep -P "$SUP_PID" -l | awk '{ print $2 }' | sort | tr '\n' ' ')) inherit neither NOTIFY_SOCKET nor the watchdog" ||
	tap_fail "children inherit neither NOTIFY_SOCKET nor the watchdog" "children: ${kids:-none}" "$leaked"

# ---- 2. reloads: RELOADING=1 with MONOTONIC_USEC, then READY=1 -----------------
# reloaded NAME N: the N-th RELOADING=1 came with our monotonic clock at the
# time it was sent (MONOTONIC_USEC), and a READY=1 after it.
after_nth() { awk -v n="$2" '/ RELOADING=1/ { r++ } r == n && / READY=1$/ { f = 1 } END { exit !f }' "$work/$1.msgs"; }
reloaded() {
	local line mono sent
	for _ in $(seq 100); do after_nth "$1" "$2" && break; sleep 0.1; done
	line=$(grep ' RELOADING=1' "$work/$1.msgs" | sed -n "${2}p")
	sent=${line%% *}
	mono=$(sed -n 's/.*RELOADING=1|MONOTONIC_USEC=\([0-9]*\)$/\1/p' <<<"$line")
	[ -n "$mono" ] && [ "$mono" -le "$sent" ] && [ $((sent - mono)) -lt 2000000 ] && after_nth "$1" "$2"
}
kill -HUP "$SUP_PID"
reloaded hub 1 && tap_ok "SIGHUP: RELOADING=1 with MONOTONIC_USEC (our clock, when it was sent), then READY=1" ||
	tap_fail "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1" "$(show hub)"
"$SUP" ctl -s "$work/hub.sock" reload >/dev/null
reloaded hub 2 && tap_ok "ctl reload: RELOADING=1, then READY=1" ||
	tap_fail "ctl reload: RELOADING=1, then READY=1" "$(show hub)"
cp "$work/hub.conf" "$work/hub.conf.good"
echo 'hub = { name = "hub"; };' >> "$work/hub.conf"
kill -HUP "$SUP_PID"
if reloaded hub 3 && wait_for hub '^STATUS=degraded: .*1 error in .*the previous configuration stays in force' 5; then
	tap_ok "a refused file: RELOADING=1, READY=1 again (the old configuration runs on), and STATUS= says so"
else
	tap_fail "a refused file: RELOADING=1, READY=1 again, and STATUS= says so" "$(show hub)"
fi
cp "$work/hub.conf.good" "$work/hub.conf"

# ---- 3. SIGTERM: STOPPING=1, then a clean exit ----------------------------------
stop
if grep -q ' STOPPING=1$' "$work/hub.msgs" && [ "$RC" -eq 0 ] &&
   ! sed '1,/ STOPPING=1$/d' "$work/hub.msgs" | grep -q -E ' (READY|RELOADING)=1'; then
	tap_ok "SIGTERM: STOPPING=1 (nothing ready after it), exit 0"
else
	tap_fail "SIGTERM: STOPPING=1, exit 0" "rc=$RC" "$(show hub)"
fi

# ---- 4. never ready without a firewall, or without wg0 -----------------------------
write_conf nonft "$work/hub.key"
if [ -f "$NO_NFTABLES" ]; then
	start nonft WATCHDOG_USEC=1000000 LD_PRELOAD="$NO_NFTABLES" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	wait_for nonft '^STATUS=critical: tunnel connecting .*firewall unsupported' 15; st=$?
	sleep 2
	if [ $st -eq 0 ] && ! grep -q 'READY=1' "$work/nonft.msgs" && [ "$(count nonft 'WATCHDOG=1')" -ge 2 ]; then
		tap_ok "no nf_tables: wg0 is up but no READY=1; STATUS= says why; the watchdog is still fed"
	else
		tap_fail "no nf_tables: no READY=1, STATUS= says why" "$(show nonft)"
	fi
	stop
	grep -q ' STOPPING=1$' "$work/nonft.msgs" && [ "$RC" -eq 0 ] &&
		tap_ok "stopped before it was ready: STOPPING=1, exit 0" ||
		tap_fail "stopped before it was ready: STOPPING=1, exit 0" "rc=$RC" "$(show nonft)"
else
	tap_fail "no nf_tables: no READY=1" "no shim (${NO_NFTABLES:-none})"
	tap_fail "stopped before it was ready: STOPPING=1, exit 0"
fi
write_conf nokey "$work/missing.key"
start nokey
wait_for nokey '^STATUS=critical: tunnel down .*firewall applied.*missing.key' 15; st=$?
sleep 1
if [ $st -eq 0 ] && ! grep -q 'READY=1' "$work/nokey.msgs" && [ "$(count nokey 'WATCHDOG=1')" -eq 0 ]; then
	tap_ok "no key: the firewall is applied but wg0 is down: no READY=1; STATUS= names the key file; no WATCHDOG_USEC, no pings"
else
	tap_fail "no key: no READY=1, STATUS= names the key file" "$(show nokey)"
fi
stop

nft list table inet supervisor >/dev/null 2>&1 &&
	tap_fail "no firewall table was left in this machine's own network namespace" ||
	tap_ok "no firewall table was left in this machine's own network namespace"
reports=$(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$work"/*.log 2>/dev/null)
[ -z "$reports" ] && tap_ok "no sanitizer report in any daemon log" ||
	tap_fail "no sanitizer report in any daemon log" "$(cat $reports | grep -E -A5 'Sanitizer|runtime error' | head -40)"
tap_done
