"""strongswan.conf for one node: explicit plugin list (load_modular = no), logs and vici socket in /lab.

The explicit list matters: a drop-in under /etc/strongswan.d silently fails to load kernel-libipsec, and
`aesni` must come before `openssl` (the other order is 15x slower on this data plane).
"""

from __future__ import annotations

from typing import Literal

from lab.timing import scaled

Dataplane = Literal["libipsec", "kernel"]

BASE_PLUGINS = (
    "random nonce aesni openssl pem pkcs1 x509 revocation constraints pubkey curve25519 sha1 sha2 "
    "aes hmac gcm kdf"
)
# IKE packets carry this mark so they skip libipsec's routing table 220 (any-to-any selectors).
IKE_FWMARK = "0x42"


def plugin_list(dataplane: Dataplane) -> str:
    kernel = "kernel-libipsec kernel-netlink" if dataplane == "libipsec" else "kernel-netlink"
    return f"{BASE_PLUGINS} {kernel} socket-default vici updown"


# (timeout s, tries, base): the default window is 2 + 2.8 + 3.9 + 5.5 = 14 s (lab.render.tunnels); `dpd: fast`
# nodes give up on a silent peer after 0.5 + 0.5 = 1 s (strongSwan's own test suite uses 1.0, 2, 1). The fast
# timeout follows LAB_TIME_SCALE: in the emulated kernel-test guest on a loaded host a live peer's DPD answer took
# longer than 1 s, and 0.5 s IKE_SA_INIT retransmits piled up half-open SAs until the responder sent COOKIEs.
DEFAULT_RETRANSMIT = ("2.0", "3", "1.4")
FAST_RETRANSMIT = ("0.5", "1", "1")


LEGACY_STROKE = """
    stroke {
      # Legacy ipsec.conf devices (lab/device/byo.py): starter hands conns to charon over stroke.
      secrets_file = /lab/ipsec.secrets
    }"""


def render_strongswan_conf(dataplane: Dataplane, fast_dpd: bool = False, legacy: bool = False,
                          eap: bool = False, base: str = "/lab", install_routes: bool = True) -> str:
    """`base`: the charon's directory in the container (a tunnel's charon: /lab/tunnels/<conn>);
    `legacy`: also load `stroke` (a BYO ipsec.conf + ipsec.secrets site, started by strongswan-starter);
    `eap`: eap-identity and eap-tls for point-to-site (gateway and clients, docs/p2s.md); `install_routes`
    False: the node's tunnels route through XFRM interfaces (lab/render/xfrm_ifaces.py), and a route of charon's
    in table 220 via eth0 would bypass them (kernel data plane only: libipsec does not honour it)."""
    timeout, tries, rt_base = FAST_RETRANSMIT if fast_dpd else DEFAULT_RETRANSMIT
    if fast_dpd:  # 0.5 s is too short where everything runs 10-20x slower (LAB_TIME_SCALE, lab/timing.py)
        timeout = f"{scaled(float(timeout)):g}"
    plugins = plugin_list(dataplane) + (" stroke" if legacy else "") + (" eap-identity eap-tls" if eap else "")
    stroke = LEGACY_STROKE if legacy else ""
    routes = "" if install_routes else "\n  install_routes = no"
    return f"""\
# Rendered by lab. charon runs with STRONGSWAN_CONF={base}/strongswan.conf.
charon {{
  load_modular = no
  load = {plugins}
  install_virtual_ip = yes{routes}
  retransmit_timeout = {timeout}
  retransmit_tries = {tries}
  retransmit_base = {rt_base}
  filelog {{
    charon {{
      path = {base}/charon.log
      time_format = %b %e %T
      default = 1
      ike = 2
      cfg = 1
      flush_line = yes
    }}
    keys {{
      # Negotiated ESP keys, for `lab verify` decryption and Wireshark. Never the PSK.
      path = {base}/keys.log
      default = 0
      chd = 4
      flush_line = yes
    }}
  }}
  plugins {{
    socket-default {{
      fwmark = {IKE_FWMARK}
    }}
    kernel-netlink {{
      fwmark = !{IKE_FWMARK}
    }}
    vici {{
      socket = unix://{base}/run/charon.vici
    }}{stroke}
  }}
}}
"""
