"""Effective transport through a phase with TauFactor (optional dependency).

TauFactor (Kench, Squires & Cooper 2023, ``pip install taufactor``) solves steady-state diffusion on
the voxel grid (finite differences, face neighbours, over-relaxed iterations; PyTorch). It reports
the tortuosity factor ``τ = ε · D_0 / D_eff`` and the relative effective diffusivity
``D_eff / D_0 = ε / τ`` along its first axis; other directions are handled by moving the axis.

A phase that is not connected from inlet to outlet through face-neighbours carries no flux: it is
reported as not percolating (``tau_factor = nan``, ``effective_diffusivity = 0``) without running
the solver. Dead-end pores carry no flux but do count in ε, which is why τ from TauFactor is larger
than the geodesic tortuosity (TauFactor #76).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ._common import DescriptorError, as_index_array, axis_index

__all__ = ["TransportResult", "effective_transport", "taufactor_available"]


@dataclass
class TransportResult:
    """Effective transport of one phase along one axis (TauFactor).

    Attributes
    ----------
    tau_factor : float
        Tortuosity factor (``nan`` when not percolating).
    effective_diffusivity : float
        Relative effective diffusivity ``D_eff / D_0 = ε / τ`` (0 when not percolating).
    volume_fraction : float
        ε of the phase.
    percolates : bool
        Face-connected path from inlet to outlet exists.
    converged : bool
        Whether the solver met ``conv_crit`` within ``iter_limit``.
    iterations : int
    phase, axis : int
    """

    tau_factor: float
    effective_diffusivity: float
    volume_fraction: float
    percolates: bool
    converged: bool
    iterations: int
    phase: int
    axis: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (``nan`` becomes ``None``)."""
        d = asdict(self)
        if not np.isfinite(d["tau_factor"]):
            d["tau_factor"] = None
        return d


def taufactor_available() -> bool:
    """Whether TauFactor can be imported."""
    try:
        import taufactor  # noqa: F401
    except ImportError:
        return False
    return True


def _percolates_faces(mask: np.ndarray) -> bool:
    """Face-connected cluster touching the planes at index 0 and -1 of axis 0."""
    lab, n = ndi.label(mask)
    if n == 0:
        return False
    a = np.unique(lab[0])
    b = np.unique(lab[-1])
    return bool(np.intersect1d(a[a > 0], b[b > 0]).size)


def _cubic(img: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """``img`` on cubic voxels of its finest spacing: repeated voxels for integer ratios,
    nearest-neighbour resampling otherwise."""
    ratio = [s / min(spacing) for s in spacing]
    if all(abs(r - round(r)) < 1e-6 for r in ratio):
        for axis, r in enumerate(ratio):
            if round(r) > 1:
                img = np.repeat(img, int(round(r)), axis=axis)
        return np.ascontiguousarray(img)
    return np.ascontiguousarray(ndi.zoom(img, ratio, order=0))


def effective_transport(
    indices: Any,
    phase: int,
    axis: int | str = "z",
    *,
    n_phases: int | None = None,
    iter_limit: int = 5000,
    conv_crit: float = 0.01,
    device: str = "cpu",
    spacing: Sequence[float] | None = None,
) -> TransportResult:
    """Tortuosity factor and relative effective diffusivity of a phase with TauFactor.

    Parameters
    ----------
    indices : ndarray or Tensor
        3D phase-index volume.
    phase : int
        Conducting phase; every other phase is insulating.
    axis : int or {"z", "y", "x"}
        Transport direction.
    n_phases : int, optional
        Number of phases (for index validation).
    iter_limit : int
        Solver iteration budget (TauFactor's own default is 10000; 256³ volumes need ~2000–5000).
    conv_crit : float
        TauFactor's convergence criterion (relative spread of the layer fluxes).
    device : str
        ``"cpu"`` or ``"cuda"`` (``"auto"`` picks CUDA when available).
    spacing : sequence of float, optional
        Voxel size per axis ``(z, y, x)`` of non-cubic voxels (a FIB-SEM stack): the phase is
        resampled to cubic voxels of the finest spacing (each voxel repeated along the coarser
        axes; nearest neighbour when the ratios are not integers) and solved there. TauFactor
        1.2's ``AnisotropicSolver`` was tried first and returned τ = inf (no flux) for every
        non-cubic spacing, even 2:1. Cubic or None: τ is dimensionless, nothing changes.

    Returns
    -------
    TransportResult

    Raises
    ------
    ImportError
        When TauFactor is not installed (``pip install taufactor``).
    """
    arr, k = as_index_array(indices, n_phases)
    if arr.ndim != 3:
        raise DescriptorError(
            f"effective transport is computed on 3D volumes; got shape {arr.shape}"
        )
    ax = axis_index(axis, 3)
    if not 0 <= int(phase) < k:
        raise DescriptorError(f"phase must be in 0..{k - 1}, got {phase}")
    mask = np.moveaxis(arr == phase, ax, 0)
    eps = float(mask.mean())
    if eps == 0:
        raise DescriptorError(
            f"phase {phase} is absent from the volume; no transport to compute — check the "
            "phase mapping"
        )
    if not _percolates_faces(mask):
        return TransportResult(float("nan"), 0.0, eps, False, True, 0, int(phase), ax)
    try:
        import taufactor
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "effective transport needs TauFactor: pip install taufactor "
            "(or pip install napari-gencal[transport])"
        ) from exc
    if device == "auto":
        from ..device import resolve_device

        device = str(resolve_device("auto"))
    img = np.ascontiguousarray(mask, dtype=np.uint8)
    sp = None if spacing is None else [float(v) for v in spacing]
    if sp is not None and len(sp) != 3:
        raise DescriptorError(f"spacing needs one value per axis (z, y, x), got {spacing}")
    if sp is not None and max(sp) > min(sp) * (1 + 1e-6):
        moved = [sp[ax]] + [sp[i] for i in range(3) if i != ax]  # the axes of ``mask``
        img = _cubic(img, moved)
    solver = taufactor.Solver(img, device=device)
    with contextlib.redirect_stdout(io.StringIO()):  # TauFactor prints progress and warnings
        tau = solver.solve(iter_limit=int(iter_limit), verbose=False, conv_crit=conv_crit)
    tau_f = float(np.asarray(tau.cpu() if hasattr(tau, "cpu") else tau).ravel()[0])
    d_eff = float(np.asarray(solver.D_eff).ravel()[0])
    converged = bool(getattr(solver, "converged", True))
    return TransportResult(
        tau_f, d_eff, eps, True, converged, int(getattr(solver, "iter", 0)), int(phase), ax
    )
