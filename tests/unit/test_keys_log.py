"""charon's key log -> ESP keys per SA (the sample is a real AES-GCM-256 log of the reference lab)."""

from __future__ import annotations

from lab.probes.keys_log import parse_keys_log

KEY_I = "8a23f9cf9a160e352837e6a708d452ed2a6fbab970fd2c69bec820fcb526b5f0eb6d48e6"
KEY_R = "2b2330af0caab3a9f08cd77a5bb66b4c6785c0d4724f5dd58f70b030c5e2184a2316f792"
GATEWAY_LOG = """\
11[IKE] initiating IKE_SA azgw-onprem[1] to 198.51.100.10
13[CHD] CHILD_SA azgw-onprem{1} state change: CREATED => INSTALLING
13[CHD]   using AES_GCM_16 for encryption
13[CHD] seed => 64 bytes @ 0x7f493af5e960
13[CHD]    0: BF C7 97 67 6F AB FD 0F F8 AC BC 1C 3C 3E A3 9A  ...go.......<>..
13[CHD]   16: CC 56 B1 D1 AB CB A0 16 79 26 CB AE 8B FE EE 0C  .V......y&......
13[CHD]   32: DB 2C 91 35 60 E0 B3 75 55 74 09 47 7B AF EC 69  .,.5`..uUt.G{..i
13[CHD]   48: 75 62 6C 5B F3 2F 57 5B 9F FB 41 DB 12 CD 98 4F  ubl[./W[..A....O
13[CHD] encryption initiator key => 36 bytes @ 0x557859db6280
13[CHD]    0: 8A 23 F9 CF 9A 16 0E 35 28 37 E6 A7 08 D4 52 ED  .#.....5(7....R.
13[CHD]   16: 2A 6F BA B9 70 FD 2C 69 BE C8 20 FC B5 26 B5 F0  *o..p.,i.. ..&..
13[CHD]   32: EB 6D 48 E6                                      .mH.
13[CHD] encryption responder key => 36 bytes @ 0x557859db56f0
13[CHD]    0: 2B 23 30 AF 0C AA B3 A9 F0 8C D7 7A 5B B6 6B 4C  +#0........z[.kL
13[CHD]   16: 67 85 C0 D4 72 4F 5D D5 8F 70 B0 30 C5 E2 18 4A  g...rO]..p.0...J
13[CHD]   32: 23 16 F7 92                                      #...
13[CHD] adding inbound ESP SA
13[CHD]   SPI 0x28d35b82, src 198.51.100.10 dst 203.0.113.10
13[CHD] adding outbound ESP SA
13[CHD]   SPI 0x74e6028a, src 203.0.113.10 dst 198.51.100.10
13[IKE] CHILD_SA azgw-onprem{1} established with SPIs 28d35b82_i 74e6028a_o and TS 10.1.0.0/16 === 10.2.0.0/16
"""


def test_real_gcm_log_gives_both_sas_with_both_candidate_keys() -> None:
    sas = parse_keys_log(GATEWAY_LOG, "azgw-0")
    assert [(s.direction, s.spi, s.src, s.dst) for s in sas] == [
        ("inbound", 0x28D35B82, "198.51.100.10", "203.0.113.10"),
        ("outbound", 0x74E6028A, "203.0.113.10", "198.51.100.10"),
    ]
    for sa in sas:
        assert sa.node == "azgw-0" and sa.encr_alg == "AES_GCM_16" and sa.integ_alg is None
        assert [(c.role, c.encr_key.hex(), c.integ_key) for c in sa.candidates] == [
            ("initiator", KEY_I, b""), ("responder", KEY_R, b"")]


def test_interleaved_threads_keep_their_own_keys() -> None:
    a = [ln for ln in GATEWAY_LOG.splitlines() if ln.startswith("13[CHD]")]
    b = [ln.replace("13[CHD]", "07[CHD]").replace("SPI 0x28d35b82", "SPI 0x00000a01")
         .replace("SPI 0x74e6028a", "SPI 0x00000a02").replace("8A 23 F9 CF", "11 11 11 11") for ln in a]
    mixed = "\n".join(x for pair in zip(a, b, strict=True) for x in pair)
    sas = parse_keys_log(mixed, "n")
    keys = {s.spi: s.candidates[0].encr_key.hex()[:8] for s in sas}
    assert keys == {0x28D35B82: "8a23f9cf", 0x74E6028A: "8a23f9cf", 0xA01: "11111111", 0xA02: "11111111"}


def test_cbc_suite_carries_integrity_keys() -> None:
    log = """\
05[CHD]   using AES_CBC for encryption
05[CHD]   using HMAC_SHA2_256_128 for integrity
05[CHD] encryption initiator key => 16 bytes @ 0x1
05[CHD]    0: 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F  ................
05[CHD] encryption responder key => 16 bytes @ 0x2
05[CHD]    0: 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F  ................
05[CHD] integrity initiator key => 32 bytes @ 0x3
05[CHD]    0: 20 21 22 23 24 25 26 27 28 29 2A 2B 2C 2D 2E 2F   !"#$%&'()*+,-./
05[CHD]   16: 30 31 32 33 34 35 36 37 38 39 3A 3B 3C 3D 3E 3F  0123456789:;<=>?
05[CHD] integrity responder key => 32 bytes @ 0x4
05[CHD]    0: 40 41 42 43 44 45 46 47 48 49 4A 4B 4C 4D 4E 4F  @ABCDEFGHIJKLMNO
05[CHD]   16: 50 51 52 53 54 55 56 57 58 59 5A 5B 5C 5D 5E 5F  PQRSTUVWXYZ[\\]^_
05[CHD] adding outbound ESP SA
05[CHD]   SPI 0xc0000001, src 192.0.2.1 dst 192.0.2.2
"""
    (sa,) = parse_keys_log(log, "n")
    assert (sa.encr_alg, sa.integ_alg, sa.direction) == ("AES_CBC", "HMAC_SHA2_256_128", "outbound")
    i, r = sa.candidates
    assert i.encr_key == bytes(range(16)) and i.integ_key == bytes(range(32, 64))
    assert r.encr_key == bytes(range(16, 32)) and r.integ_key == bytes(range(64, 96))


def test_time_prefixed_lines_and_unrelated_lines() -> None:
    stamped = "\n".join(f"Jan  1 00:00:00 {ln}" for ln in GATEWAY_LOG.splitlines())
    assert len(parse_keys_log(stamped, "n")) == 2
    assert parse_keys_log("01[IKE] nothing here\n02[CHD] adding inbound ESP SA\n", "n") == []
