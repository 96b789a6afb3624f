"""Point-to-site in a running lab: load credentials, order the loads, what to wait for, client status.

Clients load after every gateway (a client whose first IKE_SA_INIT meets a gateway without its config gets
NO_PROPOSAL_CHOSEN, which charon does not retry); refused clients (revoked, untrusted issuer) are expected
to stay down, so `lab up` does not wait for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab.control.base import P2sSa, VpnControl
from lab.core import Connect, Lab
from lab.errors import LabError
from lab.hooks import Expected, Feature, Rendered, Stage
from lab.p2s.creds import GatewayPki, ensure_pki, node_creds, revocation_gaps, revoked_names
from lab.p2s.evidence import refusal_evidence
from lab.p2s.model import clients
from lab.p2s.render import CONN
from lab.status import LabStatus, P2sClientStatus

Pki = dict[str, GatewayPki]
WORKERS = 8


class P2sFeature(Feature):
    """Point-to-site in `lab up`'s stages: certificates made once before any node starts, loaded before the
    configs; clients load after every gateway; refused clients are not waited for; clients in `inspect`."""

    def __init__(self, source: Path | None) -> None:
        self.source = source  # the topology file's directory at `up` (user certificates), None on a running lab
        self._pki: Pki | None = None

    def pki(self, lab: Lab) -> Pki:
        """Every P2S gateway's certificates, created (or read back) once per command."""
        if self._pki is None:
            self._pki = ensure_pki(lab.dir.root, lab.topo, self.source)
        return self._pki

    def render(self, st: Stage, out: Rendered) -> Rendered:
        self.pki(st.lab)  # RSA key generation dominates for many clients: done before any container starts
        return out

    def before_load(self, st: Stage, controls: Mapping[str, VpnControl]) -> None:
        load_credentials(st.lab, controls, self.pki(st.lab))

    def load_last(self, st: Stage) -> set[str]:
        return {c.name for c in clients(st.lab.topo)}

    def expect(self, st: Stage, wants: Expected) -> Expected:
        return expected(wants, st.lab, self.pki(st.lab))

    def inspect(self, st: Stage, running: set[str], status: LabStatus) -> LabStatus:
        found, problems = client_status(st.lab, running, st.connect, self.pki(st.lab))
        return status.model_copy(update={"p2s_clients": found, "problems": [*status.problems, *problems]})


def load_credentials(lab: Lab, controls: Mapping[str, VpnControl], pki: Pki | None = None) -> None:
    """Load certificates, keys, CRLs and pools into every P2S charon among `controls` (one session each)."""
    creds = node_creds(lab.dir.root, lab.topo, pki)
    todo = [(controls[n], c) for n, c in sorted(creds.items()) if n in controls]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for fut in [pool.submit(ctl.load_creds, c) for ctl, c in todo]:
            fut.result()


def client_sas(lab: Lab, node: str, connect: Connect) -> list[P2sSa]:
    """The P2S SAs of one node's charon (a gateway instance or a client), over the control seam."""
    ctl = connect(lab.dir.vici_socket(node))
    try:
        return ctl.p2s_sas(CONN)
    finally:
        ctl.close()


def refused(lab: Lab, pki: Pki | None = None) -> dict[str, str]:
    """client -> why the gateway refuses it (the lab knows it in advance)."""
    out: dict[str, str] = {}
    for g, gp in (ensure_pki(lab.dir.root, lab.topo, None) if pki is None else pki).items():
        out.update(revoked_names(lab.topo, g, gp))
    for c in clients(lab.topo):
        if not c.trusted:
            out.setdefault(c.name, f"certificate issued by {c.gateway}'s untrusted root (not an uploaded root)")
    return out


def expected(wants: Expected, lab: Lab, pki: Pki | None = None) -> Expected:
    """Drop the gateways' P2S responders (their SAs are the clients') and clients that must be refused."""
    if not any(gw.p2s for gw in lab.topo.gateways.values()):
        return wants
    skip = set(refused(lab, pki))
    gw_nodes = {f"{g}-{i}" for g, gw in lab.topo.gateways.items() if gw.p2s for i in range(2)}
    out = {}
    for node, conns in wants.items():
        if node in skip:
            continue
        kept = [(c, kids) for c, kids in conns if not (node in gw_nodes and c == CONN)]
        if kept:
            out[node] = kept
    return out


LOG_LINES = 2000


def client_status(lab: Lab, running: set[str], connect: Connect,
                  pki: Pki | None = None) -> tuple[list[P2sClientStatus], list[str]]:
    """Every client with its virtual IP (from the gateway's SAs) or why it is not connected; and problems
    (revoked thumbprints the lab cannot enforce)."""
    specs = clients(lab.topo)
    if not specs:
        return [], []
    pki = ensure_pki(lab.dir.root, lab.topo, None) if pki is None else pki
    leases, problems = _leases(lab, running, connect)
    why = refused(lab, pki)
    out = []
    for c in specs:
        sa = leases.get(c.identity)
        if sa is not None:
            out.append(P2sClientStatus(name=c.name, gateway=c.gateway, public_ip=str(c.public_ip), state="connected",
                                       virtual_ip=",".join(sa.remote_vips)))
        elif c.name in why:
            ev = _evidence(lab, c.gateway, c.identity)
            out.append(P2sClientStatus(name=c.name, gateway=c.gateway, public_ip=str(c.public_ip), state="refused",
                                       reason=why[c.name] + (f"; gateway log: {ev}" if ev else "")))
        else:
            out.append(P2sClientStatus(name=c.name, gateway=c.gateway, public_ip=str(c.public_ip), state="down",
                                       reason=f"no established SA on the gateway (`lab logs {c.name}`)"))
    for g, gp in pki.items():
        gaps = revocation_gaps(lab.topo, g, gp)
        problems += [f"gateways.{g}.p2s.revoked: thumbprint {t} matches no certificate the lab issued: not enforced "
                     "(the lab revokes by a CRL of its own root; docs/p2s.md)" for t in gaps]
    return out, problems


def _leases(lab: Lab, running: set[str], connect: Connect) -> tuple[dict[str, P2sSa], list[str]]:
    """client identity -> its established P2S SA, from every running instance of each P2S gateway."""
    found: dict[str, P2sSa] = {}
    problems: list[str] = []
    for g, gw in sorted(lab.topo.gateways.items()):
        for node in (f"{g}-0", f"{g}-1") if gw.p2s else ():
            if node not in running:
                continue
            try:
                sas = client_sas(lab, node, connect)
            except LabError as exc:
                problems.append(f"node {node!r}: {exc.message}")
                continue
            for sa in sas:
                if sa.state == "ESTABLISHED" and sa.child_installed:
                    found[sa.remote_id] = sa
    return found, problems


def _evidence(lab: Lab, gw: str, identity: str) -> str:
    """The gateway log line that says why `identity` was refused."""
    return refusal_evidence(lab.dir.log_tail(f"{gw}-0", LOG_LINES), identity)
