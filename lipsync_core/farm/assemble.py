"""A farm job's last step. For a movie output: the chunks its render tasks wrote (a PNG sequence, lossless) joined
into one movie with the dub muxed, written as `lipsync dub` writes the movie in one go. For an image sequence, which
the render tasks write themselves: the sequence signed (its C2PA sidecar, `provenance.sequence`) once every frame of
the job's range is there; a render task finishing the shot's last frames signs it too, but only this step knows the
job's range when it is a part of the shot.

What makes the two the same: the frames are the ones a single render would encode (a chunk equals the same frames of
a full render, see `dub.batch`), the writer is the same (`DubOutput`), and the dub starts at the same time (the audio
is anchored at the shot's first frame through the shot's face track, which the job's analyze step cached).
"""

from __future__ import annotations

from pathlib import Path

from ..dub.outputs import DubOutput, output_kind
from ..dub.pipeline import _planned_range
from ..dub.timing import offset_seconds
from ..errors import LipSyncError, MediaError
from ..face.analyze import shot_track
from ..media.destination import check_writable, make_folder, remove_folders
from ..media.frames import _ranges_text, open_plate, sequence_files
from ..media.ocio import plate_space
from ..media.writers import _media_key, refuse_inputs
from ..ops.generate import PEAK_HANDLING
from ..provenance import sequence as sequence_credentials
from ..provenance.facts import PREFIX, DubFacts, frame_facts, plate_sha256
from ..provenance.identity import signing_identity
from ..shot import Shot

MOVIES = ("mp4",)
SEQUENCES = ("exr", "png")
DUBBED = PREFIX + "dubbed"


def assemble(plate: str | Path, audio: str | Path | None, chunks: str | Path, output: str | Path, *,
             frames: tuple[int, int] | None = None, shot: str | Path | None = None, audio_offset: str | float = "0",
             audio_peaks: str = PEAK_HANDLING[0], overwrite: bool = False, colourspace: str | None = None,
             ocio: str | Path | None = None) -> Path:
    """Write `output` from the rendered frames `chunks` of `plate` dubbed with `audio` (the same `frames`, `shot`,
    `audio_offset`, `audio_peaks` and colourspace as the render tasks: the face track they cached is found by it);
    for an image sequence (`chunks` is `output`), sign it."""
    plate, chunks, output = Path(plate), Path(chunks), Path(output)
    kind = output_kind(output)
    if kind not in (*MOVIES, *SEQUENCES):
        raise LipSyncError(f"{output}: a farm joins chunks into an .mp4 or signs an image sequence; a .mov cannot be "
                           "joined from chunks")
    sequence = kind in SEQUENCES
    if sequence and _media_key(chunks) != _media_key(output):
        raise LipSyncError(f"{output}: the render tasks write an image sequence themselves: give it as CHUNKS too")
    refuse_inputs(output, [p for p in (plate, audio, None if sequence else chunks) if p is not None])
    span, planned = _planned_range(plate, shot, frames)
    try:
        written = sequence_files(chunks)
    except MediaError:
        written = {}
    missing = [n for n in range(span[0], span[1] + 1) if n not in written]
    if missing:
        raise MediaError(f"{chunks}: frames {_ranges_text(missing)} are not rendered yet: run their render tasks "
                         "(again) before assembling")
    if sequence:
        return sequence_credentials.seal(output, plate, planned.kind == "sequence", span, signing_identity())
    if output.exists() and not overwrite:
        raise MediaError(f"{output} exists: give --overwrite to replace it, or choose another -o")
    sidecar = Shot.for_plate(plate, shot)
    audio = Path(audio) if audio is not None else sidecar.audio_path
    # The timing of `dub.pipeline.Renderer`: dub time = frame time - the shot's first frame's time - offset.
    with open_plate(plate, frames=sidecar.frames) as opened:
        info = opened.info
    track = shot_track(plate, sidecar, (info.first, info.last), space=plate_space(colourspace, ocio))
    start_s = float(track.times[track.index(span[0])] - track.times[0] - offset_seconds(audio_offset, info.fps))
    # The render tasks' frames carry the dub's facts: the movie's content credentials are made from them.
    texts = {n: frame_facts(written[n]) for n in range(span[0], span[1] + 1)}
    try:
        facts = DubFacts.of_frame_text(texts[span[0]], plate, plate_sha256(plate, span, info.kind == "sequence"), span)
    except (KeyError, ValueError) as error:
        raise MediaError(f"{written[span[0]]}: carries no dub facts ({error}): render the chunks with this version of "
                         "lipsync") from None
    created = make_folder(output)
    try:
        check_writable(output, info.width * info.height * 4)
        # Already watermarked by the render tasks: mark=False.
        with DubOutput(output, info, audio, start_s, [plate, audio], audio_peaks, facts, mark=False) as out, \
                open_plate(chunks, frames=span) as rendered:
            for frame in rendered:
                out.write(frame.number, frame.image, None, dubbed=texts[frame.number].get(DUBBED) == "yes")
    except BaseException:
        remove_folders(created)
        raise
    return output
