"""Every benchmark in one run, and one report (Markdown + JSON) of what they measured.

Runs, each in its own process with this interpreter and environment (LD_PRELOAD, OMP_NUM_THREADS
carry over), in this order:
    bench_models.py    model-only generation per config and batch, peak memory; ratio to the
                       Wav2Lip-style 96 px U-Net measured in the same run
    bench_analyze.py   face analysis speed at 720p and 1080x1920 next to decoding alone; smoothing jitter/lag
    bench_motion.py    the motion stage on 60 s of audio; ratio to the log-mel of the same audio
    bench_dub.py       end-to-end `dub` at 1280x720 and 1920x1080, per stage, cold and warm; ratios to
                       decode+encode of the same clip; peak RSS of 10 s and 60 s plates (full runs only)
    bench_train.py     prepare, generator and SyncNet train steps, `lipsync personalize` on 30 s of
                       footage; ratios to decode+encode and to a Wav2Lip-style U-Net train step
Each writes its results with `--json` in the layout of benchlib.write_results and prints its tables
in Markdown. This script records the machine (CPU, cores, torch threads, tcmalloc, the cores busy with
other work at the start of the run and of each benchmark) and each benchmark's wall time, CPU time and
peak RSS (the largest resident set of any of its processes, see peak_rss.py), and writes
OUT/benchmarks.md (the tables) and OUT/benchmarks.json (every number).

Usage:
    python benchmarks/run_all.py [--quick] [-o docs] [--only models dub ...] [--data ../shared/data]
--quick runs each benchmark at its smallest size: a check that everything runs (minutes), not numbers to
quote; its report goes to out/benchmarks unless -o says otherwise, so it never replaces the quoted one.
A full run (report in docs/) takes about an hour on 2 cores; run it on an otherwise idle machine, with
tcmalloc as `make` does:
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/run_all.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from benchlib import busy, busy_cores, describe, machine_facts, run_python  # noqa: E402


class Benchmark(NamedTuple):
    script: str
    title: str
    full: list[str]  # arguments of a full run; a quick run passes --quick instead
    takes_data: bool  # accepts --data


BENCHMARKS = {
    "models": Benchmark("bench_models.py", "Model-only generation", [], False),
    "analyze": Benchmark("bench_analyze.py", "Face analysis", [], True),
    "dub": Benchmark("bench_dub.py", "End-to-end dub", ["--memory", "--memory-4k"], True),
    "motion": Benchmark("bench_motion.py", "Motion stage", [], False),
    "train": Benchmark("bench_train.py", "Prepare, training steps, personalization", [], True),
}


def run_benchmark(name: str, args, scratch: Path) -> dict:
    bench = BENCHMARKS[name]
    arguments = ["--quick"] if args.quick else list(bench.full)
    if bench.takes_data:
        arguments += ["--data", str(args.data)]
    command = f"python benchmarks/{bench.script} {' '.join(arguments)}".strip()
    results = scratch / f"{name}.json"
    print(f"[{name}] {command}", file=sys.stderr, flush=True)
    load = busy_cores()
    run = run_python([str(HERE / bench.script), *arguments, "--json", str(results)], cwd=ROOT)
    print(f"[{name}] {'done' if run.returncode == 0 else 'FAILED'} in {run.wall_s:.0f} s, peak RSS {run.peak_rss_mib:.0f} MiB",
          file=sys.stderr, flush=True)
    record = {"name": name, "title": bench.title, "command": command, "returncode": run.returncode,
              "busy_cores_at_start": load, "seconds": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mib": run.peak_rss_mib,
              "markdown": run.stdout.strip(), "results": json.loads(results.read_text())["results"] if results.is_file() else []}
    if run.returncode != 0:
        record["error"] = run.stderr.strip()[-3000:]
    return record


def report_text(records: list[dict], facts: dict, quick: bool, command: str, date: str) -> str:
    lines = [
        "# LipSync benchmarks",
        "",
        f"- machine: {describe(facts)}; Python {facts['python']}",
        f"- mode: {'quick (smallest sizes: proves it runs, not numbers to quote)' if quick else 'full'}; date {date}; "
        f"command: `{command}`",
        "- every ratio is to a reference measured in the same run (named in each table); peak RSS is the largest "
        "resident set of any process of the benchmark",
        "",
        "| benchmark | command | wall s | CPU s | peak RSS (MiB) | cores busy with other work at start | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in records:
        flag = " (busy)" if busy({**facts, "busy_cores": r["busy_cores_at_start"]}) else ""
        lines.append(f"| {r['title']} | `{r['command']}` | {r['seconds']:.0f} | {r['cpu_s']:.0f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['busy_cores_at_start']:.2f}{flag} | {'ok' if r['returncode'] == 0 else 'failed'} |")
    lines.append("")
    for r in records:
        lines += [f"## {r['title']}", "", f"`{r['command']}`", ""]
        if r["markdown"]:
            lines += [r["markdown"], ""]
        if r["returncode"] != 0:
            lines += [f"**failed (exit {r['returncode']})**:", "", f"```text\n{r.get('error', '')}\n```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark at its smallest size")
    parser.add_argument("-o", "--output", type=Path, help="report folder (default: docs, quick runs out/benchmarks)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS), help="run only these")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)
    output = args.output or (ROOT / "out" / "benchmarks" if args.quick else ROOT / "docs")
    output.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    if args.only != list(BENCHMARKS):
        command += " --only " + " ".join(args.only)
    date = datetime.datetime.now().isoformat(timespec="seconds")
    facts = machine_facts()
    with tempfile.TemporaryDirectory() as scratch:
        records = [run_benchmark(name, args, Path(scratch)) for name in args.only]
    (output / "benchmarks.md").write_text(report_text(records, facts, args.quick, command, date))
    report = {"machine": facts, "quick": args.quick, "date": date, "command": command, "benchmarks": records}
    (output / "benchmarks.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {output / 'benchmarks.md'} and benchmarks.json", file=sys.stderr)
    return 0 if all(r["returncode"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
