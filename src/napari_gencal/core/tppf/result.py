"""The front-end TPPF result: :class:`TPPFResult` and :func:`tppf_of_labels`.

:func:`tppf_of_labels` turns a segmented image (2D, 3D, or a volume as a stack of sections) into
radial and directional TPPF curves from one lattice estimate, choosing r_max by the rule when it is
not given; :class:`TPPFResult` holds them with the phase names, fractions and voxel size, and writes
the CSV table and the figure that the CLI, the API and the widgets show.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._fft import _upper_lattice, pair_indices
from .estimators import (
    _check_radial_args,
    _directional_from_upper,
    _max_lag_for,
    _radial_from_upper,
    _symmetric_from_upper,
    choose_r_max,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..io import LabelImage
    from ..phases import PhaseMap

_AXIS_NAMES = ("z", "y", "x")


def _column_token(s: str) -> str:
    """A label or phase name made safe for a CSV column name."""
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in str(s)).strip("_") or "phase"


@dataclass
class TPPFResult:
    """Radial (and directional) TPPF curves of a label image, ready to save or plot.

    Attributes
    ----------
    r : ndarray
        Distances in pixels, ``0 .. r_max``.
    curves : ndarray
        ``(k, k, r_max+1)`` radial curves ``C_ij(r)``.
    phase_labels : tuple of int
        Label value of each phase (phase order).
    phase_names : tuple of str
        Display name of each phase.
    fractions : ndarray
        Volume fractions ``φ_i``.
    voxel_size : float or None
        Physical pixel size (isotropic in the analysed plane/volume) for ``r_phys``.
    unit : str or None
        Unit of ``voxel_size``.
    directional : ndarray or None
        ``(d, k, k, r_max+1)`` curves along each analysed axis.
    directional_axes : tuple of str
        Axis names of ``directional`` (e.g. ``("y", "x")`` for sections normal to z).
    bandwidth : float
        Kernel bandwidth (pixels).
    mode : str
        ``"2D"``, ``"3D"`` or ``"sections normal to <axis>"``.
    n_images : int
        Number of 2D images averaged (1 for 3D).
    """

    r: np.ndarray
    curves: np.ndarray
    phase_labels: tuple[int, ...]
    phase_names: tuple[str, ...]
    fractions: np.ndarray
    voxel_size: float | None = None
    unit: str | None = None
    directional: np.ndarray | None = None
    directional_axes: tuple[str, ...] = ()
    bandwidth: float = 1.0
    mode: str = "2D"
    n_images: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def r_max(self) -> int:
        """Largest distance (pixels)."""
        return int(self.r[-1])

    @property
    def n_phases(self) -> int:
        """Number of phases ``k``."""
        return self.curves.shape[0]

    def _tokens(self) -> list[str]:
        named = self.phase_names and not all(n.startswith("label ") for n in self.phase_names)
        src = self.phase_names if named else tuple(str(v) for v in self.phase_labels)
        return [_column_token(s) for s in src]

    def columns(self) -> dict[str, np.ndarray]:
        """The CSV table as ordered columns: r, r_phys (if a voxel size is known), C_<a>_<b>, …"""
        tok = self._tokens()
        cols: dict[str, np.ndarray] = {"r": self.r.astype(np.int64)}
        if self.voxel_size is not None:
            cols["r_phys"] = self.r * float(self.voxel_size)
        ii, jj = pair_indices(self.n_phases)
        for i, j in zip(ii, jj, strict=True):
            cols[f"C_{tok[i]}_{tok[j]}"] = self.curves[i, j]
        if self.directional is not None:
            for a, name in enumerate(self.directional_axes):
                for i, j in zip(ii, jj, strict=True):
                    cols[f"C_{tok[i]}_{tok[j]}_{name}"] = self.directional[a, i, j]
        return cols

    def to_csv(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the curves as CSV (atomic; refuses to replace a file unless ``overwrite``).

        Columns: ``r`` (pixels), ``r_phys`` (when the voxel size is known), ``C_<a>_<b>`` for every
        pair ``a <= b`` (phase names, else label values), then directional columns
        ``C_<a>_<b>_<axis>`` when present.
        """
        from ..io import atomic_write

        cols = self.columns()
        names = list(cols)
        table = np.column_stack([cols[n] for n in names])

        def _write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(",".join(names) + "\n")
                for row in table:
                    fh.write(",".join(f"{v:.10g}" for v in row) + "\n")

        return atomic_write(path, _write, overwrite=overwrite)

    def figure(self, figsize: tuple[float, float] = (6.4, 4.2)) -> Figure:
        """A matplotlib Figure (no pyplot): every pair curve and its limit ``φ_iφ_j`` (dotted)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.add_subplot()
        x = self.r if self.voxel_size is None else self.r * float(self.voxel_size)
        ii, jj = pair_indices(self.n_phases)
        names = self.phase_names
        for p, (i, j) in enumerate(zip(ii, jj, strict=True)):
            color = f"C{p % 10}"
            ax.plot(x, self.curves[i, j], color=color, label=f"{names[i]} – {names[j]}")
            ax.axhline(self.fractions[i] * self.fractions[j], color=color, ls=":", lw=0.8)
        if self.voxel_size is None:
            unit = "pixels"
        else:
            unit = self.unit or f"units of the voxel size {self.voxel_size:g}"
        ax.set_xlabel(f"distance r ({unit})")
        ax.set_ylabel("C_ij(r)")
        ax.set_title(f"Two-point coverage probabilities ({self.mode})")
        ax.set_xlim(0, x[-1] if len(x) > 1 else 1)
        ax.legend(fontsize="small", ncols=2)
        return fig

    plot = figure


def _voxel_scalar(voxel_size: Any, axes: Sequence[int]) -> float | None:
    """One isotropic spacing for the analysed axes, or None when unknown or anisotropic."""
    if voxel_size is None:
        return None
    vs = np.atleast_1d(np.asarray(voxel_size, dtype=np.float64))
    if vs.size == 1:
        return float(vs[0])
    sel = vs[list(axes)] if vs.size > max(axes) else vs
    if np.ptp(sel) > 0.01 * sel.mean():
        return None  # r in pixels is not one physical distance then; report pixels only
    return float(sel.mean())


def tppf_of_labels(
    image: np.ndarray | LabelImage,
    phase_map: PhaseMap | None = None,
    phases: str | Sequence[int] | None = None,
    axis: str | int | None = None,
    r_max: int | None = None,
    bandwidth: float = 1.0,
    device: str | torch.device | None = "auto",
    *,
    voxel_size: float | Sequence[float] | None = None,
    directional: bool = True,
    r_max_options: dict[str, Any] | None = None,
) -> TPPFResult:
    """TPPF curves of a segmented image: the one call the CLI, API and widgets use.

    Parameters
    ----------
    image : ndarray or LabelImage
        A 2D image ``(y, x)`` or a 3D volume ``(z, y, x)`` of label values.
    phase_map : PhaseMap, optional
        Which label is which phase; inferred (or built from ``phases``) when absent.
    phases : str or sequence of int, optional
        Label values in phase order, e.g. ``"0,85,170"``.
    axis : {"z", "y", "x", 0, 1, 2, None, "none"}
        For a volume: ``None`` analyses it in 3D; an axis treats it as a stack of 2D sections
        normal to that axis (``"z"``: the x–y planes) whose curves are averaged (Eq. 25).
    r_max : int, optional
        Largest distance in pixels; by default the rule of :func:`choose_r_max`.
    bandwidth : float
        Kernel bandwidth in pixels.
    device : str or torch.device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
    voxel_size : float or sequence of float, optional
        Physical voxel size (taken from a LabelImage when not given).
    directional : bool
        Also compute the curves along each analysed axis.
    r_max_options : dict, optional
        Extra keyword arguments for :func:`choose_r_max` (``tol``, ``factor``, ``cap``, ``scale``).

    Returns
    -------
    TPPFResult
    """
    from ..device import resolve_device
    from ..phases import as_sections, infer_phase_map, one_hot, to_indices

    unit = None
    if hasattr(image, "phase_map") and hasattr(image, "data"):
        phase_map = phase_map or image.phase_map
        voxel_size = voxel_size if voxel_size is not None else image.voxel_size
        unit = image.unit
        data = np.asarray(image.data)
    else:
        data = np.asarray(image)
    if data.ndim not in (2, 3):
        raise ValueError(f"expected a 2D image or a 3D volume, got an array of shape {data.shape}")
    pm = phase_map if phase_map is not None else infer_phase_map(data, phases)
    idx = to_indices(data, pm)
    if isinstance(axis, str) and axis.lower() in ("none", "3d", ""):
        axis = None
    dev = resolve_device(device)
    k = pm.n_phases
    if data.ndim == 3 and axis is not None:
        ax = {"z": 0, "y": 1, "x": 2}.get(axis, axis) if isinstance(axis, str) else int(axis)
        if ax not in (0, 1, 2):
            raise ValueError(f"axis must be z, y, x (or 0, 1, 2) or none; got {axis!r}")
        sec = as_sections(idx, ax)
        plane_axes = [a for a in range(3) if a != ax]
        mode = f"sections normal to {_AXIS_NAMES[ax]}"
        x = one_hot(sec, k, batch=True, device=dev)
    else:
        plane_axes = list(range(data.ndim))
        mode = f"{data.ndim}D"
        x = one_hot(idx, k, device=dev).unsqueeze(0)
    axes_names = tuple(_AXIS_NAMES[3 - data.ndim + a] for a in plane_axes)
    shape = tuple(x.shape[2:])
    if min(shape) < 8:
        raise ValueError(
            f"the analysed image shape {shape} is too small for two-point statistics: every side "
            "needs at least 8 pixels (rather 100 or more); use a larger image or another axis"
        )
    fractions = x.mean(dim=(0,) + tuple(range(2, x.ndim))).double().cpu().numpy()
    with torch.no_grad():
        # One lattice estimate serves the r_max rule, the radial and the axis curves.
        if r_max is None:
            opts = dict(r_max_options or {})
            limit = max(1, min(int(opts.get("cap", 100)), min(shape) // 4))
            bandwidth = _check_radial_args(limit, bandwidth)[1]
        else:
            r_max, bandwidth = _check_radial_args(r_max, bandwidth)
            limit = r_max
        L = _max_lag_for(limit, bandwidth, shape)
        up, _, _ = _upper_lattice(x, L, mean_batch=True)
        if r_max is None:
            probe = _symmetric_from_upper(_radial_from_upper(up, L, limit, bandwidth, True), k)
            r_max = choose_r_max(probe.double().cpu().numpy(), fractions, image_shape=shape, **opts)
            # The regression at r uses the same lattice window L whatever the largest r, so the
            # curves up to r_max are the probe's first values (no second regression).
            curves = probe[..., : r_max + 1]
        else:
            curves = _symmetric_from_upper(_radial_from_upper(up, L, r_max, bandwidth, True), k)
        direc = None
        if directional:
            direc = _directional_from_upper(up, L, r_max, k).double().cpu().numpy()
    return TPPFResult(
        r=np.arange(r_max + 1),
        curves=curves.double().cpu().numpy(),
        phase_labels=pm.labels,
        phase_names=pm.display_names,
        fractions=fractions,
        voxel_size=_voxel_scalar(voxel_size, plane_axes if data.ndim == 3 else [0, 1]),
        unit=unit,
        directional=direc,
        directional_axes=axes_names if directional else (),
        bandwidth=float(bandwidth),
        mode=mode,
        n_images=int(x.shape[0]),
    )
