"""Generation speed and peak memory of StyleLipSync ('cpu' and 'paper' configs) against a per-frame
Wav2Lip-style U-Net at 96 px, on this machine's CPU (or CUDA with --device cuda).

What is timed is generation as the renderer does it: eval mode, no_grad, `StyleLipSync.codes` for a
batch of frames of one shot (audio encoder, reference encoder, MaLS) and `StyleLipSync.decode` of those
frames (face encoder, style decoder with SaMF). "batch" is the number of frames per call. The Wav2Lip
baseline is one call of the U-Net on the same number of frames (masked + reference face, 16x80 mel).

Every (model, batch) point runs in a fresh subprocess, so its peak memory is its own: "peak RSS" is the
process's high-water resident set (VmHWM) minus its resident set after `import torch`, i.e. weights +
inputs + activations + allocator overhead of that one workload. (tracemalloc does not see torch's
allocations; psutil is not needed for this.) On CUDA, peak memory is torch.cuda.max_memory_allocated.

Usage:
    python benchmarks/bench_models.py [--quick] [--json results.json] [--threads N] [--device cuda]

The allocator is the caller's choice; tcmalloc is usually faster for torch on CPU:
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/bench_models.py
The report says whether tcmalloc was loaded. Run it on an otherwise idle machine for numbers to quote.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import describe, machine_facts, write_results  # noqa: E402

FULL_BATCHES = {"cpu": [1, 2, 4, 8, 16], "paper": [1, 2, 4, 8], "wav2lip": [1, 2, 4, 8, 16]}
QUICK_BATCHES = {"cpu": [1, 4], "paper": [1], "wav2lip": [1, 4]}


# --- the Wav2Lip-style baseline ---------------------------------------------------------------------

def build_wav2lip():
    """A per-frame U-Net of the Wav2Lip kind (the published generator's layout, ~36 M parameters):
    face encoder of strided convs over the masked + reference crop (6 x 96 x 96) down to 1x1, audio
    encoder of convs over a 1 x 80 x 16 mel patch down to 1x1, decoder of transposed convs that
    concatenates the matching encoder feature at every resolution, sigmoid RGB out."""
    import torch
    from torch import nn

    class Conv(nn.Module):
        def __init__(self, cin, cout, k, s, p, residual=False, transpose=False, output_padding=0):
            super().__init__()
            conv = (nn.ConvTranspose2d(cin, cout, k, s, p, output_padding) if transpose else nn.Conv2d(cin, cout, k, s, p))
            self.block = nn.Sequential(conv, nn.BatchNorm2d(cout))
            self.residual = residual

        def forward(self, x):
            out = self.block(x)
            return torch.relu(out + x if self.residual else out)

    def res(c):
        return Conv(c, c, 3, 1, 1, residual=True)

    def up(cin, cout):
        return Conv(cin, cout, 3, 2, 1, transpose=True, output_padding=1)

    class Wav2LipUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.face_encoder = nn.ModuleList([
                nn.Sequential(Conv(6, 16, 7, 1, 3)),  # 96
                nn.Sequential(Conv(16, 32, 3, 2, 1), res(32), res(32)),  # 48
                nn.Sequential(Conv(32, 64, 3, 2, 1), res(64), res(64), res(64)),  # 24
                nn.Sequential(Conv(64, 128, 3, 2, 1), res(128), res(128)),  # 12
                nn.Sequential(Conv(128, 256, 3, 2, 1), res(256), res(256)),  # 6
                nn.Sequential(Conv(256, 512, 3, 2, 1), res(512)),  # 3
                nn.Sequential(Conv(512, 512, 3, 1, 0), Conv(512, 512, 1, 1, 0)),  # 1
            ])
            self.audio_encoder = nn.Sequential(  # (1, 80, 16)
                Conv(1, 32, 3, 1, 1), res(32), res(32),
                Conv(32, 64, 3, (3, 1), 1), res(64), res(64),
                Conv(64, 128, 3, 3, 1), res(128), res(128),
                Conv(128, 256, 3, (3, 2), 1), res(256),
                Conv(256, 512, 3, 1, 0), Conv(512, 512, 1, 1, 0),
            )
            self.face_decoder = nn.ModuleList([
                nn.Sequential(Conv(512, 512, 1, 1, 0)),  # 1
                nn.Sequential(Conv(1024, 512, 3, 1, 0, transpose=True), res(512)),  # 3
                nn.Sequential(up(1024, 512), res(512), res(512)),  # 6
                nn.Sequential(up(768, 384), res(384), res(384)),  # 12
                nn.Sequential(up(512, 256), res(256), res(256)),  # 24
                nn.Sequential(up(320, 128), res(128), res(128)),  # 48
                nn.Sequential(up(160, 64), res(64), res(64)),  # 96
            ])
            self.output = nn.Sequential(Conv(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1), nn.Sigmoid())

        def forward(self, mel, face):
            """mel: (N, 1, 80, 16); face: (N, 6, 96, 96) -> (N, 3, 96, 96)."""
            features, x = [], face
            for block in self.face_encoder:
                x = block(x)
                features.append(x)
            x = self.audio_encoder(mel)
            for block in self.face_decoder:
                x = torch.cat([block(x), features.pop()], dim=1)
            return self.output(x)

    return Wav2LipUNet()


# --- one measurement (runs in its own process) ----------------------------------------------------

def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_kib() -> int:
    peak = _status_kib("VmHWM")
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak


def measure(model_name: str, batch: int, min_time: float, min_calls: int, threads: int | None, device_name: str) -> dict:
    import torch

    rss_after_import = _status_kib("VmRSS") or _peak_kib()
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)

    if model_name == "wav2lip":
        model = build_wav2lip().eval().to(device)
        size = 96
        face = (torch.rand(batch, 6, size, size, generator=g)).to(device)
        mel = torch.randn(batch, 1, 80, 16, generator=g).to(device)

        def generate():
            return model(mel, face)
    else:
        sys.path.insert(0, str(ROOT))
        from lipsync_core.models.config import get_config
        from lipsync_core.models.stylelipsync import StyleLipSync

        config = get_config(model_name)
        model = StyleLipSync(config).eval().to(device)
        size = config.size
        masked = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
        mask = torch.zeros(batch, 1, size, size)
        mask[:, :, size // 2 :] = 1
        mask = mask.to(device)
        masked = masked * (1 - mask)
        ref = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(device)
        refs = ref.expand(batch, -1, -1, -1)
        mels = torch.randn(1, batch, config.mel_window, config.n_mels, generator=g).to(device)

        def generate():
            codes = model.codes(ref, mels)[0]
            return model.decode(masked, mask, refs, codes)

    params = sum(p.numel() for p in model.parameters())

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        generate()  # warm-up: first-call allocations and kernel selection
        sync()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, start = [], time.perf_counter()
        while len(times) < min_calls or time.perf_counter() - start < min_time:
            t0 = time.perf_counter()
            out = generate()
            sync()
            times.append(time.perf_counter() - t0)
    assert out.shape == (batch, 3, size, size), out.shape
    per_call = statistics.median(times)
    result = {
        "model": model_name,
        "size": size,
        "params_m": round(params / 1e6, 2),
        "weights_mib": round(params * 4 / 2**20, 1),
        "batch": batch,
        "calls": len(times),
        "s_per_call": per_call,
        "frames_per_s": batch / per_call,
        "ms_per_frame": 1000 * per_call / batch,
    }
    if device.type == "cuda":
        result["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result["peak_mib"] = (_peak_kib() - rss_after_import) / 1024
    return result


# --- the driver -----------------------------------------------------------------------------------

def run_point(model: str, batch: int, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", model, str(batch),
           "--min-time", str(args.min_time), "--min-calls", str(args.min_calls), "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"model": model, "batch": batch, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_ratios(results: list[dict]) -> None:
    """Each StyleLipSync point gets its ratios to the Wav2Lip-style U-Net at the same batch, measured in
    this run: frames/s (above 1: faster) and peak memory (above 1: more)."""
    baseline = {r["batch"]: r for r in results if r["model"] == "wav2lip" and "error" not in r}
    for r in results:
        base = baseline.get(r["batch"])
        if "error" in r or r["model"] == "wav2lip" or base is None:
            continue
        r["reference"] = f"Wav2Lip-style 96 px U-Net, batch {r['batch']}"
        r["fps_ratio"] = r["frames_per_s"] / base["frames_per_s"]
        if r["peak_mib"] > 0 and base["peak_mib"] > 0:  # the net peak of a tiny workload can round to 0
            r["mem_ratio"] = r["peak_mib"] / base["peak_mib"]


def markdown(results: list[dict], facts: dict) -> str:
    lines = [
        f"Generation on {facts['device']}: {describe(facts)}",
        "",
        "| model | px | params (M) | batch | frames/s | ms/frame | peak mem (MiB) | fps ours/wav2lip | mem ours/wav2lip |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | | | {r['batch']} | failed: {r['error']} | | | | |")
            continue
        ratio_fps = f"{r['fps_ratio']:.2f}" if "fps_ratio" in r else ""
        ratio_mem = f"{r['mem_ratio']:.2f}" if "mem_ratio" in r else ""
        lines.append(
            f"| {r['model']} | {r['size']} | {r['params_m']:.1f} | {r['batch']} | {r['frames_per_s']:.2f} | "
            f"{r['ms_per_frame']:.1f} | {r['peak_mib']:.0f} | {ratio_fps} | {ratio_mem} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few points, one timed call each: a check that it runs")
    parser.add_argument("--json", type=Path, help="write the results and machine facts here")
    parser.add_argument("--models", nargs="+", default=["cpu", "paper", "wav2lip"], choices=["cpu", "paper", "wav2lip"])
    parser.add_argument("--batches", type=int, nargs="+", help="batch sizes for every model (default: 1 2 4 8 16, paper 1..8)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--min-time", type=float, help="seconds of timed calls per point (default 3, quick 0)")
    parser.add_argument("--min-calls", type=int, help="timed calls per point at least (default 3, quick 1)")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.min_time is None:
        args.min_time = 0.0 if args.quick else 3.0
    if args.min_calls is None:
        args.min_calls = 1 if args.quick else 3

    if args.worker:
        model, batch = args.worker
        print(json.dumps(measure(model, int(batch), args.min_time, args.min_calls, args.threads, args.device)))
        return 0

    facts = machine_facts(args.threads, args.device)
    plan = QUICK_BATCHES if args.quick else FULL_BATCHES
    results = []
    for model in args.models:
        for batch in args.batches or plan[model]:
            result = run_point(model, batch, args)
            results.append(result)
            shown = (f"{result['frames_per_s']:.2f} frames/s, peak {result['peak_mib']:.0f} MiB"
                     if "error" not in result else f"failed: {result['error']}")
            print(f"  {model} batch {batch}: {shown}", file=sys.stderr, flush=True)
    add_ratios(results)
    print(markdown(results, facts))
    write_results(args.json, "models", args.quick, facts, results)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
