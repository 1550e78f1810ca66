#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A cluster file with one hub and N spokes, for scale tests and benchmarks.

  gen_cluster.py N DIR [HUB_ENDPOINT] [REAL_SPOKES]

Writes DIR/cluster.conf (network 10.88.0.0/20: up to 4094 nodes), the
hub's private key DIR/hub.key and, for the first REAL_SPOKES spokes (default
0), DIR/spoke-N.key; the other spokes' private keys are thrown away: they
exist only in the file, never connect, and show as "connecting" on the hub.
Spoke K (from 1) is spoke-K at 10.88.(K // 250).(K % 250 + 3); no
Postgres on any of them (postgres = "none") but the last, which is never
real (the file needs a primary): only the overlay is measured.
"""
import base64
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


def keypair():
    k = X25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    priv = k.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = k.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return base64.b64encode(priv).decode(), base64.b64encode(pub).decode()


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    endpoint = sys.argv[3] if len(sys.argv) > 3 else "192.0.2.1:51820"
    real = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    os.makedirs(out, exist_ok=True)
    os.umask(0o077)
    hub_priv, hub_pub = keypair()
    with open(os.path.join(out, "hub.key"), "w") as f:
        f.write(hub_priv + "\n")
    lines = [
        'cluster = { network = "10.88.0.0/20"; fresh_handshake = 180; keepalive = 25; };',
        'hub = { name = "hub"; overlay_ip = "10.88.0.1"; endpoint = "%s"; public_key = "%s"; };'
        % (endpoint, hub_pub),
        "spokes = (",
    ]
    spokes = []
    for k in range(1, n + 1):
        priv, pub = keypair()
        if k <= real:
            with open(os.path.join(out, "spoke-%d.key" % k), "w") as f:
                f.write(priv + "\n")
        role = "primary" if k == n else "none"
        spokes.append('  { name = "spoke-%d"; overlay_ip = "10.88.%d.%d"; public_key = "%s"; postgres = "%s"; }'
                      % (k, k // 250, k % 250 + 3, pub, role))
    lines.append(",\n".join(spokes))
    lines.append(");")
    lines.append('keys = { private_key_file = "/etc/supervisor/wg.key"; };')
    with open(os.path.join(out, "cluster.conf"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
