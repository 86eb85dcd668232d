"""Benchmark: 3D generation against the bare FFTs it needs, and chunked against whole.

Run: ``python benchmarks/bench_generate.py [--size 256] [--m 20] [--device cpu] [--threads 2]``
(``--auto-only``: the default ``chunks="auto"`` against whole generation at ``--size``)

Figures printed:

* whole-volume generation of a three-phase model with n = 3 (11 fields), Mvoxel/s and peak memory;
* the floor measured in the same run: the torch FFTs of plain FFT convolution (5 kernel rFFTs and
  one rFFT + inverse per field at the padded FFT shape), and the ratio generation / floor
  (target ≤ 1.5). Generation itself does fewer transforms (real kernel spectra by cosine sums,
  one inverse per squared term), so it can come close to the floor despite drawing the noise;
* the same in single precision;
* chunked generation (a --chunk-size³ volume in blocks of half that edge, halo m) against whole,
  and that both agree voxel for voxel.

Each configuration runs in a fresh subprocess so that its peak resident memory (ru_maxrss) is its
own. Ratios are given for wall time and for process CPU time; on a shared, loaded machine the CPU
time ratio is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from scipy.fft import next_fast_len
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.generate import generate
from napari_gencal.core.fields import kernel_radius

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
n, m, what = cfg["size"], cfg["m"], cfg["what"]
model = ExcursionModel.default(m=m, fractions=(0.42, 0.51, 0.07), width=m / 4)
dtype = torch.float64 if cfg["precision"] == "double" else torch.float32
dev = torch.device(cfg["device"])
shape = (n, n, n)
r = kernel_radius(m, model.scale, 3)
fft_shape = tuple(int(next_fast_len(s + 2 * rr, real=True)) for s, rr in zip(shape, r))
res = {}
if what == "floor":
    # Plain FFT convolution: 5 kernel spectra, and one forward + inverse FFT per field.
    x = torch.randn(fft_shape, dtype=dtype, device=dev)
    n_fields = 2 + 3 * model.n_chi2
    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()
    best = None
    for _ in range(cfg["repeat"]):
        sync(); t = time.perf_counter(); c = cpu()
        for _ in range(5):
            k = torch.fft.rfftn(x)
            del k
        for _ in range(n_fields):
            y = torch.fft.irfftn(torch.fft.rfftn(x), s=fft_shape)
            del y
        sync(); run = (time.perf_counter() - t, cpu() - c)
        best = run if best is None or run[0] < best[0] else best
    res["seconds"], res["cpu_seconds"] = best
else:
    chunks = {"whole": None, "auto": "auto"}.get(what, (n // 2,) * 3)
    best = None
    for _ in range(cfg["repeat"]):
        t = time.perf_counter(); c = cpu()
        v = generate(model, shape, seed=1, device=cfg["device"], chunks=chunks,
                     precision=cfg["precision"])
        if dev.type == "cuda":
            torch.cuda.synchronize()
        run = (time.perf_counter() - t, cpu() - c)
        best = run if best is None or run[0] < best[0] else best
    res["seconds"], res["cpu_seconds"] = best
    res["fractions"] = (np.bincount(v.ravel(), minlength=4)[1:] / v.size).round(4).tolist()
    np.save(cfg["out"], v) if cfg.get("out") else None
res["fft_shape"] = fft_shape
res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if dev.type == "cuda":
    res["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
print(json.dumps(res))
"""


def _run(cfg: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per figure; the fastest counts (page-fault costs on a VM vary run to run)",
    )
    ap.add_argument(
        "--chunk-size", type=int, default=128, help="volume edge of the chunked comparison"
    )
    ap.add_argument("--no-chunks", action="store_true", help="skip the chunked comparison")
    ap.add_argument(
        "--auto-only",
        action="store_true",
        help="only compare the default chunks='auto' with whole generation at --size (float32)",
    )
    args = ap.parse_args()
    base = {
        "size": args.size,
        "m": args.m,
        "device": args.device,
        "threads": args.threads,
        "repeat": args.repeat,
    }
    nvox = args.size**3
    print(f"generation of a {args.size}^3 three-phase volume, n = 3, m = {args.m}, "
          f"device {args.device}, {args.threads} threads")  # fmt: skip
    if args.auto_only:
        auto = _run({**base, "what": "auto", "precision": "single"})
        whole = _run({**base, "what": "whole", "precision": "single"})
        print(
            f"[single] chunks='auto' {auto['seconds']:.1f} s, peak RSS {auto['peak_rss_mb']:.0f} "
            f"MB; whole {whole['seconds']:.1f} s, peak RSS {whole['peak_rss_mb']:.0f} MB; ratio "
            f"auto/whole = {auto['seconds'] / whole['seconds']:.2f}; fractions "
            f"{auto['fractions']} vs {whole['fractions']}"
        )
        return
    results = {}
    for prec in ("double", "single"):
        floor = _run({**base, "what": "floor", "precision": prec})
        whole = _run({**base, "what": "whole", "precision": prec})
        results[prec] = whole
        ratio = whole["seconds"] / floor["seconds"]
        print(
            f"[{prec}] generate {whole['seconds']:.2f} s = {nvox / whole['seconds'] / 1e6:.2f} "
            f"Mvoxel/s, peak RSS {whole['peak_rss_mb']:.0f} MB"
            + (f", peak GPU {whole['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in whole else "")
        )
        cpu_ratio = whole["cpu_seconds"] / floor["cpu_seconds"]
        print(
            f"[{prec}] floor (bare torch FFTs at {tuple(floor['fft_shape'])}) "
            f"{floor['seconds']:.2f} s; ratio generate/floor = {ratio:.2f} wall, "
            f"{cpu_ratio:.2f} CPU time (target <= 1.5)"
        )
        print(f"[{prec}] volume fractions {whole['fractions']} (model: 0.42, 0.51, 0.07)")
    if not args.no_chunks:
        import tempfile
        from pathlib import Path

        import numpy as np

        cb = {**base, "size": args.chunk_size, "precision": "double"}
        with tempfile.TemporaryDirectory() as tmp:
            a, b = str(Path(tmp) / "w.npy"), str(Path(tmp) / "c.npy")
            whole = _run({**cb, "what": "whole", "out": a})
            chunk = _run({**cb, "what": "chunked", "out": b})
            same = np.array_equal(np.load(a), np.load(b))
        print(
            f"[{args.chunk_size}^3 in {args.chunk_size // 2}^3 chunks] {chunk['seconds']:.2f} s, "
            f"peak RSS "
            f"{chunk['peak_rss_mb']:.0f} MB; whole {whole['seconds']:.2f} s, peak RSS "
            f"{whole['peak_rss_mb']:.0f} MB; ratio chunked/whole = "
            f"{chunk['seconds'] / whole['seconds']:.2f}; identical: {same}"
        )


if __name__ == "__main__":
    main()
