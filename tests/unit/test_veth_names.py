"""Bridge-side interface names in the lab namespace stay unique for a lab of hundreds of hashed names (500 P2S
clients: `azgw-client160-eth0` and `azgw-client73-eth0` share their first four hex digits), and a lab without
such a clash keeps the names it always had."""

from __future__ import annotations

from lab.plan_types import Iface, NodePlan, Plan
from lab.runtime import links


def _clients(count: int) -> Plan:
    return Plan(lab="x", nodes=tuple(NodePlan(f"azgw-client{i}", "p2s-client", (Iface("eth0", "inet", ()),))
                                     for i in range(1, count + 1)))


def test_five_hundred_clients_get_unique_short_names() -> None:
    names = links.veth_names(_clients(500))
    assert len(set(names.values())) == 500 and all(len(n) <= 15 for n in names.values())
    assert names[("azgw-client73", "eth0")] == "azgw-clien~d68f"  # the first one keeps its name
    assert names[("azgw-client160", "eth0")] not in ("azgw-clien~d68f", "azgw-client160-eth0")
    assert names[("azgw-client160", "eth0")].startswith("azgw-clien~")


def test_names_without_a_clash_are_unchanged() -> None:
    small, large = links.veth_names(_clients(159)), links.veth_names(_clients(500))
    assert all(large[key] == name for key, name in small.items())
    assert small[("azgw-client1", "eth0")] == "azgw-clien~" + small[("azgw-client1", "eth0")][-4:]


def test_names_are_deterministic() -> None:
    assert links.veth_names(_clients(300)) == links.veth_names(_clients(300))
