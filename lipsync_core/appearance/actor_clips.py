"""The footage an actor file was personalized on, lent as appearance footage by `lipsync dub --actor ACTOR`.

`lipsync personalize` records each clip of the actor in the actor file's facts (under "footage", as "appearance"):
its path, its path from the actor file's folder, the frames used, and its fingerprint (media/fingerprint.py). A dub
with --actor adds them to the footage the mouth is taken from, each checked against the shot's actor like any added
clip. A clip is looked for at its recorded path, then at its recorded place beside the actor file (an actor folder
moved or copied with its clips), and used only where its fingerprint still matches.

A clip found nowhere, or changed since (another take under the same name, a re-encode; a copy that did not keep
the file's time reads as changed too), is left out with a note
saying so and how to give it again (--appearance, which checks it anew). Not an error: the actor file vouches
for the footage it was made from, not for whatever has its name now, and the shot's own frames still make a whole
dub (the coverage note says when more footage would help). An error would stop every dub of this actor, on every
shot and farm task, because one reel went to an archive.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import LipSyncError, ModelError
from ..media.fingerprint import plate_fingerprint
from ..media.frames import open_plate
from ..models.actor import ACTOR_VERSION
from ..models.checkpoint import file_metadata
from .added import AddedClip


def clip_record(clip: Path, frames: tuple[int, int] | None, actor: Path) -> dict:
    """What an actor file records of one of its clips: `frames` (the plate's numbering; None: the whole clip)."""
    with open_plate(clip, frames=frames) as plate:
        span = (plate.info.first, plate.info.last)
    path = clip.resolve()
    return {"path": str(path), "relative": Path(os.path.relpath(path, actor.resolve().parent)).as_posix(),
            "frames": list(span), "fingerprint": plate_fingerprint(path, span)}


def actor_clips(actor: str | Path) -> tuple[list[AddedClip], list[str]]:
    """The clips `actor` was personalized on that are still there as they were, and a note for each that is not."""
    actor = Path(actor)
    records = _records(actor)
    if not records:
        return [], [f"{actor}: records no clips of the actor (made by an older lipsync): give them with --appearance"]
    given = f"the footage of {actor.name}"
    clips, notes = [], []
    for record in records:
        frames = tuple(record["frames"])
        readable = {}
        for candidate in dict.fromkeys([Path(record["path"]), actor.parent / record["relative"]]):
            try:
                readable[candidate] = plate_fingerprint(candidate, frames)
            except (LipSyncError, OSError):
                continue  # not there, or no longer holding these frames
        same = [path for path, fingerprint in readable.items() if fingerprint == record["fingerprint"]]
        if same:
            clips.append(AddedClip(same[0], given, frames))
        elif readable:
            notes.append(f"{next(iter(readable))}: changed since {actor.name} was personalized on it (its size, time "
                         "or first and last frames differ: another file under the name, re-encoded, or copied without "
                         "its times): not used; if it still shows the actor, give it with --appearance")
        else:
            notes.append(f"{record['path']}: not found (nor as {record['relative']} beside {actor.name}): {actor.name}'s "
                         "footage there is not used; give where it is now with --appearance")
    return clips, notes


def recorded_paths(actor: str | Path) -> list[Path]:
    """Every path `actor` records its clips at, without opening them: what a dub must never write over. Quick, so
    a file that is no actor file is refused before any analysis."""
    return [Path(record["path"]) for record in _records(Path(actor))]


def _records(actor: Path) -> list[dict]:
    """What the actor file records of each of its clips (see clip_record); an error when it is no actor file."""
    metadata = file_metadata(actor)
    if metadata.get("format") != ACTOR_VERSION:
        raise ModelError(f"{actor}: not an actor file (format {metadata.get('format')!r}): --actor takes the file "
                         "`lipsync personalize` writes")
    try:
        footage = json.loads(metadata.get("facts", "{}")).get("footage", [])
    except (ValueError, AttributeError):
        raise ModelError(f"{actor}: its facts are not readable JSON: personalize the actor again") from None
    return [entry["appearance"] for entry in footage if isinstance(entry, dict) and "appearance" in entry]
