"""`lipsync train model` on several processes, started with torchrun as the README says (CPU, gloo): two processes
of batch 1 train exactly as one of batch 2, and a two-process run stopped and started again ends where the
uninterrupted one does. A few synthetic windows prepared at the `cpu` config's size stand in for real footage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lipsync_core.cli import main as cli_main
from lipsync_core.models.config import get_config
from lipsync_core.train.data import save_clip

from test_training import read_log, read_tensors, synthetic_clip

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS = 2
LR = 1e-3


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    size = get_config("cpu").size
    save_clip(folder / "train-a.npz", synthetic_clip("train-a", 24, size))
    save_clip(folder / "train-b.npz", synthetic_clip("train-b", 24, size, phase=2.0))
    save_clip(folder / "dev-a.npz", synthetic_clip("dev-a", 12, size, phase=1.0, split="dev"))
    return folder


def _options(cache: Path, run: Path, steps: int, batch: int) -> list[str]:
    # No cross-audio loss: it pairs windows within a process's share (the trainer's docstring).
    return ["train", "model", "--cache", str(cache), "--run-dir", str(run), "--steps", str(steps), "--batch", str(batch),
            "--lambda-cross", "0", "--no-select-by-speech", "--save-every", "1", "--lr", str(LR), "--seed", "5", "--device", "cpu"]


def _torchrun(options: list[str]) -> None:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                        "OMP_NUM_THREADS": "1"}
    # The README's command, with only the numbers changed.
    result = subprocess.run([str(TORCHRUN), "--nproc_per_node=2", "-m", "lipsync_core.cli", *options],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_two_processes_train_as_one_with_their_combined_batch_and_resume_exactly(cache, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli_main(_options(cache, one, STEPS, batch=2)) == 0
    _torchrun(_options(cache, two, STEPS // 2, batch=1))
    _torchrun(_options(cache, two, STEPS, batch=1))  # resumed from the state saved at the half

    # Rank 0 alone writes: one line per step in the log, the files one process writes and no others.
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    logs = read_log(one), read_log(two)
    assert [r["step"] for r in logs[1]] == list(range(1, STEPS + 1))
    for a, b in zip(*logs):
        assert b["l1"] == pytest.approx(a["l1"], rel=1e-4) and b["loss"] == pytest.approx(a["loss"], rel=1e-4)

    # Had the processes read the same windows, or restarted their samplers on resuming, the losses above and the
    # weights would differ. Summed in another order, gradients differ in their last bits, and Adam scales each by its
    # own running size: a weight whose gradient is about zero may move by a fraction of the step (LR) either way.
    expected, got = read_tensors(one / "state.safetensors"), read_tensors(two / "state.safetensors")
    assert expected.keys() == got.keys()
    far = {k: (expected[k] - got[k]).abs().max().item() for k in expected if k.startswith(("model.", "ema."))
           and not torch.allclose(expected[k], got[k], rtol=1e-4, atol=LR / 2)}
    assert not far, f"{len(far)} tensors differ, e.g. {sorted(far.items())[:5]}"
