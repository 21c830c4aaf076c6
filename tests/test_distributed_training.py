"""`lipsync train syncnet|motion|model` on several processes, started with torchrun exactly as the README says with
only the numbers changed (on CPU: gloo): two processes train as one with their combined batch, and a two-process run
stopped and started again ends where the uninterrupted one does; and every process stops early where rank 0, which
alone evaluates, decides. A few synthetic windows prepared at the `cpu` config's size stand in for real footage."""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lipsync_core.cli import main as cli_main
from lipsync_core.models.checkpoint import save_checkpoint
from lipsync_core.models.config import get_config
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.train import syncnet_trainer
from lipsync_core.train.data import save_clip

from test_training import TINY, read_log, read_tensors, synthetic_clip

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS, LR = 2, 1e-3
PROCESSES = 2
BATCH = {"syncnet": 2, "motion": 1, "model": 1}  # per process
DEFAULT_LR = {"syncnet": 5e-4, "motion": 1e-3}


def command(step: str, steps: int) -> list[str]:
    """The README's multi-process line of `lipsync train STEP` with this test's numbers. For `model` no cross-audio
    loss: it pairs windows within each process's share (the trainer's docstring), so only without it do two processes
    equal one. `syncnet` and `motion` save their state at their last step, so a run of fewer steps stops where
    another resumes."""
    head = ["torchrun", f"--nproc_per_node={PROCESSES}", "-m", "lipsync_core.cli", "train", step]
    if step != "model":
        return head + ["--steps", str(steps), "--batch", str(BATCH[step])]
    return head + ["--syncnet", "runs/syncnet/syncnet.safetensors", "--steps", str(steps), "--batch", str(BATCH[step]),
                   "--lambda-cross", "0", "--save-every", "1", "--lr", str(LR)]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder as `lipsync train` leaves it before `train model`: prepared clips, a SyncNet (untrained here)."""
    folder = tmp_path_factory.mktemp("project")
    config = get_config("cpu")
    (folder / "cache" / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for clip in (synthetic_clip("train-a", 24, config.size), synthetic_clip("train-b", 24, config.size, phase=2.0),
                 synthetic_clip("dev-a", 12, config.size, phase=1.0, split="dev")):
        # Tracking noise moves every mouth point, as real tracks do: the motion trainer fits a basis of their motion.
        clip.landmarks += rng.normal(0, 0.3, clip.landmarks.shape).astype(np.float32)
        clip.meta["size"] = config.size  # as `prepare` records it
        save_clip(folder / "cache/train" / f"{clip.name}.npz", clip)
    (folder / "runs" / "syncnet").mkdir(parents=True)
    torch.manual_seed(0)
    save_checkpoint(folder / "runs/syncnet/syncnet.safetensors", {"syncnet": SyncNet(config)}, config, {"step": 0})
    return folder


def test_readme_multiprocess_lines_are_the_tested_commands_with_other_numbers():
    lines = re.findall(r"`(torchrun [^`]*)`", (REPO / "README.md").read_text())
    numbers = r"\d+(\.\d+)?(e-?\d+)?"
    assert [re.sub(numbers, "N", line) for line in lines] == [
        re.sub(numbers, "N", " ".join(command(step, STEPS))) for step in ("syncnet", "motion", "model")]


def _torchrun(folder: Path, step: str, steps: int) -> None:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                        "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}  # CPU processes here, whatever the machine
    result = subprocess.run([str(TORCHRUN), *command(step, steps)[1:]], cwd=folder, capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def assert_trained_alike(one: Path, two: Path, lr: float) -> None:
    """Run folders `one` (one process, the combined batch) and `two` (two processes, resumed at the half) hold the same
    files, the same losses step by step and the same weights."""
    # Rank 0 alone writes: one line per step in the log, the files one process writes and no others.
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    logs = read_log(one), read_log(two)
    assert [r["step"] for r in logs[1]] == list(range(1, STEPS + 1))
    for a, b in zip(*logs):  # the losses of the whole batch, step by step (dev evaluations: where each run ended)
        assert {k: pytest.approx(v, rel=1e-4) for k, v in a.items() if not k.startswith("dev_")} == {
            k: v for k, v in b.items() if not k.startswith("dev_")}

    # Had the processes read the same windows, or restarted their samplers on resuming, the losses above would differ,
    # and nearly every weight. Summed in another order, gradients differ in their last bits, and Adam's first steps
    # move a weight by about its learning rate whatever its gradient's size: the few weights whose gradient is about
    # zero may go either way. So: all but a few weights of each tensor equal, none off by more than Adam could move it.
    expected, got = read_tensors(one / "state.safetensors"), read_tensors(two / "state.safetensors")
    assert expected.keys() == got.keys()
    off = {k: (expected[k] - got[k]).abs() for k in expected if k.startswith(("model.", "ema."))}
    assert max(d.max().item() for d in off.values()) <= 2 * lr * STEPS
    many = {k: f"{(d > 1e-5).float().mean().item():.1%}" for k, d in off.items() if (d > 1e-5).float().mean() > 0.05}
    assert not many, f"weights off in {len(many)} tensors: {sorted(many.items())[:5]}"


def test_two_processes_train_the_generator_as_one_with_their_combined_batch_and_resume_exactly(project, tmp_path):
    one, two = tmp_path / "one", project / "runs" / "model"
    assert cli_main(["train", "model", "--cache", str(project / "cache/train"), "--run-dir", str(one), "--syncnet",
                     str(project / "runs/syncnet/syncnet.safetensors"), "--steps", str(STEPS), "--batch",
                     str(PROCESSES * BATCH["model"]), "--lambda-cross", "0", "--save-every", "1", "--lr", str(LR),
                     "--device", "cpu"]) == 0
    _torchrun(project, "model", STEPS // 2)
    _torchrun(project, "model", STEPS)  # resumed from the state saved at the half
    assert_trained_alike(one, two, LR)


@pytest.mark.parametrize("step", ["syncnet", "motion"])
def test_two_processes_train_syncnet_and_motion_as_one_with_their_combined_batch_and_resume_exactly(step, project,
                                                                                                  tmp_path):
    folder = tmp_path / "two"  # not the project's: its runs/syncnet holds the generator's SyncNet
    folder.mkdir()
    (folder / "cache").symlink_to(project / "cache")
    one, two = tmp_path / "one", folder / "runs" / step
    assert cli_main(["train", step, "--cache", str(project / "cache/train"), "--run-dir", str(one), "--steps",
                     str(STEPS), "--batch", str(PROCESSES * BATCH[step])]) == 0
    _torchrun(folder, step, STEPS // 2)
    _torchrun(folder, step, STEPS)  # resumed from the state saved at the half
    assert_trained_alike(one, two, DEFAULT_LR[step])


def _train_syncnet_that_never_improves(rank: int, port: int, run_dir: Path) -> None:
    """One of two processes, as torchrun would start it; the dev accuracy rank 0 measures never improves after the
    first evaluation."""
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    syncnet_trainer.dev_accuracy = lambda model, dev: {"dev_offset_accuracy": 0.5, "dev_lse_c": 0.0}
    clips = [synthetic_clip("train-a", 24)], [synthetic_clip("dev-a", 12, phase=1.0, split="dev")]
    syncnet_trainer.train_syncnet(*clips, run_dir, TINY, steps=20, batch=1, eval_every=1, patience=2)


def test_every_process_stops_early_at_the_step_rank_0_decides(tmp_path):
    """Only rank 0 evaluates: a process that went on training alone would wait for the others' gradients forever."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_train_syncnet_that_never_improves, args=(rank, port, tmp_path)) for rank in (0, 1)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
        p.kill()  # a process still waiting after the timeout has failed; its exit code says so
    assert [p.exitcode for p in processes] == [0, 0]
    # Best at the first evaluation, then two without improvement: patience 2 stops at step 3.
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2, 3]
