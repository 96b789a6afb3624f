"""Point-to-site PKI with `cryptography`: root CAs, the gateway's server certificate, client certificates, CRLs.

Pure functions return key/certificate objects; `pem_*` serialise them; the state-directory writer lives in
lab.p2s.creds. RSA-2048 and SHA-256 throughout (what the platform notes measured with EAP-TLS).
The gateway certificate comes from a CA of its own, not the client root: with one CA for both, a client
would accept another client's certificate as the gateway (platform notes: it must differ).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from ipaddress import IPv4Address

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")  # EKU ikeIntermediate (Windows/macOS clients want it)
VALID_DAYS = 365
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # not-before: fixed, so host clock skew never matters


@dataclass(frozen=True)
class Issued:
    """A private key and its certificate."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: str, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH).not_valid_after(EPOCH + dt.timedelta(days=VALID_DAYS * 10)))


def make_ca(cn: str) -> Issued:
    """A self-signed root (Azure: the root certificate whose public data is uploaded to the gateway)."""
    key = new_key()
    cert = (_builder(cn, _name(cn), key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(key, cert)


def issue(ca: Issued, cn: str, *, dns: str | None = None, ip: IPv4Address | None = None,
          server: bool = False) -> Issued:
    """An end-entity certificate: the gateway's (SANs, serverAuth + ikeIntermediate) or a client's."""
    key = new_key()
    eku = [ExtendedKeyUsageOID.SERVER_AUTH, IKE_INTERMEDIATE] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (_builder(cn, ca.cert.subject, key)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False))
    sans: list[x509.GeneralName] = [x509.DNSName(dns)] if dns else []
    sans += [x509.IPAddress(ip)] if ip else []
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def thumbprint(cert: x509.Certificate) -> str:
    """Azure's certificate thumbprint: the SHA-1 of the DER encoding, upper-case hex."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - an identifier, not a signature


def make_crl(ca: Issued, revoked: list[x509.Certificate]) -> x509.CertificateRevocationList:
    """A CRL of the lab's own root (only possible where the lab holds the root's key)."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(EPOCH).next_update(EPOCH + dt.timedelta(days=VALID_DAYS * 10))
               # charon finds a CRL by its issuer's key identifier: without this extension it never applies
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
               .add_extension(x509.CRLNumber(1), critical=False))
    for cert in revoked:
        entry = (x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(EPOCH)
                 .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca.key, hashes.SHA256())


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_crl(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def pem_key(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 ("RSA PRIVATE KEY"): what vici's load-key type rsa and swanctl's private/ both read."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def load_pem_cert(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def load_rsa_key(key_pem: bytes) -> rsa.RSAPrivateKey:
    """An unencrypted PEM RSA key: what the lab loads into charon over vici (type rsa)."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("only RSA keys are supported")
    return key


def load_issued(cert_pem: bytes, key_pem: bytes) -> Issued:
    return Issued(load_rsa_key(key_pem), load_pem_cert(cert_pem))


def key_matches(issued: Issued) -> bool:
    """Whether the key is the certificate's: a mismatched pair fails only later, inside EAP-TLS."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return (issued.key.public_key().public_bytes(serialization.Encoding.DER, spki)
            == issued.cert.public_key().public_bytes(serialization.Encoding.DER, spki))


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether `ca` signed `cert` (issuer name and signature): the gateway trusts only direct children of its
    roots, as the lab loads no intermediates."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def subject_is(cert: x509.Certificate, cn: str) -> bool:
    """Whether the subject is exactly CN=<cn>: the lab's clients use it as IKE and EAP identity."""
    return cert.subject == _name(cn)
