#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Virtual machines for the tests that need a real kernel or a real init:
# Debian's cloud kernel (it ships wireguard.ko) booted by QEMU under TCG
# (no KVM is needed) with a Debian bookworm root filesystem, made from the
# archive by mmdebstrap, as its initramfs. The VM has no network card and
# no disk: what a test needs goes into the initramfs, what it reports comes
# back on the serial console.
#
#   vm.sh kernel          fetch the kernel package; print the path of vmlinuz
#   vm.sh rootfs          build the root filesystem (cached); print its cpio
#   vm.sh run [OPTIONS] [SRC:DEST]...
#                         boot, with each SRC (a file or a directory) copied
#                         to DEST in the VM's root; print the console; exit
#                         with the status the guest reported
#     --init PATH         the VM's PID 1 (default /sbin/vm-init: mounts /proc,
#                         /sys, /dev, loads nothing, runs /vm/test with bash,
#                         reports its exit status and powers off; use
#                         /lib/systemd/systemd to boot systemd)
#     --timeout SECONDS   kill QEMU after this long (default 600): exit 124
#     --mem MIB           memory (default 2048)
#
# A guest reports its status by printing "VM-EXIT: N" on the console
# (/dev/ttyS0); vm-init does, a systemd-booted test's driver must. No such
# line (a panic, a hang, a lost console) is a failure, exit 125.
#
# Environment: VM_CACHE (default /var/cache/sup-vm: the kernel package and
# the root filesystem, rebuilt when the package list below changes),
# VM_MIRROR (default http://deb.debian.org/debian).
set -u
CACHE=${VM_CACHE:-/var/cache/sup-vm}
MIRROR=${VM_MIRROR:-http://deb.debian.org/debian}
# What the VM's root filesystem holds: systemd as an init, the runtime of
# the supervisor (as deploy/hub/setup-hub.sh installs it on Debian 12) and
# the tools the tests use (python3 for tests/lab/helpers.sh's JSON queries,
# socat for TCP over the overlay). No Postgres: the VM tests are about the
# kernel's WireGuard and systemd.
PACKAGES="systemd systemd-sysv dbus kmod procps iproute2 nftables wireguard-tools curl jq
	libconfig9 libsodium23 libpq5 libmnl0 libnftnl11 libmicrohttpd12 libjansson4 libsystemd0
	libcurl4 util-linux coreutils bash python3 socat"
# Kernel module trees the tests need (wireguard, veth, nf_tables and their
# crypto and library dependencies); the rest of the 91 MB is left out.
MODULE_DIRS="kernel/net kernel/crypto kernel/lib kernel/arch kernel/drivers/net"

die() { echo "vm: $*" >&2; exit 1; }

need() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap --mode=root, device nodes)"
	for t in "$@"; do
		command -v "$t" >/dev/null || die "$t is missing (run scripts/setup)"
	done
}

# kernel_pkg: the versioned package linux-image-cloud-amd64 depends on.
kernel_pkg() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

cmd_kernel() {
	need apt-get dpkg-deb
	local pkg dir
	pkg=$(kernel_pkg)
	[ -n "$pkg" ] || die "apt-cache knows no linux-image-cloud-amd64 (apt-get update?)"
	dir=$CACHE/kernel/$pkg
	if [ ! -f "$dir/.done" ]; then
		rm -rf "$dir" && mkdir -p "$dir/deb" || die "cannot make $dir"
		(cd "$dir/deb" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
		dpkg-deb -x "$dir"/deb/*.deb "$dir/x" || die "cannot unpack $pkg"
		touch "$dir/.done"
	fi
	ls "$dir"/x/boot/vmlinuz-* | head -1
}

# kernel_root: the unpacked kernel package of cmd_kernel.
kernel_root() { echo "$CACHE/kernel/$(kernel_pkg)/x"; }

cmd_rootfs() {
	need mmdebstrap cpio
	cmd_kernel >/dev/null
	local kroot key out tree ver
	kroot=$(kernel_root)
	ver=$(ls "$kroot/lib/modules")
	key=$(printf '%s\n' "$PACKAGES" "$MODULE_DIRS" "$ver" "$(sed -n '/^vm_init()/,/^}/p' "$0")" |
		sha256sum | cut -c1-16)
	out=$CACHE/rootfs-$key.cpio
	if [ ! -f "$out" ]; then
		tree=$CACHE/rootfs-$key.tree
		rm -rf "$tree" "$CACHE"/rootfs-*.cpio "$CACHE"/rootfs-*.tree
		mkdir -p "$CACHE"
		mmdebstrap --quiet --variant=minbase --mode=root \
			--include="$(echo $PACKAGES | tr ' ' ',')" \
			--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			bookworm "$tree" "$MIRROR" >&2 || die "mmdebstrap failed"
		for d in $MODULE_DIRS; do
			mkdir -p "$tree/lib/modules/$ver/$(dirname "$d")"
			cp -a "$kroot/lib/modules/$ver/$d" "$tree/lib/modules/$ver/$d"
		done
		cp "$kroot/lib/modules/$ver"/modules.order "$kroot/lib/modules/$ver"/modules.builtin* \
			"$tree/lib/modules/$ver/"
		chroot "$tree" depmod "$ver" || die "depmod failed"
		# systemd on a console-only VM: no getty, no waiting for udev's devices
		for u in getty@tty1.service serial-getty@ttyS0.service systemd-udevd.service \
			systemd-udev-trigger.service apt-daily.timer apt-daily-upgrade.timer; do
			ln -sf /dev/null "$tree/etc/systemd/system/$u"
		done
		echo vm > "$tree/etc/hostname"
		vm_init > "$tree/sbin/vm-init"
		chmod 755 "$tree/sbin/vm-init"
		(cd "$tree" && find . -print0 | cpio --null -o -H newc --quiet) > "$out.tmp" ||
			die "cpio failed"
		mv "$out.tmp" "$out"
		rm -rf "$tree"
	fi
	echo "$out"
}

# vm_init: the default PID 1 of a test VM (a script, written into the rootfs).
vm_init() {
	cat <<-'EOF'
	#!/bin/bash
	# PID 1 of a test VM (tests/vm/vm.sh): mount the kernel's file systems,
	# run /vm/test, report its status on the console, power off.
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev 2>/dev/null
	mkdir -p /dev/pts /dev/shm /run /tmp
	mount -t devpts devpts /dev/pts
	mount -t tmpfs tmpfs /run
	mount -t tmpfs tmpfs /tmp
	mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
	# what udev and a login would give a test: /dev/fd for <(...), a PATH
	ln -sf /proc/self/fd /dev/fd
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	ip link set lo up
	exec </dev/null >/dev/ttyS0 2>&1
	echo "vm-init: kernel $(uname -r), $(nproc) CPUs"
	bash /vm/test
	echo "VM-EXIT: $?"
	sync
	echo o > /proc/sysrq-trigger
	sleep 10
	EOF
}

cmd_run() {
	need qemu-system-x86_64 cpio timeout
	local init=/sbin/vm-init timeout=600 mem=2048
	while [ $# -gt 0 ]; do
		case $1 in
		--init) init=$2; shift 2 ;;
		--timeout) timeout=$2; shift 2 ;;
		--mem) mem=$2; shift 2 ;;
		*) break ;;
		esac
	done
	local vmlinuz base work rc
	vmlinuz=$(cmd_kernel) || exit 1
	base=$(cmd_rootfs) || exit 1
	work=$(mktemp -d /tmp/sup-vm.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	mkdir "$work/extra"
	for pair in "$@"; do
		local src=${pair%%:*} dst=${pair#*:}
		[ -e "$src" ] || die "no such file: $src"
		mkdir -p "$work/extra$(dirname "$dst")"
		cp -a "$src" "$work/extra$dst"
	done
	# The kernel unpacks concatenated cpio archives in order: later files win.
	(cd "$work/extra" && find . -mindepth 1 -print0 | cpio --null -o -H newc --quiet) > "$work/extra.cpio"
	cat "$base" "$work/extra.cpio" > "$work/initrd"
	timeout -k 5 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$mem" \
		-display none -no-reboot -nic none -monitor none -serial stdio \
		-kernel "$vmlinuz" -initrd "$work/initrd" \
		-append "console=ttyS0 rdinit=$init panic=-1 quiet loglevel=3 systemd.show_status=0" \
		</dev/null | tee "$work/console" | tr -d '\r'
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 124 ] && { echo "vm: timed out after ${timeout}s" >&2; return 124; }
	local status
	status=$(tr -d '\r' < "$work/console" | sed -n 's/^VM-EXIT: \([0-9]*\)$/\1/p' | tail -1)
	[ -n "$status" ] || { echo "vm: the guest reported no status (qemu exit $rc)" >&2; return 125; }
	return "$status"
}

# lab_lock: building the root filesystem and running QEMU under TCG take
# both cores; the lab's end-to-end tests measure timings. One at a time: take
# the lab's lock (tests/lab/helpers.sh), held until this script exits.
lab_lock() {
	exec 9>>/run/sup-lab.lock
	flock 9
}

case "${1:-}" in
kernel) cmd_kernel ;;
rootfs) lab_lock; cmd_rootfs ;;
run) shift; lab_lock; cmd_run "$@" ;;
*) sed -n '3,28p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
