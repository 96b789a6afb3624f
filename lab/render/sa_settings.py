"""What each end of each tunnel is configured with (lifetimes, DPD, proposals), beside Azure's value where it
differs: `lab inspect` shows it. Pure: read from the same tunnel model the configs are rendered from.

Azure's value for a field is the Azure end's, rendered from Azure's rules; the lab's only departure on that
end is `dpd: fast`, whose Azure value is the connection's `dpd_timeout_seconds`. A device end differs where
its overrides (proposals, lifetimes, DPD) say so. A device with its own config (BYO) shows what that config
declares (`declared_settings`, read by lab.device.byo), strongSwan's defaults where it declares nothing
(lab.render.strongswan_defaults, filled in by lab.device.parse; no byte limit, where Azure's is 102400000 KB:
a real difference).
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, ConfigDict

from lab.azure.algorithms import first_match
from lab.render.tunnels import End, Tunnel, dpd_delay, tunnels
from lab.topology.model import Topology

UNKNOWN_KB = -1  # a device config whose byte limit is not read (ipsec.conf)


class SaSettings(BaseModel):
    """One end's configured values; `azure` names each field that differs, with Azure's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ike_lifetime_s: int
    child_lifetime_s: int
    child_lifetime_kb: int
    dpd: str  # "delay 31 s" or "off"
    ike_proposals: list[str]
    esp_proposals: list[str]
    azure: dict[str, str] = {}


def _values(end: End) -> dict[str, str]:
    return {"ike_lifetime_s": f"{end.ike_lifetime_s} s", "child_lifetime_s": f"{end.child_lifetime[0]} s",
            "child_lifetime_kb": f"{end.child_lifetime[1]} KB",
            "dpd": f"delay {end.dpd_delay_s} s" if end.dpd_delay_s else "off",
            "ike_proposals": ", ".join(end.ike), "esp_proposals": ", ".join(end.esp)}


def _differs(key: str, mine: End, azure: End, values: tuple[dict[str, str], dict[str, str]]) -> bool:
    """Lifetimes and DPD differ when unequal; proposals when none of this end's is one Azure accepts."""
    if key == "ike_proposals":
        return first_match(list(mine.ike), list(azure.ike), "ike") is None
    if key == "esp_proposals":
        return first_match(list(mine.esp), list(azure.esp), "esp") is None
    return values[0][key] != values[1][key]


def _settings(end: End, reference: End) -> SaSettings:
    mine, azure = _values(end), _values(reference)
    return SaSettings(ike_lifetime_s=end.ike_lifetime_s, child_lifetime_s=end.child_lifetime[0],
                      child_lifetime_kb=end.child_lifetime[1], dpd=mine["dpd"], ike_proposals=list(end.ike),
                      esp_proposals=list(end.esp),
                      azure={k: v for k, v in azure.items() if _differs(k, end, reference, (mine, azure))})


def azure_reference(topo: Topology, t: Tunnel) -> End:
    """The Azure end with Azure's own values (`dpd: fast` is the lab's: Azure's DPD is the timeout's)."""
    conn = topo.connections[t.connection]
    if conn.dpd == "fast" and t.azure.dpd_delay_s:
        return replace(t.azure, dpd_delay_s=dpd_delay(conn.dpd_timeout_seconds))
    return t.azure


def declared_settings(reference: End, ike: tuple[str, ...], esp: tuple[str, ...], ike_life_s: int,
                      child_life_s: int, dpd_delay_s: int | None, child_life_kb: int | None) -> SaSettings:
    """A device config's own values (strongSwan's defaults already filled in where it sets none) beside Azure's
    (`reference`). `child_life_kb` None: the config's byte limit was not read (ipsec.conf), shown as
    UNKNOWN_KB and never as a difference."""
    kb = UNKNOWN_KB if child_life_kb is None else child_life_kb
    end = replace(reference, ike=ike, esp=esp, ike_lifetime_s=ike_life_s,
                  child_lifetime=(child_life_s, kb), dpd_delay_s=dpd_delay_s or 0)
    out = _settings(end, reference)
    if kb == UNKNOWN_KB:
        return out.model_copy(update={"azure": {k: v for k, v in out.azure.items() if k != "child_lifetime_kb"}})
    return out


def sa_settings(topo: Topology) -> dict[tuple[str, str], SaSettings]:
    """(node, swanctl connection name) -> that end's settings with Azure's values where they differ."""
    out: dict[tuple[str, str], SaSettings] = {}
    for t in tunnels(topo):
        conn = topo.connections[t.connection]
        reference = azure_reference(topo, t)
        out[(t.azure.node, t.azure.conn)] = _settings(t.azure, reference)
        site = topo.sites.get(conn.site or "")
        if site is None or site.device.config is None:
            out[(t.peer.node, t.peer.conn)] = _settings(t.peer, reference)
    return out
