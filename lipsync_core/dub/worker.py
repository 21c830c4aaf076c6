"""A `lipsync` command run in a worker process, for host adapters (Nuke, Resolve): a crash in the
render cannot take the host down, and Cancel stops it cleanly.

Standard library only: this runs inside the host's own Python (Nuke's, Resolve's), which has neither
torch nor the media stack. The worker runs in the Python that has them:

    $LIPSYNC_PYTHON                 when set (a site's render environment)
    <repository>/.venv/bin/python   the one `make` sets up (Scripts\\python.exe on Windows)
    this Python                     when it is neither (the tests; a host run from the venv itself)

Progress comes as JSON lines on the worker's stdout (`lipsync dub --progress-json`):
{"stage": "render", "done": 12, "total": 75}, then the report as {"line": "wrote ..."}. Cancel sends SIGTERM, on which `lipsync dub` stops
between frames without leaving a half-written file, then kills the worker if it has not stopped
within `grace` seconds.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import LipSyncError

REPO = Path(__file__).resolve().parents[2]
PYTHON_ENV = "LIPSYNC_PYTHON"


class WorkerError(LipSyncError):
    """The worker stopped with an error; the message is the CLI's own error line."""


class WorkerCancelled(LipSyncError):
    """The user cancelled; the worker was stopped."""


def python() -> str:
    """The Python that runs the core (see the module doc)."""
    chosen = os.environ.get(PYTHON_ENV)
    if chosen:
        return chosen
    for venv in (REPO / ".venv" / "bin" / "python", REPO / ".venv" / "Scripts" / "python.exe"):
        if venv.is_file():
            return str(venv)
    return sys.executable


def cli_arguments(operation, values: dict) -> list[str]:
    """`lipsync` arguments for `operation` (an ops.Operation) from parameter values, in the schema's
    order and spelling; values that are None (not given) are left out, as are bools left off."""
    from ..ops.cli import flags

    arguments = [*operation.command[1:]]  # the words after the first: `train model` -> ["model"]
    for param in operation.all():
        value = values.get(param.name)
        if value is None or not param.cli:
            continue
        if param.type == "bool":
            if value != param.default:
                arguments.append(flags(param)[0])
            continue
        if param.type == "frames":
            value = f"{value[0]}-{value[1]}"
        text = str(value)
        if param.positional:
            arguments.append(text)
        elif text.startswith("-"):
            arguments.append(f"{flags(param)[-1]}={text}")  # argparse would read '-3f' as an option
        else:
            arguments += [flags(param)[-1], text]
    return [operation.command[0], *arguments]


def command(arguments: list[str]) -> list[str]:
    """The worker's command line for `lipsync ARGUMENTS`."""
    return [python(), "-m", "lipsync_core.cli", *arguments]


def write_script(path: Path, arguments: list[str], comment: str) -> Path:
    """A Python script that runs `lipsync ARGUMENTS`: what a host renders through, and what a TD can
    run again by hand or hand to a render farm (`python render.py`). Written whole or not at all."""
    path = Path(path)
    text = (
        f"#!{python()}\n"
        f"# {comment}\n"
        "# Run it again to finish an interrupted render. Made by the LipSync host adapter; edits are overwritten.\n"
        "import sys\n\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from lipsync_core.cli import main\n\n"
        f"sys.exit(main({arguments!r}))\n"
    )
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def run(argv: list[str], progress=None, cancelled=None, grace: float = 30.0, poll: float = 0.1) -> list[str]:
    """Run `argv` (a `command(...)` or [python(), script]) to the end and return its report lines.

    progress(stage, done, total) is called for each progress line; cancelled() is polled every `poll`
    seconds, and when it turns true the worker is stopped and WorkerCancelled raised. A failure raises
    WorkerError with the CLI's own message.
    """
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    try:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, cwd=str(REPO),
            text=True, encoding="utf-8", errors="replace",
        )
    except OSError as error:
        raise WorkerError(f"could not start {argv[0]}: {error} (set {PYTHON_ENV} to the Python that has lipsync)") from None
    lines: queue.Queue = queue.Queue()
    errors: list[str] = []
    # Both pipes are drained in threads: face tracking writes a lot to stderr, and a full pipe would stall the worker.
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    drainer = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    reader.start()
    drainer.start()
    report = []
    stop_at = None
    while True:
        try:
            line = lines.get(timeout=poll).rstrip()
        except queue.Empty:
            line = None
        if line:
            message = _progress(line)
            if message is None:
                report.append(line)
            elif "line" in message:
                report.append(str(message["line"]))
            elif progress is not None:
                progress(message["stage"], int(message["done"]), int(message["total"]))
        if stop_at is None and cancelled is not None and cancelled():
            process.terminate()
            stop_at = time.monotonic() + grace
        if stop_at is not None and time.monotonic() > stop_at:
            process.kill()
        if line is None and process.poll() is not None and not reader.is_alive():
            break
    drainer.join()
    if stop_at is not None:
        raise WorkerCancelled("cancelled")
    if process.returncode != 0:
        raise WorkerError(error_text("".join(errors), process.returncode))
    return report


def _progress(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    return message if {"stage", "done", "total"} <= set(message) or "line" in message else None


def error_text(stderr: str, code: int) -> str:
    """The CLI's own error line when it printed one, else the end of its stderr."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line.split("error: ", 1)[1] for line in lines if "error: " in line and line.startswith(("lipsync", "usage"))]
    if errors:
        return errors[-1]
    tail = "\n".join(lines[-6:])
    return f"the command stopped (exit code {code})" + (f":\n{tail}" if tail else "")
