"""C2PA content credentials on a video, with the official c2pa-python bindings.

The manifest says the file was opened from the plate (a parent ingredient) and edited into "composite with trained
algorithmic media", and carries the dub's facts (facts.py) as the `org.lipsync.dub` assertion. Reading checks the
signature and the hash of the whole file against the manifest: any change to the pixels, the audio or the claims
makes it invalid. A signer that no trust list knows (the local identity, or a studio's own root) is reported as
such; it does not make the manifest invalid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..media.inputs import require_file
from .facts import ASSERTION_LABEL, TOOL, DubFacts
from .identity import ProvenanceError, SigningIdentity

MIME = {".mp4": "video/mp4", ".mov": "video/quicktime"}
UNTRUSTED = "signingCredential.untrusted"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


def manifest_definition(title: str, facts: DubFacts, dubbed: list[int]) -> dict:
    plate_format = MIME.get(Path(facts.plate).suffix.lower(), "application/octet-stream")
    agent = {"name": TOOL, "version": facts.version}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "ingredients": [{"title": facts.plate, "format": plate_format, "relationship": "parentOf", "label": "plate"}],
        "assertions": [
            # C2PA requires an edit to start from what it opened: the plate.
            {"label": "c2pa.actions.v2", "data": {"actions": [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": ["plate"]}},
                {"action": "c2pa.edited", "softwareAgent": agent, "digitalSourceType": COMPOSITE,
                 "description": "lips re-generated to match new dialogue"},
            ]}},
            {"label": ASSERTION_LABEL, "data": facts.assertion(dubbed)},
        ],
    }


def sign_video(path: Path, title: str, facts: DubFacts, dubbed: list[int], identity: SigningIdentity) -> None:
    """Embed signed credentials in the video at `path` (a temporary file of the render), in place."""
    import c2pa

    signed = path.with_name(path.name + ".signed")
    try:
        with signer(identity) as key, c2pa.Builder(manifest_definition(title, facts, dubbed)) as builder:
            with open(path, "rb") as source, open(signed, "w+b") as destination:
                builder.sign(key, MIME[Path(title).suffix.lower()], source, destination)
        os.replace(signed, path)
    except c2pa.C2paError as error:
        raise signing_failed(title, identity, error) from None
    finally:
        signed.unlink(missing_ok=True)


def signer(identity: SigningIdentity):
    """A c2pa signer for the identity (a context manager)."""
    import c2pa

    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(_algorithm(identity), identity.chain_pem, identity.key_pem, None))


def signing_failed(title: str, identity: SigningIdentity, error: Exception) -> ProvenanceError:
    return ProvenanceError(f"{title}: content credentials could not be signed with {identity.source} ({error})")


def _algorithm(identity: SigningIdentity) -> bytes:
    """The C2PA signing algorithm the key is made for."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(identity.key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ProvenanceError(f"{identity.source}: the signing key is not an unencrypted PEM private key ({error})") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in ("secp256r1", "secp384r1", "secp521r1"):
        return {"secp256r1": b"es256", "secp384r1": b"es384", "secp521r1": b"es512"}[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return b"ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return b"ed25519"
    raise ProvenanceError(f"{identity.source}: C2PA signs with ECDSA P-256/384/521, RSA-PSS or Ed25519 keys only")


@dataclass
class Credentials:
    """What a manifest says, and whether it holds."""
    valid: bool
    failures: list[str] = field(default_factory=list)  # C2PA failure codes with their explanations
    signer: str = ""
    trusted: bool = False
    dub: dict | None = None  # the org.lipsync.dub assertion
    actions: list[dict] = field(default_factory=list)
    assertions: dict[str, dict] = field(default_factory=dict)  # every assertion's data by label


def read_credentials(path: Path) -> Credentials | None:
    """The embedded manifest of `path`, checked; None when the file carries none."""
    import c2pa

    require_file(path)
    return read_manifest(lambda: c2pa.Reader(str(path)))


def read_manifest(open_reader) -> Credentials | None:
    """The active manifest of the c2pa.Reader that `open_reader()` opens, checked; None when there is none."""
    import c2pa

    try:
        with open_reader() as reader:
            manifest = reader.get_active_manifest() or {}
            state = reader.get_validation_state()
            results = (reader.get_validation_results() or {}).get("activeManifest", {})
    except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported):
        return None
    except c2pa.C2paError as error:
        # A manifest is there but cannot be parsed: as much a failure as a broken signature.
        return Credentials(valid=False, failures=[f"unreadable manifest: {error}"])
    assertions = {a["label"]: a["data"] for a in manifest.get("assertions", [])}
    info = manifest.get("signature_info", {})
    # An unknown signer is a matter of trust, said apart; it does not make the file's claims fail.
    failures = [entry for entry in results.get("failure", []) if entry["code"] != UNTRUSTED]
    return Credentials(
        valid=state in ("Valid", "Trusted") and not failures,
        failures=[f"{entry['code']}: {entry.get('explanation', '')}" for entry in failures],
        signer=", ".join(part for part in (info.get("issuer"), info.get("common_name")) if part),
        trusted=state == "Trusted",
        dub=assertions.get(ASSERTION_LABEL),
        actions=assertions.get("c2pa.actions.v2", {}).get("actions", []),
        assertions=assertions,
    )
