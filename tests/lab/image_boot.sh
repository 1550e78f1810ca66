#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A spoke's container, for the lab's image mode (tests/lab/image.sh): run as
# PID 1 of new PID, mount and UTS namespaces inside the node's network
# namespace, with the node's overlay mounted at DIR/root and its settings in
# DIR/spec.sh (image_spec.py). Sets the filesystem up as Docker does, then
# becomes the image's ENTRYPOINT+CMD: same PID, Docker's default
# capabilities plus compose's cap_add (the bounding set; nothing inheritable),
# exactly compose's environment, chrooted into the image.
#
#   image_boot.sh DIR
set -eu
d=$1 r=$1/root
# shellcheck source=/dev/null
. "$d/spec.sh"
fail() { echo "image_boot: $*" >&2; exit 1; }
hostname "$C_HOSTNAME"
umask 022

# /proc of this PID namespace, with Docker's read-only and masked paths
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
for p in bus fs irq sys sysrq-trigger; do
	[ -e "$r/proc/$p" ] || continue
	mount --bind "$r/proc/$p" "$r/proc/$p"
	mount -o remount,bind,ro "$r/proc/$p"
done
for p in kcore keys latency_stats timer_list sched_debug; do
	[ -e "$r/proc/$p" ] && mount --bind /dev/null "$r/proc/$p"
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"

# /dev: Docker's tmpfs, nodes, ptys, 64 MB of /dev/shm (its default shm_size)
mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs "$r/dev"
node() { mknod -m "$1" "$r/dev/$2" c "$3" "$4"; }
node 666 null 1 3; node 666 zero 1 5; node 666 full 1 7
node 666 random 1 8; node 666 urandom 1 9; node 666 tty 5 0
mkdir -p "$r/dev/pts" "$r/dev/shm" "$r/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$r/dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue "$r/dev/mqueue"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"; ln -s /proc/self/fd/1 "$r/dev/stdout"; ln -s /proc/self/fd/2 "$r/dev/stderr"
# compose's devices: HOST:CONTAINER, the same device number
for dev in $C_DEVICES; do
	host=${dev%%:*} ctr=${dev#*:}
	[ -c "$host" ] || fail "device $host is not a character device here"
	mkdir -p "$r$(dirname "$ctr")"
	mknod -m "$(stat -c %a "$host")" "$r$ctr" c "$((16#$(stat -c %t "$host")))" "$((16#$(stat -c %T "$host")))"
done

# compose's named volumes, and its configs (read-only; here "cluster" is the lab's file)
for v in $C_VOLUMES; do
	mkdir -p "$r${v#*:}"
	mount --bind "$d/volumes/${v%%:*}" "$r${v#*:}"
done
for c in $C_CONFIGS; do
	case ${c%%:*} in
	cluster) src=$d/etc/cluster.conf ;;
	*) fail "config ${c%%:*}: the lab has only the cluster file" ;;
	esac
	dst=$r${c#*:}
	mkdir -p "$(dirname "$dst")"
	[ -e "$dst" ] || : > "$dst"
	mount --bind "$src" "$dst"
	mount -o remount,bind,ro "$dst"
done
hosts=$d/hosts.docker
[ -f "$d/hosts" ] && hosts=$d/hosts
for f in "$hosts:/etc/hosts" "$d/hostname:/etc/hostname"; do
	[ -e "$r${f#*:}" ] || : > "$r${f#*:}"
	mount --bind "${f%%:*}" "$r${f#*:}"
done

exec setpriv --bounding-set "$C_BOUNDING" --inh-caps -all -- \
	python3 "$(dirname "$0")/image_spec.py" exec "$r" "$C_WORKDIR" "$d/env" "${C_ARGV[@]}"
