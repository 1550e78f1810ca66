#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The deployment files, checked without a Docker engine: the Dockerfile
# (instructions, and that its ENTRYPOINT is the command the lab runs), the
# compose file and the bundles `cluster init` writes (YAML, capabilities,
# only :8000 published, no literal secret, a stop grace period longer than
# the shutdown budget, as check-config prints its default), the hub's
# systemd unit (systemd-analyze verify, TimeoutStopSec above the budget,
# Type=notify with a watchdog), the hub set-up script (bash -n, shellcheck),
# and that both the set-up script and the spoke image install every library
# the binary links.
set -u
SUP=$1 TESTS=$2 ROOT=$3
. "$TESTS/tap.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in python3 systemd-analyze shellcheck; do
	command -v $t >/dev/null || { tap_fail "$t is installed (scripts/setup installs it)"; tap_done; exit 1; }
done
python3 -c 'import yaml' 2>/dev/null || { tap_fail "python3-yaml is installed"; tap_done; exit 1; }

# ---- Dockerfile ------------------------------------------------------------------------
lab_cmd=$(grep -o 'exec \$wrap \$SUP run [^"]*' "$TESTS/lab/lab.sh" | sed 's/exec \$wrap \$SUP //; s/ -n \$n$//')
out=$(python3 - "$ROOT/deploy/spoke/Dockerfile" "$lab_cmd" <<'PY'
import json, re, shlex, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
ins = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "")
       for l in (x.strip() for x in text.splitlines()) if l and not l.startswith("#")]
known = {"FROM", "RUN", "COPY", "ENV", "ARG", "WORKDIR", "VOLUME", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK",
         "ENTRYPOINT", "CMD", "LABEL", "USER"}
problems = [f"unknown instruction {i}" for i, _ in ins if i not in known]
# ARGs before the first FROM parameterise the FROMs (BASE: build-image.sh's own base)
first_from = next((k for k, (i, _) in enumerate(ins) if i == "FROM"), len(ins))
args = dict((a.split("=", 1) + [""])[:2] for i, a in ins[:first_from] if i == "ARG")
expand = lambda v: re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), v)
froms = [expand(a) for i, a in ins if i == "FROM"]
if not froms or not froms[-1].startswith("debian:bookworm"):
    problems.append("the runtime stage is not Debian bookworm")
entry = [a for i, a in ins if i == "ENTRYPOINT"]
try:
    ep = json.loads(entry[-1])
except Exception:
    ep = None
    problems.append("ENTRYPOINT is not in exec (JSON) form: the supervisor must be PID 1, not a shell")
want = shlex.split(sys.argv[2])
if ep and (ep[0] != "/usr/local/bin/supervisor" or ep[1:] != want):
    problems.append(f"ENTRYPOINT {ep} is not the lab's command supervisor {want}")
stop = [a for i, a in ins if i == "STOPSIGNAL"]
if stop != ["SIGTERM"]:
    problems.append("STOPSIGNAL is not SIGTERM")
hc = " ".join(a for i, a in ins if i == "HEALTHCHECK")
if "/healthz" not in hc:
    problems.append("no HEALTHCHECK on /healthz")
runs = " ".join(a for i, a in ins if i == "RUN")
for p in ["postgresql-15", "wireguard-tools", "wireguard-go", "pgbackrest", "nftables"]:
    if p not in runs:
        problems.append(f"{p} is not installed")
for i, a in ins:
    if i in ("ENV", "ARG") and re.search(r"(KEY|PASS|SECRET)", a, re.I):
        problems.append(f"a secret-looking {i} in the image: {a}")
print("; ".join(problems) if problems else "ok")
PY
)
[ "$out" = ok ] && tap_ok "Dockerfile: bookworm, exec-form ENTRYPOINT = the lab's \`supervisor $lab_cmd\`, STOPSIGNAL, HEALTHCHECK /healthz, packages, no secret" ||
	tap_fail "Dockerfile checks" "$out"

# ---- .dockerignore: the build context is the sources ------------------------------------------
# COPY . . would otherwise copy a host's build directories (objects for the host's
# libraries, and a meson build dir the image's build trips over) and .git
# (a worktree's .git is a file naming a path the build cannot see).
out=$(python3 - "$ROOT" <<'PY'
import fnmatch, sys
root = sys.argv[1]
try:
    pats = [l.strip().strip("/") for l in open(root + "/.dockerignore") if l.strip() and not l.startswith("#")]
except OSError:
    print("no .dockerignore"); sys.exit()
excluded = lambda p: any(fnmatch.fnmatchcase(p, q) for q in pats)
problems = [p + " is sent" for p in (".git", "build", "build-asan", "build-fuzz") if not excluded(p)]
problems += [p + " is left out" for p in ("meson.build", "deploy/examples", "deploy/spoke", "supervisor", "lib")
             if excluded(p)]
print("; ".join(problems) or "ok")
PY
)
[ "$out" = ok ] && tap_ok ".dockerignore: no .git, no build directories; the sources the image builds from are sent" ||
	tap_fail ".dockerignore leaves the build context the sources" "$out"

# ---- compose files ------------------------------------------------------------------------
# The shutdown budget's default, as the binary has it (check-config prints it); what stops
# the supervisor must wait longer, by 2 s: after the budget come SIGKILLs, up to 1 s to reap, exit.
budget=$("$SUP" check-config -c "$ROOT/deploy/examples/cluster.conf" -n spoke-a 2>/dev/null |
	sed -n 's/^shutdown budget \([0-9]*\)s, then SIGKILL$/\1/p')
[ -n "$budget" ] && tap_ok "check-config prints the shutdown budget (default ${budget} s)" ||
	{ tap_fail "check-config prints the shutdown budget"; budget=9999; }
check_compose() { # check_compose FILE: one line, "ok" or the problems
	python3 - "$1" "$budget" <<'PY'
import re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
budget = int(sys.argv[2])
problems = []
def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(v))
    return None if not m else int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]
for name, svc in (doc.get("services") or {}).items():
    if "NET_ADMIN" not in (svc.get("cap_add") or []):
        problems.append(f"{name}: no cap_add NET_ADMIN")
    if not any("/dev/net/tun" in d for d in svc.get("devices") or []):
        problems.append(f"{name}: no /dev/net/tun")
    if [str(p) for p in svc.get("ports") or []] != ["8000:8000"]:
        problems.append(f"{name}: publishes {svc.get('ports')}, not only 8000")
    if svc.get("network_mode") == "host" or svc.get("privileged"):
        problems.append(f"{name}: host network or privileged")
    g = seconds(svc.get("stop_grace_period", "10s"))
    if g is None or g < budget + 2:
        problems.append(f"{name}: stop_grace_period {svc.get('stop_grace_period', '10s (default)')} not 2 s above the {budget} s shutdown budget")
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    for k, v in env.items():
        if re.search(r"KEY|PASS|SECRET", k) and not re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*\}", str(v)):
            problems.append(f"{name}: {k} is a literal value, not ${{VAR}} from the encrypted environment")
    if not env.get("SUPERVISOR_NODE"):
        problems.append(f"{name}: no SUPERVISOR_NODE")
    vols = " ".join(str(v) for v in svc.get("volumes") or [])
    for path in ("/var/lib/postgresql", "/var/backups"):
        if path not in vols:
            problems.append(f"{name}: no volume for {path}")
    if not any((c.get("target") if isinstance(c, dict) else "") == "/etc/supervisor/cluster.conf"
               for c in svc.get("configs") or []):
        problems.append(f"{name}: the cluster file is not mounted at /etc/supervisor/cluster.conf")
if not doc.get("services"):
    problems.append("no services")
print("; ".join(problems) if problems else "ok")
PY
}
out=$(check_compose "$ROOT/deploy/spoke/docker-compose.yml")
n=$(python3 -c 'import yaml,sys; print(len(yaml.safe_load(open(sys.argv[1]))["services"]))' "$ROOT/deploy/spoke/docker-compose.yml")
[ "$out" = ok ] && [ "$n" = 3 ] &&
	tap_ok "docker-compose.yml: one service per spoke, NET_ADMIN, /dev/net/tun, only 8000, volumes, secrets only as \${VAR}, grace >= ${budget} s budget + 2 s" ||
	tap_fail "docker-compose.yml checks" "services=$n $out"
# a literal secret is caught (the check can fail)
sed 's/WG_PRIVATE_KEY: \${WG_PRIVATE_KEY}/WG_PRIVATE_KEY: "aGVsbG8="/' "$ROOT/deploy/spoke/docker-compose.yml" > "$work/bad.yml"
out=$(check_compose "$work/bad.yml")
grep -q "WG_PRIVATE_KEY is a literal value" <<<"$out" && tap_ok "the compose check catches a literal private key" ||
	tap_fail "the compose check catches a literal private key" "$out"
# ... and a grace period that the budget does not fit (compose's default 10 s)
grep -v 'stop_grace_period' "$ROOT/deploy/spoke/docker-compose.yml" > "$work/short.yml"
out=$(check_compose "$work/short.yml")
grep -q "stop_grace_period 10s (default) not 2 s above the ${budget} s shutdown budget" <<<"$out" &&
	tap_ok "the compose check catches a grace period below the budget" ||
	tap_fail "the compose check catches a grace period below the budget" "$out"

# The example cluster file (the image's cluster.conf.example): each node's secrets from where
# its deployment puts them: a spoke's from the variables compose sets, the hub's key from a
# file (its unit sets no secret variable). The replication password once came from a file
# no spoke container has.
compose_env=$(python3 -c 'import sys, yaml
print(" ".join(sorted({k for s in yaml.safe_load(open(sys.argv[1]))["services"].values() for k in (s.get("environment") or {})})))' \
	"$ROOT/deploy/spoke/docker-compose.yml")
bad=""
for n in hub spoke-a spoke-b spoke-c; do
	plan=$("$SUP" check-config -c "$ROOT/deploy/examples/cluster.conf" -n $n 2>/dev/null)
	key=$(sed -n 's/^private key from //p' <<<"$plan")
	pass=$(sed -n 's/^  replication password from //p' <<<"$plan")
	if [ $n = hub ]; then
		case $key in "file "*) ;; *) bad="$bad [hub: private key from $key]" ;; esac
		continue
	fi
	for src in "$key" "$pass"; do
		case " $compose_env " in *" ${src#environment variable } "*) ;; *) bad="$bad [$n: ${src:-no source}]" ;; esac
	done
done
[ -z "$bad" ] && tap_ok "example cluster file: spokes read their key and password from compose's environment ($compose_env), the hub its key file" ||
	tap_fail "example cluster file: secrets from where the deployment puts them" "$bad (compose sets: $compose_env)"

# the bundles `cluster init` writes
(cd "$work" && "$SUP" cluster init -c "$work/cluster.conf" --hub-key "$work/hub.key" \
	--endpoint 203.0.113.10:51820 --spokes spoke-a,spoke-b --bundle "$work/b" >/dev/null 2>&1)
rc=$?
out=$(check_compose "$work/b/spoke-b/docker-compose.yml")
[ $rc = 0 ] && [ "$out" = ok ] && [ "$(stat -c %a "$work/b/spoke-b/spoke.env")" = 600 ] &&
	"$SUP" check-config -c "$work/b/spoke-b/cluster.conf" -n spoke-b >/dev/null 2>&1 &&
	tap_ok "cluster init bundles: compose snippet passes the same checks, spoke.env 0600, the copied cluster file checks" ||
	tap_fail "cluster init bundles" "rc=$rc $out"

# ---- hub ------------------------------------------------------------------------------------
sed "s|/usr/local/bin/supervisor|$SUP|g" "$ROOT/deploy/hub/supervisor.service" > "$work/supervisor.service"
out=$(systemd-analyze verify "$work/supervisor.service" 2>&1 | grep -v -E 'Failed to (connect|prepare)|system bus')
[ -z "$out" ] && tap_ok "hub unit: systemd-analyze verify reports nothing" || tap_fail "hub unit verifies" "$out"
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$ROOT/deploy/hub/supervisor.service")
[ -n "$stop_s" ] && [ "$stop_s" -ge $((budget + 2)) ] &&
	tap_ok "hub unit: TimeoutStopSec=$stop_s is 2 s above the $budget s shutdown budget" ||
	tap_fail "hub unit: TimeoutStopSec 2 s above the $budget s shutdown budget" "TimeoutStopSec=$stop_s"
unit=$ROOT/deploy/hub/supervisor.service
wd=$(sed -n 's/^WatchdogSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
grep -q '^Type=notify$' "$unit" && grep -q '^NotifyAccess=main$' "$unit" && [ -n "$wd" ] && [ "$wd" -ge 2 ] &&
	grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" &&
	tap_ok "hub unit: Type=notify (main process only), WatchdogSec=$wd, reload by SIGHUP" ||
	tap_fail "hub unit: Type=notify, NotifyAccess=main, WatchdogSec, ExecReload by SIGHUP" "WatchdogSec=$wd"
grep -q '^Restart=always' "$ROOT/deploy/hub/supervisor.service" && grep -q '^CapabilityBoundingSet=CAP_NET_ADMIN' "$ROOT/deploy/hub/supervisor.service" &&
	grep -q '^NoNewPrivileges=yes' "$ROOT/deploy/hub/supervisor.service" && grep -q '^RestartPreventExitStatus=78' "$ROOT/deploy/hub/supervisor.service" &&
	tap_ok "hub unit: restarts, NET_ADMIN only, no new privileges, a configuration error (78) is not restarted" ||
	tap_fail "hub unit policy"
# Every library the binary links by name (its NEEDED entries, not a sanitizer's)
# comes from a package the hub's set-up installs and the spoke image's runtime
# stage installs (libc6 is always there). A t64 name counts as the plain one.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
linked=$(readelf -d "$SUP" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -v -E '^lib(a|ub|l|t)san\.' |
	while read -r lib; do dpkg -S "*/$arch/$lib" 2>/dev/null | head -1 | sed 's/:.*//'; done | sort -u | grep -v -x libc6)
hub_pkgs=$(sed -n '/^packages=(/,/)$/p' "$ROOT/deploy/hub/setup-hub.sh" | tr -d '()' | sed 's/packages=//' | tr -s ' \t' '\n\n')
img_pkgs=$(tac "$ROOT/deploy/spoke/Dockerfile" | sed -n '1,/^FROM /p' | tac | sed -n '/apt-get install/,/rm -rf/p' |
	tr -s ' \t\\' '\n\n\n')
missing=""
for p in $linked; do
	grep -q -x -E "${p%t64}(t64)?" <<<"$hub_pkgs" || missing+=" $p(setup-hub.sh)"
	grep -q -x -E "${p%t64}(t64)?" <<<"$img_pkgs" || missing+=" $p(Dockerfile)"
done
[ -n "$linked" ] && [ -z "$missing" ] &&
	tap_ok "every library the binary links is installed by setup-hub.sh and the spoke image: $(echo $linked)" ||
	tap_fail "every library the binary links is installed by setup-hub.sh and the spoke image" \
		"linked: $(echo $linked)" "missing:$missing"
out=$(bash -n "$ROOT/deploy/hub/setup-hub.sh" 2>&1 && shellcheck -S warning "$ROOT/deploy/hub/setup-hub.sh" 2>&1)
[ -z "$out" ] && tap_ok "setup-hub.sh: bash -n and shellcheck clean" || tap_fail "setup-hub.sh lint" "$out"
tap_done
