"""A gateway SKU's aggregate throughput cap as tc: HTB on a link's egress, and on its ingress via an IFB.

Azure publishes one aggregate figure per SKU for all tunnels of a gateway; shaping the instance's
Internet-facing link (where every tunnel's ESP passes) caps them together. The kernel has no netem but has
HTB, ingress, IFB, u32 and mirred: ingress traffic is redirected to an IFB device whose egress HTB shapes it.
Everything happens inside the container's network namespace, opened by /proc/<pid>/ns/net; the ifb module
is loaded first with no devices of its own (lab.runtime.ifb_module), so the host namespace gets none.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from lab.errors import RuntimeBackendError
from lab.runtime.ifb_module import ensure_ifb_without_host_devices

ROOT_HANDLE = 0x10000  # 1:
CLASS_HANDLE = 0x10010  # 1:10, the default class: every packet
INGRESS_HANDLE = 0xFFFF0000  # ffff:
ETH_P_ALL = 0x0003
FRAME_BYTES = 1514
BURST_WINDOW_S = 0.002  # bytes the class may send back to back: 2 ms at the rate (less starves HTB at Gbps)
MIN_BURST_BYTES = 10 * FRAME_BYTES
MAX_QUANTUM_BYTES = 200_000  # HTB warns above this
IFB_TXQUEUELEN = 1000  # an IFB's default is 32 packets: its HTB leaf would drop TCP bursts at that depth
IFB_SUFFIX = "-ifb"
# Deleting what is not there: ENOENT (no such qdisc), EINVAL (a default qdisc cannot be deleted).
ABSENT = (errno.ENOENT, errno.EINVAL, errno.ENODEV)


@dataclass(frozen=True)
class HtbParams:
    """One HTB class with rate = ceil: a hard cap with no borrowing."""

    rate_bytes_s: int
    burst_bytes: int
    quantum_bytes: int

    @property
    def rate_mbps(self) -> float:
        return self.rate_bytes_s * 8 / 1e6


def htb_params(rate_mbps: int) -> HtbParams:
    """tc parameters for a cap of `rate_mbps` (10^6 bit/s, as Azure's SKU table counts)."""
    if rate_mbps <= 0:
        raise ValueError(f"rate must be positive, got {rate_mbps} Mbps")
    rate = rate_mbps * 1_000_000 // 8
    burst = max(int(rate * BURST_WINDOW_S), MIN_BURST_BYTES)
    quantum = min(max(rate // 1000, FRAME_BYTES), MAX_QUANTUM_BYTES)
    return HtbParams(rate_bytes_s=rate, burst_bytes=burst, quantum_bytes=quantum)


def ifb_name(iface: str) -> str:
    """The IFB that carries `iface`'s ingress, e.g. eth0-ifb (IFNAMSIZ allows 15 characters)."""
    name = f"{iface}{IFB_SUFFIX}"
    if len(name) > 15:
        raise ValueError(f"interface name {iface!r} too long for an IFB companion ({name!r})")
    return name


def shape_link(netns_path: str, subject: str, iface: str, params: HtbParams | None) -> None:
    """Replace whatever shaping `iface` has with `params` (None: leave it unshaped). Idempotent."""
    with _step(subject, f"open namespace {netns_path}"), IPRoute(netns=netns_path, flags=0) as ipr:
        index = _index(ipr, iface, subject)
        with _step(subject, f"remove shaping of {iface}"):
            _clear(ipr, index, ifb_name(iface))
        if params is None:
            return
        ensure_ifb_without_host_devices()  # before the first IFB: an autoload would add ifb0/ifb1 to the host
        with _step(subject, f"shape {iface} to {params.rate_mbps:g} Mbps"):
            _install(ipr, index, ifb_name(iface), params)


def _install(ipr: IPRoute, index: int, ifb: str, params: HtbParams) -> None:
    ipr.link("add", ifname=ifb, kind="ifb", txqlen=IFB_TXQUEUELEN)
    ifb_index = _index(ipr, ifb, "")
    ipr.link("set", index=ifb_index, state="up")
    for dev in (index, ifb_index):
        _htb(ipr, dev, params)
    ipr.tc("add", "ingress", index=index, handle=INGRESS_HANDLE)
    redirect = {"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": ifb_index}
    ipr.tc("add-filter", "u32", index=index, parent=INGRESS_HANDLE, protocol=ETH_P_ALL, prio=1,
           target=0, keys=["0x0/0x0+0"], action=redirect)


def _htb(ipr: IPRoute, index: int, params: HtbParams) -> None:
    ipr.tc("add", "htb", index=index, handle=ROOT_HANDLE, default=CLASS_HANDLE & 0xFFFF)
    ipr.tc("add-class", "htb", index=index, handle=CLASS_HANDLE, parent=ROOT_HANDLE,
           rate=params.rate_bytes_s, ceil=params.rate_bytes_s, burst=params.burst_bytes,
           cburst=params.burst_bytes, quantum=params.quantum_bytes)


def _clear(ipr: IPRoute, index: int, ifb: str) -> None:
    """Root and ingress qdiscs go back to the defaults; the IFB (and its HTB) is deleted."""
    with _absent_ok():
        ipr.tc("del", index=index, handle=ROOT_HANDLE, root=True)
    with _absent_ok():
        ipr.tc("del", "ingress", index=index, handle=INGRESS_HANDLE)
    found = ipr.link_lookup(ifname=ifb)
    if found:
        ipr.link("del", index=found[0])


@contextmanager
def _absent_ok() -> Iterator[None]:
    try:
        yield
    except NetlinkError as exc:
        if exc.code not in ABSENT:
            raise


@contextmanager
def _step(subject: str, what: str) -> Iterator[None]:
    """Netlink/OS failures become RuntimeBackendError naming the node and the step."""
    try:
        yield
    except NetlinkError as exc:
        raise RuntimeBackendError(f"{subject}: {what}: netlink error {exc.code} ({exc})",
                                  hint="the kernel needs HTB, ingress, IFB, u32 and mirred") from exc
    except OSError as exc:
        raise RuntimeBackendError(f"{subject}: {what}: {exc}") from exc


def _index(ipr: IPRoute, ifname: str, subject: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise RuntimeBackendError(f"{subject}: no interface {ifname!r} to shape", hint="lab inspect lists interfaces")
    return int(found[0])

