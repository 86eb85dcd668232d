"""What a calibration step costs, against the bare FFT work it contains (issue 10, item 7).

For the settings the data give (``plan_calibration``) on a real data set, times

* one Algorithm 3 training step of the engine (sections, TPPF loss, discriminator step, model
  loss, backward, Adam), median of many;
* the bare FFT work inside it, done alone on tensors of the same shapes: the forward and inverse
  2D FFTs of every section field (3n + 2 fields per section, B sections, on the L² torus) with
  their backward pass, and the TPPF of the batch with its backward pass;
* the same step with the kernels' section spectra built the earlier way (the full 3D kernel and
  its cosine sums) instead of the octant route, for the before/after ratio;
* with ``--stretch S``: the engine calibrating sections stretched within their plane (the
  longer direction by S: kernels built in 3D every step), against the same step with the
  radial kernels built the earlier way (geometry recomputed every call, autograd's scatter-add
  backward instead of the shells' weighted histogram).

Usage: ``python benchmarks/bench_step.py [electrode|sofc|...] [--threads T] [--steps N]
[--stretch S]``.
Prints the ratios; nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from napari_gencal.core.calibrate import CalibrationConfig, prepare_data
from napari_gencal.core.calibrate.loop import Calibration
from napari_gencal.core.calibrate.plan import plan_calibration
from napari_gencal.core.fields import radial_kernel, section_size, section_spectrum
from napari_gencal.core.io import read_labels
from napari_gencal.core.model import ExcursionModule
from napari_gencal.core.tppf import radial_tppf

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FILES = {"electrode": "electrode.tiff", "sofc": "SOFC_hr_input.tif", "sem": "SEM_hr_input.tif"}


def engine(name: str, stretch: float = 1.0) -> Calibration:
    img = read_labels(DATA / FILES[name])
    data = prepare_data(img, fit_b=False)
    cfg = CalibrationConfig.preset("minutes", pretrain_model_steps=5, pretrain_disc_steps=5)
    plan, work = plan_calibration(data.sections, data.phase_map.n_phases, cfg)
    cfg = cfg.replace(window=plan.window, r_max=plan.r_max, m=plan.m)
    return Calibration(work, data.phase_map, cfg, section_stretch=stretch)


def stretched(args) -> None:
    """A step with kernels stretched within the sections, now and with the earlier kernels."""
    from napari_gencal.core import kernels as fields

    t_now = float(np.median(step_times(engine(args.name, args.stretch), args.steps)))
    print(f"[{args.name}] step with sections stretched {args.stretch:g}×: {t_now * 1e3:.1f} ms")

    class Plain:  # the earlier backward: autograd through the indexing (a scatter-add)
        @staticmethod
        def apply(th, lo, w_lo, w_hi):
            return th[lo] * w_lo + th[lo + 1] * w_hi

    saved = fields._ShellGather, fields._RADIAL_CACHE_VOXELS
    fields._ShellGather, fields._RADIAL_CACHE_VOXELS = Plain, 0
    fields._RADIAL_CACHE.clear()
    try:
        t_old = float(np.median(step_times(engine(args.name, args.stretch), args.steps)))
    finally:
        fields._ShellGather, fields._RADIAL_CACHE_VOXELS = saved
    print(f"[{args.name}] the same step with the earlier radial kernels: {t_old * 1e3:.1f} ms; "
          f"now / before = {t_now / t_old:.2f}")  # fmt: skip


def step_times(cal: Calibration, n: int) -> np.ndarray:
    it = cal.run()
    for _ in range(12):  # past pre-training, into the alternating steps
        next(it)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        next(it)
        times.append(time.perf_counter() - t0)
    it.close()
    return np.array(times)


def bare_fft(cal: Calibration, n: int) -> float:
    """The FFT work of one step alone: fields forward + backward, TPPF forward + backward."""
    c = cal.config
    B, w = c.batch, cal.section_size
    L = section_size(w, cal.m)
    fields = (3 * c.n_chi2 + 2) * B if cal.k == 3 else (2 * c.n_chi2 + 1) * B
    amp = torch.rand(L, L // 2 + 1, requires_grad=True)
    noise = torch.randn(fields, L, L)
    k = cal.k

    def once():
        x = torch.fft.irfft2(torch.fft.rfft2(noise) * amp, s=(L, L))[:, :w, :w]
        soft = torch.sigmoid(x[:B * k].reshape(B, k, w, w))
        (x.sum() + radial_tppf(soft, cal.r_max, dim=2).sum()).backward()

    once()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("name", nargs="?", default="electrode", choices=sorted(FILES))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--stretch", type=float, default=None,
                   help="time sections stretched within their plane by this factor instead")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.stretch is not None:
        stretched(args)
        return
    cal = engine(args.name)
    print(f"[{args.name}] r_max {cal.r_max}, m {cal.m}, window {cal.window}, sections "
          f"{cal.section_size}², batch {cal.config.batch}")  # fmt: skip
    t_step = float(np.median(step_times(cal, args.steps)))
    t_bare = bare_fft(cal, args.steps)
    print(f"[{args.name}] Algorithm 3 step (median of {args.steps}): {t_step * 1e3:.1f} ms")
    print(f"[{args.name}] bare FFT work of a step (fields + TPPF, forward + backward): "
          f"{t_bare * 1e3:.1f} ms; step / bare = {t_step / t_bare:.2f}")  # fmt: skip

    def full_route(self, names, size):  # the earlier route: full 3D kernel, its cosine sums
        return {
            n: section_spectrum(radial_kernel(self.theta[n], 3, interpolation=self.interpolation),
                                size)
            for n in names
        }  # fmt: skip

    octant = ExcursionModule.section_spectra
    ExcursionModule.section_spectra = full_route
    try:
        t_old = float(np.median(step_times(engine(args.name), args.steps)))
    finally:
        ExcursionModule.section_spectra = octant
    print(f"[{args.name}] the same step with full-kernel spectra (before): {t_old * 1e3:.1f} ms; "
          f"octant / full = {t_step / t_old:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
