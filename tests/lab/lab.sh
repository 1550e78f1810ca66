#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The lab (design.md §5): hub and spokes as network namespaces on this
# machine, each running `supervisor run` as PID 1 of its own PID and mount
# namespace, with private bind mounts over the paths nodes must not share.
#
#   lab.sh up            clear leftovers, build the network, start every node
#   lab.sh down          stop everything; no namespace, process, mount or link left
#   lab.sh exec NODE CMD run CMD inside NODE (its network, mounts and PIDs)
#   lab.sh ctl NODE ARGS supervisor ctl inside NODE
#   lab.sh start|stop|kill NODE   one node's supervisor (SIGTERM / SIGKILL)
#   lab.sh conf          print the path of the cluster file
#   lab.sh add-node NODE PUBLIC_IP   a new namespace on the bridge, for a spoke
#                        the cluster file gained (NODE's etc/ gets the cluster
#                        file and the replication password; put its key there)
#
# Public side: namespace "inet" holds bridge br0 (192.0.2.254/24) that every
# node's eth0 joins: hub 192.0.2.1, spokes 192.0.2.11-13. The bridge drops
# spoke-to-spoke traffic, as the spokes' NATs would: spokes reach each
# other only through the hub. Overlay: 10.88.0.0/24, hub .1, spokes .11-13.
#
# Environment: LAB_DIR (state, default /tmp/sup-lab), SUP (the binary),
# LAB_FRESH (fresh_handshake, default 180), LAB_KEEPALIVE (default 25),
# LAB_EXTRA (text appended to the cluster file), LAB_SKIP (nodes `up` does
# not start, e.g. "hub" to hold the hub down at start-up), LAB_FAKETIME_NODES
# (nodes whose supervisor runs under libfaketime: write an offset such as
# "-3h" to NODE's faketime file to step its wall clock), LAB_HUB_ENDPOINT
# (the hub's endpoint in the cluster file; a name needs LAB_DIR/NODE/hosts,
# which `start` bind-mounts over the node's /etc/hosts), LAB_IMAGE (the spokes
# run from this spoke image as its compose service makes them, LAB_COMPOSE:
# tests/lab/image.sh; their cluster file reads the key and the password from
# the environment, as on Dstack).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${LAB_DIR:-/tmp/sup-lab}
SUP=${SUP:-$ROOT/build/supervisor}
NODES="hub spoke-a spoke-b spoke-c"
EXTRA_NODES="spoke-d spoke-e" # add-node may create these; down always clears them
declare -A PUB=([hub]=192.0.2.1 [spoke-a]=192.0.2.11 [spoke-b]=192.0.2.12 [spoke-c]=192.0.2.13)
declare -A OVL=([hub]=10.88.0.1 [spoke-a]=10.88.0.11 [spoke-b]=10.88.0.12 [spoke-c]=10.88.0.13)
declare -A ROLE=([spoke-a]=primary [spoke-b]=replica [spoke-c]=replica)
# Paths every node has privately (wireguard-go's socket path is global).
MOUNTS="etc:/etc/supervisor run:/run/supervisor wireguard:/var/run/wireguard backups:/var/backups pgdata:/var/lib/postgresql state:/var/lib/supervisor"

FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
die() { echo "lab: $*" >&2; exit 1; }
# shellcheck source=tests/lab/image.sh
. "$ROOT/tests/lab/image.sh"

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root: it creates network, PID and mount namespaces"
	for t in ip unshare nsenter nft; do
		command -v "$t" >/dev/null || die "$t is missing (run scripts/setup)"
	done
	[ -x "$SUP" ] || die "no supervisor binary at $SUP (build first)"
}

# sup_pid NODE: the node's supervisor (PID 1 inside) as seen from here.
sup_pid() {
	local outer
	outer=$(cat "$LAB/$1/outer.pid" 2>/dev/null) || return 1
	# from an image: PID 1 is whatever its ENTRYPOINT is
	if image_node "$1"; then pgrep -P "$outer" | head -1; return; fi
	pgrep -P "$outer" -x supervisor | head -1
}

write_conf() {
	local conf=$LAB/cluster.conf
	{
		echo "cluster = { network = \"10.88.0.0/24\"; fresh_handshake = ${LAB_FRESH:-180}; keepalive = ${LAB_KEEPALIVE:-25}; };"
		echo "hub = { name = \"hub\"; overlay_ip = \"10.88.0.1\"; endpoint = \"${LAB_HUB_ENDPOINT:-192.0.2.1:51820}\";"
		echo "        public_key = \"$(cat "$LAB/hub/pub")\";$(image_mode && echo ' keys = { private_key_file = "/etc/supervisor/wg.key"; };') };"
		echo "spokes = ("
		local sep=""
		for n in spoke-a spoke-b spoke-c; do
			local up=""
			[ "${ROLE[$n]}" = replica ] && up=" upstream = \"spoke-a\";"
			printf '%s  { name = "%s"; overlay_ip = "%s"; public_key = "%s";\n    postgres = "%s";%s }' \
				"$sep" "$n" "${OVL[$n]}" "$(cat "$LAB/$n/pub")" "${ROLE[$n]}" "$up"
			sep=$',\n'
		done
		echo
		echo ");"
		if image_mode; then
			# as on Dstack; the hub keeps its key file (its own group overrides)
			echo "keys = { private_key_env = \"WG_PRIVATE_KEY\"; };"
			echo "postgres = { password_env = \"REPLICATION_PASSWORD\"; };"
		else
			echo "keys = { private_key_file = \"/etc/supervisor/wg.key\"; };"
		fi
		echo "${LAB_EXTRA:-}"
	} > "$conf"
	for n in $NODES; do cp "$conf" "$LAB/$n/etc/cluster.conf"; done
}

net_up() {
	ip netns add inet
	ip -n inet link set lo up
	ip -n inet link add br0 type bridge
	ip -n inet addr add 192.0.2.254/24 dev br0
	ip -n inet link set br0 up
	ip netns exec inet nft -f - <<-'EOF'
	table bridge lab {
		chain forward {
			type filter hook forward priority 0; policy accept;
			ip saddr 192.0.2.11-192.0.2.19 ip daddr 192.0.2.11-192.0.2.19 drop
		}
	}
	EOF
	for n in $NODES; do attach_node "$n" "${PUB[$n]}"; done
}

# attach_node NODE IP: a namespace whose eth0 is on the public bridge.
attach_node() {
	ip netns add "$1"
	ip -n "$1" link set lo up
	ip -n inet link add "v-$1" type veth peer name eth0 netns "$1"
	ip -n inet link set "v-$1" master br0 up
	ip -n "$1" addr add "$2/24" dev eth0
	ip -n "$1" link set eth0 up
}

start_node() {
	local n=$1 d=$LAB/$1 binds=""
	if image_node "$n"; then image_start "$n"; return; fi
	for m in $MOUNTS; do
		local src=${m%%:*} dst=${m#*:}
		mkdir -p "$d/$src" "$dst"
		binds="$binds mount --bind $d/$src $dst &&"
	done
	# a node's own /etc/hosts, when the test wrote one (rewrite it in place: a bind mount holds the inode)
	[ -f "$d/hosts" ] && binds="$binds mount --bind $d/hosts /etc/hosts &&"
	chmod 700 "$d/run"
	rm -f "$d/run/ctl.sock"
	local wrap=""
	case " ${LAB_FAKETIME_NODES:-} " in *" $n "*)
		# the supervisor's wall clock steps when $d/faketime changes ("-3h");
		# its monotonic clock does not, as on a VM whose clock is stepped
		[ -f "$d/faketime" ] || echo "+0" > "$d/faketime"
		# (an ASan build wants its runtime first; libfaketime comes first here)
		wrap="env LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE=$d/faketime FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1"
		wrap="$wrap ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	esac
	ip netns exec "$n" unshare --pid --fork --mount --mount-proc --propagation private \
		/bin/sh -c "$binds exec $wrap $SUP run -c /etc/supervisor/cluster.conf -n $n" \
		>>"$d/supervisor.log" 2>&1 9>&- &
	echo $! > "$d/outer.pid"
}

wait_sockets() {
	for n in "$@"; do
		for _ in $(seq 100); do
			[ -S "$LAB/$n/run/ctl.sock" ] && continue 2
			image_node "$n" && image_ready "$n" && continue 2
			sleep 0.05
		done
		die "$n did not start; see $LAB/$n/supervisor.log"
	done
}

stop_node() { # stop_node NODE SIGNAL
	local pid outer
	if image_node "$1"; then image_stop "$@"; return; fi
	outer=$(cat "$LAB/$1/outer.pid" 2>/dev/null) || return 0
	pid=$(sup_pid "$1")
	[ -n "$pid" ] && kill "-$2" "$pid" 2>/dev/null
	# up to 40 s: above the default shutdown budget (25 s), so that a slow but
	# orderly stop is never cut short here
	for _ in $(seq 400); do
		kill -0 "$outer" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$outer" 2>/dev/null
	rm -f "$LAB/$1/outer.pid"
}

cmd_down() {
	for n in $NODES $EXTRA_NODES; do
		[ -f "$LAB/$n/outer.pid" ] && stop_node "$n" TERM
	done
	for ns in $NODES $EXTRA_NODES inet; do
		if ip netns list | grep -qw "^$ns"; then
			ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
			ip netns del "$ns"
		fi
	done
	# a test's own mounts under the lab (a loop-mounted disk), left by an interrupted run
	# (and the spokes' overlays, in image mode)
	findmnt -rn -o TARGET 2>/dev/null | grep "^$LAB/" | sort -r | xargs -r -n1 umount -l
	image_down
	rm -rf "$LAB"
}

cmd_up() {
	need_root
	cmd_down
	mkdir -p "$LAB"
	chmod 700 "$LAB"
	if image_mode; then image_up; fi
	umask 077
	for n in $NODES; do
		mkdir -p "$LAB/$n/etc"
		"$SUP" genkey > "$LAB/$n/etc/wg.key"
		"$SUP" pubkey < "$LAB/$n/etc/wg.key" > "$LAB/$n/pub"
	done
	# One replication password for the cluster, in each node's own 0600 file.
	pass=$("$SUP" genkey | tr -d '=+/')
	for n in $NODES; do printf '%s\n' "$pass" > "$LAB/$n/etc/replication.pass"; done
	umask 022
	write_conf
	net_up
	started=""
	for n in $NODES; do
		case " ${LAB_SKIP:-} " in *" $n "*) continue ;; esac
		start_node "$n"
		started="$started $n"
	done
	wait_sockets $started
	echo "lab: up ($NODES); state in $LAB"
}

cmd_add_node() {
	local n=$1 ip=$2
	case " $EXTRA_NODES " in *" $n "*) ;; *) die "add-node: NODE is one of: $EXTRA_NODES" ;; esac
	attach_node "$n" "$ip"
	mkdir -p "$LAB/$n/etc"
	install -m 0600 "$LAB/spoke-a/etc/replication.pass" "$LAB/$n/etc/replication.pass"
	cp "$LAB/cluster.conf" "$LAB/$n/etc/cluster.conf"
}

cmd_exec() {
	local n=$1; shift
	local pid
	if image_node "$n"; then image_exec "$n" "$@"; return; fi
	pid=$(sup_pid "$n") || die "$n is not running"
	[ -n "$pid" ] || die "$n is not running"
	nsenter -t "$pid" --mount --net --pid -- "$@"
}

case "${1:-}" in
up) cmd_up ;;
down) need_root; cmd_down ;;
exec) shift; [ $# -ge 2 ] || die "usage: lab.sh exec NODE CMD..."; cmd_exec "$@" ;;
ctl) shift; [ $# -ge 2 ] || die "usage: lab.sh ctl NODE ARGS..."; n=$1; shift
	if image_node "$n"; then cmd_exec "$n" "$(image_entrypoint)" ctl "$@"; else cmd_exec "$n" "$SUP" ctl "$@"; fi ;;
start) need_root; start_node "$2"; wait_sockets "$2" ;;
stop) stop_node "$2" TERM ;;
kill) stop_node "$2" KILL ;;
pid) sup_pid "$2" ;;
conf) echo "$LAB/cluster.conf" ;;
add-node) need_root; cmd_add_node "$2" "$3" ;;
*) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
