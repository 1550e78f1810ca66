# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# The lab's image mode, sourced by lab.sh: with LAB_IMAGE=IMAGE (a name or ID
# in buildah's store, see deploy/spoke/build-image.sh), the spokes run from
# the spoke image's root filesystem as Docker runs their compose service
# (deploy/spoke/docker-compose.yml, or LAB_COMPOSE); the hub stays a process
# of this machine (systemd runs it in reality).
#
# `up` makes one buildah container of IMAGE (named after the lab directory)
# and mounts it: the read-only lower layer of every spoke. A spoke's
# writable layer is LAB/NODE/upper, the overlay mounted at LAB/NODE/root in
# this mount namespace; it outlives stop/start, as a container's does.
# Starting a spoke (image_boot.sh, as PID 1 of new PID, mount and UTS
# namespaces in the node's network namespace): /proc, /sys, /dev (with
# compose's devices), compose's named volumes (LAB/NODE/volumes/NAME, filled
# from the image on first use), the cluster file at compose's configs
# target, then exactly the image's ENTRYPOINT+CMD with Docker's default
# capabilities plus compose's cap_add and only the environment compose gives
# (image_spec.py). Not modelled: seccomp and AppArmor profiles, cgroups,
# restart policies, port publishing (the spoke's eth0 is its public address).
# STORAGE_DRIVER (default vfs) must be the one the image was built with.

IMAGE_COMPOSE=${LAB_COMPOSE:-$ROOT/deploy/spoke/docker-compose.yml}
IMAGE_DRIVER=${STORAGE_DRIVER:-vfs}
IMAGE_CTR=sup-lab-$(basename "$LAB" | tr -c 'a-zA-Z0-9_.\n-' _)
IMAGE_DIR=$(dirname "${BASH_SOURCE[0]}")

bah() { buildah --storage-driver "$IMAGE_DRIVER" "$@"; }
image_mode() { [ -n "${LAB_IMAGE:-}" ]; }
# image_node NODE: NODE runs from the image (its lab directory says so, for
# commands that come after `up`, with or without LAB_IMAGE set)
image_node() { [ "$1" != hub ] && [ -f "$LAB/image.json" ]; }

image_up() {
	command -v buildah >/dev/null || die "LAB_IMAGE needs buildah (scripts/setup installs it)"
	[ -z "${LAB_FAKETIME_NODES:-}" ] || die "LAB_FAKETIME_NODES does not work with LAB_IMAGE"
	bah inspect --type image "$LAB_IMAGE" > "$LAB/image.json.tmp" 2>/dev/null ||
		die "no image $LAB_IMAGE in buildah's $IMAGE_DRIVER store (deploy/spoke/build-image.sh)"
	bah from --quiet --pull=never --name "$IMAGE_CTR" "$LAB_IMAGE" >/dev/null || die "buildah from $LAB_IMAGE failed"
	bah mount "$IMAGE_CTR" > "$LAB/image.rootfs" || die "buildah mount $IMAGE_CTR failed"
	mv "$LAB/image.json.tmp" "$LAB/image.json"
}

# image_down: after the overlays are gone (cmd_down), the buildah container,
# also when an interrupted run left it
image_down() {
	command -v buildah >/dev/null || return 0
	bah containers --noheading --format '{{.ContainerName}}' 2>/dev/null | grep -qx "$IMAGE_CTR" || return 0
	bah rm "$IMAGE_CTR" >/dev/null 2>&1 || echo "lab: cannot remove buildah container $IMAGE_CTR" >&2
}

image_start() {
	local n=$1 d=$LAB/$1 v target vol
	mkdir -p "$d/upper" "$d/work" "$d/root" "$d/volumes"
	mountpoint -q "$d/root" ||
		mount -t overlay overlay -o "lowerdir=$(cat "$LAB/image.rootfs"),upperdir=$d/upper,workdir=$d/work" "$d/root" ||
		die "$n: cannot mount its overlay"
	# the service's container; the secrets it interpolates come as the CVM's
	# encrypted environment would give them
	WG_PRIVATE_KEY=$(cat "$d/etc/wg.key") REPLICATION_PASSWORD=$(cat "$d/etc/replication.pass") \
		python3 "$IMAGE_DIR/image_spec.py" spec "$LAB/image.json" "$IMAGE_COMPOSE" "$n" "$d/env" > "$d/spec.sh" ||
		die "$n: no container from $IMAGE_COMPOSE"
	# shellcheck source=/dev/null
	. "$d/spec.sh"
	# a named volume starts as a copy of the image's content at its target
	for v in $C_VOLUMES; do
		target=${v#*:} vol=$d/volumes/${v%%:*}
		[ -d "$vol" ] && continue
		mkdir -p "$vol"
		if [ -d "$d/root$target" ]; then
			cp -a "$d/root$target/." "$vol/"
			chown --reference="$d/root$target" "$vol"
			chmod --reference="$d/root$target" "$vol"
		fi
	done
	# Docker's /etc/hosts and /etc/hostname (a test's own hosts file wins: lab.sh)
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n' \
		"${PUB[$n]:-127.0.1.1}" "$C_HOSTNAME" > "$d/hosts.docker"
	echo "$C_HOSTNAME" > "$d/hostname"
	ip netns exec "$n" unshare --pid --fork --mount --uts --propagation private \
		bash "$IMAGE_DIR/image_boot.sh" "$d" >>"$d/supervisor.log" 2>&1 9>&- &
	echo $! > "$d/outer.pid"
}

# image_ready NODE: its control socket answers (a stale one from a killed
# run stays in the writable layer, as in a container, until PID 1 replaces it)
image_ready() {
	socat -u OPEN:/dev/null "UNIX-CONNECT:$LAB/$1/root/run/supervisor/ctl.sock" 2>/dev/null
}

# image_stop NODE TERM|KILL: as `docker stop` (compose's stop_signal, then
# SIGKILL after stop_grace_period) or `docker kill`
image_stop() {
	local n=$1 d=$LAB/$1 pid outer grace sig
	outer=$(cat "$d/outer.pid" 2>/dev/null) || return 0
	# shellcheck source=/dev/null
	. "$d/spec.sh"
	sig=$C_STOPSIGNAL grace=$C_GRACE
	[ "$2" = KILL ] && sig=SIGKILL grace=0
	pid=$(sup_pid "$n")
	[ -n "$pid" ] && kill -s "${sig#SIG}" "$pid" 2>/dev/null
	for _ in $(seq "$(( ${grace%.*} * 10 ))"); do
		kill -0 "$outer" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$outer" 2>/dev/null; then
		[ "$2" = KILL ] || echo "lab: $n did not stop within its ${grace} s grace period: SIGKILL" >> "$d/supervisor.log"
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$outer" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$outer" 2>/dev/null
	fi
	rm -f "$d/outer.pid"
}

# image_exec NODE CMD...: as `docker exec`: the node's namespaces and root
image_exec() {
	local pid
	pid=$(sup_pid "$1") && [ -n "$pid" ] || die "$1 is not running"
	shift
	nsenter -t "$pid" --mount --net --pid --uts --root --wd -- "$@"
}

# image_entrypoint: the image's own binary (ENTRYPOINT[0]), for `lab.sh ctl`
image_entrypoint() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=(d.get("Docker") or {}).get("config") or d["OCIv1"]["config"]; print(c["Entrypoint"][0])' "$LAB/image.json"
}
