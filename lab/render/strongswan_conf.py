"""strongswan.conf for one node: explicit plugin list (load_modular = no), logs and vici socket in /lab.

The explicit list matters: a drop-in under /etc/strongswan.d silently fails to load kernel-libipsec, and
`aesni` must come before `openssl` (the other order is 15x slower on this data plane).
"""

from __future__ import annotations

from typing import Literal

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


def render_strongswan_conf(dataplane: Dataplane) -> str:
    return f"""\
# Rendered by lab. charon runs with STRONGSWAN_CONF=/lab/strongswan.conf.
charon {{
  load_modular = no
  load = {plugin_list(dataplane)}
  install_virtual_ip = yes
  retransmit_timeout = 2.0
  retransmit_tries = 3
  retransmit_base = 1.4
  filelog {{
    charon {{
      path = /lab/charon.log
      time_format = %b %e %T
      default = 1
      ike = 2
      cfg = 1
      flush_line = yes
    }}
    keys {{
      # Negotiated ESP keys, for `lab verify` decryption and Wireshark. Never the PSK.
      path = /lab/keys.log
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
      socket = unix:///lab/run/charon.vici
    }}
  }}
}}
"""
