"""lab.p2s.pki: the certificates P2S needs, checked with `cryptography` itself (no charon)."""

from __future__ import annotations

from ipaddress import IPv4Address

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from lab.p2s import pki


def test_gateway_certificate_has_sans_and_ekus() -> None:
    ca = pki.make_ca("GatewayCA")
    gw = pki.issue(ca, "gw.example", dns="gw.example", ip=IPv4Address("203.0.113.10"), server=True)
    san = gw.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.example"]
    assert san.get_values_for_type(x509.IPAddress) == [IPv4Address("203.0.113.10")]
    eku = gw.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and pki.IKE_INTERMEDIATE in eku
    assert gw.cert.issuer == ca.cert.subject


def test_thumbprint_is_azure_style_sha1() -> None:
    cert = pki.make_ca("Root").cert
    tp = pki.thumbprint(cert)
    assert len(tp) == 40 and tp == tp.upper()


def test_crl_lists_the_revoked_serial_with_the_issuer_key_id() -> None:
    root = pki.make_ca("Root")
    client = pki.issue(root, "client4")
    crl = x509.load_pem_x509_crl(pki.pem_crl(pki.make_crl(root, [client.cert])))
    assert crl.get_revoked_certificate_by_serial_number(client.cert.serial_number) is not None
    # charon finds a CRL by the authority key identifier: without it, revocation silently never applies
    crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert crl.is_signature_valid(root.key.public_key())


def test_keys_round_trip_as_pkcs1_pem() -> None:
    issued = pki.issue(pki.make_ca("Root"), "c")
    pem = pki.pem_key(issued.key)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    back = pki.load_issued(pki.pem_cert(issued.cert), pem)
    assert back.cert == issued.cert
