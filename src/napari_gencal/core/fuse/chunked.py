"""Fusion of scans too large for one pass: chunks with halos, in this process or on Dask.

Each chunk of the scan is fused together with a halo of scan voxels around it; only its interior
is kept. The start noise is keyed by global position, so every chunk starts from the same
unconditioned realization; the optimisation is local to the chunk and its halo, so two chunkings
give two draws that agree with the scan equally well and differ voxel by voxel mostly where the
scan leaves the structure open (the same way two seeds differ). ``docs/decisions/fusion.md``
records the measured difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..model import ExcursionModel
from .conditional import FusionSettings, fuse
from .scan import ScanMapping, prepare_scan, resolve_scale

__all__ = ["fuse_chunked", "default_halo", "plan_chunks"]


def default_halo(model: ExcursionModel, scale: Sequence[int]) -> tuple[int, int, int]:
    """Halo in scan voxels: the kernel's reach (its radius per axis) plus one block."""
    from ..fields import kernel_radius

    radii = kernel_radius(int(model.m), model.support_scale, 3)
    return tuple(int(math.ceil(r / s)) + 1 for r, s in zip(radii, scale, strict=True))  # type: ignore[return-value]


def plan_chunks(
    shape: Sequence[int], chunks: int | Sequence[int], halo: Sequence[int]
) -> list[tuple[tuple[slice, ...], tuple[slice, ...], tuple[slice, ...]]]:
    """Per chunk: (scan window with halo, the chunk in the scan, the chunk inside the window)."""
    ch = (int(chunks),) * 3 if np.isscalar(chunks) else tuple(int(c) for c in chunks)  # type: ignore[arg-type]
    if len(ch) != 3 or min(ch) < 1:
        raise ValueError(f"chunks must be one positive size or three (z, y, x), got {chunks!r}")
    out = []
    for start in np.ndindex(*[-(-n // c) for n, c in zip(shape, ch, strict=True)]):
        win, core, inner = [], [], []
        for ax in range(3):
            a = start[ax] * ch[ax]
            b = min(a + ch[ax], int(shape[ax]))
            lo, hi = max(0, a - int(halo[ax])), min(int(shape[ax]), b + int(halo[ax]))
            win.append(slice(lo, hi))
            core.append(slice(a, b))
            inner.append(slice(a - lo, b - lo))
        out.append((tuple(win), tuple(core), tuple(inner)))
    return out


def _fuse_window(model, window_scan, scale, mapping, seed, settings, device, origin):
    """One chunk (a Dask task): phase indices of the chunk window."""
    import torch

    before = torch.get_num_threads()
    if device == "cpu-1":  # a Dask task: one thread each, the cluster has the cores
        torch.set_num_threads(1)
    try:
        res = fuse(model, window_scan, scale=scale, mapping=mapping, seed=seed,
                   settings=settings, device="cpu" if device == "cpu-1" else device,
                   origin=origin)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    return res.indices, res.agreement


def fuse_chunked(
    model: ExcursionModel,
    scan: np.ndarray,
    scale: int | Sequence[int] | None = None,
    chunks: int | Sequence[int] = 32,
    halo: int | Sequence[int] | None = None,
    mapping: str | Mapping[Any, Any] | ScanMapping | None = None,
    seed: int = 0,
    settings: FusionSettings | None = None,
    device: str = "auto",
    client: Any = None,
    out: Any = None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Fuse a scan chunk by chunk (bounded memory); optionally each chunk a task on Dask.

    Parameters
    ----------
    chunks : int or (int, int, int)
        Chunk size in scan voxels.
    halo : int or (int, int, int), optional
        Scan voxels fused around each chunk and discarded (default :func:`default_halo`).
    client : distributed.Client, optional
        Run the chunks as tasks on this cluster (worker processes; each task single-threaded).
    out : array-like, optional
        Where to write the phase indices (e.g. a zarr array of the fine shape, uint8); default a
        new NumPy array. Chunks are written as they finish, so an interrupted run keeps them.
    progress : callable, optional
        ``progress(done, total)`` after each chunk.
    cancel : callable, optional
        Checked between chunks (local runs).

    Returns
    -------
    ndarray or ``out``
        Phase indices ``0..k−1`` of the fused volume (uint8).
    """
    k = int(model.n_phases)
    labels = model.phase_map.labels if model.phase_map is not None else tuple(range(1, k + 1))
    scan, mapping = prepare_scan(scan, labels, k, mapping)
    sc = resolve_scale(scale)
    hl = default_halo(model, sc) if halo is None else (
        (int(halo),) * 3 if np.isscalar(halo) else tuple(int(h) for h in halo)  # type: ignore[arg-type]
    )  # fmt: skip
    fine = tuple(n * s for n, s in zip(scan.shape, sc, strict=True))
    result = np.empty(fine, dtype=np.uint8) if out is None else out
    plan = plan_chunks(scan.shape, chunks, hl)
    st = settings or FusionSettings()

    def fine_slices(sl: Sequence[slice]) -> tuple[slice, ...]:
        return tuple(slice(s.start * f, s.stop * f) for s, f in zip(sl, sc, strict=True))

    def args(win: tuple[slice, ...]) -> tuple:
        return (model, scan[win], sc, mapping, int(seed), st)

    if client is None:
        for i, (win, core, inner) in enumerate(plan):
            if cancel is not None and cancel():
                break
            origin = tuple(w.start * f for w, f in zip(win, sc, strict=True))
            idx, _ = _fuse_window(*args(win), device, origin)
            result[fine_slices(core)] = idx[fine_slices(inner)]
            if progress is not None:
                progress(i + 1, len(plan))
        return result
    from distributed import as_completed

    futures = {}
    for win, core, inner in plan:
        origin = tuple(w.start * f for w, f in zip(win, sc, strict=True))
        fut = client.submit(_fuse_window, *args(win), "cpu-1", origin, pure=False)
        futures[fut] = (core, inner)
    for done, fut in enumerate(as_completed(futures), start=1):
        core, inner = futures[fut]
        idx, _ = fut.result()
        result[fine_slices(core)] = idx[fine_slices(inner)]
        if progress is not None:
            progress(done, len(plan))
    return result
