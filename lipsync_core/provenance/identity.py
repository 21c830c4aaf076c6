"""Who signs the content credentials: the studio's key and certificate chain when configured, else a local identity.

Where the key comes from, first found wins:
  LIPSYNC_C2PA_KEY and LIPSYNC_C2PA_CERT   PEM private key, PEM certificate chain (signer first, then its issuers)
  CONFIG/provenance.json                   {"key": "path", "cert": "path"} (relative paths: from that folder)
  CONFIG/c2pa-local/                       a local identity, made on first use

CONFIG is LIPSYNC_CONFIG_DIR, else ~/.config/lipsync. C2PA refuses a self-signed signing certificate, so the local
identity is a small chain: a local root (never trusted by anyone else) that issues the signing certificate. Both
say "LipSync local identity (self-signed, not a studio)" so a receiver sees at once that no studio vouches for it.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import LipSyncError

LOCAL_NAME = "LipSync local identity (self-signed, not a studio)"
KEY_ENV, CERT_ENV = "LIPSYNC_C2PA_KEY", "LIPSYNC_C2PA_CERT"


class ProvenanceError(LipSyncError):
    """Content credentials cannot be made or read as asked (a missing key, an unreadable certificate)."""


@dataclass(frozen=True)
class SigningIdentity:
    key_pem: bytes
    chain_pem: bytes
    source: str  # where it came from, for messages


def config_dir() -> Path:
    return Path(os.environ.get("LIPSYNC_CONFIG_DIR") or Path.home() / ".config" / "lipsync")


def signing_identity() -> SigningIdentity:
    key, cert = os.environ.get(KEY_ENV), os.environ.get(CERT_ENV)
    if bool(key) != bool(cert):
        raise ProvenanceError(f"set both {KEY_ENV} and {CERT_ENV} (a PEM key and its PEM certificate chain), or neither")
    if key:
        return _load(Path(key), Path(cert), f"{KEY_ENV}/{CERT_ENV}")
    folder = config_dir()
    config = folder / "provenance.json"
    if config.exists():
        try:
            paths = json.loads(config.read_text())
            return _load(folder / paths["key"], folder / paths["cert"], str(config))
        except (ValueError, KeyError, TypeError) as error:
            raise ProvenanceError(f'{config}: expected {{"key": "path", "cert": "path"}} ({error})') from None
    return _local(folder / "c2pa-local")


def _load(key: Path, cert: Path, source: str) -> SigningIdentity:
    try:
        return SigningIdentity(key.read_bytes(), cert.read_bytes(), source)
    except OSError as error:
        raise ProvenanceError(f"{source}: cannot read the signing key or certificate ({error})") from None


def _local(folder: Path) -> SigningIdentity:
    key, chain = folder / "signer.key.pem", folder / "chain.pem"
    if not folder.exists():
        # Made aside and renamed into place whole: farm chunks starting at once on one machine keep one identity,
        # never one render's key beside another's certificate.
        staging = folder.with_name(f".{folder.name}.{os.getpid()}")
        staging.mkdir(parents=True, exist_ok=True)
        key_pem, chain_pem = make_identity(LOCAL_NAME)
        descriptor = os.open(staging / key.name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private to this user
        with os.fdopen(descriptor, "wb") as file:
            file.write(key_pem)
        (staging / chain.name).write_bytes(chain_pem)
        try:
            os.rename(staging, folder)
        except OSError:  # another render made it first: use that one
            shutil.rmtree(staging, ignore_errors=True)
    return _load(key, chain, f"{folder} (local identity)")


def make_identity(organisation: str, days: int = 3650) -> tuple[bytes, bytes]:
    """(PEM key, PEM chain) of a new ES256 signing certificate issued by a new root, both named `organisation`:
    the profile C2PA requires of a signer (not a CA, digital signature, e-mail protection)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                          x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign, crl_sign=not sign,
                             encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public, ca: bool, issuer: x509.Name) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer).public_key(public)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
                .add_extension(usage(sign=not ca), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))

    root = certificate("root", root_key.public_key(), True, name("root")).sign(root_key, hashes.SHA256())
    signer = (certificate("signer", key.public_key(), False, root.subject)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
              .sign(root_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, signer.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
