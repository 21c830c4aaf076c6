"""The benchmark suite runs end to end: `benchmarks/run_all.py --quick` writes a report with every
benchmark's section, its peak memory, and ratios to same-run references that are usable numbers.
Timings themselves are not checked: they depend on the machine and on what else runs on it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_all import BENCHMARKS  # noqa: E402


def ratios(value, key: str = "") -> list[tuple[str, float]]:
    """Every (key, number) under a key ending in "ratio", at any depth of the results."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in ratios(v, k)]
    if isinstance(value, list):
        return [found for v in value for found in ratios(v, key)]
    return [(key, value)] if key.endswith("ratio") else []


@pytest.mark.slow
def test_run_all_quick_writes_a_complete_report(shared_data: Path, tmp_path: Path):
    result = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "-o", str(tmp_path), "--data", str(shared_data)],
                            cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]

    markdown = (tmp_path / "benchmarks.md").read_text()
    report = json.loads((tmp_path / "benchmarks.json").read_text())
    for key in ("cpu", "cores", "threads", "tcmalloc", "busy_cores"):
        assert key in report["machine"]
    assert report["quick"] is True
    assert [b["name"] for b in report["benchmarks"]] == list(BENCHMARKS)
    for bench in report["benchmarks"]:
        assert f"## {bench['title']}" in markdown
        assert bench["markdown"] and bench["markdown"] in markdown
        assert bench["returncode"] == 0
        assert bench["peak_rss_mib"] > 0
        found = ratios(bench["results"])
        assert found, f"{bench['name']} reports no ratio to a reference"
        for key, value in found:
            assert isinstance(value, float) and math.isfinite(value) and value > 0, (bench["name"], key, value)

    dub = next(b for b in report["benchmarks"] if b["name"] == "dub")
    assert {r["height"] for r in dub["results"]} == {720, 1080}
    for render in dub["results"]:
        made_by = "generate" if render["mouth"] == "generator" else "composite"
        assert render["stages"][made_by]["ratio"] > 0  # every stage that ran has its ratio too
