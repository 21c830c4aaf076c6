"""The worker process every host adapter talks to (Nuke, Resolve): a crash in the render cannot take
the host down, Cancel stops it cleanly, and nothing heavy is ever imported into the host's Python.

Two halves in one module:

- The host half (`params`, `submit`, `run`, `start_panel`) is standard library only and valid
  Python 3.6 (Resolve documents 3.6+; Nuke 15 ships 3.10): a host reads the parameter schema from
  plugin.json, sends a job as JSON and reads progress back as JSON lines.
- The worker half (`main`) runs in the Python that has torch and the media stack:

      $LIPSYNC_PYTHON                 when set (a site's render environment)
      <repository>/.venv/bin/python   the one `make` sets up (Scripts\\python.exe on Windows)
      this Python                     when it is neither (the tests; a host run from the venv itself)

A job is {"operation": "generate", "values": {parameter: value}, "shot": {...} or null,
"script": path or null, "comment": text}. The worker writes the shot sidecar beside the plate when
"shot" is given (frames, keyed mask controls, painted masks), writes "script" (a `render.py` a TD
can run again by hand), then runs `lipsync` with the values as its options.

The worker starts with a clean environment: `python -I` (no PYTHONPATH, PYTHONHOME or user site from
the host, whose own Python sets them for itself), PYTHON* variables removed, the repository put on
the path by hand, and its working folder the shot's folder. Progress comes as JSON lines on its
stdout (`lipsync dub --progress-json`): {"stage": "render", "done": 12, "total": 75}, then the report
as {"line": "wrote ..."}. Cancel sends SIGTERM, on which `lipsync dub` stops between frames without
leaving a half-written file, then kills the worker if it has not stopped within `grace` seconds.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from ..errors import LipSyncError

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "plugin.json"
PYTHON_ENV = "LIPSYNC_PYTHON"
JOB_FILE = "lipsync_job.json"
# `python -I` leaves the script's folder and PYTHONPATH off the path: the repository goes first by hand,
# so that this checkout's lipsync_core is the one imported, whatever else the environment has installed.
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from {module} import main; sys.exit(main(sys.argv[2:]))"


class WorkerError(LipSyncError):
    """The worker stopped with an error; the message is the CLI's own error line."""


class WorkerCancelled(LipSyncError):
    """The user cancelled; the worker was stopped."""


def python():
    """The Python that runs the core (see the module doc)."""
    chosen = os.environ.get(PYTHON_ENV)
    if chosen:
        return chosen
    for venv in (REPO / ".venv" / "bin" / "python", REPO / ".venv" / "Scripts" / "python.exe"):
        if venv.is_file():
            return str(venv)
    return sys.executable


def params(operation):
    """The parameters a host sets for `operation`, from plugin.json (inputs, outputs, then parameters, as
    the CLI lists them): objects with name, type, help, default, range, choices, animatable, flag."""
    try:
        manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LipSyncError("cannot read {}: {} (run `lipsync plugin-json --write`)".format(MANIFEST, error)) from None
    for node in manifest["nodes"]:
        if node["name"] == operation:
            return [SimpleNamespace(**dict(p, range=tuple(p["range"]) if p["range"] else None, choices=tuple(p["choices"])))
                    for p in node["inputs"] + node["outputs"] + node["params"]]
    raise LipSyncError("{} has no operation {!r}: run `lipsync plugin-json --write`".format(MANIFEST, operation))


def clean_environment():
    """The host's environment without its Python settings (Nuke and Resolve set PYTHONHOME and
    PYTHONPATH for their own Python; the worker's Python must not see them)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}


def _boot(module, arguments):
    return [python(), "-I", "-u", "-c", _BOOT.format(module=module), str(REPO)] + [str(a) for a in arguments]


def submit(job, folder, progress=None, cancelled=None):
    """Write `job` as JSON into `folder` (the shot's folder) and run it in the worker there; returns the
    report lines (see `run`)."""
    folder = Path(folder)
    path = folder / JOB_FILE
    temporary = folder / ".{}.partial".format(JOB_FILE)
    temporary.write_text(json.dumps(job, indent=1), encoding="utf-8")
    os.replace(str(temporary), str(path))
    return run(_boot("lipsync_core.dub.worker", [path]), progress, cancelled, cwd=folder)


def start_panel(folder, plate=None, audio=None, shot=None):
    """The LipSync panel as its own process (Qt and the core never load into the host); returns at once."""
    arguments = [a for a in (plate, audio) if a] + (["--shot", shot] if shot else [])
    try:
        return subprocess.Popen(_boot("plugin.app", arguments), env=clean_environment(), cwd=str(folder))
    except OSError as error:
        raise WorkerError("could not start {}: {} (set {} to the Python that has lipsync)".format(python(), error, PYTHON_ENV)) from None


def run(argv, progress=None, cancelled=None, cwd=None, grace=30.0, poll=0.1):
    """Run `argv` to the end in `cwd` with a clean environment and return its report lines.

    progress(stage, done, total) is called for each progress line; cancelled() is polled every `poll`
    seconds, and when it turns true the worker is stopped and WorkerCancelled raised. A failure raises
    WorkerError with the CLI's own message.
    """
    try:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_environment(),
            cwd=None if cwd is None else str(cwd), universal_newlines=True, encoding="utf-8", errors="replace",
        )
    except OSError as error:
        raise WorkerError("could not start {}: {} (set {} to the Python that has lipsync)".format(argv[0], error, PYTHON_ENV)) from None
    lines = queue.Queue()
    errors = []
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


def _progress(line):
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    return message if {"stage", "done", "total"} <= set(message) or "line" in message else None


def error_text(stderr, code):
    """The CLI's own error line when it printed one, else the end of its stderr."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line.split("error: ", 1)[1] for line in lines if "error: " in line and line.startswith(("lipsync", "usage"))]
    if errors:
        return errors[-1]
    tail = "\n".join(lines[-6:])
    return "the command stopped (exit code {})".format(code) + (":\n" + tail if tail else "")


# The worker half: runs in the core's Python (see the module doc), never in a host.


def main(argv):
    """`python -I -c BOOT REPO JOB.json`: run one job (see the module doc); the exit status is lipsync's."""
    from ..cli import main as lipsync
    from ..ops import operation

    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    op = operation(job["operation"])
    values = job["values"]
    if job.get("shot"):
        try:
            # A farm job's plate is its first source (PLATE AUDIO OUTPUT).
            _write_shot(values["plate"] if "plate" in values else values["sources"][0], job["shot"])
        except LipSyncError as error:
            print("lipsync {}: error: {}".format(op.command[0], error), file=sys.stderr)
            return 2
    arguments = cli_arguments(op, values)
    if job.get("script"):
        write_script(Path(job["script"]), arguments, job.get("comment", "LipSync render"))
    return lipsync(arguments)


def _write_shot(plate, spec):
    """The sidecar beside `plate` from a job's "shot": {"frames": [first, last], "mask": {control: value or
    [[frame, value], ...]} (linear keys), "motion": {"gain": value or keys}, "painted": [{"path", "frames", "mode"}]}."""
    from ..shot import Keyframes, PaintedMask, Shot, sidecar_path

    def control(value):
        return Keyframes([tuple(key) for key in value], "linear") if isinstance(value, list) else value

    Shot(
        path=sidecar_path(plate), source=Path(plate).name, frames=tuple(spec["frames"]),
        mask={name: control(value) for name, value in spec.get("mask", {}).items()},
        motion={name: control(value) for name, value in spec.get("motion", {}).items()},
        painted=[PaintedMask(p["path"], tuple(p["frames"]), p["mode"]) for p in spec.get("painted", [])],
    ).save()  # validated as it is saved: a control out of range is refused, as `lipsync dub` refuses it


def cli_arguments(operation, values):
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
            value = "{}-{}".format(value[0], value[1])
        for text in ([str(v) for v in value] if param.many else [str(value)]):
            if param.positional:
                arguments.append(text)
            elif text.startswith("-"):
                arguments.append("{}={}".format(flags(param)[-1], text))  # argparse would read '-3f' as an option
            else:
                arguments += [flags(param)[-1], text]
    return [operation.command[0], *arguments]


def write_script(path, arguments, comment):
    """A Python script that runs `lipsync ARGUMENTS`: what a TD can run again by hand or hand to a render
    farm (`python render.py`) to finish an interrupted render. Written whole or not at all."""
    path = Path(path)
    text = (
        "#!{}\n"
        "# {}\n"
        "# Run it again to finish an interrupted render. Made by the LipSync host adapter; edits are overwritten.\n"
        "import sys\n\n"
        "sys.path.insert(0, {!r})\n"
        "from lipsync_core.cli import main\n\n"
        "sys.exit(main({!r}))\n"
    ).format(python(), comment, str(REPO), arguments)
    temporary = path.with_name(".{}.partial".format(path.name))
    temporary.write_text(text, encoding="utf-8")
    os.replace(str(temporary), str(path))
    return path
