"""Point-to-site swanctl trees: the gateway's IKEv2 responder (certificate + EAP-TLS, address pool) and one
initiator per client (virtual IP requested, routes = the VNet prefixes).

Certificates are not named in the trees: lab.p2s.run loads them over vici beforehand, and charon picks the
gateway's certificate by its identity (the SAN) and a client's by its subject. The client profile that
`lab p2s client-config` writes (`profile_swanctl`) names its files instead, as Azure's VPN client package does.
"""

from __future__ import annotations

from lab.p2s.model import ClientSpec, clients, gateway_id, p2s_gateways, pool_name
from lab.render.swanctl import SwanctlConfig, Tree
from lab.topology.model import Gateway, Topology

CONN = "p2s"
IKE_PROPOSALS = ["aes256-sha256-modp2048", "aes256gcm16-prfsha256-ecp256"]  # Azure P2S IKEv2 offers (subset)
ESP_PROPOSALS = ["aes256gcm16", "aes256-sha256"]
CLIENT_DPD_S = 2  # with fast retransmits a client notices a dead gateway in about 3 s (platform notes)
GATEWAY_DPD_S = 30


def gateway_tree(gw_name: str, gw: Gateway, lab: str) -> Tree:
    """The responder on instance 0 (and, mirrored, an active-standby gateway's standby)."""
    return {
        "version": "2",
        "local_addrs": [str(gw.public_ips[0])],
        "proposals": IKE_PROPOSALS,
        "pools": [pool_name(gw_name)],
        "unique": "never",  # one certificate on two devices: both stay up, as on Azure
        "dpd_delay": f"{GATEWAY_DPD_S}s",
        "send_cert": "always",
        "local": {"auth": "pubkey", "id": gateway_id(gw_name, lab)},
        "remote": {"auth": "eap-tls", "eap_id": "%any"},
        "children": {CONN: {"local_ts": [str(n) for n in gw.vnet.address_space], "esp_proposals": ESP_PROPOSALS,
                            "dpd_action": "clear", "start_action": "none"}},
    }


def refusal_name(client: str) -> str:
    return f"{CONN}-revoked-{client}"


def refusal_tree(gw_name: str, gw: Gateway, lab: str, identity: str) -> Tree:
    """Refuses one revoked identity whose root the lab has no key for (so no CRL): its exact remote id ranks
    above `p2s`'s %any, and it asks for EAP-MD5, which the gateway's charon cannot run (plugin not loaded).
    EAP then fails before any constraint check, so charon never switches to `p2s`: the client gets
    EAP_FAILURE and gives up (AUTH_FAILED), as with a CRL."""
    return {
        "version": "2",
        "local_addrs": [str(gw.public_ips[0])],
        "proposals": IKE_PROPOSALS,
        "unique": "never",
        "send_cert": "always",
        "local": {"auth": "pubkey", "id": gateway_id(gw_name, lab)},
        "remote": {"auth": "eap-md5", "id": identity},
    }


def client_tree(c: ClientSpec, gw: Gateway, lab: str) -> Tree:
    """An initiator that never gives up: keyingtries 0, restart on DPD, start again when closed."""
    return {
        "version": "2",
        "local_addrs": [str(c.public_ip)],
        "remote_addrs": [str(gw.public_ips[0])],
        "vips": ["0.0.0.0"],
        "proposals": IKE_PROPOSALS,
        "keyingtries": "0",
        "dpd_delay": f"{CLIENT_DPD_S}s",
        "local": {"auth": "eap-tls", "id": c.identity},
        "remote": {"auth": "pubkey", "id": gateway_id(c.gateway, lab)},
        "children": {CONN: {"remote_ts": [str(n) for n in gw.vnet.address_space], "esp_proposals": ESP_PROPOSALS,
                            "start_action": "start", "dpd_action": "restart", "close_action": "start"}},
    }


def render_p2s(topo: Topology) -> dict[str, SwanctlConfig]:
    """node -> its P2S connections: the gateway's instance 0 and every client."""
    out = {f"{g}-0": SwanctlConfig({CONN: gateway_tree(g, topo.gateways[g], topo.name)}) for g in p2s_gateways(topo)}
    for c in clients(topo):
        out[c.name] = SwanctlConfig({CONN: client_tree(c, topo.gateways[c.gateway], topo.name)})
    return out


def merge(swan: dict[str, SwanctlConfig], extra: dict[str, SwanctlConfig]) -> dict[str, SwanctlConfig]:
    """Add P2S connections beside a node's site-to-site ones (a topology connection named `p2s` would
    clash: lab.p2s.rules refuses that name on P2S gateways)."""
    out = dict(swan)
    for node, cfg in extra.items():
        old = out.get(node, SwanctlConfig())
        out[node] = SwanctlConfig({**old.connections, **cfg.connections}, old.secrets + cfg.secrets)
    return dict(sorted(out.items()))


def eap_nodes(topo: Topology) -> set[str]:
    """Nodes whose charon needs eap-identity and eap-tls: P2S gateway instances (standby too) and clients."""
    gws = set(p2s_gateways(topo))
    return {f"{g}-{i}" for g in gws for i in range(2)} | {c.name for c in clients(topo)}


def client_nodes(topo: Topology) -> set[str]:
    return {c.name for c in clients(topo)}


def profile_swanctl(c: ClientSpec, gw: Gateway, lab: str) -> str:
    """The client profile's swanctl.conf: the client tree plus the certificate files it ships with."""
    tree = client_tree(c, gw, lab)
    tree.pop("local_addrs")
    local, remote = tree["local"], tree["remote"]
    assert isinstance(local, dict) and isinstance(remote, dict)
    tree["local"] = {**local, "id": f'"{c.identity}"', "certs": "client.crt"}
    tree["remote"] = {**remote, "cacerts": "gateway-ca.crt"}
    text = SwanctlConfig({f"azure-{c.gateway}": tree}).to_text()
    return text.replace("# Rendered by lab: the same tree is loaded into charon over vici.",
                        f"# Point-to-site profile of {c.name} for gateway {c.gateway} (lab {lab}).\n"
                        "# swanctl --load-all --file swanctl.conf (x509/, x509ca/, private/ beside it)")
