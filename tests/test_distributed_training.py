"""`lipsync train model` on several processes, started with torchrun exactly as the README says with only the
numbers changed (on CPU: gloo): two processes of batch 1 train as one of batch 2, and a two-process run stopped and
started again ends where the uninterrupted one does. A few synthetic windows prepared at the `cpu` config's size
stand in for real footage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lipsync_core.cli import main as cli_main
from lipsync_core.models.checkpoint import save_checkpoint
from lipsync_core.models.config import get_config
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.train.data import save_clip

from test_training import read_log, read_tensors, synthetic_clip

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS, LR = 2, 1e-3


def command(steps: int) -> list[str]:
    """The README's multi-process line with this test's numbers. No cross-audio loss: it pairs windows within each
    process's share (the trainer's docstring), so only without it do two processes equal one."""
    return ["torchrun", "--nproc_per_node=2", "-m", "lipsync_core.cli", "train", "model", "--syncnet",
            "runs/syncnet/syncnet.safetensors", "--steps", str(steps), "--batch", "1", "--lambda-cross", "0",
            "--save-every", "1", "--lr", str(LR)]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder as `lipsync train` leaves it before `train model`: prepared clips, a SyncNet (untrained here)."""
    folder = tmp_path_factory.mktemp("project")
    config = get_config("cpu")
    (folder / "cache" / "train").mkdir(parents=True)
    save_clip(folder / "cache/train/train-a.npz", synthetic_clip("train-a", 24, config.size))
    save_clip(folder / "cache/train/train-b.npz", synthetic_clip("train-b", 24, config.size, phase=2.0))
    save_clip(folder / "cache/train/dev-a.npz", synthetic_clip("dev-a", 12, config.size, phase=1.0, split="dev"))
    (folder / "runs" / "syncnet").mkdir(parents=True)
    torch.manual_seed(0)
    save_checkpoint(folder / "runs/syncnet/syncnet.safetensors", {"syncnet": SyncNet(config)}, config, {"step": 0})
    return folder


def test_readme_multiprocess_line_is_the_tested_command_with_other_numbers():
    line = re.search(r"`(torchrun [^`]*)`", (REPO / "README.md").read_text()).group(1)
    numbers = r"\d+(\.\d+)?(e-?\d+)?"
    assert re.sub(numbers, "N", line) == re.sub(numbers, "N", " ".join(command(STEPS)))


def _torchrun(project: Path, steps: int) -> None:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                        "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}  # CPU processes here, whatever the machine
    result = subprocess.run([str(TORCHRUN), *command(steps)[1:]], cwd=project, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_two_processes_train_as_one_with_their_combined_batch_and_resume_exactly(project, tmp_path):
    one, two = tmp_path / "one", project / "runs" / "model"
    assert cli_main(["train", "model", "--cache", str(project / "cache/train"), "--run-dir", str(one), "--syncnet",
                     str(project / "runs/syncnet/syncnet.safetensors"), "--steps", str(STEPS), "--batch", "2",
                     "--lambda-cross", "0", "--save-every", "1", "--lr", str(LR), "--device", "cpu"]) == 0
    _torchrun(project, STEPS // 2)
    _torchrun(project, STEPS)  # resumed from the state saved at the half

    # Rank 0 alone writes: one line per step in the log, the files one process writes and no others.
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    logs = read_log(one), read_log(two)
    assert [r["step"] for r in logs[1]] == list(range(1, STEPS + 1))
    for a, b in zip(*logs):  # the losses of the whole batch, step by step (dev evaluations: where each run ended)
        assert {k: pytest.approx(v, rel=1e-4) for k, v in a.items() if not k.startswith("dev_")} == {
            k: v for k, v in b.items() if not k.startswith("dev_")}

    # Had the processes read the same windows, or restarted their samplers on resuming, the losses above would differ,
    # and nearly every weight. Summed in another order, gradients differ in their last bits, and Adam's first steps
    # move a weight by about LR whatever its gradient's size: the few weights whose gradient is about zero (here in
    # the reference encoder) may go either way. So: all but a few weights of each tensor equal, none off by more than
    # Adam could move it.
    expected, got = read_tensors(one / "state.safetensors"), read_tensors(two / "state.safetensors")
    assert expected.keys() == got.keys()
    off = {k: (expected[k] - got[k]).abs() for k in expected if k.startswith(("model.", "ema."))}
    assert max(d.max().item() for d in off.values()) <= 2 * LR * STEPS
    many = {k: f"{(d > 1e-5).float().mean().item():.1%}" for k, d in off.items() if (d > 1e-5).float().mean() > 0.05}
    assert not many, f"weights off in {len(many)} tensors: {sorted(many.items())[:5]}"


@pytest.mark.parametrize("step", ["syncnet", "motion"])
def test_steps_that_train_in_one_process_refuse_torchrun(step, project, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it
    assert cli_main(["train", step, "--cache", str(project / "cache/train"), "--run-dir", str(project / "runs" / step)]) == 2
    assert "runs in one process: start it without torchrun" in capsys.readouterr().err
    assert not (project / "runs" / step / "state.safetensors").exists()
