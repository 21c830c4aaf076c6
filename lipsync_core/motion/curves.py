"""Motion curves on disk: `lipsync motion ... -o motion.json` (or .csv), for an artist to read, plot and edit.

JSON:
    {"version": 1, "kind": "lipsync-motion", "units": "...", "points": [61, 146, ...],
     "rest": [[x, y], ...], "style": "...", "facts": {...},
     "frames": [{"frame": 1001, "time": 0.0, "opening": 3.1, "width": -0.4, "silent": false,
                 "shape": [[x, y], ...]}, ...]}
CSV: a header `frame,time,opening,width,silent,x61,y61,x146,...`, then the rest shape as a row whose
frame is `rest`, then one row per frame.

Units: pixels of a 256-px aligned face crop. `opening` and `width` are the inner-lip gap and the
corner-to-corner width over the actor's resting mouth's. The curves are what an artist edits: on reading,
a frame whose `opening` or `width` no longer matches its shape has its shape moved along the model's
opening / width direction until it does, so editing one number per frame is enough.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import LipSyncError
from ..models.motion import MotionModel
from ..textfiles import parse_json, quoted, read_text
from .shape import CROP_UNITS, SHAPE_POINTS, opening, width
from .stage import MotionCurves

VERSION = 1
KIND = "lipsync-motion"
UNITS = (f"pixels of a {CROP_UNITS}-px aligned face crop; opening and width are relative to the actor's resting "
         "mouth (rest)")
DECIMALS = 3
# What a file may ask of a mouth, in the crop's pixels: an opening or width past the face crop's size, or a point off
# the crop by its own size, is a typing slip (300 for 3.00), not a mouth; the footage would be stretched to it. The
# sidecar's strongest controls on the most open actor of the training clips reach about 250 (gain 3, open 2).
MOVE_RANGE = (-CROP_UNITS, CROP_UNITS)
POINT_RANGE = (-CROP_UNITS, 2 * CROP_UNITS)


class CurvesError(LipSyncError):
    """A motion curves file that cannot be used; the message names the file and the field."""


def write_curves(path: str | Path, curves: MotionCurves) -> Path:
    """Write `curves` as JSON or CSV (by the suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(_to_json(curves), separators=(",", ":"))
    elif suffix == ".csv":
        text = _to_csv(curves)
    else:
        raise CurvesError(f"{path}: motion curves are written as .json or .csv, not {path.suffix or 'no suffix'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_curves(path: str | Path, model: MotionModel) -> MotionCurves:
    """Read a curves file written by `write_curves` (and perhaps edited), checked field by field."""
    path = Path(path)
    text = read_text(path, "motion curves file", CurvesError)
    rows = _rows_from_json(path, text) if path.suffix.lower() == ".json" else _rows_from_csv(path, text)
    rest, frames, times, openings, widths, silent, shapes, style, facts = rows
    if len(frames) == 0:
        raise CurvesError(f"{path}: frames: holds no frame")
    if np.any(np.diff(frames) <= 0):
        raise CurvesError(f"{path}: frames: frame numbers must increase, one row per frame")
    # The edited numbers win over the shape they came with (a difference within the file's rounding is no edit).
    open_direction = model.basis.open_direction.reshape(-1, 2)
    wide_direction = model.basis.wide_direction.reshape(-1, 2)
    tolerance = 2 * 10.0**-DECIMALS
    open_edit = openings - (opening(shapes) - opening(rest))
    shapes = shapes + np.where(np.abs(open_edit) > tolerance, open_edit, 0.0)[:, None, None] * open_direction
    wide_edit = widths - (width(shapes) - width(rest))
    shapes = shapes + np.where(np.abs(wide_edit) > tolerance, wide_edit, 0.0)[:, None, None] * wide_direction
    return MotionCurves(frames, times, shapes.astype(np.float32), rest, silent, style, facts)


# ------------------------------------------------------------------------------------------- JSON


def _to_json(curves: MotionCurves) -> dict:
    return {
        "version": VERSION, "kind": KIND, "units": UNITS, "points": list(SHAPE_POINTS),
        "rest": np.round(curves.rest, DECIMALS).tolist(), "style": curves.style, "facts": curves.facts,
        "frames": [
            {"frame": int(f), "time": round(float(t), 5), "opening": round(float(o), DECIMALS),
             "width": round(float(w), DECIMALS), "silent": bool(s), "shape": np.round(shape, DECIMALS).tolist()}
            for f, t, o, w, s, shape in zip(curves.frames, curves.times, curves.opening, curves.width, curves.silent, curves.shapes)
        ],
    }


def _rows_from_json(path: Path, text: str):
    data = parse_json(text, path, "motion curves file", CurvesError)
    check = _Fields(path)
    if not isinstance(data, dict):
        check.fail("", "must be a JSON object")
    for key in ("version", "kind", "points", "rest", "frames"):
        if key not in data:
            check.fail(key, "is missing")
    if data["kind"] != KIND:
        check.fail("kind", f"is {quoted(data['kind'])}, not {json.dumps(KIND)}: not a motion curves file")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool) or data["version"] > VERSION:
        check.fail("version", f"is {quoted(data['version'])}: this lipsync reads version {VERSION}")
    check.points(data["points"], "points")
    rest = check.shape(data["rest"], "rest")
    frames_data = data["frames"]
    if not isinstance(frames_data, list):
        check.fail("frames", "must be a list of frames")
    frames, times, openings, widths, silent, shapes = [], [], [], [], [], []
    for i, row in enumerate(frames_data):
        where = f"frames[{i}]"
        if not isinstance(row, dict):
            check.fail(where, "must be an object")
        for key in ("frame", "time", "opening", "width", "shape"):
            if key not in row:
                check.fail(f"{where}.{key}", "is missing")
        frames.append(check.integer(row["frame"], f"{where}.frame"))
        times.append(check.number(row["time"], f"{where}.time"))
        openings.append(check.number(row["opening"], f"{where}.opening", within=MOVE_RANGE))
        widths.append(check.number(row["width"], f"{where}.width", within=MOVE_RANGE))
        if not isinstance(row.get("silent", False), bool):
            check.fail(f"{where}.silent", f"must be true or false, not {quoted(row['silent'])}")
        silent.append(row.get("silent", False))
        shapes.append(check.shape(row["shape"], f"{where}.shape"))
    style = data.get("style") if isinstance(data.get("style"), str) else ""
    facts = data.get("facts") if isinstance(data.get("facts"), dict) else {}
    return (rest, np.array(frames, np.int64), np.array(times), np.array(openings), np.array(widths),
            np.array(silent, bool), np.array(shapes, np.float32).reshape(-1, len(SHAPE_POINTS), 2), style, facts)


# -------------------------------------------------------------------------------------------- CSV


def _header() -> list[str]:
    return ["frame", "time", "opening", "width", "silent"] + [f"{axis}{p}" for p in SHAPE_POINTS for axis in "xy"]


def _to_csv(curves: MotionCurves) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_header())
    writer.writerow(["rest", "", "", "", ""] + [f"{v:.{DECIMALS}f}" for v in curves.rest.reshape(-1)])
    for f, t, o, w, s, shape in zip(curves.frames, curves.times, curves.opening, curves.width, curves.silent, curves.shapes):
        writer.writerow([int(f), f"{t:.5f}", f"{o:.{DECIMALS}f}", f"{w:.{DECIMALS}f}", int(bool(s))]
                        + [f"{v:.{DECIMALS}f}" for v in shape.reshape(-1)])
    return out.getvalue()


def _rows_from_csv(path: Path, text: str):
    check = _Fields(path)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != _header():
        missing = [name for name in _header() if not rows or name not in rows[0]]
        check.fail("header", f"must be frame,time,opening,width,silent,x61,y61,... ({len(_header())} columns)"
                   + (f"; missing {', '.join(missing[:5])}" if missing else ""))
    if len(rows) < 2 or rows[1][:1] != ["rest"]:
        check.fail("line 2", "must be the rest shape (its frame column reads 'rest')")
    columns = len(_header())
    for line, row in enumerate(rows[1:], 2):
        if len(row) != columns:
            check.fail(f"line {line}", f"has {len(row)} columns, the header {columns}")
    rest = np.array([check.number(v, f"line 2 column {_header()[5 + i]}", text=True, within=POINT_RANGE)
                     for i, v in enumerate(rows[1][5:])],
                    np.float32).reshape(-1, 2)
    frames, times, openings, widths, silent, shapes = [], [], [], [], [], []
    for line, row in enumerate(rows[2:], 3):
        frames.append(check.integer(row[0], f"line {line} frame", text=True))
        times.append(check.number(row[1], f"line {line} time", text=True))
        openings.append(check.number(row[2], f"line {line} opening", text=True, within=MOVE_RANGE))
        widths.append(check.number(row[3], f"line {line} width", text=True, within=MOVE_RANGE))
        if row[4] not in ("0", "1"):
            check.fail(f"line {line} silent", f"must be 0 or 1, not {row[4]!r}")
        silent.append(row[4] == "1")
        shapes.append([check.number(v, f"line {line} {_header()[5 + i]}", text=True, within=POINT_RANGE)
                       for i, v in enumerate(row[5:])])
    return (rest, np.array(frames, np.int64), np.array(times), np.array(openings), np.array(widths),
            np.array(silent, bool), np.array(shapes, np.float32).reshape(-1, len(SHAPE_POINTS), 2), "", {})


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


class _Fields:
    """Raises CurvesError naming the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, name: str, problem: str):
        raise CurvesError(f"{self.path}: {name or 'the file'} {problem}")

    def number(self, value, name: str, text: bool = False, within: tuple[float, float] | None = None) -> float:
        if text:
            try:
                value = float(value)
            except ValueError:
                self.fail(name, f"must be a number, not {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            self.fail(name, f"must be a finite number, not {quoted(value) if not text else value}")
        if within is not None and not within[0] <= value <= within[1]:
            self.fail(name, f"is {value:g}, past what a mouth can do: {within[0]:g} to {within[1]:g} "
                            f"(pixels of the {CROP_UNITS}-px face crop)")
        return float(value)

    def integer(self, value, name: str, text: bool = False) -> int:
        if text:
            if not value.lstrip("-").isdigit():
                self.fail(name, f"must be a whole number, not {value!r}")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be a whole number, not {quoted(value)}")
        return value

    def points(self, value, name: str) -> None:
        if value != list(SHAPE_POINTS):
            self.fail(name, f"must list the {len(SHAPE_POINTS)} face-mesh points this version writes (lips and jaw)")

    def shape(self, value, name: str) -> np.ndarray:
        if not isinstance(value, list) or len(value) != len(SHAPE_POINTS):
            self.fail(name, f"must be {len(SHAPE_POINTS)} [x, y] points")
        for i, point in enumerate(value):
            if not isinstance(point, list) or len(point) != 2:
                self.fail(f"{name}[{i}]", f"must be [x, y], not {quoted(point)}")
            self.number(point[0], f"{name}[{i}][0]", within=POINT_RANGE)
            self.number(point[1], f"{name}[{i}][1]", within=POINT_RANGE)
        return np.array(value, np.float32)
