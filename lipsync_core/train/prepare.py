"""`lipsync train prepare`: clips -> the compact training cache (one .npz per clip).

Per clip: frames conformed to 25 fps, the chosen face tracked, aligned crops at the config's size,
pose-aware masks in crop space, landmarks in crop coordinates, and the log-mel of the clip's own
audio. Incremental: a clip whose cache file is newer than its sources is not redone.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import LipSyncError
from ..face import geometry
from ..face.tracker import to_uint8_rgb, track_frames
from ..media.audio import load_audio, log_mel
from ..media.frames import open_plate
from .data import CACHE_FPS, PreparedClip, save_clip

MIN_FACE_FRAMES = 10


@dataclass(frozen=True)
class ClipSource:
    video: Path
    audio: Path | None  # None: the video's own audio stream
    split: str = "train"
    speaker: str = ""
    license: str = ""

    @property
    def name(self) -> str:
        return self.video.stem


def clips_from_manifest(manifest: Path, splits: tuple[str, ...] = ("train", "dev"), kinds: tuple[str, ...] = ("av",)) -> list[ClipSource]:
    """The talking clips of `../shared/data/manifest.csv` (or a studio's own manifest with the same columns)."""
    root = manifest.parent
    with manifest.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] in kinds and r.get("split", "train") in splits]
    return [
        ClipSource(root / r["file"], root / r["paired_audio"] if r.get("paired_audio") else None,
                   r.get("split", "train"), r.get("speaker", ""), r.get("license", ""))
        for r in rows
    ]


def clips_from_folder(folder: Path, split: str = "train") -> list[ClipSource]:
    """Every video in a folder; a .wav of the same stem, if present, is its audio."""
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".mp4", ".mov", ".mpg", ".mkv", ".avi", ".flv"})
    return [ClipSource(v, v.with_suffix(".wav") if v.with_suffix(".wav").exists() else None, split) for v in videos]


def prepare_clip(source: ClipSource, size: int) -> PreparedClip:
    with open_plate(source.video, conform_fps=CACHE_FPS) as plate:
        start_time = plate.info.start_time
        faces = track_frames((to_uint8_rgb(f.image) for f in plate), fps=CACHE_FPS)
        if not faces:
            raise LipSyncError(f"{source.video}: no face found")
        face = faces[0]
        crops = np.zeros((len(plate), size, size, 3), np.uint8)
        masks = np.zeros((len(plate), size, size), np.uint8)
        landmarks = np.full((len(plate), 478, 2), np.nan, np.float32)
        valid = np.zeros(len(plate), bool)
        for i, frame in enumerate(plate):
            # The same per-person alignment and mask as at render time (FaceTrack knows the face's shape).
            matrix = face.alignment(i, size)
            if matrix is None:
                continue
            crops[i] = geometry.warp_to_crop(to_uint8_rgb(frame.image), matrix, size)
            masks[i] = np.round(face.mask(i, (size, size), matrix) * 255)
            landmarks[i] = geometry.transform_points(face.landmarks[i], matrix)
            valid[i] = True
    audio = load_audio(source.audio or source.video, offset_s=0.0 if source.audio else start_time)
    meta = {"source": str(source.video), "audio": str(source.audio or source.video), "split": source.split,
            "speaker": source.speaker, "license": source.license, "fps": CACHE_FPS, "size": size}
    return PreparedClip(source.name, crops, masks, landmarks, valid, log_mel(audio), meta)


def _up_to_date(out: Path, source: ClipSource) -> bool:
    if not out.exists():
        return False
    newest = max(p.stat().st_mtime for p in (source.video, source.audio) if p is not None)
    return out.stat().st_mtime > newest


def prepare(sources: list[ClipSource], cache_dir: Path, size: int) -> dict[str, str]:
    """Prepare every clip not already cached. Returns {clip name: reason} for the clips skipped."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    skipped = {}
    bar = tqdm(sources, desc="prepare", unit="clip")
    for source in bar:
        bar.set_postfix_str(source.name[:40])
        out = cache_dir / f"{source.name}.npz"
        if _up_to_date(out, source):
            continue
        try:
            clip = prepare_clip(source, size)
        except LipSyncError as error:
            skipped[source.name] = str(error)
            continue
        if clip.valid.sum() < MIN_FACE_FRAMES:
            skipped[source.name] = f"a face in only {clip.valid.sum()} of {len(clip)} frames"
            continue
        save_clip(out, clip)
    return skipped
