"""Device and thread choice, the same for every entry point."""

from __future__ import annotations

import os

import torch

from .errors import LipSyncError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA when present, else CPU; 'cuda' without a GPU is an error worth stating."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LipSyncError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    return torch.device(name)


def set_cpu_threads() -> None:
    """One intra-op thread per core (torch's default oversubscribes small machines), unless the user set it."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
