"""What every backend does in the lab namespace on this machine (the hub), shared so it is written once.

The lab namespace `lab-<lab>` holds the segment bridges and the bridge-side ends of every link, whether a
node's link is a veth (one engine) or a VXLAN pair (swarm): captures, link up/down and the namespace's
removal are the same for both backends.
"""

from __future__ import annotations

from pathlib import Path

from lab.plan_types import Plan
from lab.runtime import links
from lab.runtime.base import namespace_name
from lab.runtime.capture import TcpdumpCapture


class HubNamespace:
    """Mixin for a Runtime: the methods that act on the lab namespace only."""

    def lab_namespaces(self) -> list[str]:
        return links.lab_namespaces()

    def capture(self, lab: str, segment: str, path: Path) -> TcpdumpCapture:
        """tcpdump on the segment's bridge in the lab namespace: every frame of the segment crosses it (a
        swarm's remote nodes reach it over VXLAN), see lab.runtime.capture."""
        return TcpdumpCapture(namespace_name(lab), segment, path)

    def set_link(self, plan: Plan, node: str, iface: str, up: bool) -> None:
        """The bridge-side end of (node, iface) up or down (see links.set_link_state)."""
        links.set_link_state(plan, node, iface, up)


def remove_lab_namespace(lab: str) -> list[str]:
    """Delete the lab namespace (its bridges and link ends go with it): ["namespace lab-<lab>"] or [] if gone."""
    name = namespace_name(lab)
    return [f"namespace {name}"] if links.remove_namespace(name) else []
