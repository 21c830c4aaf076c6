"""What every benchmark shares: the facts about the machine, running a Python child process with its peak
memory, and the one JSON layout that `run_all.py` assembles into its report.

The JSON a benchmark writes with `--json FILE` (`write_results`):
    {"benchmark": "dub", "quick": false, "machine": {...machine_facts()...}, "results": [{...}, ...]}
Each result is a flat-ish dict of one measured thing. A key ending in "ratio" is always the measure
divided by a reference measured in the same run (which one is said in that result's "reference"), so a
report can compare runs on different or busy machines by their ratios rather than their timings.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple


def tcmalloc_loaded() -> bool:
    """Whether this process runs on tcmalloc (LD_PRELOAD, as `make` does); children inherit it."""
    try:
        return "tcmalloc" in Path("/proc/self/maps").read_text()
    except OSError:
        return "tcmalloc" in os.environ.get("LD_PRELOAD", "")


def machine_facts(threads: int | None = None, device: str = "cpu") -> dict:
    """CPU, cores, torch and its threads, allocator and how busy the machine is now: call it when a benchmark
    starts, so that numbers measured while other work was running are recognisable as such."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": threads or torch.get_num_threads(),
        "device": device,
        "tcmalloc": tcmalloc_loaded(),
        "python": platform.python_version(),
        "busy_cores": busy_cores(),
    }
    if device == "cuda":
        facts["gpu"] = torch.cuda.get_device_name()
    return facts


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores other work keeps busy, measured over `seconds` while this process sleeps.
    Not the load average: that lags by a minute, so a benchmark started right after another (as
    run_all.py starts them) would be charged its predecessor's load."""

    def busy_and_total() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        return sum(ticks) - idle, sum(ticks)

    try:
        busy0, total0 = busy_and_total()
        time.sleep(seconds)
        busy1, total1 = busy_and_total()
    except (OSError, IndexError, ValueError):
        return os.getloadavg()[0]  # not Linux: the load average is the best there is
    return (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)


def busy(facts: dict) -> bool:
    """More than half the cores were already in use by other work when the benchmark started: its
    wall-clock numbers are not to quote (the ratios and CPU times suffer less)."""
    return facts["busy_cores"] > 0.5 * (facts["cores"] or 1)


def describe(facts: dict) -> str:
    """One line of machine facts for the head of a Markdown report."""
    line = (f"{facts['cpu']}, {facts['cores']} cores, torch {facts['torch']} ({facts['threads']} threads), "
            f"tcmalloc {'on' if facts['tcmalloc'] else 'off'}, cores busy with other work at start {facts['busy_cores']:.2f}")
    if busy(facts):
        line += " (**busy machine: wall-clock numbers are not to quote**)"
    return line


def write_results(path: Path | None, benchmark: str, quick: bool, facts: dict, results: list[dict]) -> None:
    """The one JSON layout of every benchmark (see the module docstring); nothing when path is None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": benchmark, "quick": quick, "machine": facts, "results": results}
    path.write_text(json.dumps(record, indent=1) + "\n")


class ChildRun(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float  # user + system time of the child and the children it waited for
    peak_rss_mib: float  # the largest resident set of the child or of any child it waited for


def run_python(arguments: list[str], cwd: Path | None = None) -> ChildRun:
    """Run `python ARGUMENTS...` (a script or `-m module`) to its end, with the kernel's accounting of
    its CPU time (wait4) and its peak memory as the child itself measured it (see peak_rss.py for why
    the parent's wait4 cannot tell it)."""
    # Output goes to files, not pipes: reading pipes needs communicate(), which reaps the child
    # itself and so loses its resource usage.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak_kib"
        command = [sys.executable, str(Path(__file__).with_name("peak_rss.py")), str(peak_file), *arguments]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0)
        err.seek(0)
        # A child killed before its exit handlers ran leaves no file: nothing trustworthy to report.
        peak_kib = int(peak_file.read_text()) if peak_file.is_file() else float("nan")
        return ChildRun(process.returncode, out.read(), err.read(), wall, usage.ru_utime + usage.ru_stime,
                        peak_kib / 1024)
