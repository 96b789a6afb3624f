"""How long P2S clients take to reach their VNet again after a gateway event (failover or charon restart).

The clock starts before the event is triggered; each client then pings its VNet host once per try (1 s
timeout) until one answer comes back. Resolution: one `exec` + ping round (about 0.1-0.3 s here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel

from lab.core import Lab
from lab.errors import LabError
from lab.ha import agents as ha
from lab.ha.failover_run import inject
from lab.ops import faults
from lab.p2s.model import ClientSpec, clients
from lab.p2s.run import refused
from lab.runtime.base import Runtime

WORKERS = 16


class Reconnect(BaseModel):
    """Seconds from the trigger until each client reached its VNet host (None: not within the timeout)."""

    event: str
    trigger_s: float
    clients: dict[str, float | None]

    @property
    def all_back_s(self) -> float | None:
        times = list(self.clients.values())
        return None if not times or None in times else max(t for t in times if t is not None)


def _target(lab: Lab, c: ClientSpec) -> str:
    return str(sorted(lab.topo.gateways[c.gateway].vnet.hosts.items())[0][1])


def _until_back(lab: Lab, runtime: Runtime, c: ClientSpec, t0: float, timeout: float) -> float | None:
    target = _target(lab, c)
    while time.monotonic() - t0 < timeout:
        if runtime.exec(lab.topo.name, c.name, ["ping", "-c", "1", "-W", "1", target], timeout=5).ok:
            return round(time.monotonic() - t0, 2)
        time.sleep(0.05)
    return None


def measure_reconnect(lab: Lab, runtime: Runtime, trigger: Callable[[], str], gateway: str,
                      timeout: float = 90.0) -> Reconnect:
    """Run `trigger` (returns what it did), then wait for every connectable client of `gateway`."""
    why = refused(lab)
    mine = [c for c in clients(lab.topo) if c.gateway == gateway and c.name not in why
            and lab.topo.gateways[gateway].vnet.hosts]
    t0 = time.monotonic()
    event = trigger()
    trigger_s = round(time.monotonic() - t0, 2)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {c.name: pool.submit(_until_back, lab, runtime, c, t0, timeout) for c in mine}
        times = {name: f.result() for name, f in futures.items()}
    return Reconnect(event=event, trigger_s=trigger_s, clients=times)


def gateway_event(lab: Lab, gateway: str, event: str, runtime: Runtime, connect: Callable[..., object],
                  dataplane: str) -> Callable[[], str]:
    """The trigger for `lab p2s reconnect`: a planned active-standby failover (lab.ha.failover_run, the HA
    engineer's), or a charon restart of instance 0 (which must be the active one: a standby's charon
    would come back without its warm config)."""
    if event not in ("planned", "charon-restart"):
        raise LabError(f"--event {event!r}: unknown", hint="planned or charon-restart")
    pair = ha.pair_of(lab, gateway)
    if event == "charon-restart" and pair and ha.active_of(lab, pair) != f"{gateway}-0":
        raise LabError(f"gateway {gateway!r}: {gateway}-0 is not the active instance", hint="lab restore first")

    def trigger() -> str:
        if event == "planned":
            return inject(lab, gateway, "planned", runtime, connect, dataplane)  # type: ignore[arg-type]
        fault = faults.Fault(kind="charon-restart", node=f"{gateway}-0")
        faults.inject(lab, fault, runtime, connect, dataplane)  # type: ignore[arg-type]
        return fault.describe()

    return trigger
