"""Per-step training log (JSONL) and the plot a person looks at."""

from __future__ import annotations

import json
from pathlib import Path


class RunLog:
    def __init__(self, run_dir: Path):
        self.path = run_dir / "log.jsonl"
        self.plot_path = run_dir / "losses.png"

    def write(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """On resume, drop lines logged after the checkpoint we resume from, so the log stays one history."""
        if self.path.exists():
            lines = [l for l in self.path.read_text().splitlines() if json.loads(l)["step"] <= step]
            self.path.write_text("".join(l + "\n" for l in lines))

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = [json.loads(l) for l in self.path.read_text().splitlines()]
        keys = sorted({k for r in records for k in r if k not in ("step", "time")})
        fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.2 * len(keys)), sharex=True, squeeze=False)
        for ax, key in zip(axes[:, 0], keys):
            pts = [(r["step"], r[key]) for r in records if key in r]
            ax.plot(*zip(*pts), marker="." if len(pts) < 50 else None)
            ax.set_ylabel(key, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        fig.tight_layout()
        fig.savefig(self.plot_path, dpi=80)
        plt.close(fig)
