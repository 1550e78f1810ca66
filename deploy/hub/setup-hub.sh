#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Set up (or update) the hub on Debian 12 or Ubuntu 24.04, as root.
# Idempotent: running it again never makes a new key, never overwrites a
# cluster file that exists, and reloads a running hub instead of
# restarting it (it restarts only when the binary or the unit changed).
#
#   setup-hub.sh --endpoint PUBLIC_IP:51820 --spokes A,B,C [--ssh-from CIDR]...
#                [--bundle DIR] [--binary PATH]
#
# First run: installs packages, the binary and the unit, runs `supervisor
# cluster init` (the hub's key pair, the replication password, a cluster
# file whose first spoke is the primary, and a bundle per spoke in DIR,
# default ./spoke-bundles), checks the file, and starts the service. Later
# spokes: `supervisor cluster add-spoke NAME`, then `systemctl reload
# supervisor` (README, "Deployment").
set -euo pipefail

endpoint="" binary="" spokes="" bundle="" ssh_from=()
while [ $# -gt 0 ]; do
	case "$1" in
	--endpoint) endpoint=$2; shift 2 ;;
	--spokes) spokes=$2; shift 2 ;;
	--ssh-from) ssh_from+=("$2"); shift 2 ;;
	--bundle) bundle=$2; shift 2 ;;
	--binary) binary=$2; shift 2 ;;
	-h|--help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "setup-hub: unknown option $1" >&2; exit 64 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "setup-hub: run as root" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
conf=/etc/supervisor/cluster.conf

# A cluster file needs its primary, so the first run names the spokes too.
if [ ! -f "$conf" ] && { [ -z "$endpoint" ] || [ -z "$spokes" ]; }; then
	echo "setup-hub: first run: give --endpoint PUBLIC_IP:51820 and --spokes A,B,C (the first is the primary)" >&2
	exit 64
fi

echo "setup-hub: packages"
# What the binary links, and what runs beside it. Ubuntu 24.04 renamed some
# libraries in the 64-bit time_t transition (libmicrohttpd12t64); Debian 12
# has the plain names. Each is taken under the name the archive offers.
packages=(nftables iproute2 wireguard-tools curl libsystemd0
	libconfig9 libsodium23 libpq5 libmnl0 libnftnl11 libmicrohttpd12 libjansson4 libcurl4)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
offered() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }
export DEBIAN_FRONTEND=noninteractive
need=()
for p in "${packages[@]}"; do
	installed "$p" || installed "${p}t64" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	pick=()
	for p in "${need[@]}"; do
		if offered "${p}t64"; then pick+=("${p}t64"); else pick+=("$p"); fi
	done
	echo "setup-hub: installing ${pick[*]}"
	apt-get install -y -qq --no-install-recommends "${pick[@]}"
fi

echo "setup-hub: binary and unit"
[ -n "$binary" ] || binary=$(command -v supervisor || true)
[ -x "$binary" ] || { echo "setup-hub: give --binary PATH (the supervisor built for this machine)" >&2; exit 1; }
changed=()
if ! cmp -s "$binary" /usr/local/bin/supervisor; then
	install -m 0755 "$binary" /usr/local/bin/supervisor.new
	mv -f /usr/local/bin/supervisor.new /usr/local/bin/supervisor
	changed+=(binary)
fi
if ! cmp -s "$here/supervisor.service" /etc/systemd/system/supervisor.service; then
	install -m 0644 "$here/supervisor.service" /etc/systemd/system/supervisor.service
	changed+=(unit)
fi
install -d -m 0755 /etc/supervisor

if [ ! -f "$conf" ]; then
	args=(cluster init -c "$conf" --endpoint "$endpoint" --spokes "$spokes")
	for c in "${ssh_from[@]}"; do args+=(--ssh-from "$c"); done
	[ -z "$bundle" ] || args+=(--bundle "$bundle")
	/usr/local/bin/supervisor "${args[@]}"
else
	echo "setup-hub: keeping $conf and the hub key as they are"
fi
/usr/local/bin/supervisor check-config -c "$conf" -n hub >/dev/null

[ ${#changed[@]} -eq 0 ] || systemctl daemon-reload
systemctl enable supervisor.service >/dev/null 2>&1
# Type=notify: start and restart return once wg0 is up and the firewall applied.
if ! systemctl is-active --quiet supervisor.service; then
	systemctl start supervisor.service
	echo "setup-hub: started"
elif [ ${#changed[@]} -gt 0 ]; then
	systemctl restart supervisor.service   # a new binary or unit runs only after a restart
	echo "setup-hub: restarted (new ${changed[*]})"
else
	systemctl reload supervisor.service    # live: no peer's session drops
	echo "setup-hub: reloaded the running hub"
fi
/usr/local/bin/supervisor ctl tunnel || true
