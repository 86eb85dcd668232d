"""Benchmark of the TPPF estimator (core/tppf/).

1. All 6 phase pairs of a 200³ three-phase volume (a crop of ../shared/data/electrode.tiff), radial
   curves to r_max = 50 (the largest the r_max rule allows at this size), against PoreSpy's
   ``two_point_correlation`` on ONE phase of the same volume. Target: >= 50x faster. Also the
   user's path, ``api.tppf`` on the label array, against the inner function.
2. The calibration workload: a batch of 32 soft three-phase sections of 128², r_max = 32, forward
   and forward+backward per call, against the bare torch FFTs of the same batch.

Run: ``python benchmarks/bench_tppf.py [--no-porespy] [--repeat N] [--threads T]``.
Each figure is printed with its ratio against a reference measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from napari_gencal.core.io import read_labels
from napari_gencal.core.phases import one_hot, to_indices
from napari_gencal.core.tppf import _fft_len, choose_r_max, radial_tppf

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "electrode.tiff"


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cpu_of(fn) -> float:
    """Process CPU seconds of one call (less sensitive than wall time on a loaded machine)."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def bench_volume(repeat: int, porespy: bool) -> None:
    img = read_labels(DATA)
    idx = to_indices(img.data, img.phase_map)[:200, :200, :200]
    r_max = 50

    def ours():
        x = one_hot(idx, 3)  # label → indicator conversion is part of the work
        with torch.no_grad():
            return radial_tppf(x, r_max)

    t_ours = best_of(ours, repeat)
    c_ours = cpu_of(ours)
    print(
        f"[volume 200^3] gencal radial_tppf, 6 pairs, r_max={r_max}: {t_ours:.3f} s "
        f"(CPU {c_ours:.2f} s)"
    )
    x = one_hot(idx, 3)
    with torch.no_grad():
        rule = choose_r_max(x)
    t_rule = best_of(lambda: radial_tppf(one_hot(idx, 3), rule), repeat)
    print(f"[volume 200^3] gencal radial_tppf at the rule's r_max={rule}: {t_rule:.3f} s")
    # What a user runs: the API on the label array (phase mapping, the r_max rule, radial and
    # directional curves), warm; against the inner function above in the same run.
    from napari_gencal import api

    labels = np.ascontiguousarray(img.data[:200, :200, :200])
    t_api = best_of(lambda: api.tppf(labels, phases="0,85,170", device="cpu"), repeat)
    print(
        f"[volume 200^3] api.tppf (labels in, rule's r_max, radial + directional curves): "
        f"{t_api:.3f} s = {t_api / t_ours:.2f}x the inner radial_tppf at r_max {r_max}"
    )
    # The FFT floor of the general method (3 forward + 6 inverse transforms of the padded volume).
    n = _fft_len(200 + r_max + 3)

    def floor():
        F = torch.fft.rfftn(x, s=(n,) * 3)
        for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
            torch.fft.irfftn(F[i].conj() * F[j], s=(n,) * 3)

    t_floor = best_of(floor, max(1, repeat // 2))
    print(
        f"[volume 200^3] bare torch rfftn x3 + irfftn x6 at {n}^3: {t_floor:.3f} s "
        f"(gencal / bare = {t_ours / t_floor:.2f})"
    )
    if porespy:
        import porespy as ps

        phase = idx == 0
        ps.metrics.two_point_correlation(phase[:32, :32, :32])  # numba compile outside the timing
        t0, c0 = time.perf_counter(), time.process_time()
        ps.metrics.two_point_correlation(phase)
        t_ps, c_ps = time.perf_counter() - t0, time.process_time() - c0
        print(
            f"[volume 200^3] PoreSpy two_point_correlation, ONE phase: {t_ps:.2f} s "
            f"(CPU {c_ps:.1f} s)"
        )
        print(
            f"[volume 200^3] speed-up, all 6 pairs (r_max {r_max}) vs PoreSpy one phase: "
            f"{t_ps / t_ours:.1f}x wall, {c_ps / c_ours:.1f}x CPU; at the rule's r_max "
            f"{t_ps / t_rule:.1f}x wall"
        )


def bench_sections(repeat: int) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 3, 128, 128, generator=g)
    r_max = 32

    def soft():
        return torch.softmax(logits, 1).requires_grad_(True)

    x = soft()

    def fwd():
        with torch.no_grad():
            radial_tppf(x, r_max)

    def fwd_grad():
        radial_tppf(x, r_max)

    def fwd_bwd():
        radial_tppf(x, r_max).sum().backward()

    n = _fft_len(128 + r_max + 3)
    xd = x.detach()

    def bare():
        torch.fft.rfftn(xd, s=(n, n), dim=(2, 3))

    rep = max(20, repeat)  # cheap calls: more repeats make the best-of robust to a busy machine
    t_bare = best_of(bare, rep)
    t_fwd = best_of(fwd, rep)
    t_fg = best_of(fwd_grad, rep)
    t_fb = best_of(fwd_bwd, rep)
    print(f"[sections 32x128^2] bare torch rfft2 of the batch at {n}^2: {t_bare * 1e3:.1f} ms")
    print(
        f"[sections 32x128^2] radial_tppf no-grad: {t_fwd * 1e3:.1f} ms "
        f"({t_fwd / t_bare:.2f}x the bare rfft)"
    )
    print(
        f"[sections 32x128^2] radial_tppf with grad: {t_fg * 1e3:.1f} ms "
        f"({t_fg / t_bare:.2f}x); forward+backward {t_fb * 1e3:.1f} ms ({t_fb / t_bare:.2f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-porespy", action="store_true", help="skip the (~30 s) PoreSpy reference")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    bench_sections(args.repeat)
    if DATA.exists():
        bench_volume(args.repeat, not args.no_porespy)
    else:
        print(f"{DATA} not found: volume benchmark skipped")


if __name__ == "__main__":
    main()
