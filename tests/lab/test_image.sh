#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The spoke image, built and booted (no Docker, no registry):
#   1. deploy/spoke/build-image.sh: a base from the Debian archive
#      (mmdebstrap), the Dockerfile built by buildah; its size and times;
#   2. the image's configuration against the compose file: ENTRYPOINT+CMD
#      read the file where compose mounts it, HEALTHCHECK, STOPSIGNAL, EXPOSE
#      and published ports, VOLUMEs and Postgres' and the backups' paths on
#      compose's volumes, stop_grace_period above the image's shutdown
#      budget, the version, no build leftovers;
#   3. the lab with its spokes from the image (LAB_IMAGE): PID 1 is the
#      image's ENTRYPOINT+CMD with compose's environment and nothing else,
#      Docker's capabilities plus cap_add; its Postgres, wireguard-go and
#      nftables library are the image's; the HEALTHCHECK passes; a stop ends
#      within the grace period. A spoke restarted without compose's NET_ADMIN,
#      then without its /dev/net/tun, fails: compose grants what the image needs;
#   4. the spec's checklist (test_checklist.sh) with every spoke from the image.
set -u
SUP=$1 TESTS=$2 ROOT=$3
. "$TESTS/tap.sh"
. "$TESTS/lab/helpers.sh"
export SUP LAB_DIR=/tmp/sup-lab-image STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
LAB="$TESTS/lab/lab.sh"
COMPOSE=$ROOT/deploy/spoke/docker-compose.yml
SPOKES="spoke-a spoke-b spoke-c"
work=$(mktemp -d)
ctr=
cleanup() {
	[ -n "$ctr" ] && buildah --storage-driver "$STORAGE_DRIVER" rm "$ctr" >/dev/null 2>&1
	[ -n "${KEEP_LAB:-}" ] || "$LAB" down >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
bah() { buildah --storage-driver "$STORAGE_DRIVER" "$@"; }
bail() { tap_fail "$@"; tap_done; exit 1; }

[ "$(id -u)" -eq 0 ] || bail "running as root (mmdebstrap, buildah's store, the lab's namespaces)"
for t in mmdebstrap buildah socat setpriv nsenter capsh python3 bc; do
	command -v $t >/dev/null || bail "$t is installed (scripts/setup installs it)"
done
python3 -c 'import yaml' 2>/dev/null || bail "python3-yaml is installed"

# The build takes both cores for a minute or two: hold the lab's lock from
# here, so that no other lab test's timing runs beside it (need_root below
# takes it again on the same descriptor).
lab_lock

# ---- 1. build ---------------------------------------------------------------------------------
t0=$(ms)
if ! out=$("$ROOT/deploy/spoke/build-image.sh" --iidfile "$work/iid" 2>"$work/build.log"); then
	bail "deploy/spoke/build-image.sh builds the image" "$(tail -20 "$work/build.log")"
fi
IMG=$(cat "$work/iid")
size=$(awk '{ print $4 }' <<<"$out")
times=$(sed -n 's/^build-image: \(base made in [0-9.]* s\|base imported .* in [0-9.]* s\|image built in [0-9.]* s\).*/\1/p' "$work/build.log" |
	sed 's/ as [^ ]*//' | paste -sd, | sed 's/,/, /g')
tap_ok "image built: $size in $(( ($(ms) - t0) / 1000 )) s (${times:-all cached})"
sed -n 's/^build-image: /# /p' "$work/build.log"

# ---- 2. the image's configuration against compose -------------------------------------------------
bah inspect --type image "$IMG" > "$work/image.json"
ctr=$(bah from --quiet --pull=never "$IMG") && rootfs=$(bah mount "$ctr") ||
	bail "buildah from/mount of the image"
run_in_image() { chroot "$rootfs" "$@"; }
cp "$ROOT/deploy/examples/cluster.conf" "$rootfs/tmp/example.conf"
plan=$(run_in_image /usr/local/bin/supervisor check-config -c /tmp/example.conf -n spoke-a 2>/dev/null)
version=$(run_in_image /usr/local/bin/supervisor --version)
want_version="supervisor $(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$ROOT/meson.build")+$(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
python3 - "$work/image.json" "$COMPOSE" "$rootfs" <<'PY' > "$work/config.tap" 3<<<"$plan"
import json, os, re, sys, yaml
img = json.load(open(sys.argv[1]))
cfg = (img.get("Docker") or {}).get("config") or {}
doc = yaml.safe_load(open(sys.argv[2]))
root = sys.argv[3]
plan = os.fdopen(3).read()
def check(ok, what, detail=""):
    print(("ok" if ok else "not ok") + "\t" + what + ("\t" + detail if not ok and detail else ""))
def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(v))
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]
m = re.search(r"^status http://[^:]+:(\d+)/status", plan, re.M)
status_port = int(m.group(1)) if m else None
m = re.search(r"^  role \w+, listen \S+ only, data (\S+),", plan, re.M)
data_dir = m.group(1) if m else None
m = re.search(r"^backup: \S+ .* into (\S+?)/spoke-a,", plan, re.M)
backup_dir = m.group(1) if m else None
m = re.search(r"^shutdown budget (\d+)s", plan, re.M)
budget = int(m.group(1)) if m else None
check(None not in (status_port, data_dir, backup_dir, budget),
      "the image's check-config gives the status port, data and backup dirs, shutdown budget",
      f"{status_port} {data_dir} {backup_dir} {budget}")
argv = (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or [])
for name, svc in doc["services"].items():
    targets = [c["target"] for c in svc.get("configs") or []]
    vols = {str(v).split(":")[1] for v in svc.get("volumes") or []}
    under = lambda p: p is not None and any(p == v or p.startswith(v.rstrip("/") + "/") for v in vols)
    exe = argv[0] if argv else ""
    ok = (argv[1:2] == ["run"] and "-c" in argv and argv[argv.index("-c") + 1:argv.index("-c") + 2] == targets
          and os.access(root + exe, os.X_OK) and svc.get("entrypoint") is None and svc.get("command") is None)
    check(ok, f"{name}: PID 1 = ENTRYPOINT+CMD {argv} runs the image's binary on the cluster file compose mounts at {targets}")
    hc = (cfg.get("Healthcheck") or {}).get("Test") or []
    url = next((a for a in hc if a.startswith("http")), "")
    hp = re.match(r"http://(127\.0\.0\.1|localhost):(\d+)/healthz$", url)
    check(hc[:1] == ["CMD"] and os.access(root + "/usr/bin/" + hc[1], os.X_OK) and hp and int(hp.group(2)) == status_port,
          f"{name}: HEALTHCHECK (docker format) {hc[1:2]} is in the image, asks /healthz on the status port", str(hc))
    sig = svc.get("stop_signal") or cfg.get("StopSignal")
    check(cfg.get("StopSignal") == "SIGTERM" and sig == "SIGTERM", f"{name}: STOPSIGNAL and stop_signal are SIGTERM",
          f"{cfg.get('StopSignal')} {sig}")
    published = {int(str(p).split(":")[-1].split("/")[0]) for p in svc.get("ports") or []}
    exposed = {int(p.split("/")[0]) for p in cfg.get("ExposedPorts") or {}}
    check(published == exposed == {status_port}, f"{name}: publishes and EXPOSEs only the status port {status_port}",
          f"published {published} exposed {exposed}")
    image_vols = set(cfg.get("Volumes") or {})
    check(image_vols <= vols and under(data_dir) and under(backup_dir),
          f"{name}: its named volumes hold every VOLUME {sorted(image_vols)}, Postgres' {data_dir} and {backup_dir}",
          f"volumes {sorted(vols)}")
    g = seconds(svc.get("stop_grace_period", "10s"))
    check(budget is not None and g >= budget + 2, f"{name}: stop_grace_period {g} s >= the image's shutdown budget {budget} s + 2 s")
    check("NET_ADMIN" in (svc.get("cap_add") or []) and any("/dev/net/tun" in d for d in svc.get("devices") or []),
          f"{name}: cap_add NET_ADMIN and /dev/net/tun (booted without each below)")
leftovers = [p for p in ("/src", "/build", "/out", "/usr/bin/gcc", "/usr/bin/meson", "/usr/bin/git") if os.path.lexists(root + p)]
check(not leftovers, "no build stage leftovers in the image (sources, build dirs, compiler, git)", str(leftovers))
PY
while IFS=$'\t' read -r res what detail; do
	if [ "$res" = ok ]; then tap_ok "$what"; else tap_fail "$what" "$detail"; fi
done < "$work/config.tap"
[ -s "$work/config.tap" ] || tap_fail "the configuration checks ran"
[ "$version" = "$want_version" ] && tap_ok "the image's binary says $version (its source's revision; the context has no .git)" ||
	tap_fail "the image's binary reports the source's revision" "got '$version', want '$want_version'"
bah rm "$ctr" >/dev/null; ctr=

# ---- 3. booted: PID 1, environment, capabilities, binaries, health, stop ----------------------------
need_root # the lab's lock, from here
export LAB_IMAGE=$IMG
"$LAB" up >/dev/null 2>"$work/up.err" || bail "lab up with LAB_IMAGE" "$(cat "$work/up.err")"
all_ok() { for n in $SPOKES; do [ "$(status_json $n "d['overall']")" = ok ] || return 1; done; }
el=$(wait_until 120000 all_ok) && tap_ok "every spoke from the image: overall ok $el ms after lab up" ||
	tap_fail "every spoke from the image comes up ok" "$(for n in $SPOKES; do "$LAB" ctl $n status 2>&1 | tail -4; done)"

want_argv=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["Docker"]["config"]; print(" ".join((c.get("Entrypoint") or []) + (c.get("Cmd") or [])))' "$work/image.json")
docker_caps="AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE NET_RAW SETFCAP SETGID SETPCAP SETUID SYS_CHROOT"
want_caps=$(printf '%s\n' $docker_caps NET_ADMIN | sort | tr '\n' ' ')
caps_of() { # caps_of HEX: the names, sorted
	capsh --decode="$1" | sed 's/.*=//' | tr ',' '\n' | sed 's/^cap_//' | tr a-z A-Z | sort | tr '\n' ' '
}
bad=""
for n in $SPOKES; do
	pid=$("$LAB" pid $n)
	argv=$(tr '\0' ' ' < /proc/$pid/cmdline | sed 's/ $//')
	inner=$("$LAB" exec $n cat /proc/1/cmdline | tr '\0' ' ' | sed 's/ $//')
	env=$(tr '\0' '\n' < /proc/$pid/environ | cut -d= -f1 | sort | tr '\n' ' ')
	key_ok=$(tr '\0' '\n' < /proc/$pid/environ | grep -qxF "WG_PRIVATE_KEY=$(cat "$LAB_DIR/$n/etc/wg.key")" && echo yes)
	bnd=$(caps_of "$(awk '/^CapBnd/ { print $2 }' /proc/$pid/status)")
	eff=$(caps_of "$(awk '/^CapEff/ { print $2 }' /proc/$pid/status)")
	[ "$argv" = "$want_argv" ] && [ "$inner" = "$want_argv" ] || bad="$bad [$n argv: '$argv' inside '$inner']"
	[ "$env" = "HOME HOSTNAME PATH REPLICATION_PASSWORD SUPERVISOR_NODE WG_PRIVATE_KEY " ] && [ "$key_ok" = yes ] ||
		bad="$bad [$n environment: $env key=$key_ok]"
	[ "$bnd" = "$want_caps" ] && [ "$eff" = "$want_caps" ] || bad="$bad [$n caps: $bnd / $eff]"
done
[ -z "$bad" ] && tap_ok "PID 1 of each spoke is the image's \`$want_argv\` (also inside), its environment only compose's (and PATH, HOSTNAME, HOME), its capabilities Docker's plus NET_ADMIN" ||
	tap_fail "PID 1: argv, environment, capabilities as compose gives them" "$bad"

# the image's binaries, seen from here: under the node's root
bad=""
for n in $SPOKES; do
	r=$LAB_DIR/$n/root
	pg=$(pgrep -P "$("$LAB" pid $n)" -x postgres | head -1)
	wg=$(node_pgrep $n -x wireguard-go | head -1)
	for p in "$pg:postgres" "$wg:wireguard-go" "$("$LAB" pid $n):supervisor"; do
		exe=$(readlink "/proc/${p%%:*}/exe" 2>/dev/null)
		case $exe in "$r"/*) ;; *) bad="$bad [$n ${p#*:}: ${exe:-not running}]" ;; esac
	done
	nftlib=$(grep -m1 -o '/[^ ]*libnftnl[^ ]*' "/proc/$("$LAB" pid $n)/maps")
	case $nftlib in "$r"/*) ;; *) bad="$bad [$n libnftnl: ${nftlib:-none}]" ;; esac
	"$LAB" exec $n nft list table inet supervisor >/dev/null 2>&1 || bad="$bad [$n: the image's nft does not list the table]"
done
[ -z "$bad" ] && tap_ok "each spoke's postgres, wireguard-go, supervisor and libnftnl are the image's files (its nft lists the table)" ||
	tap_fail "the spokes run the image's binaries" "$bad"

hc=$(python3 -c 'import json,shlex,sys; print(shlex.join(json.load(open(sys.argv[1]))["Docker"]["config"]["Healthcheck"]["Test"][1:]))' "$work/image.json")
bad=""
for n in $SPOKES; do eval "\"\$LAB\" exec $n $hc" >/dev/null 2>&1 || bad="$bad $n:$?"; done
[ -z "$bad" ] && tap_ok "the HEALTHCHECK (\`$hc\`) passes in each spoke" || tap_fail "the HEALTHCHECK passes" "$bad"

t0=$(ms)
"$LAB" stop spoke-c
el=$(( $(ms) - t0 ))
if ! grep -q "did not stop within" "$LAB_DIR/spoke-c/supervisor.log" && [ -z "$("$LAB" pid spoke-c 2>/dev/null)" ]; then
	tap_ok "spoke-c stopped as \`docker stop\` stops it (SIGTERM) in $el ms, within compose's stop_grace_period"
else
	tap_fail "spoke-c stops within its grace period" "$(tail -3 "$LAB_DIR/spoke-c/supervisor.log")"
fi

# ---- compose grants what the image needs: spoke-c again, without NET_ADMIN, then without the tun device
python3 - "$COMPOSE" "$work" <<'PY'
import copy, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for name, edit in (("no-net-admin", lambda s: s.pop("cap_add")), ("no-tun", lambda s: s.pop("devices"))):
    d = copy.deepcopy(doc)
    edit(d["services"]["spoke-c"])
    yaml.safe_dump(d, open(f"{sys.argv[2]}/{name}.yml", "w"))
PY
fresh() { [ "$(ctl_json spoke-c tunnel "d['tunnel']['state']")" = fresh ]; }
# the evidence: wireguard-go failed (restarted, its reason in the tunnel's), or the supervisor exited
failing() {
	[ -z "$("$LAB" pid spoke-c 2>/dev/null)" ] && return 0
	[ "$(child_restarts spoke-c wireguard-go)" -ge 1 ] 2>/dev/null &&
		[[ $(ctl_json spoke-c tunnel "d['tunnel']['last_error']") = "wireguard-go cannot create"* ]]
}
child_restarts() { ctl_json "$1" status "[c['restarts'] for c in d['children'] if c['name']=='$2'][0]"; }
for variant in no-net-admin no-tun; do
	log=$LAB_DIR/spoke-c/supervisor.log l0=$(wc -l < "$LAB_DIR/spoke-c/supervisor.log")
	LAB_COMPOSE=$work/$variant.yml "$LAB" start spoke-c 2>>"$work/start.err"
	wait_until 20000 failing >/dev/null
	running=$("$LAB" pid spoke-c 2>/dev/null)
	state=$(ctl_json spoke-c tunnel "d['tunnel']['state']")
	reason=$(ctl_json spoke-c tunnel "d['tunnel']['last_error']")
	restarts=$(child_restarts spoke-c wireguard-go)
	fw=$(ctl_json spoke-c firewall "d['firewall']['state'] + (' (%s)' % d['firewall']['last_error'] if d['firewall'].get('last_error') else '')")
	"$LAB" stop spoke-c
	if [ -z "$running" ]; then
		tap_ok "spoke-c booted $variant fails: it exits ($(tail -n +$((l0 + 1)) "$log" | grep -m1 'level=error' | cut -c1-200))"
	elif [ "$state" = down ] && [ "$restarts" -ge 1 ] 2>/dev/null && [[ $reason = "wireguard-go cannot create wg0: "* ]]; then
		tap_ok "spoke-c booted $variant fails, and says why: tunnel $state ($reason; wireguard-go restarted $restarts times), firewall $fw"
	else
		tap_fail "spoke-c booted $variant fails, saying why (compose's grant is needed)" "tunnel $state ($reason), wireguard-go restarts $restarts, firewall $fw"
	fi
done
"$LAB" start spoke-c
el=$(wait_until 30000 fresh) && tap_ok "spoke-c with compose's settings again: tunnel fresh in $el ms" ||
	tap_fail "spoke-c recovers with compose's settings"
for n in hub $SPOKES; do "$LAB" stop $n; done
no_sanitizer_reports "image boot"
"$LAB" down >/dev/null 2>&1
exec 9>&- # the checklist takes the lab's lock itself

# ---- 4. the spec's checklist, every spoke from the image -----------------------------------------------
t0=$(ms)
"$TESTS/lab/test_checklist.sh" "$SUP" "$TESTS" "$ROOT" > "$work/checklist.tap" 2>"$work/checklist.err"
rc=$?
while IFS= read -r line; do
	case $line in
	"ok "*) tap_ok "checklist from the image: ${line#ok * - }" ;;
	"not ok "*) tap_fail "checklist from the image: ${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	esac
done < "$work/checklist.tap"
grep -q '^1\.\.[1-9]' "$work/checklist.tap" && [ $rc = 0 ] &&
	tap_ok "test_checklist.sh with LAB_IMAGE: all passed in $(( ($(ms) - t0) / 1000 )) s" ||
	tap_fail "test_checklist.sh with LAB_IMAGE (exit $rc)" "$(tail -5 "$work/checklist.err")"
tap_done
