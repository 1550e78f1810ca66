#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The container a spoke's compose service makes of the image, for the lab's
image mode (tests/lab/image.sh), as Docker would run it.

  image_spec.py spec IMAGE_JSON COMPOSE SERVICE ENV_OUT
      IMAGE_JSON: `buildah inspect --type image` of the image. Prints shell
      assignments (C_*: hostname, bounding set, devices, volumes, configs,
      stop signal and grace, working dir, PID 1's argv) and writes PID 1's
      environment to ENV_OUT (0600, NUL-separated): the image's Env, then
      compose's `environment` (${VAR} interpolated from this process'
      environment; an unset VAR is an error here, not an empty string),
      HOSTNAME and HOME as Docker adds them. Nothing else.
  image_spec.py exec ROOT WORKDIR ENV_FILE ARGV...
      chroot ROOT, chdir WORKDIR, execve ARGV with exactly ENV_FILE's
      environment (ARGV[0] found on its PATH when it has no slash).
"""
import json
import os
import re
import shlex
import sys

import yaml

# Docker's default capabilities (moby: oci/caps/defaults.go)
DOCKER_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
               "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]


def die(msg):
    sys.exit("image_spec: " + msg)


def interpolate(value, where):
    def sub(m):
        name, default = m.group(1), m.group(3)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        die(f"{where}: ${{{name}}} is not set")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", sub, str(value))


def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(v))
    if not m:
        die(f"a duration compose would take and this does not: {v}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def spec(image_json, compose, service, env_out):
    img = json.load(open(image_json))
    cfg = (img.get("Docker") or {}).get("config") or img["OCIv1"]["config"]
    doc = yaml.safe_load(open(compose))
    svc = (doc.get("services") or {}).get(service)
    if svc is None:
        die(f"{compose} has no service {service}")
    out = {}

    argv = (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or [])
    if svc.get("entrypoint") is not None or svc.get("command") is not None:
        die(f"{service}: entrypoint/command overrides are not modelled here")
    if not argv:
        die("the image has neither ENTRYPOINT nor CMD")
    out["C_ARGV"] = argv
    out["C_WORKDIR"] = cfg.get("WorkingDir") or "/"
    out["C_HOSTNAME"] = svc.get("hostname") or service

    caps = set(DOCKER_CAPS)
    for c in svc.get("cap_add") or []:
        c = c.upper().removeprefix("CAP_")
        if c == "ALL":
            die(f"{service}: cap_add ALL")
        caps.add(c)
    for c in svc.get("cap_drop") or []:
        c = c.upper().removeprefix("CAP_")
        caps = set() if c == "ALL" else caps - {c}
    out["C_BOUNDING"] = ",".join(["-all"] + ["+" + c.lower() for c in sorted(caps)])
    out["C_CAPS"] = " ".join(sorted(caps))
    if svc.get("privileged") or svc.get("user") or svc.get("read_only"):
        die(f"{service}: privileged/user/read_only are not modelled here")

    devices = []
    for d in svc.get("devices") or []:
        host, _, ctr = str(d).partition(":")
        devices.append(f"{host}:{(ctr or host).split(':')[0]}")
    out["C_DEVICES"] = " ".join(devices)

    volumes = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            src, target = v.get("source"), v.get("target")
        else:
            src, _, rest = str(v).partition(":")
            target = rest.split(":")[0]
        if not src or "/" in src or src.startswith("."):
            die(f"{service}: volume {v}: only named volumes are modelled here")
        volumes.append(f"{src}:{target}")
    out["C_VOLUMES"] = " ".join(volumes)

    configs = []
    for c in svc.get("configs") or []:
        if not isinstance(c, dict) or not c.get("target"):
            die(f"{service}: config {c}: give source and target")
        configs.append(f"{c['source']}:{c['target']}")
    out["C_CONFIGS"] = " ".join(configs)

    out["C_STOPSIGNAL"] = str(svc.get("stop_signal") or cfg.get("StopSignal") or "SIGTERM")
    out["C_GRACE"] = seconds(svc.get("stop_grace_period", "10s"))

    # PID 1's environment, in Docker's order: image, service, then what it adds
    env = {}
    for e in cfg.get("Env") or []:
        k, _, v = e.partition("=")
        env[k] = v
    senv = svc.get("environment") or {}
    if isinstance(senv, list):
        senv = dict(e.split("=", 1) if "=" in e else (e, os.environ.get(e)) for e in senv)
    for k, v in senv.items():
        if v is None:
            die(f"{service}: environment {k} has no value")
        env[k] = interpolate(v, f"{service}: environment {k}")
    env.setdefault("HOSTNAME", out["C_HOSTNAME"])
    env.setdefault("HOME", "/root")
    fd = os.open(env_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{k}={v}\0" for k, v in env.items()))
    out["C_ENV_NAMES"] = " ".join(env)

    for k, v in out.items():
        if isinstance(v, list):
            print(f"{k}=({' '.join(shlex.quote(x) for x in v)})")
        else:
            print(f"{k}={shlex.quote(str(v))}")


def do_exec(root, workdir, env_file, argv):
    env = dict(e.split("=", 1) for e in open(env_file).read().split("\0") if e)
    os.chroot(root)
    os.chdir(workdir)
    if "/" not in argv[0]:
        for d in env.get("PATH", "").split(":"):
            if d and os.access(os.path.join(d, argv[0]), os.X_OK):
                argv = [os.path.join(d, argv[0])] + argv[1:]
                break
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "spec":
        spec(*sys.argv[2:])
    elif len(sys.argv) >= 6 and sys.argv[1] == "exec":
        do_exec(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        sys.exit(__doc__)
