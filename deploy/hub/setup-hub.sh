#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Set up (or update) the hub on Ubuntu 24.04, as root. Idempotent: running
# it again never makes a new key, never overwrites a cluster file that
# exists, and reloads a running hub instead of restarting it.
#
#   setup-hub.sh --endpoint PUBLIC_IP:51820 [--ssh-from CIDR]... [--binary PATH]
#
# First run: installs packages, the binary and the unit, runs
# `supervisor cluster init` (the hub's key pair and a cluster file with no
# spokes yet), checks the file, and starts the service. Add spokes with
# `supervisor cluster add-spoke NAME` (README, "Deployment").
set -euo pipefail

endpoint="" binary="" ssh_from=()
while [ $# -gt 0 ]; do
	case "$1" in
	--endpoint) endpoint=$2; shift 2 ;;
	--ssh-from) ssh_from+=("$2"); shift 2 ;;
	--binary) binary=$2; shift 2 ;;
	-h|--help) sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "setup-hub: unknown option $1" >&2; exit 64 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "setup-hub: run as root" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
conf=/etc/supervisor/cluster.conf

echo "setup-hub: packages"
export DEBIAN_FRONTEND=noninteractive
need=()
for p in nftables iproute2 wireguard-tools libconfig9 libsodium23 libpq5 libmnl0 libnftnl11 \
	libmicrohttpd12t64 libjansson4 curl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

echo "setup-hub: binary and unit"
[ -n "$binary" ] || binary=$(command -v supervisor || true)
[ -x "$binary" ] || { echo "setup-hub: give --binary PATH (the supervisor built for this machine)" >&2; exit 1; }
if [ "$(readlink -f "$binary")" != /usr/local/bin/supervisor ]; then
	install -m 0755 "$binary" /usr/local/bin/supervisor.new
	mv -f /usr/local/bin/supervisor.new /usr/local/bin/supervisor
fi
install -m 0644 "$here/supervisor.service" /etc/systemd/system/supervisor.service
install -d -m 0755 /etc/supervisor

if [ ! -f "$conf" ]; then
	[ -n "$endpoint" ] || { echo "setup-hub: first run: give --endpoint PUBLIC_IP:51820" >&2; exit 64; }
	args=(cluster init -c "$conf" --endpoint "$endpoint")
	for c in "${ssh_from[@]}"; do args+=(--ssh-from "$c"); done
	/usr/local/bin/supervisor "${args[@]}"
else
	echo "setup-hub: keeping $conf and the hub key as they are"
fi
/usr/local/bin/supervisor check-config -c "$conf" -n hub >/dev/null

systemctl daemon-reload
systemctl enable supervisor.service >/dev/null
if systemctl is-active --quiet supervisor.service; then
	systemctl reload supervisor.service   # live: no peer's session drops
	echo "setup-hub: reloaded the running hub"
else
	systemctl start supervisor.service
	echo "setup-hub: started"
fi
/usr/local/bin/supervisor ctl tunnel || true
