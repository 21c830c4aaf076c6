"""Text files people write by hand or save from a spreadsheet (shot lists, shot sidecars, motion curves).

Read in the encodings the common tools save (UTF-8, Excel's "CSV UTF-8" with its byte-order mark, UTF-16
"Unicode text"); anything else, and JSON that cannot be parsed, becomes one error line naming the file
and what to do, in the error class of the caller.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

from .errors import LipSyncError

# A byte-order mark names the encoding; without one, the file must be UTF-8.
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_text(path: Path, what: str, error: type[LipSyncError]) -> str:
    """The text of `path` (a `what`, e.g. 'shot list'), decoded by its byte-order mark, else as UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as reason:
        raise error(f"{path}: cannot read the {what} ({reason.strerror or reason})") from None
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as reason:
        how = "'CSV UTF-8' in a spreadsheet's Save As" if path.suffix.lower() == ".csv" else "UTF-8 in your editor"
        raise error(
            f"{path}: the {what} is not {encoding.upper().removesuffix('-SIG')} text (byte 0x{data[reason.start]:02x} "
            f"at offset {reason.start}; Latin-1 or another legacy encoding?): save it as {how}"
        ) from None


def parse_json(text: str, path: Path, what: str, error: type[LipSyncError]):
    """`text` parsed as JSON; what cannot be parsed (a syntax error, nesting deeper than Python's stack)
    is an error naming the file."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as reason:
        raise error(f"{path}: not a readable JSON {what} ({reason})") from None
    except RecursionError:
        raise error(f"{path}: not a readable JSON {what} (nested too deeply: is it the right file?)") from None


def quoted(value, limit: int = 60) -> str:
    """A JSON value as an error message quotes it: cut short, so a huge or deeply nested value cannot
    flood the message (or overflow the stack printing it)."""
    try:
        text = json.dumps(value)
    except (RecursionError, TypeError, ValueError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def csv_delimiter(header: str) -> str:
    """The delimiter of a CSV file by its header line: ',' or what a spreadsheet saves instead (';' where the
    comma is the decimal mark, a tab for 'Unicode text')."""
    return max((",", ";", "\t"), key=header.count) if header else ","
