"""Two phases of 3D data: which phase is the excursion set, and σ1, chosen for connectivity.

The two-phase model's phase 1 is an excursion set {Z1 ≥ λ1} of Z1 = χ² + σ1·X1 and phase 2 its
complement. At a small volume fraction the first is isolated blobs and the second, when σ1 is
small, a connected network (the pure χ²₃ low level set at 12.7 %: percolating fraction 0.96, τ 12;
the high level set: 0). A rock's 12 % pore space percolates; isolated inclusions do not. Two-point
statistics do not tell the two apart (the order trials' scores preferred the wrong order on the
rock-like benchmark, 0.0029 against 0.0107), and σ1 hardly moves from its start in a
calibration. So, before the calibration, each order's starting model (the engine's data-driven
start: thresholds for the data's fractions, kernel width from a TPPF search) generates a twin of
the data's central crop and the order whose phases percolate like the data's is taken
(:func:`choose_two_phase_order`); then σ1 is scanned the same way and, where one is clearly
closer, fixed for the main stage. When the orders tie (both phases percolating, as in
Ellipsoids.tif or a separator) nothing changes: the user's order, σ1 learned, the same run as
before. docs/decisions/calibration.md has the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .phase_order import PhaseOrder

__all__ = [
    "CONNECTIVITY_MARGIN",
    "CONNECTIVITY_SIDE",
    "SIGMA_GRID",
    "SIGMA_MARGIN",
    "percolation_profile",
    "connectivity_distance",
    "connectivity_sigma",
    "choose_two_phase_order",
]

#: The orders' distances must differ by more than this to decide (the verdict's tolerance of a
#: phase's percolating fraction); otherwise the user's order is kept.
CONNECTIVITY_MARGIN = 0.1
#: Side of the twin (and of the data's central crop) whose connectivity is compared.
CONNECTIVITY_SIDE = 96
#: σ1 values (weight of the Gaussian against the χ² part of Z1) tried besides the start's own.
SIGMA_GRID = (0.02, 0.1, 0.3, 0.6, 1.0)
#: A σ1 of the grid replaces the start's when its twin is closer by more than this (half the
#: verdict's tolerance per phase).
SIGMA_MARGIN = 0.05


def percolation_profile(indices: np.ndarray, k: int) -> np.ndarray:
    """Percolating fraction of each phase, averaged over the axes (0 for an absent phase).

    The share of a phase in clusters that join two opposite faces
    (:func:`~napari_gencal.core.descriptors.connectivity.percolating_fraction`): near 1 for a
    connected network, near 0 for isolated grains or pores.
    """
    from ..descriptors.connectivity import percolating_fraction

    out = np.zeros(k)
    for i in range(k):
        v = [percolating_fraction(indices, i, ax, n_phases=k) for ax in range(indices.ndim)]
        out[i] = float(np.nan_to_num(np.mean(v)))
    return out


def connectivity_distance(
    p: Any, perm: tuple[int, ...], model: Any, device: Any = "cpu", target: Any = None
) -> tuple[float, list]:
    """How far a model's 3D twin is from the data in connectivity (lower is closer).

    ``model`` (working resolution, phases in the order ``perm``) is taken to the user's
    resolution with the data's b and in-plane stretch (``p._rescaled``) and generates a twin of
    the data's central crop (at most :data:`CONNECTIVITY_SIDE` per side, seed fixed); the
    distance is the sum over phases of the difference of percolating fractions
    (:func:`percolation_profile`).

    Parameters
    ----------
    p : CalibrationPipeline
        Gives ``data.volume`` (phase indices in the user's order), ``config.seed`` and
        ``_rescaled``.
    perm : tuple of int
        ``perm[i]`` = the data phase that plays model phase i.
    model : ExcursionModel
    device : str or torch.device
    target : ndarray, optional
        The data crop's :func:`percolation_profile` in the order ``perm``, when already known
        (a σ1 scan compares several models with the same data).

    Returns
    -------
    (float, list)
        The distance and, per model phase, ``(data, twin)`` percolating fractions.
    """
    from ..generate import generate
    from ..phases import to_indices
    from .data import analysis_view

    data = analysis_view(PhaseOrder(perm, "").apply(p.data.volume), CONNECTIVITY_SIDE)
    full = p._rescaled(model)
    twin = to_indices(generate(full, data.shape, seed=p.config.seed + 777, device=device),
                      full.phase_map)  # fmt: skip
    k = len(perm)
    d = percolation_profile(data, k) if target is None else np.asarray(target)
    t = percolation_profile(twin, k)
    return float(np.abs(d - t).sum()), [(float(a), float(b)) for a, b in zip(d, t, strict=True)]


def connectivity_sigma(
    p: Any, perm: tuple[int, ...], model: Any, device: Any = "cpu"
) -> tuple[Any, dict]:
    """σ1 for the data's connectivity: ``model`` with its own σ1 and each σ1 of
    :data:`SIGMA_GRID`, thresholds re-set to the data's fractions for all alike (near the
    percolation threshold a 0.003 difference in fraction moves the percolating fraction by
    0.05); the closest by :func:`connectivity_distance`.

    Returns
    -------
    (ExcursionModel or None, dict)
        The model to start the main stage from — None where no σ1 was closer than the start's
        by more than :data:`SIGMA_MARGIN` — and a record of the distances.
    """
    from ..model import thresholds_for_fractions

    s0 = float(model.sigma1)
    k = len(perm)
    fr = np.bincount(PhaseOrder(perm, "").apply(p._work).ravel(), minlength=k)[:k]
    fr = fr / fr.sum()
    dist: dict[float, float] = {}
    models = {}
    target = None  # the data's profile: measured once, then reused for every σ1
    for s in (s0, *(float(v) for v in SIGMA_GRID if abs(v - s0) > 1e-3)):
        models[s] = thresholds_for_fractions(model.copy(sigma1=s), fr, seed=p.config.seed)
        dist[s], rows = connectivity_distance(p, perm, models[s], device, target)
        target = [d for d, _ in rows]
    best = min(dist, key=dist.get)
    record: dict[str, Any] = {
        "sigma1_start": s0,
        "distances": {f"{s:.3g}": round(v, 4) for s, v in dist.items()},
    }
    if best == s0 or dist[s0] - dist[best] <= SIGMA_MARGIN:
        record["chosen"] = "the start's σ1, learned (no other was clearly closer)"
        return None, record
    record["chosen"] = f"{best:.3g}"
    return models[best], record


def choose_two_phase_order(p: Any) -> None:
    """Set ``p.order`` (and, where σ1 was chosen, ``p._connectivity_init[perm]``) of a two-phase
    calibration of 3D data from the connectivity of each order's starting model's twin.

    ``p`` is the :class:`~.pipeline.CalibrationPipeline`; records what was measured in
    ``p.trial_record["connectivity"]``.
    """
    labels = tuple(p.data.phase_map.labels)
    cands = list(p._candidates)
    start_cfg = p._engine_config(checkpoint=None)
    starts, dist = {}, {}
    device = "cpu"
    for perm in cands:
        engine, _ = p._make_engine(perm, start_cfg)
        device = engine.device
        starts[perm] = engine.best_model  # the data-driven start, fractions matched
        dist[perm] = connectivity_distance(p, perm, starts[perm], device)

    def name(q: tuple[int, ...]) -> str:
        return ",".join(str(labels[i]) for i in q)

    record: dict[str, Any] = {
        name(q): {"distance": round(v[0], 4), "percolating_fraction_data_twin": {
            str(labels[q[i]]): [round(x, 4) for x in v[1][i]] for i in range(len(q))}}
        for q, v in dist.items()
    }  # fmt: skip
    text = "; ".join(f"{name(q)}: {dist[q][0]:.2f}" for q in cands)
    a, b = (dist[q][0] for q in cands)
    if abs(a - b) > CONNECTIVITY_MARGIN:
        perm = cands[int(np.argmin([a, b]))]
        how = f"decided by the connectivity of 3D twins of each order's start ({text})"
    else:
        perm = cands[0]
        how = f"the order given: both orders' twins percolate alike ({text})"
    reason = (f"{labels[perm[0]]} as the model's phase 1 (the excursion set Z1 ≥ λ1) and "
              f"{labels[perm[1]]} as its complement; {how}")  # fmt: skip
    model, srec = connectivity_sigma(p, perm, starts[perm], device)
    record["sigma1"] = srec
    if model is not None:
        p._connectivity_init[perm] = model
        reason += (
            f"; σ1 {float(model.sigma1):.3g} (kept fixed) brings the twin's connectivity "
            f"closer to the data's than {srec['sigma1_start']:.2f}"
        )
    p.order = PhaseOrder(perm, reason)
    p.trial_record = {"connectivity": record, "decided_by": how}
