"""Every dubbed output says what it is: what a studio delivering a dub, and a platform receiving one, would check.

Renders are a few frames of the GRID clip with the default mouth (the actor's own frames: no model needed); the
signing key is a throwaway made here, or the local identity made in the session's own config folder."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
from pathlib import Path

import c2pa
import cv2
import numpy as np
import OpenEXR
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from lipsync_core.cli import main as cli_main
from lipsync_core.dub.outputs import MASK_LAYER
from lipsync_core.dub.pipeline import dub
from lipsync_core.errors import MediaError
from lipsync_core.media.colour import srgb_decode, to_display
from lipsync_core.media.frames import open_plate
from lipsync_core.media.images import read_exr_header, read_image, read_png_text
from lipsync_core.media.writers import open_writer
from lipsync_core.models.motion import DEFAULT_MOTION_MODEL
from lipsync_core.provenance import sequence, watermark
from lipsync_core.provenance.facts import DubFacts
from lipsync_core.provenance.identity import LOCAL_NAME, config_dir, make_identity, signing_identity
from lipsync_core.provenance.sequence import sidecar_path
from lipsync_core.provenance.verify import BROKEN, NOTHING, VALID, claims, verify
from lipsync_core.shot import Shot

from dub_fixtures import dub_audio, plate  # noqa: F401 (pytest fixtures)

STUDIO = "Example Dubbing Studio (test key)"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def studio_key(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("studio")
    key, chain = make_identity(STUDIO)
    (folder / "key.pem").write_bytes(key)
    (folder / "chain.pem").write_bytes(chain)
    return folder / "key.pem", folder / "chain.pem"


@pytest.fixture(scope="module")
def signed_mp4(plate, dub_audio, studio_key, tmp_path_factory):
    """Frames 10-25 dubbed to .mp4, signed with the studio's key given in the environment."""
    out = tmp_path_factory.mktemp("signed") / "dubbed.mp4"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIPSYNC_C2PA_KEY", str(studio_key[0]))
        patch.setenv("LIPSYNC_C2PA_CERT", str(studio_key[1]))
        report = dub(plate, dub_audio, out, frames=(10, 25), device="cpu")
    return out, report


def test_video_carries_a_manifest_that_c2pa_validates_and_that_matches_the_render(signed_mp4, plate, dub_audio):
    out, report = signed_mp4
    with c2pa.Reader(str(out)) as reader:
        assert reader.get_validation_state() == "Valid"  # signature and the file's hash hold; the signer is ours
        manifest = reader.get_active_manifest()
    assert manifest["signature_info"]["issuer"] == STUDIO
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    edited = [a for a in assertions["c2pa.actions.v2"]["actions"] if a["action"] == "c2pa.edited"]
    assert edited[0]["digitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    facts = assertions["org.lipsync.dub"]
    assert facts["model"] == {"name": DEFAULT_MOTION_MODEL.name, "sha256": sha256(DEFAULT_MOTION_MODEL), "mouth": "footage"}
    assert facts["audio"]["sha256"] == sha256(dub_audio)
    assert facts["plate"] == {"name": plate.name, "sha256": sha256(plate)}
    assert report.dubbed == list(range(10, 26))
    assert facts["dubbed_frames"] == [{"first": 10, "last": 25}]
    assert facts["render"] == {"first": 10, "last": 25}

    result = verify(out)
    assert result.status == VALID
    assert result.mark.found and sha256(DEFAULT_MOTION_MODEL).startswith(result.mark.model_prefix)


def test_a_rendered_dubs_facts_name_the_renderer_in_the_credentials_and_in_every_frame():
    """`--mouth rendered` is made by two models: both must be named wherever the facts travel, and read back the
    same (a farm's chunks and a signed sequence rebuild the facts from the frames)."""
    facts = DubFacts("plate.mov", "a" * 64, "dub.wav", "b" * 64, "motion.safetensors", "c" * 64, "rendered", (1001, 1010),
                     renderer=("renderer.safetensors", "d" * 64))
    data = json.loads(json.dumps(facts.assertion([1001, 1002])))  # as the manifest stores it
    assert data["renderer"] == {"name": "renderer.safetensors", "sha256": "d" * 64}
    assert DubFacts.of_assertion(data) == facts
    text = facts.frame_text(True, "a" * 64)
    assert text["lipsync.renderer"] == "renderer.safetensors sha256:" + "d" * 64
    assert DubFacts.of_frame_text(text, Path("plate.mov"), "a" * 64, (1001, 1010)) == facts
    footage = DubFacts("plate.mov", "a" * 64, "dub.wav", "b" * 64, "motion.safetensors", "c" * 64, "footage", (1001, 1010))
    assert "renderer" not in footage.assertion([]) and "lipsync.renderer" not in footage.frame_text(True, "a" * 64)


def test_changing_one_byte_of_the_picture_makes_verify_report_it(signed_mp4, tmp_path, capsys):
    out, _ = signed_mp4
    data = bytearray(out.read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + len(data) // 3] ^= 0x01  # one bit of the coded picture, well inside the media data
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))

    assert cli_main(["verify", str(tampered)]) == BROKEN
    printed = capsys.readouterr().out
    assert "content credentials: INVALID" in printed and "assertion.bmffHash.mismatch" in printed


def test_media_that_claims_nothing_exits_non_zero(plate, capsys):
    assert cli_main(["verify", str(plate)]) == NOTHING
    assert "content credentials: none" in capsys.readouterr().out


def test_watermark_decodes_after_reencoding_strips_the_credentials(signed_mp4, tmp_path):
    """A platform re-encodes an upload: the manifest is gone, the mark still names the model."""
    out, _ = signed_mp4
    again = tmp_path / "reupload.mp4"
    with open_plate(out) as source, open_writer(again, fps=25, width=source.info.width, height=source.info.height) as writer:
        for frame in source:
            writer.write(frame.image)

    result = verify(again)
    assert result.credentials is None
    assert result.mark.found and sha256(DEFAULT_MOTION_MODEL).startswith(result.mark.model_prefix)
    assert result.status == VALID


@pytest.fixture(scope="module")
def exr_plate(plate, tmp_path_factory) -> Path:
    """A half-float EXR plate with the attributes a compositor expects kept, and the facts of an earlier dub
    that this render must replace rather than pass on."""
    pattern = tmp_path_factory.mktemp("exr") / "plate.####.exr"
    header = {"owner": "lipsync tests", "lipsync.model": "an earlier model sha256:0000"}
    with open_plate(plate, frames=(0, 11)) as source, \
            open_writer(pattern, fps=25, width=360, height=288, inputs=[plate], header=header) as out:
        for frame in source:
            out.write(srgb_decode(to_display(frame.image)).astype(np.float16), frame.number + 1001)
    return pattern


def test_exr_headers_carry_the_facts_over_the_plates_own_and_pixels_outside_the_mask_stay(exr_plate, dub_audio, tmp_path):
    out = tmp_path / "dubbed.####.exr"
    report = dub(exr_plate, dub_audio, out, frames=(1003, 1008), device="cpu")
    assert report.dubbed == list(range(1003, 1009))
    for number in report.dubbed:
        path = tmp_path / f"dubbed.{number}.exr"
        header = read_exr_header(path)
        assert header["owner"] == "lipsync tests"
        assert header["lipsync.model"] == f"{DEFAULT_MOTION_MODEL.name} sha256:{sha256(DEFAULT_MOTION_MODEL)}"
        assert header["lipsync.audio"].endswith(sha256(dub_audio))
        assert header["lipsync.dubbed"] == "yes"
        assert header["lipsync.plate"] == f"plate.####.exr sha256:{sha256(exr_plate.parent / f'plate.{number}.exr')}"
        with OpenEXR.File(str(path)) as exr:
            mask = exr.channels()[MASK_LAYER].pixels
        source, result = read_image(exr_plate.parent / f"plate.{number}.exr"), read_image(path)
        assert np.array_equal(source[mask == 0], result[mask == 0])  # the watermark stays inside the mask
    result = verify(out)
    assert sorted(result.frame_facts) == report.dubbed and result.mark.found and result.status == VALID

    halved = watermark.Decoder()  # the frames at half size: the mark is found at twice that
    for number in report.dubbed:
        linear = read_image(tmp_path / f"dubbed.{number}.exr").astype(np.float32)
        halved.add(cv2.resize(linear, (180, 144), interpolation=cv2.INTER_AREA))
    assert halved.reading().found and halved.reading().scale == 2

    # The rest of the shot, resumed: the sequence is complete, and signed.
    assert not (tmp_path / "dubbed.exr.c2pa").exists()
    dub(exr_plate, dub_audio, out, resume=True, device="cpu")
    result = verify(out)
    assert result.status == VALID and result.credentials.valid and result.sidecar == tmp_path / "dubbed.exr.c2pa"
    assert result.credentials.dub["render"] == {"first": 1001, "last": 1012}
    assert (result.frame_check.signed, result.frame_check.changed) == (12, [])


def test_no_watermark_keeps_the_facts_and_leaves_no_mark(plate, dub_audio, tmp_path, capsys):
    out = tmp_path / "plain.####.png"
    code = cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "20-25", "--no-watermark",
                     "--device", "cpu", "--progress-json"])
    assert code == 0
    lines = [json.loads(line).get("line") for line in capsys.readouterr().out.splitlines()]
    assert any("no watermark (--no-watermark)" in line for line in lines if line)
    text = read_png_text(tmp_path / "plain.0022.png")
    assert text["lipsync.dubbed"] == "yes" and text["lipsync.tool"].startswith("lipsync ")
    result = verify(out)
    assert not result.mark.found and len(result.frame_facts) == 6 and result.status == VALID


def test_without_a_configured_key_a_labelled_local_identity_is_made_once_in_the_config_folder():
    first = signing_identity()
    folder = config_dir() / "c2pa-local"
    assert first.source.startswith(str(folder))
    assert stat.S_IMODE((folder / "signer.key.pem").stat().st_mode) == 0o600
    signer = x509.load_pem_x509_certificates(first.chain_pem)[0]
    assert signer.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == LOCAL_NAME
    assert signing_identity().key_pem == first.key_pem  # made once, then reused


def test_a_key_c2pa_refuses_fails_the_render_in_one_line_and_leaves_no_video(plate, dub_audio, studio_key, tmp_path, monkeypatch, capsys):
    key, chain = studio_key
    root_only = tmp_path / "root.pem"
    root_only.write_bytes(chain.read_bytes().split(b"-----END CERTIFICATE-----\n", 1)[1])  # not the key's certificate
    monkeypatch.setenv("LIPSYNC_C2PA_KEY", str(key))
    monkeypatch.setenv("LIPSYNC_C2PA_CERT", str(root_only))
    out = tmp_path / "out" / "dubbed.mp4"
    assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "30-32", "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "content credentials could not be signed" in error and "LIPSYNC_C2PA_KEY" in error
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # nothing unsigned or half-signed left


def test_half_a_configured_key_is_an_error_before_any_frame_is_rendered(plate, dub_audio, studio_key, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIPSYNC_C2PA_KEY", str(studio_key[0]))
    out = tmp_path / "dubbed.mp4"
    assert cli_main(["dub", str(plate), str(dub_audio), "-o", str(out), "--frames", "30-32", "--device", "cpu"]) == 2
    assert "set both LIPSYNC_C2PA_KEY and LIPSYNC_C2PA_CERT" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def short_shot(plate) -> Path:
    """A shot of 8 frames of the GRID clip: a sequence of it is complete after 8 frames."""
    return Shot(path=plate.parent / "short.lipsync.json", source=plate.name, frames=(10, 17)).save()


@pytest.fixture(scope="module")
def signed_png(plate, dub_audio, short_shot, studio_key, tmp_path_factory) -> Path:
    """The short shot dubbed to a PNG sequence in two chunks, signed by the chunk that completes it."""
    out = tmp_path_factory.mktemp("sequence") / "dubbed.####.png"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIPSYNC_C2PA_KEY", str(studio_key[0]))
        patch.setenv("LIPSYNC_C2PA_CERT", str(studio_key[1]))
        first = dub(plate, dub_audio, out, shot=short_shot, frames=(10, 13), device="cpu")
        assert not sidecar_path(out).exists()  # frames 14-17 of the shot are not there yet
        assert any("once the shot's frames 14-17 are rendered too" in note for note in first.notes)
        second = dub(plate, dub_audio, out, shot=short_shot, frames=(14, 17), resume=True, device="cpu")
    assert any("signed content credentials in dubbed.png.c2pa" in note for note in second.notes)
    return out


def test_an_exr_sequence_and_its_png_proxies_of_the_same_name_keep_their_own_credentials(signed_png, plate, dub_audio,
                                                                                      short_shot, tmp_path):
    folder = tmp_path / "both"
    shutil.copytree(signed_png.parent, folder)  # the PNG sequence and its sidecar, as signed
    exr = folder / "dubbed.####.exr"
    report = dub(plate, dub_audio, exr, shot=short_shot, device="cpu")
    assert any("signed content credentials in dubbed.exr.c2pa" in note for note in report.notes)
    for out in (exr, folder / signed_png.name):
        result = verify(out)
        assert result.status == VALID and result.credentials.valid, out
        assert (result.frame_check.signed, result.frame_check.changed, result.frame_check.extra) == (8, [], []), out
    assert {p.name for p in folder.glob("*.c2pa")} == {"dubbed.exr.c2pa", "dubbed.png.c2pa"}
    # A frame damaged before signing (a bad copy between farm chunks) is not vouched for: signing it again fails.
    damaged = folder / "dubbed.0013.exr"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with pytest.raises(MediaError, match="dubbed.0013.exr: cannot be read as OpenEXR"):
        sequence.seal(exr, plate, False, (10, 17), signing_identity())


def test_a_complete_sequence_gets_a_sidecar_that_c2pa_validates_with_the_facts_and_every_frames_hash(signed_png, plate, dub_audio):
    folder = signed_png.parent
    sidecar = folder / "dubbed.png.c2pa"
    frames = [folder / f"dubbed.{n:04d}.png" for n in range(10, 18)]
    index = [{"frame": n, "name": f.name, "sha256": sha256(f)} for n, f in zip(range(10, 18), frames)]
    asset = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()  # what the manifest is bound to
    with c2pa.Reader("application/json", io.BytesIO(asset), sidecar.read_bytes()) as reader:
        assert reader.get_validation_state() == "Valid"
        manifest = reader.get_active_manifest()
    assert manifest["signature_info"]["issuer"] == STUDIO
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    assert assertions["org.lipsync.frames"]["frames"] == index
    facts = assertions["org.lipsync.dub"]
    assert facts["model"] == {"name": DEFAULT_MOTION_MODEL.name, "sha256": sha256(DEFAULT_MOTION_MODEL), "mouth": "footage"}
    assert facts["audio"]["sha256"] == sha256(dub_audio) and facts["plate"] == {"name": plate.name, "sha256": sha256(plate)}
    assert facts["render"] == {"first": 10, "last": 17} and facts["dubbed_frames"] == [{"first": 10, "last": 17}]
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".partial")]

    for media in (signed_png, frames[3]):  # the pattern, or any one frame
        result = verify(media)
        assert result.status == VALID and result.credentials.valid and result.sidecar == sidecar
        assert (result.frame_check.signed, result.frame_check.changed, result.frame_check.missing) == (8, [], [])
    # What the panel shows on opening it: the signature checked, the frames left to `verify`.
    assert "content credentials valid in dubbed.png.c2pa, frames not checked here" in claims(signed_png)


def test_editing_one_frame_of_a_signed_sequence_makes_verify_report_that_frame(signed_png, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(signed_png.parent, folder)
    edited = folder / "dubbed.0013.png"
    image = read_image(edited)
    image[0, 0] ^= 1  # one bit of one pixel, far from the mouth
    cv2.imwrite(str(edited), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (folder / "dubbed.0016.png").unlink()
    shutil.copy(folder / "dubbed.0010.png", folder / "dubbed.0018.png")

    assert cli_main(["verify", str(folder / "dubbed.####.png")]) == BROKEN
    printed = capsys.readouterr().out
    assert "content credentials (sidecar dubbed.png.c2pa): valid" in printed  # the claims hold; a frame does not
    assert "    CHANGED since signing: 13\n" in printed
    assert "    missing: 16\n" in printed and "    not in the credentials (added): 18\n" in printed
    assert "signed frames: 8, 6 unchanged" in printed


def test_the_sidecar_takes_its_name_whole_or_not_at_all(signed_png, plate, short_shot, tmp_path, monkeypatch):
    folder = tmp_path / "copy"
    shutil.copytree(signed_png.parent, folder)
    (folder / "dubbed.png.c2pa").unlink()
    out = folder / "dubbed.####.png"

    def no_room(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sequence.os, "replace", no_room)
    with pytest.raises(MediaError, match="dubbed.png.c2pa"):
        sequence.seal(out, plate, False, (10, 17), signing_identity())
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".png")) == [
        ".dubbed.####.png.render.json"]  # no sidecar, and nothing half-written beside the frames
    monkeypatch.undo()
    with pytest.raises(MediaError, match="frames 18 are not rendered yet"):
        sequence.seal(out, plate, False, (10, 18), signing_identity())
    assert not (folder / "dubbed.png.c2pa").exists()


def test_a_sidecar_whose_frame_index_was_forged_is_invalid(signed_png, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(signed_png.parent, folder)
    edited = folder / "dubbed.0013.png"
    image = read_image(edited)
    image[0, 0] ^= 1
    cv2.imwrite(str(edited), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    # The index made to vouch for the edited frame: the signature no longer covers the claim.
    store = (folder / "dubbed.png.c2pa").read_bytes()
    old = sha256(signed_png.parent / "dubbed.0013.png").encode()
    assert store.count(old) == 1
    (folder / "dubbed.png.c2pa").write_bytes(store.replace(old, sha256(edited).encode()))

    assert cli_main(["verify", str(folder / "dubbed.####.png")]) == BROKEN
    printed = capsys.readouterr().out
    assert "content credentials (sidecar dubbed.png.c2pa): INVALID" in printed
    assert "failed: assertion.hashedURI.mismatch" in printed and "org.lipsync.frames" in printed
    assert "signed frames: not checked" in printed  # a forged index says nothing about the frames
