"""The anisotropy factor b along z from chord length distributions (method.md §2, Eq. 40).

The cylindrically isotropic model is the isotropic one stretched by b along z, so its chords along z
are b times its chords in the x–y plane: ``F^z(ℓ) = F^xy(ℓ / b)``. From a 3D data volume we take the
per-phase chord length CDFs along z and in the plane (``F^xy = ½(F^x + F^y)``) and choose

    b = argmin_b Σ_i ∫ (F_i^z(ℓ) − F_i^xy(ℓ / b))² dℓ,   b ∈ [0.1, 10]

by a log-spaced grid search refined with a bounded scalar minimization.

On a lattice the stretch is exact for the fields but not for chords: voxel-scale roughness of the
phases is not stretched, so a model with factor b has z-chords not quite b times its x–y chords,
and Eq. 40's CDF distance weighs the phases by their chord spread, not by their mean chords.
:func:`fit_anisotropy_to_model` therefore refines b with the calibrated model itself: it chooses b
so that, per phase, the model's mean chord along z over its in-plane mean chord equals the data's
ratio — on a well-calibrated model, the z chords of method.md §2's acceptance criterion.

Chord length distributions are number-weighted and free of window bias: only chords with both ends
inside the window are seen, each weighted by the inverse of the number of positions at which a chord
of its length fits (minus sampling with Horvitz–Thompson weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "fit_anisotropy",
    "fit_anisotropy_to_model",
    "chord_cdf",
    "chord_ratios",
    "anisotropy_distance",
    "fit_field_anisotropy",
    "FIELD_GROUPS",
]

B_RANGE = (0.1, 10.0)


def chord_cdf(indicator: np.ndarray, axis: int, max_len: int | None = None) -> np.ndarray:
    """Chord length CDF ``F(ℓ)``, ℓ = 0..max_len, of a boolean volume along one axis.

    From :func:`napari_gencal.core.descriptors.chord_length_distribution` (minus sampling with
    Horvitz–Thompson weights, so the window's preference for short chords is undone). All zeros
    when the volume has no chord that fits inside it.
    """
    from ..descriptors import chord_length_distribution

    ind = np.asarray(indicator, dtype=bool)
    max_len = max(ind.shape) if max_len is None else max_len
    try:
        cld = chord_length_distribution(ind.astype(np.uint8), 1, axis, n_phases=2)
    except ValueError:  # DescriptorError: absent phase or no complete chord
        return np.zeros(max_len + 1)
    return np.asarray(cld.cdf_at(np.arange(max_len + 1, dtype=float)), dtype=float)


def _cdfs(volume: np.ndarray, k: int, axis: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    others = [a for a in range(3) if a != axis]
    max_len = max(volume.shape)
    fz, fxy = [], []
    for i in range(k):
        ind = volume == i
        fz.append(chord_cdf(ind, axis, max_len))
        fxy.append(0.5 * (chord_cdf(ind, others[0], max_len) + chord_cdf(ind, others[1], max_len)))
    return fz, fxy


def anisotropy_distance(
    b: float, fz: list[np.ndarray], fxy: list[np.ndarray], step: float = 0.25
) -> float:
    """Σ_i ∫ (F_i^z(ℓ) − F_i^xy(ℓ / b))² dℓ on a grid of spacing ``step`` (Eq. 40)."""
    total = 0.0
    for z, xy in zip(fz, fxy, strict=True):
        ell = np.arange(0.0, len(z) - 1 + step / 2, step)
        grid = np.arange(len(z), dtype=float)
        fz_l = np.interp(ell, grid, z)
        fxy_l = np.interp(ell / b, grid, xy, right=1.0)
        total += float(np.sum((fz_l - fxy_l) ** 2) * step)
    return total


def fit_anisotropy(
    volume_indices: np.ndarray,
    model_or_phases: Any = None,
    *,
    axis: int | str = 0,
    b_range: tuple[float, float] = B_RANGE,
    n_grid: int = 81,
) -> float:
    """Fit the anisotropy factor b along ``axis`` of a 3D phase-index volume (Eq. 40).

    Parameters
    ----------
    volume_indices : ndarray
        3D phase indices ``(z, y, x)``, values ``0 .. k-1``.
    model_or_phases : ExcursionModel or int, optional
        The model whose phases are fitted (its ``n_phases``) or the number of phases ``k``
        (default: largest index + 1).
    axis : int or {"z", "y", "x"}
        The stretched (pressing) axis; 0 = z.
    b_range : (float, float)
        Search interval for b.
    n_grid : int
        Log-spaced grid points before the refinement.

    Returns
    -------
    float
        b: chords along ``axis`` are b times the in-plane chords (b > 1: elongated along z).

    Raises
    ------
    ValueError
        For a non-3D input, a bad axis or range, or a phase without interior chords.
    """

    vol = np.asarray(volume_indices)
    if vol.ndim != 3:
        raise ValueError(
            f"fit_anisotropy needs a 3D volume (z, y, x), got shape {vol.shape}; b cannot be "
            "measured from 2D images — leave it at 1 or give a 3D stack"
        )
    ax = {"z": 0, "y": 1, "x": 2}.get(axis, axis) if isinstance(axis, str) else int(axis)
    if ax not in (0, 1, 2):
        raise ValueError(f"axis must be z, y, x or 0, 1, 2; got {axis!r}")
    lo, hi = float(b_range[0]), float(b_range[1])
    if not 0 < lo < hi:
        raise ValueError(f"b_range must be two increasing positive numbers, got {b_range}")
    if model_or_phases is None:
        k = int(vol.max()) + 1
    elif isinstance(model_or_phases, (int, np.integer)):
        k = int(model_or_phases)
    else:
        k = int(model_or_phases.n_phases)
    fz, fxy = _cdfs(vol, k, ax)
    for i in range(k):
        if fz[i][-1] == 0 or fxy[i][-1] == 0:
            raise ValueError(
                f"phase {i} has no chord inside the volume along some axis (absent or spanning the "
                "whole volume); b cannot be fitted from this volume"
            )
    return stretch_between(fz, fxy, (lo, hi), n_grid)


def stretch_between(
    f_long: list[np.ndarray],
    f_ref: list[np.ndarray],
    b_range: tuple[float, float] = B_RANGE,
    n_grid: int = 81,
) -> float:
    """Eq. 40's minimiser ``argmin_b Σ_i ∫ (F_i(ℓ) − G_i(ℓ / b))² dℓ`` of chord CDFs ``F`` (the
    stretched direction) against ``G`` (the reference): a log grid over ``b_range``, then a
    bounded refinement between the best point's neighbours."""
    from scipy.optimize import minimize_scalar

    lo, hi = float(b_range[0]), float(b_range[1])
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), n_grid))
    dist = np.array([anisotropy_distance(b, f_long, f_ref) for b in grid])
    j = int(np.argmin(dist))
    a, c = grid[max(0, j - 1)], grid[min(n_grid - 1, j + 1)]
    res = minimize_scalar(
        lambda lb: anisotropy_distance(float(np.exp(lb)), f_long, f_ref),
        bounds=(np.log(a), np.log(c)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(res.x)) if res.fun <= dist[j] else float(grid[j])


def chord_ratios(volume_indices: np.ndarray, k: int, axis: int = 0) -> np.ndarray:
    """Mean chord along ``axis`` over the mean of the in-plane mean chords, per phase.

    Mean chords by the unbiased V_V / N_L estimator; NaN where a phase has no chord.
    """
    from ..descriptors import mean_chord_length

    vol = np.asarray(volume_indices)
    others = [a for a in range(3) if a != axis]
    out = np.full(k, np.nan)
    for i in range(k):
        try:
            along = mean_chord_length(vol, i, axis=axis, n_phases=k)
            plane = 0.5 * sum(mean_chord_length(vol, i, axis=a, n_phases=k) for a in others)
        except ValueError:
            continue
        if np.isfinite(along) and np.isfinite(plane) and plane > 0:
            out[i] = along / plane
    return out


def _realization_shape(vol: np.ndarray, model: Any, b: float) -> tuple[int, int, int]:
    """Realizations that hold about eight of the coarsest phase's in-plane chords per side (in
    the model's units), stretched by ``b`` along the stack axis, within 48–192 voxels."""
    from ..descriptors import mean_chord_length

    k = int(model.n_phases)
    plane = max(
        0.5 * (mean_chord_length(vol, i, axis=1, n_phases=k)
               + mean_chord_length(vol, i, axis=2, n_phases=k))
        for i in range(k)
    ) * float(model.length_scale)  # fmt: skip
    n = int(np.clip(8 * plane, 64, 160))
    return int(np.clip(8 * plane * b, 48, 192)), n, n


def fit_anisotropy_to_model(
    volume_indices: np.ndarray,
    model: Any,
    *,
    b_start: float | None = None,
    b_range: tuple[float, float] = B_RANGE,
    shape: tuple[int, int, int] | None = None,
    seed: int = 0,
    device: str = "cpu",
    n_grid: int = 7,
) -> float:
    """b such that the model's mean chords along z relate to its in-plane ones as the data's do.

    For each phase i the data give ``q_i = ℓ_i^z / ℓ_i^xy`` (mean chord along z over the mean of
    the x and y mean chords); a realization of ``model`` stretched by b gives ``q_i(b)``. The
    objective ``Σ_i (log q_i(b) − log q_i)²`` is zero when every phase's z chords are as much
    longer (or shorter) than its in-plane chords as in the data — so a model whose in-plane chords
    match the data's has the data's z chords (method.md §2's acceptance, per phase). Matching the
    ratio rather than the z chords themselves keeps b from compensating an in-plane mismatch (an
    earlier z-chord match returned b = 1.63 on electrode.tiff, whose b is 1.03). Search: ``n_grid``
    points within a factor 1.6 of ``b_start`` on a log scale, then a bounded refinement; every
    candidate uses the same seed (common random numbers).

    Parameters
    ----------
    volume_indices : ndarray
        3D data phase indices ``(z, y, x)`` at the model's resolution.
    model : ExcursionModel
        Calibrated model; its ``anisotropy`` is replaced by each candidate.
    b_start : float, optional
        Start (default: the geometric mean of the data's chord ratios).
    b_range : (float, float)
        Hard limits for b.
    shape : (int, int, int), optional
        Realization shape (default: 8 coarsest in-plane mean chords across, clipped to 64..160,
        and as long along z as b_start needs, clipped to 48..192).
    seed : int
        Seed of the realizations.
    device : str
        Where realizations are generated.
    n_grid : int
        Grid points before the refinement.

    Returns
    -------
    float
    """
    from scipy.optimize import minimize_scalar

    from ..generate import generate
    from ..phases import to_indices

    vol = np.asarray(volume_indices)
    if vol.ndim != 3:
        raise ValueError(f"fit_anisotropy_to_model needs a 3D volume, got shape {vol.shape}")
    k = int(model.n_phases)
    target = np.log(chord_ratios(vol, k))
    ok = np.isfinite(target)
    if not ok.any():
        raise ValueError("no phase has chords along every axis; b cannot be fitted")
    b0 = float(np.exp(np.mean(target[ok]))) if b_start is None else float(b_start)
    b0 = float(np.clip(b0, *b_range))
    if shape is None:
        shape = _realization_shape(vol, model, b0)

    def objective(log_b: float) -> float:
        mdl = model.copy(anisotropy=float(np.exp(log_b)))
        labels = generate(mdl, shape, seed=seed, device=device)
        idx = to_indices(labels, mdl.phase_map) if mdl.phase_map is not None else labels - 1
        q = np.log(chord_ratios(idx, k))
        use = ok & np.isfinite(q)
        return float(np.mean((q[use] - target[use]) ** 2)) if use.any() else float("inf")

    lo = max(np.log(b_range[0]), np.log(b0) - np.log(1.6))
    hi = min(np.log(b_range[1]), np.log(b0) + np.log(1.6))
    grid = np.linspace(lo, hi, n_grid)
    vals = np.array([objective(g) for g in grid])
    j = int(np.argmin(vals))
    a, c = grid[max(0, j - 1)], grid[min(n_grid - 1, j + 1)]
    res = minimize_scalar(objective, bounds=(a, c), method="bounded", options={"xatol": 0.01})
    return float(np.exp(res.x)) if res.fun <= vals[j] else float(np.exp(grid[j]))


#: Fields that shape each model phase most directly: phase 1 its own Gaussian and χ² parts, phase
#: 2 likewise, and the shared χ² part ``eps_Z`` that couples them (three phases). Two phases: the
#: Gaussian part and the χ² parts of ``Z1``.
FIELD_GROUPS = {
    3: (("X1", "eps_X"), ("X2", "eps_Y"), ("eps_Z",)),
    2: (("X1",), ("eps_X", "eps_Z")),
}
#: One shared b stays when every phase's z/in-plane chord ratio is within this (relative) of the
#: data's: per-field factors only where the data ask for them.
PER_FIELD_TOLERANCE = 0.03


def _realized_log_ratios(
    model: Any, b_groups: np.ndarray, groups: tuple, shape: tuple, seed: int, device: str, k: int
) -> np.ndarray:
    from ..generate import generate
    from ..phases import to_indices

    fields = {name: float(b) for g, b in zip(groups, b_groups, strict=True) for name in g}
    mdl = model.copy(anisotropy_fields=fields)
    labels = generate(mdl, shape, seed=seed, device=device)
    idx = to_indices(labels, mdl.phase_map) if mdl.phase_map is not None else labels - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(chord_ratios(idx, k))


def fit_field_anisotropy(
    volume_indices: np.ndarray,
    model: Any,
    *,
    b_start: float | None = None,
    b_range: tuple[float, float] = B_RANGE,
    tolerance: float = PER_FIELD_TOLERANCE,
    seed: int = 0,
    device: str = "cpu",
    iterations: int = 4,
) -> tuple[float, dict[str, float], dict[str, Any]]:
    """One b for all fields, or one per group of fields where the phases stretch differently.

    First the shared b (:func:`fit_anisotropy_to_model`). When some phase's z/in-plane mean-chord
    ratio in a realization then differs from the data's by more than ``tolerance``, each group
    of :data:`FIELD_GROUPS` gets its own factor: Gauss–Newton steps on the log chord ratios of the
    phases, with the Jacobian from one finite difference per group (common random numbers) and a
    Levenberg damping that keeps groups the ratios do not depend on at the shared b. The in-plane
    law is untouched: a stretch along z leaves the x–y sections' covariance as it is.

    Parameters
    ----------
    volume_indices : ndarray
        3D data phase indices ``(z, y, x)`` at the model's resolution, z the anisotropy axis.
    model : ExcursionModel
        Calibrated model (``anisotropy_axis`` 0); its anisotropy settings are replaced.
    b_start : float, optional
        Start of the shared fit (default: from the data's chord ratios).
    b_range : (float, float)
        Hard limits for every factor.
    tolerance : float
        Largest relative miss of a phase's chord ratio that one b may leave.
    seed, device
        Realizations (common random numbers for every candidate).
    iterations : int
        Gauss–Newton steps at most.

    Returns
    -------
    b : float
        The shared factor.
    fields : dict
        ``name → b_f`` for every field (empty when one b serves all phases).
    record : dict
        What was fitted and the ratios reached, for the model file.
    """

    vol = np.asarray(volume_indices)
    k = int(model.n_phases)
    b0 = fit_anisotropy_to_model(vol, model, b_start=b_start, b_range=b_range, seed=seed,
                                 device=device)  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.log(chord_ratios(vol, k))
    ok = np.isfinite(target)
    groups = FIELD_GROUPS[k]
    shape = _realization_shape(vol, model, b0)
    base = model.copy(anisotropy=b0, anisotropy_fields={})
    lb = np.full(len(groups), np.log(b0))

    def resid(x: np.ndarray) -> np.ndarray:
        q = _realized_log_ratios(base, np.exp(x), groups, shape, seed, device, k)
        r = np.where(ok & np.isfinite(q), q - target, 0.0)
        return r

    r = r0 = resid(lb)
    record: dict[str, Any] = {
        "shared_b": float(b0),
        "data_ratios": [None if not np.isfinite(t) else float(np.exp(t)) for t in target],
        "shared_ratios_error": [float(np.expm1(v)) for v in r],
    }
    if np.max(np.abs(r)) <= np.log1p(tolerance):
        record["per_field"] = False
        return float(b0), {}, record
    h = 0.15
    J = np.column_stack([(resid(lb + h * e) - r) / h for e in np.eye(len(groups))])
    lo, hi = np.log(b_range[0]), np.log(b_range[1])
    best, best_r = lb.copy(), r
    x = lb.copy()
    for _ in range(iterations):
        # Levenberg: groups the ratios barely depend on stay where they are.
        mu = 1e-2 * max(float(np.trace(J.T @ J)) / len(groups), 1e-6)
        step = np.linalg.solve(J.T @ J + mu * np.eye(len(groups)), -J.T @ r)
        x = np.clip(x + np.clip(step, -0.5, 0.5), lo, hi)
        r_new = resid(x)
        if np.sum(r_new**2) < np.sum(best_r**2):
            best, best_r = x.copy(), r_new
        if np.max(np.abs(r_new)) <= np.log1p(tolerance / 2):
            break
        r = r_new
    fields = {name: float(np.exp(v)) for g, v in zip(groups, best, strict=True) for name in g}
    record.update(
        per_field=True,
        groups={"+".join(g): float(np.exp(v)) for g, v in zip(groups, best, strict=True)},
        per_field_ratios_error=[float(np.expm1(v)) for v in best_r],
    )
    if np.sum(best_r**2) >= np.sum(r0**2):  # nothing gained: one b
        record["per_field"] = False
        return float(b0), {}, record
    return float(b0), fields, record
