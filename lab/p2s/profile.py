"""`lab p2s client-config`: a ready client profile, like Azure's VPN client package (configuration + certificates).

Layout of DIR: swanctl.conf, strongswan.conf, x509/client.crt, x509ca/gateway-ca.crt, private/client.key (0600).
`swanctl --load-all --file DIR/swanctl.conf` (charon started with STRONGSWAN_CONF=DIR/strongswan.conf) connects.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab.core import Lab
from lab.errors import LabError
from lab.p2s import pki
from lab.p2s.creds import ensure_pki
from lab.p2s.model import clients
from lab.p2s.render import profile_swanctl
from lab.render.strongswan_conf import render_strongswan_conf


def write_profile(lab: Lab, gateway: str, client: str, out: Path) -> list[Path]:
    """Write the profile of one client of one gateway; returns the files written."""
    spec = next((c for c in clients(lab.topo) if c.name == client and c.gateway == gateway), None)
    if spec is None:
        known = ", ".join(c.name for c in clients(lab.topo) if c.gateway == gateway) or "(none)"
        raise LabError(f"gateway {gateway!r}: no P2S client {client!r}", hint=f"clients of {gateway}: {known}")
    gp = ensure_pki(lab.dir.root, lab.topo, None)[gateway]
    issued = gp.clients[client]
    files = {
        "swanctl.conf": (profile_swanctl(spec, lab.topo.gateways[gateway], lab.topo.name).encode(), 0o600),
        "strongswan.conf": (render_strongswan_conf("libipsec", fast_dpd=True, eap=True).encode(), 0o644),
        "x509/client.crt": (pki.pem_cert(issued.cert), 0o644),
        "x509ca/gateway-ca.crt": (pki.pem_cert(gp.gateway_ca.cert), 0o644),
        "private/client.key": (pki.pem_key(issued.key), 0o600),
    }
    written = []
    for rel, (data, mode) in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, mode)
        written.append(path)
    return written
