"""The facts of one dub that its output carries: which tool, which model, which audio and plate, which frames.

The same facts go into the C2PA assertion of a video (`assertion`) and, frame by frame, into EXR header string
attributes and PNG text chunks (`frame_text`), so a sequence frame copied on its own still says what it is."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..media.frames import sequence_files
from ..media.images import read_exr_header, read_png_text

TOOL = "lipsync"
ASSERTION_LABEL = "org.lipsync.dub"
PREFIX = "lipsync."  # EXR attribute / PNG keyword names


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def frame_facts(file: Path) -> dict[str, str]:
    """The lipsync.* header attributes of an EXR frame or text chunks of a PNG frame ({} where it carries none); an
    error for a damaged EXR frame."""
    suffix = file.suffix.lower()
    text = read_exr_header(file, whole=True) if suffix == ".exr" else read_png_text(file) if suffix == ".png" else {}
    return {key: str(value) for key, value in text.items() if key.startswith(PREFIX)}


def plate_sha256(path: Path, frames: tuple[int, int], sequence: bool) -> str:
    """The plate's file, or for a sequence its frame files over `frames` in order: what a receiver can hash again."""
    if not sequence:
        return file_sha256(path)
    digest = hashlib.sha256()
    for number, file in sorted(sequence_files(path).items()):
        if frames[0] <= number <= frames[1]:
            digest.update(bytes.fromhex(file_sha256(file)))
    return digest.hexdigest()


def frame_ranges(numbers: list[int]) -> list[dict[str, int]]:
    """[{"first": a, "last": b}, ...]: runs of consecutive frame numbers. Objects, not pairs: c2pa stores a short
    list of small integers as a byte string."""
    ranges: list[dict[str, int]] = []
    for number in sorted(numbers):
        if ranges and number == ranges[-1]["last"] + 1:
            ranges[-1]["last"] = number
        else:
            ranges.append({"first": number, "last": number})
    return ranges


@dataclass(frozen=True)
class DubFacts:
    plate: str  # file name only: a path would leak the studio's folder layout
    plate_sha256: str  # the file, or a sequence's frame files over the render (a video output is rendered whole)
    audio: str
    audio_sha256: str
    model: str
    model_sha256: str
    mouth: str  # 'footage' or 'rendered' (the model is the motion model) or 'generator'
    render: tuple[int, int]  # the frames this render wrote
    version: str = __version__
    renderer: tuple[str, str] | None = None  # 'rendered': the renderer's file name and sha256

    @classmethod
    def of_render(cls, plate: Path, sequence: bool, audio: Path, model: Path, mouth: str,
                  render: tuple[int, int], renderer: Path | None = None) -> DubFacts:
        return cls(plate.name, plate_sha256(plate, render, sequence), audio.name, file_sha256(audio),
                   model.name, file_sha256(model), mouth, render,
                   renderer=(renderer.name, file_sha256(renderer)) if renderer is not None else None)

    def assertion(self, dubbed: list[int]) -> dict:
        """The C2PA assertion's data: these facts and the dubbed frame ranges (the plate's own numbers)."""
        return {
            "tool": {"name": TOOL, "version": self.version},
            "model": {"name": self.model, "sha256": self.model_sha256, "mouth": self.mouth},
            "audio": {"name": self.audio, "sha256": self.audio_sha256},
            "plate": {"name": self.plate, "sha256": self.plate_sha256},
            "render": {"first": self.render[0], "last": self.render[1]},
            "dubbed_frames": frame_ranges(dubbed),
        } | ({"renderer": {"name": self.renderer[0], "sha256": self.renderer[1]}} if self.renderer else {})

    @classmethod
    def of_assertion(cls, data: dict) -> DubFacts:
        """The facts a signed output's `assertion` holds: another output of the same dub is signed with them."""
        return cls(data["plate"]["name"], data["plate"]["sha256"], data["audio"]["name"], data["audio"]["sha256"],
                   data["model"]["name"], data["model"]["sha256"], data["model"]["mouth"],
                   (data["render"]["first"], data["render"]["last"]), data["tool"]["version"],
                   (data["renderer"]["name"], data["renderer"]["sha256"]) if "renderer" in data else None)

    @classmethod
    def of_frame_text(cls, text: dict[str, str], plate: Path, plate_sha256: str, render: tuple[int, int]) -> DubFacts:
        """The facts of a render read back from one of its frames' `frame_text` (a farm's chunks, joined into a
        movie that `render` covers); a KeyError or ValueError where the frame carries none."""
        def named(key: str) -> tuple[str, str]:
            name, _, digest = text[PREFIX + key].rpartition(" sha256:")
            if not name or not digest:
                raise ValueError(f"{PREFIX}{key} is {text[PREFIX + key]!r}")
            return name, digest

        (model, model_sha), (audio, audio_sha) = named("model"), named("audio")
        renderer = named("renderer") if PREFIX + "renderer" in text else None
        return cls(plate.name, plate_sha256, audio, audio_sha, model, model_sha, text[PREFIX + "mouth"], render,
                   renderer=renderer)

    def frame_text(self, dubbed: bool, plate_sha256: str) -> dict[str, str]:
        """String attributes for one sequence frame: `dubbed` says whether its pixels were changed, `plate_sha256`
        is the hash of the plate file it was made from (the frame's own file for a sequence plate). Nothing that
        depends on the rendered range: farm chunks write the same frames as a whole render."""
        return {
            f"{PREFIX}tool": f"{TOOL} {self.version}",
            f"{PREFIX}dubbed": "yes" if dubbed else "no (passed through)",
            f"{PREFIX}model": f"{self.model} sha256:{self.model_sha256}",
            f"{PREFIX}mouth": self.mouth,
            f"{PREFIX}audio": f"{self.audio} sha256:{self.audio_sha256}",
            f"{PREFIX}plate": f"{self.plate} sha256:{plate_sha256}",
        } | ({f"{PREFIX}renderer": f"{self.renderer[0]} sha256:{self.renderer[1]}"} if self.renderer else {})
