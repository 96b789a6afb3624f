"""strongSwan's own values for what a device config leaves out, defined once: the device parser fills them in,
so the `lifetime-mismatch` check, `lab inspect` and `lab ui` all compare and show what charon really uses.

swanctl.conf(5) (https://docs.strongswan.org/docs/latest/swanctl/swanctlConf.html): IKE rekey_time 4h; CHILD_SA
rekey_time 1h, life_time (the hard lifetime) rekey_time + 10 %, rand_time life_time - rekey_time.
ipsec.conf(5) (https://docs.strongswan.org/docs/latest/config/rekeying.html, strongswan.git man/ipsec.conf.5.in):
ikelifetime 3h and lifetime 1h are hard lifetimes; charon rekeys margintime (9m) before them, minus up to
rekeyfuzz (100 %) of margintime. The lab reads no ipsec.conf rekey schedule, so margintime needs no constant.
"""

from __future__ import annotations

_PRF = "prfsha256-prfsha384-prfsha512-prfaesxcbc-prfaescmac-prfsha1"
_DH = "ecp256-ecp384-ecp521-ecp256bp-ecp384bp-ecp512bp-curve25519-curve448-modp3072-modp4096-modp6144-modp8192-modp2048"
# strongSwan's default proposals (proposal_create_default / _aead in src/libcharon/config/proposal.c, 5.9): what
# `default` in swanctl.conf stands for, and what ipsec.conf appends to an ike=/esp= list without a final `!`.
STRONGSWAN_DEFAULT_IKE = (
    "aes128-aes192-aes256-aes128ctr-aes192ctr-aes256ctr-camellia128-camellia192-camellia256-3des-"
    f"sha256-sha384-sha512-aesxcbc-aescmac-sha1-{_PRF}-{_DH}",
    "aes128gcm16-aes192gcm16-aes256gcm16-aes128gcm12-aes192gcm12-aes256gcm12-aes128gcm8-aes192gcm8-aes256gcm8-"
    f"aes128ccm16-aes192ccm16-aes256ccm16-chacha20poly1305-{_PRF}-{_DH}",
)
STRONGSWAN_DEFAULT_ESP = ("aes128-aes192-aes256-sha256-sha384-sha512-sha1-aesxcbc",)

SWANCTL_IKE_REKEY_S = 14_400  # connections.<conn>.rekey_time [4h]
SWANCTL_CHILD_REKEY_S = 3_600  # children.<child>.rekey_time [1h]
IPSEC_CONF_IKE_LIFETIME_S = 10_800  # conn ikelifetime [3h]
IPSEC_CONF_LIFETIME_S = 3_600  # conn lifetime (keylife) [1h]: the CHILD_SA's hard lifetime


def swanctl_child_life(rekey: int | None, life: int | None) -> int:
    """A swanctl CHILD_SA's hard lifetime: its life_time, else rekey_time (default 1h) + 10 %."""
    return life or (rekey or SWANCTL_CHILD_REKEY_S) * 110 // 100


SWANCTL_CHILD_LIFE_S = swanctl_child_life(None, None)  # 3960 s: what `lab inspect` shows for an unset life_time


def swanctl_child_schedule(rekey: int | None, life: int | None, rand: int | None) -> tuple[int, int]:
    """swanctl's CHILD_SA (rekey_time, rand_time) with its defaults filled in (rand_time: life_time -
    rekey_time). charon rekeys at rekey_time minus a random value below rand_time."""
    rekey = rekey or SWANCTL_CHILD_REKEY_S
    return rekey, rand if rand is not None else max(swanctl_child_life(rekey, life) - rekey, 0)
