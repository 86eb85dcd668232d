"""Connectivity and transport in the verdict: does the twin carry the data's topology and flux?

First-order descriptors fit while transport can be far off (a level set of a Gaussian field near
12 % volume fraction barely percolates; a rock's pores or a cathode's binder network do). The
verdict (:mod:`.fit_check`) therefore also judges, per phase:

* **2D sections** (every data set): the Euler number density χ_A (components − holes per area,
  :func:`~.descriptors.connectivity.euler_density`), data sections vs generated sections. Its error
  is taken relative to the data's components + holes per area (the features χ is the net of), with
  the tolerance ``TOLERANCES["euler_density"]`` and the sampling spread of single sections.
* **3D volumes**: along each axis the percolating fraction (share of the phase in clusters joining
  both faces) and TauFactor's tortuosity factor τ, up to ``n_data_crops`` disjoint crops of the
  data around its centre vs ``n_realizations`` generated volumes of the same shape; means are
  compared. The spreads of the crops and of the realizations are the sampling errors of one
  volume of that size (one data crop: its spread is taken as the realizations'). A phase that
  percolates in most data crops but not in most realizations (or the other way round) does not
  fit whatever the numbers. Without TauFactor the percolating fraction is judged alone and the
  verdict says so.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from .descriptors.connectivity import euler_density, percolating_fraction, topology_density

__all__ = [
    "euler_rows",
    "transport_verdict",
    "data_crops",
    "TRANSPORT_SIDE",
    "TRANSPORT_REALIZATIONS",
    "TRANSPORT_DATA_CROPS",
]

#: Largest side (voxels) of the data crops and the realizations whose transport is compared. τ of
#: a phase near its percolation threshold depends on the window: a rock-like 13 % pore space's
#: twin that meets the data's τ within 10 % on 128³ is +60 % on 64³ (four crops each: data
#: 7–12, twins 9–37) and within the sampling error on 96³. One τ solve of a 96³ volume takes
#: 1–5 s with TauFactor on 2 cores (64³: 0.3–0.6 s; 128³: 5–12 s).
TRANSPORT_SIDE = 96
#: Seconds the τ solves of one verdict may take; phases and axes not reached are reported as not
#: judged (percolation is judged everywhere). None: no limit.
TRANSPORT_SECONDS = 90.0
#: Realizations compared with the data (their spread is the sampling error).
TRANSPORT_REALIZATIONS = 3
#: Disjoint data crops compared (where the volume holds that many): their mean is the data's
#: figure and their spread its sampling error (one crop of electrode.tiff at 64³ gave NMC τ
#: 3.9, another 9.9, a third did not percolate).
TRANSPORT_DATA_CROPS = 2
#: TauFactor settings of the verdict: looser than TauFactor's defaults (1e-2 → 2e-2) because the
#: sampling spread of one crop is larger than that.
_TAU_ITER, _TAU_CONV = 4000, 0.02


def _name(pm: Any, i: int) -> tuple[Any, str]:
    if pm is None:
        return i + 1, f"phase {i + 1}"
    return pm.labels[i], pm.display_names[i]


def euler_rows(
    data_sections: np.ndarray, model_sections: np.ndarray, phase_map: Any, n_data: float
) -> list[dict[str, Any]]:
    """Verdict rows of the Euler number density of each phase in 2D sections.

    Parameters
    ----------
    data_sections, model_sections : ndarray
        Phase indices ``(N, H, W)`` of the data and of generated sections.
    phase_map : PhaseMap or None
    n_data : float
        Effective number of independent data sections (for the sampling error).
    """
    from .fit_check import _row

    k = int(max(data_sections.max(), model_sections.max())) + 1
    k = phase_map.n_phases if phase_map is not None else k
    rows = []
    for i in range(k):
        lab, name = _name(phase_map, i)
        if not (data_sections == i).any() or not (model_sections == i).any():
            continue
        d = euler_density(data_sections, i, n_phases=k, sections=True)
        per = np.array([euler_density(s[None], i, n_phases=k, sections=True)
                        for s in model_sections])  # fmt: skip
        m = float(per.mean())
        scale = topology_density(data_sections, i, n_phases=k)
        if scale <= 0:
            continue
        n_model = len(per)
        sd = None
        if n_model >= 3:
            sd = float(per.std(ddof=1)) / scale * math.sqrt(1.0 / n_model + 1.0 / max(n_data, 1.0))
        rows.append(_row(name, lab, "euler_density", None, d, m, sd=sd, scale=scale,
                         note="relative to the data's components + holes per area"))  # fmt: skip
    return rows


def data_crops(shape: tuple[int, ...], side: int, n: int) -> list[tuple[slice, ...]]:
    """Up to ``n`` disjoint crops of side ``min(side, shape)`` around the volume's centre.

    The volume is tiled by as many crops per axis as fit, the tiling centred; the tiles nearest
    to the centre come first (the central crop alone where only one fits).
    """
    sides = [min(int(s), int(side)) for s in shape]
    starts = []
    for n_ax, s in zip(shape, sides, strict=True):
        k = max(1, n_ax // s)
        margin = (n_ax - k * s) // 2
        starts.append([margin + j * s for j in range(k)])
    centre = np.array(shape, dtype=float) / 2
    tiles = sorted(
        np.ndindex(*(len(st) for st in starts)),
        key=lambda t: (float(np.sum((np.array([starts[a][t[a]] + sides[a] / 2
                                               for a in range(len(t))]) - centre) ** 2)), t),
    )  # fmt: skip
    return [tuple(slice(starts[a][t[a]], starts[a][t[a]] + sides[a]) for a in range(len(t)))
            for t in tiles[: max(1, int(n))]]  # fmt: skip


def _spread(values: np.ndarray, relative_to: float) -> float | None:
    """Standard deviation of one sample, relative to ``relative_to`` (None from < 2 values)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or not relative_to:
        return None
    return float(v.std(ddof=1)) / abs(relative_to)


def _mean_sd(s_twin: float | None, n_twin: int, s_data: float | None, n_data: int) -> float | None:
    """Standard deviation of (mean of the twins − mean of the data crops); a single data crop
    is taken to spread as much as one realization."""
    s_data = s_twin if s_data is None else s_data
    if s_twin is None:
        return None
    return math.sqrt(s_twin**2 / max(n_twin, 1) + s_data**2 / max(n_data, 1))


def _tau(mask_idx: np.ndarray, phase: int, axis: int, k: int, device: str) -> float:
    """τ of one phase along one axis (inf: does not percolate)."""
    from .descriptors.transport import effective_transport

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = effective_transport(mask_idx, phase, axis, n_phases=k, iter_limit=_TAU_ITER,
                                conv_crit=_TAU_CONV, device=device)  # fmt: skip
    return float(r.tau_factor) if r.percolates else math.inf


def transport_verdict(
    model: Any,
    volume: np.ndarray,
    *,
    side: int = TRANSPORT_SIDE,
    n_realizations: int = TRANSPORT_REALIZATIONS,
    n_data_crops: int = TRANSPORT_DATA_CROPS,
    seed: int = 0,
    device: str = "cpu",
    tau: bool | None = None,
    seconds: float | None = -1.0,
    axes: tuple[int, ...] = (0, 1, 2),
    phases: tuple[int, ...] | None = None,
) -> Any:
    """Percolating fraction and τ per phase and axis: data crops vs generated volumes.

    Parameters
    ----------
    model : ExcursionModel
        At the data volume's resolution (length scale and anisotropy applied).
    volume : ndarray
        Data phase indices ``(z, y, x)`` of ``model.phase_map``.
    side : int
        Largest side of the data crops compared (and of the realizations).
    n_realizations : int
        Generated volumes.
    n_data_crops : int
        Disjoint data crops around the centre (:func:`data_crops`), where the volume holds them.
    seed : int
        Seed of the first realization (the others follow).
    device : str
        Where realizations are generated and τ is solved.
    tau : bool, optional
        Solve τ with TauFactor (default: when it is installed).
    seconds : float, optional
        Time for the τ solves; what is not reached is listed as not judged (default
        :data:`TRANSPORT_SECONDS`; None: no limit).
    axes : tuple of int
        Directions judged (0 = z).
    phases : tuple of int, optional
        Phase indices judged (default: all).

    Returns
    -------
    Verdict
    """
    from .descriptors.transport import taufactor_available
    from .fit_check import Verdict, _line, _row
    from .generate import generate
    from .phases import to_indices

    pm = model.phase_map
    k = int(model.n_phases)
    vol = np.asarray(volume)
    datas = [np.ascontiguousarray(vol[c]) for c in data_crops(vol.shape, side, n_data_crops)]
    shape = datas[0].shape
    use_tau = taufactor_available() if tau is None else bool(tau)
    if seconds is not None and seconds < 0:
        seconds = TRANSPORT_SECONDS
    twins = []
    for j in range(int(n_realizations)):
        g = generate(model, shape, seed=seed + j, device=device)
        twins.append(to_indices(g, pm) if pm is not None else g - 1)
    n, n_d = len(twins), len(datas)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    skipped: list[str] = []
    todo = []  # τ solves, axis by axis (the anisotropy axis first) if time runs short
    for i in range(k) if phases is None else phases:
        lab, name = _name(pm, i)
        if not any((d == i).any() for d in datas):
            continue
        for ax in axes:
            d_pf = np.nan_to_num([percolating_fraction(d, i, ax, n_phases=k) for d in datas])
            m_pf = np.nan_to_num([percolating_fraction(t, i, ax, n_phases=k) for t in twins])
            d_perc = int((d_pf > 0).sum()) * 2 >= n_d  # most data crops (a tie: percolates)
            m_perc = int((m_pf > 0).sum())
            agree = (m_perc * 2 > n) == d_perc or (m_perc * 2 == n)
            note = "" if agree else (
                "percolates in the data, not in most realizations" if d_perc
                else "percolates in most realizations, not in the data"
            )  # fmt: skip
            sd = _mean_sd(_spread(m_pf, 1.0), n, _spread(d_pf, 1.0), n_d)
            rows.append(_row(name, lab, "percolating_fraction", "zyx"[ax], float(d_pf.mean()),
                             float(m_pf.mean()), note, sd=sd,
                             ok=None if agree else False))  # fmt: skip
            if use_tau and d_perc and agree:
                todo.append((ax, i, lab, name))
    for ax, i, lab, name in sorted(todo):
        if seconds is not None and time.perf_counter() - t0 > seconds:
            skipped.append(f"{name} {'zyx'[ax]}")
            continue
        d_tau = np.array([_tau(d, i, ax, k, device) for d in datas])
        m_tau = np.array([_tau(t, i, ax, k, device) for t in twins])
        d_fin, fin = d_tau[np.isfinite(d_tau)], m_tau[np.isfinite(m_tau)]
        if d_fin.size == 0 or fin.size == 0:
            continue
        d_mean, m_mean = float(d_fin.mean()), float(fin.mean())
        sd = _mean_sd(_spread(fin, m_mean), fin.size, _spread(d_fin, d_mean), d_fin.size)
        rows.append(_row(name, lab, "tortuosity_factor", "zyx"[ax], d_mean, m_mean, sd=sd))
    fits = all(r["ok"] for r in rows)
    size = "×".join(map(str, shape))
    what = (
        f"transport: {n} generated {size} volumes vs "
        + ("the data's central crop" if n_d == 1 else f"{n_d} crops of the data (means)")
        + ("" if use_tau else " (percolation only: TauFactor is not installed, "
           "pip install napari-gencal[transport])")
        + (f" (tau not judged within {seconds:.0f} s: {', '.join(skipped)})" if skipped else "")
    )  # fmt: skip
    return Verdict(fits, _line(rows, fits), rows, what)
