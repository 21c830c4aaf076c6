"""Every benchmark in one run, and one report (Markdown + JSON) of what they measured.

Runs, each in its own process with this interpreter and environment (LD_PRELOAD, OMP_NUM_THREADS
carry over), in this order:
    bench_models.py    model-only generation per config and batch, peak memory; ratio to the
                       Wav2Lip-style 96 px U-Net measured in the same run
    bench_analyze.py   face analysis speed at 720p and 1080x1920 next to decoding alone; smoothing jitter/lag
    bench_dub.py       end-to-end `dub` per stage, cold and warm; ratio to decode+encode of the same
                       clip; peak RSS of 10 s and 60 s plates (full runs only)
    bench_train.py     prepare, generator and SyncNet train steps, `lipsync personalize` on 30 s of
                       footage; ratios to decode+encode and to a Wav2Lip-style U-Net train step
and writes OUT/report.md (each benchmark's own tables, with its command and run time) and
OUT/report.json (the same, plus the JSON of those that write one).

Usage:
    python benchmarks/run_all.py [--quick] [-o out/benchmarks] [--only models dub ...] [--data ../shared/data]
--quick runs each benchmark at its smallest size: a check that everything runs (minutes), not numbers to
quote. A full run takes about an hour on 2 cores; run it on an otherwise idle machine, with tcmalloc as
`make` does: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/run_all.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_models import machine_facts  # noqa: E402

class Benchmark(NamedTuple):
    script: str
    title: str
    full: list[str]  # arguments of a full run
    quick: list[str]  # arguments of a quick run
    takes_data: bool  # accepts --data
    writes_json: bool  # accepts --json FILE
    markdown: bool  # prints Markdown (else aligned text, shown as a code block)


BENCHMARKS = {
    "models": Benchmark("bench_models.py", "Model-only generation", [], ["--quick"], False, True, True),
    "analyze": Benchmark("bench_analyze.py", "Face analysis", [], ["--frames", "25", "--repeat", "1"], True, False, False),
    "dub": Benchmark("bench_dub.py", "End-to-end dub", ["--memory"], ["--frames", "25"], True, False, False),
    "train": Benchmark("bench_train.py", "Prepare, training steps, personalization", [], ["--quick"], True, True, True),
}


def run_benchmark(name: str, args, out: Path) -> dict:
    bench = BENCHMARKS[name]
    arguments = bench.quick if args.quick else bench.full
    if bench.takes_data:
        arguments = arguments + ["--data", str(args.data)]
    if bench.writes_json:
        arguments = arguments + ["--json", str(out / f"{name}.json")]
    command = f"python benchmarks/{bench.script} {' '.join(arguments)}".strip()
    print(f"[{name}] {command}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(HERE / bench.script), *arguments], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(f"[{name}] {'done' if result.returncode == 0 else 'FAILED'} in {seconds:.0f} s", file=sys.stderr, flush=True)
    record = {"name": name, "title": bench.title, "command": command, "returncode": result.returncode,
              "seconds": round(seconds, 1), "output": result.stdout.strip()}
    if result.returncode != 0:
        record["error"] = result.stderr.strip()[-3000:]
    if bench.writes_json and (out / f"{name}.json").is_file():
        record["json"] = json.loads((out / f"{name}.json").read_text())
    return record


def report_text(records: list[dict], facts: dict, quick: bool) -> str:
    lines = [
        "# LipSync benchmarks",
        "",
        f"- machine: {facts['cpu']}, {facts['cores']} cores, torch {facts['torch']} ({facts['threads']} threads), "
        f"tcmalloc {'on' if facts['tcmalloc'] else 'off'}, Python {facts['python']}",
        f"- load average at start: {facts.get('load_average', float('nan')):.2f}"
        + (" (**busy machine: wall-clock numbers are not to quote**)" if facts.get("load_average", 0) > 0.5 * (facts["cores"] or 1) else ""),
        f"- mode: {'quick (smallest sizes: proves it runs, not numbers to quote)' if quick else 'full'}; "
        f"date {datetime.datetime.now().isoformat(timespec='seconds')}; command: `python benchmarks/run_all.py{' --quick' if quick else ''}`",
        "",
    ]
    for r in records:
        lines += [f"## {r['title']}", "", f"`{r['command']}` ({r['seconds']:.0f} s)", ""]
        if r["output"]:
            lines += [r["output"] if BENCHMARKS[r["name"]].markdown else f"```text\n{r['output']}\n```", ""]
        if r["returncode"] != 0:
            lines += [f"**failed (exit {r['returncode']})**:", "", f"```text\n{r.get('error', '')}\n```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark at its smallest size")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "out" / "benchmarks", help="report folder (default: out/benchmarks)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS), help="run only these")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(None, "cpu")
    records = [run_benchmark(name, args, args.output) for name in args.only]
    (args.output / "report.md").write_text(report_text(records, facts, args.quick))
    (args.output / "report.json").write_text(json.dumps({"machine": facts, "quick": args.quick, "benchmarks": records}, indent=1) + "\n")
    print(f"wrote {args.output / 'report.md'} and report.json", file=sys.stderr)
    return 0 if all(r["returncode"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
