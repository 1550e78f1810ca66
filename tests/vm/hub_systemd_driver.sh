#!/bin/bash
# SPDX-License-Identifier: MIT
# Inside the VM of tests/vm/test_hub_systemd.sh, run by vm-test.service once
# systemd has booted: set up the hub as an operator would
# (deploy/hub/setup-hub.sh), then check the unit under systemd: Type=notify,
# hardening, kernel WireGuard, spokes (network namespaces here) joining and
# forwarding through it, a live reload, an idempotent second set-up, a
# crash restarted, the watchdog, a clean stop, and a bad file (exit 78) not
# restarted. Every result is a TAP line on the console prefixed "VMTAP ";
# then "VM-EXIT: N" and power off.
exec </dev/null >/dev/ttyS0 2>&1
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SUP=/usr/local/bin/supervisor
CONF=/etc/supervisor/cluster.conf
N=0 FAILED=0 T0=$SECONDS

say() { echo "VMTAP $*"; }
ok() { N=$((N + 1)); say "ok $N - $1"; }
fail() {
	N=$((N + 1)); FAILED=$((FAILED + 1))
	say "not ok $N - $1"; shift
	local l
	for l in "$@"; do while IFS= read -r x; do say "#   $x"; done <<<"$l"; done
}
# result NAME OK DETAIL...: ok when OK is 0.
result() { local name=$1 rc=$2; shift 2; if [ "$rc" -eq 0 ]; then ok "$name"; else fail "$name" "$@"; fi; }
prop() { systemctl show -p "$1" --value supervisor.service; }
props() { systemctl show supervisor.service -p ActiveState,SubState,Result,MainPID,NRestarts,ExecMainStatus,StatusText | tr '\n' ' '; }
# wait_until SECONDS CMD...: poll every 0.2 s.
wait_until() {
	local end=$((SECONDS + $1)); shift
	until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done
}
ms() { date +%s%3N; }
journal() { journalctl -u supervisor.service -b --no-pager -o cat 2>/dev/null | tail -n "${1:-20}"; }
pubkey_of() { grep -A3 "name = \"$1\"" "$CONF" | sed -n 's/.*public_key = "\([^"]*\)".*/\1/p' | head -1; }
# handshake_of NAME: the hub's last handshake with that spoke (unix s, 0: never).
handshake_of() { wg show wg0 latest-handshakes | awk -v k="$(pubkey_of "$1")" '$1 == k { print $2 }'; }
rx_of() { wg show wg0 transfer | awk -v k="$(pubkey_of "$1")" '$1 == k { print $2 }'; }
fresh() { local h; for n in "$@"; do h=$(handshake_of "$n"); [ "${h:-0}" -gt 0 ] || return 1; done; }
active() { [ "$(prop ActiveState)" = active ] && [ "$(prop SubState)" = running ]; }
status_is() { prop StatusText | grep -q -E "$1"; }

finish() {
	[ -n "${DONE:-}" ] || fail "the driver ran to its end" "it stopped after check $N"
	say "# driver took $((SECONDS - T0)) s"
	say "1..$N"
	echo "VM-EXIT: $((FAILED > 0))"
	sync
	echo o > /proc/sysrq-trigger
	sleep 10
}
trap finish EXIT

say "# systemd $(systemctl --version | head -1 | cut -d' ' -f2), kernel $(uname -r)"
mkdir -p /root/work && cd /root/work || exit 1

# ---- the operator's set-up -------------------------------------------------------------------
t=$(ms)
/opt/sup/deploy/hub/setup-hub.sh --binary /opt/sup/supervisor --endpoint 192.0.2.1:51820 \
	--spokes spoke-a --bundle /root/work/bundles > setup1.log 2>&1
rc=$?
t_setup=$(( $(ms) - t ))
# The moment `systemctl start` returned (Type=notify: after READY=1), as setup-hub.sh saw it.
addr=$(ip -o -4 addr show dev wg0 2>/dev/null | grep -o '10\.88\.0\.1/24')
table=$(nft list table inet supervisor >/dev/null 2>&1 && echo yes)
[ "$rc" -eq 0 ] && grep -q 'setup-hub: started' setup1.log
r=$?
result "setup-hub.sh on Debian 12, no package to fetch: exit 0, service started (${t_setup} ms)" $r \
	"rc=$rc" "$(cat setup1.log)" "$(journal)"
grep -q 'setup-hub: installing' setup1.log &&
	fail "setup-hub.sh found every package installed (the VM has no network)" "$(grep installing setup1.log)"
active && [ -n "$addr" ] && [ "$table" = yes ]
r=$?
result "Type=notify: active (running) once start returned, with wg0 10.88.0.1/24 and our nftables table in place" $r \
	"$(props)" "wg0=$addr table=$table" "$(journal)"
gap=$(( ($(prop ActiveEnterTimestampMonotonic) - $(prop ExecMainStartTimestampMonotonic)) / 1000 ))
[ "$(prop Type)" = notify ] && [ "$(prop NotifyAccess)" = main ] && [ "$gap" -gt 0 ] &&
	journal 200 | grep -q 'msg="ready" interface=wg0 firewall=applied notify=yes'
r=$?
result "the unit is Type=notify, NotifyAccess=main; active ${gap} ms after exec, at the daemon's READY=1" $r \
	"Type=$(prop Type) NotifyAccess=$(prop NotifyAccess) gap=${gap}ms" "$(journal)"
wait_until 20 status_is '^degraded: tunnel connecting \(0/1 peers fresh\), firewall applied; tunnel: no handshake yet'
r=$?
result "StatusText is the health line: $(prop StatusText)" $r "$(props)"

# ---- hardening, and still the kernel's WireGuard -----------------------------------------------
pid=$(prop MainPID)
st=$(grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/"$pid"/status | tr -s '\t' ' ')
ro=$(nsenter -t "$pid" -m sh -c 'touch /etc/supervisor/.probe 2>&1; touch /usr/local/bin/.probe 2>&1' |
	grep -c 'Read-only file system')
[ "$(grep -c -x -E 'NoNewPrivs: 1|Seccomp: 2|CapEff: 0000000000003000|CapBnd: 0000000000003000' <<<"$st")" -eq 4 ] &&
	[ "$ro" -eq 2 ]
r=$?
result "hardening in force on the running process: no new privileges, seccomp, only CAP_NET_ADMIN+CAP_NET_RAW, a read-only /etc and /usr" \
	$r "$st" "read-only refusals: $ro of 2"
hp=$(systemctl show supervisor.service -p ProtectSystem,ProtectHome,ProtectKernelModules,RestrictNamespaces,MemoryDenyWriteExecute,LockPersonality | sort | tr '\n' ' ')
[ "$hp" = "LockPersonality=yes MemoryDenyWriteExecute=yes ProtectHome=yes ProtectKernelModules=yes ProtectSystem=strict RestrictNamespaces=yes " ]
r=$?
result "hardening properties as shipped: $hp" $r "$hp"
kind=$(ip -d link show wg0 | sed -n '3p' | awk '{ print $1 }')
[ "$kind" = wireguard ] && [ -d /sys/module/wireguard ] && ! pgrep -x wireguard-go >/dev/null
r=$?
result "wg0 is the kernel's WireGuard (ip -d link: $kind; module loaded; no wireguard-go) despite ProtectKernelModules" $r \
	"$(ip -d link show wg0 2>&1)" "$(lsmod | grep -i wireguard)" "$(journal)"

# ---- spokes: network namespaces behind a bridge, the hub at 192.0.2.1 --------------------------
ip link add br0 type bridge && ip addr add 192.0.2.1/24 dev br0 && ip link set br0 up
# spoke NAME LAST_OCTET: its namespace, a veth on br0, and `supervisor run -n NAME`
# with its bundle's secrets, in a mount namespace with a /run of its own.
spoke() {
	local n=$1
	ip netns add "$n"
	ip link add "v-$n" type veth peer name eth0 netns "$n"
	ip link set "v-$n" master br0 up
	ip -n "$n" addr add "192.0.2.$2/24" dev eth0
	ip -n "$n" link set eth0 up
	ip -n "$n" link set lo up
	(
		set -a
		# shellcheck disable=SC1090
		. "/root/work/bundles/$n/spoke.env"
		set +a
		exec ip netns exec "$n" unshare --mount /bin/sh -c \
			'mount -t tmpfs tmpfs /run && exec "$0" run -c "$1" -n "$2"' "$SUP" "$CONF" "$n"
	) > "/root/work/$n.log" 2>&1 &
}
t=$(ms)
$SUP cluster add-spoke spoke-b --bundle /root/work/bundles > addb.log 2>&1 &&
	systemctl reload supervisor.service && wait_until 20 sh -c '[ "$(wg show wg0 peers | wc -l)" -eq 2 ]'
r=$?
result "cluster add-spoke spoke-b + systemctl reload: the hub has its peer ($(( $(ms) - t )) ms)" $r \
	"$(cat addb.log)" "$(wg show wg0 2>&1)" "$(journal)"
spoke spoke-a 11
spoke spoke-b 12
t=$(ms)
wait_until 60 fresh spoke-a spoke-b
r=$?
result "spokes join: fresh handshakes with spoke-a and spoke-b ($(( $(ms) - t )) ms)" $r \
	"$(wg show wg0 2>&1)" "$(tail -5 /root/work/spoke-a.log)" "$(tail -5 /root/work/spoke-b.log)"
wait_until 20 status_is '^ok: tunnel fresh \(2/2 peers fresh\), firewall applied$'
r=$?
result "StatusText follows: $(prop StatusText)" $r "$(props)"
# spoke-b -> spoke-a over the overlay, through the hub (a cluster grown by add-spoke from
# one spoke has no acl: spokes trust each other): spoke-a's kernel answers 5432 (nothing
# listens: refused). The hub's own overlay address is closed to spokes: dropped.
r5432=$(ip netns exec spoke-b timeout 5 bash -c 'exec 3<>/dev/tcp/10.88.0.11/5432' 2>&1)
r22=$(ip netns exec spoke-b timeout 3 bash -c 'exec 3<>/dev/tcp/10.88.0.1/22' 2>&1; echo "rc=$?")
grep -q 'Connection refused' <<<"$r5432" && grep -q 'rc=124' <<<"$r22"
r=$?
result "the hub forwards spoke to spoke over wg0 (spoke-b reaches spoke-a), and drops spokes reaching the hub itself" $r \
	"spoke-a:5432: $r5432" "hub:22: $r22" "$(sysctl net.ipv4.ip_forward)" "$(nft list table inet supervisor)"

# ---- systemctl reload applies a changed file live --------------------------------------------
pid=$(prop MainPID); ha=$(handshake_of spoke-a); hb=$(handshake_of spoke-b); ra=$(rx_of spoke-a); rb=$(rx_of spoke-b)
t=$(ms)
$SUP cluster add-spoke spoke-c --bundle /root/work/bundles > addc.log 2>&1 && systemctl reload supervisor.service
rc=$?
wait_until 20 sh -c '[ "$(wg show wg0 peers | wc -l)" -eq 3 ]' && wait_until 10 active
rc=$(( rc || $? ))
spoke spoke-c 13
wait_until 60 fresh spoke-c
rc=$(( rc || $? ))
[ "$rc" -eq 0 ] && [ "$(prop MainPID)" = "$pid" ] && [ "$(handshake_of spoke-a)" -ge "$ha" ] &&
	[ "$(handshake_of spoke-b)" -ge "$hb" ] && [ "$(rx_of spoke-a)" -ge "$ra" ] && [ "$(rx_of spoke-b)" -ge "$rb" ]
r=$?
result "add-spoke spoke-c + systemctl reload: live (same MainPID, back to active), spoke-c joins, spoke-a/b sessions untouched ($(( $(ms) - t )) ms)" $r \
	"pid $pid -> $(prop MainPID); handshakes a $ha -> $(handshake_of spoke-a), b $hb -> $(handshake_of spoke-b); rx a $ra -> $(rx_of spoke-a), b $rb -> $(rx_of spoke-b)" \
	"$(cat addc.log)" "$(props)" "$(journal)"
journal 100 | grep -q 'msg="configured" interface=wg0 peers_added=1 peers_removed=0 peers_updated=0'
r=$?
result "the reload was a diff: one peer added, none removed or updated" $r "$(journal 30)"
wait_until 20 status_is '^ok: tunnel fresh \(3/3 peers fresh\), firewall applied$'
r=$?
result "StatusText after the reload: $(prop StatusText)" $r "$(props)"

# ---- setup-hub.sh again: nothing changes ----------------------------------------------------
pid=$(prop MainPID); key=$(wg show wg0 public-key); sums=$(sha256sum /etc/supervisor/wg.key "$CONF" /usr/local/bin/supervisor)
n0=$(prop NRestarts)
/opt/sup/deploy/hub/setup-hub.sh --binary /opt/sup/supervisor --endpoint 192.0.2.1:51820 \
	--spokes spoke-a --bundle /root/work/bundles > setup2.log 2>&1
rc=$?
sleep 1
[ "$rc" -eq 0 ] && grep -q 'reloaded the running hub' setup2.log && [ "$(prop MainPID)" = "$pid" ] &&
	[ "$(prop NRestarts)" = "$n0" ] && [ "$(wg show wg0 public-key)" = "$key" ] &&
	[ "$(sha256sum /etc/supervisor/wg.key "$CONF" /usr/local/bin/supervisor)" = "$sums" ] && active
r=$?
result "setup-hub.sh again: same key, same file and binary, same MainPID (reloaded, not restarted)" $r \
	"rc=$rc" "$(cat setup2.log)" "pid $pid -> $(prop MainPID)" "$(props)"

# ---- a crash is restarted ------------------------------------------------------------------
pid=$(prop MainPID); n0=$(prop NRestarts)
kill -SEGV "$pid"
t=$(ms)
wait_until 40 sh -c '[ "$(systemctl show -p MainPID --value supervisor.service)" != "'"$pid"'" ] &&
	[ "$(systemctl show -p ActiveState --value supervisor.service)" = active ]'
r=$?
result "kill -SEGV: restarted (new MainPID $(prop MainPID), NRestarts $n0 -> $(prop NRestarts), active again after $(( $(ms) - t )) ms)" \
	$(( r || $(prop NRestarts) != n0 + 1 )) "$(props)" "$(journal)"
wait_until 30 status_is '^ok: tunnel fresh \(3/3 peers fresh\)'
r=$?
result "after the crash every spoke is fresh again: $(prop StatusText)" $r "$(props)" "$(wg show wg0)"

# ---- the watchdog: fed by a healthy loop, fatal to a stuck one -------------------------------
mkdir -p /etc/systemd/system/supervisor.service.d
printf '[Service]\nWatchdogSec=3\n' > /etc/systemd/system/supervisor.service.d/watchdog.conf
systemctl daemon-reload && systemctl restart supervisor.service
pid=$(prop MainPID); n0=$(prop NRestarts)
sleep 8
[ "$(prop MainPID)" = "$pid" ] && [ "$(prop NRestarts)" = "$n0" ] && active && [ "$(prop WatchdogUSec)" = 3s ]
r=$?
result "WatchdogSec=3 (a test drop-in): a healthy supervisor pings it and runs on for 8 s" $r "$(props)" "$(journal)"
kill -STOP "$pid"
t=$(ms)
wait_until 60 sh -c '[ "$(systemctl show -p MainPID --value supervisor.service)" != "'"$pid"'" ] &&
	[ "$(systemctl show -p ActiveState --value supervisor.service)" = active ]'
rc=$?
journalctl -b --no-pager -o cat -u supervisor.service | grep -q 'Watchdog timeout'
r=$?
result "a stuck loop (SIGSTOP) misses the watchdog: killed and restarted after $(( $(ms) - t )) ms" $(( rc || r )) \
	"$(props)" "$(journalctl -b --no-pager -o cat -u supervisor.service | tail -15)"
rm -f /etc/systemd/system/supervisor.service.d/watchdog.conf
systemctl daemon-reload && systemctl restart supervisor.service && wait_until 10 active

# ---- systemctl stop: clean, within TimeoutStopSec ------------------------------------------
limit=$(( $(prop TimeoutStopUSec | sed 's/s$//') ))
t=$(ms)
systemctl stop supervisor.service
took=$(( $(ms) - t ))
[ "$(prop ActiveState)" = inactive ] && [ "$(prop Result)" = success ] && [ "$(prop ExecMainStatus)" = 0 ] &&
	[ "$took" -lt $((limit * 1000)) ] && journal 50 | grep -q 'msg="exiting" status=0'
r=$?
result "systemctl stop: ${took} ms (TimeoutStopSec ${limit} s), Result=success, exit 0" $r "$(props)" "$(journal)"

# ---- a bad cluster file: exit 78, not restarted ------------------------------------------------
cp "$CONF" /root/work/cluster.good
echo 'hub = { name = "hub"; };  # a second hub group' >> "$CONF"
n0=$(prop NRestarts)
systemctl start supervisor.service > start78.log 2>&1
rc=$?
sleep 6 # RestartSec=2: a restart loop would have gone round twice
[ "$rc" -ne 0 ] && [ "$(prop ActiveState)" = failed ] && [ "$(prop Result)" = exit-code ] &&
	[ "$(prop ExecMainStatus)" = 78 ] && [ "$(prop NRestarts)" = "$n0" ] && [ "$(prop MainPID)" = 0 ]
r=$?
result "a bad cluster file: exit 78, failed (Result=exit-code), not restarted in 6 s" $r \
	"systemctl start rc=$rc" "$(props)" "$(journal)"
journal 20 | grep -q 'cluster.conf:[0-9]*:'
r=$?
result "the journal names the bad line (FILE:LINE)" $r "$(journal)"
cp /root/work/cluster.good "$CONF"

# systemd's own word on the unit: no setting it did not understand, no notification
# from a process other than the main one (a child that inherited NOTIFY_SOCKET).
complaints=$(journalctl -b --no-pager -o cat _PID=1 | grep -i -E 'supervisor\.service.*(unknown|ignoring|invalid|not permitted|only permitted)|notification message from PID')
[ -z "$complaints" ]
r=$?
result "systemd logged no complaint about the unit or its notifications" $r "$complaints"
DONE=1
