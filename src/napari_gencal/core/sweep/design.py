"""Sweep designs: which knob values to visit (grid, one-at-a-time, space-filling samples).

Every design is a :class:`Design`: a table of points (one row per point, one column per knob)
and, for the sampling designs, the SALib *problem* that the sensitivity analysis needs. Sampling
uses SALib (Latin hypercube, Sobol' / Saltelli, Morris) with the design's seed, so the same
specification gives the same points. :func:`realization_seed` derives the seed of realization r of
point p from the sweep's seed alone (NumPy ``SeedSequence``): points and realizations can run in
any order, on any worker, and a resumed sweep draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Design",
    "grid",
    "one_at_a_time",
    "latin_hypercube",
    "sobol",
    "morris",
    "make_design",
    "realization_seed",
    "DESIGNS",
]

DESIGNS = ("grid", "oat", "lhs", "sobol", "morris")


@dataclass
class Design:
    """Points of a sweep.

    Attributes
    ----------
    kind : str
        One of :data:`DESIGNS`.
    knobs : tuple of str
        Knob names (the columns).
    points : ndarray, shape (n_points, n_knobs)
    problem : dict or None
        SALib problem (``names``, ``bounds``, ``num_vars``) for sampling designs.
    options : dict
        What made the design (for the record and to rebuild it).
    """

    kind: str
    knobs: tuple[str, ...]
    points: np.ndarray
    problem: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        """Number of points."""
        return int(self.points.shape[0])

    def point(self, i: int) -> dict[str, float]:
        """Knob values of point ``i``."""
        return {k: float(v) for k, v in zip(self.knobs, self.points[i], strict=True)}

    def frame(self):
        """The points as a pandas DataFrame (index ``point``)."""
        import pandas as pd

        df = pd.DataFrame(self.points, columns=list(self.knobs))
        df.index.name = "point"
        return df

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (kind, knobs, options, the points)."""
        return {
            "kind": self.kind,
            "knobs": list(self.knobs),
            "options": self.options,
            "points": self.points.tolist(),
        }


def _values(name: str, vals: Any) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(vals, dtype=float))
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"values of knob {name!r} must be a non-empty list of numbers, got {vals}")
    return arr


def grid(ranges: Mapping[str, Sequence[float]]) -> Design:
    """Every combination of the listed values (the first knob varies slowest)."""
    if not ranges:
        raise ValueError("a grid needs at least one knob with values")
    knobs = tuple(ranges)
    axes = [_values(k, ranges[k]) for k in knobs]
    pts = np.array(list(itertools.product(*axes)), dtype=float)
    return Design(
        "grid",
        knobs,
        pts,
        None,
        {"ranges": {k: a.tolist() for k, a in zip(knobs, axes, strict=True)}},
    )


def one_at_a_time(base: Mapping[str, float], ranges: Mapping[str, Sequence[float]]) -> Design:
    """The base point, then each knob through its values with the others at the base.

    Parameters
    ----------
    base : dict
        Knob → value of the reference (e.g. the calibrated model's own values).
    ranges : dict
        Knob → values to visit (a value equal to the base is not repeated).
    """
    knobs = tuple(dict.fromkeys([*base, *ranges]))
    missing = [k for k in ranges if k not in base]
    if missing:
        raise ValueError(f"one-at-a-time needs a base value for {missing}")
    ref = np.array([float(base[k]) for k in knobs])
    pts = [ref]
    for j, k in enumerate(knobs):
        for v in _values(k, ranges.get(k, [])):
            if not np.isclose(v, ref[j]):
                p = ref.copy()
                p[j] = v
                pts.append(p)
    opts = {"base": dict(base), "ranges": {k: list(v) for k, v in ranges.items()}}
    return Design("oat", knobs, np.array(pts), None, opts)


def _problem(bounds: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    if not bounds:
        raise ValueError("a sampling design needs at least one knob with bounds (lo, hi)")
    names = list(bounds)
    bds = []
    for k in names:
        lo, hi = (float(v) for v in bounds[k])
        if not lo < hi:
            raise ValueError(f"bounds of knob {k!r} must be (lo, hi) with lo < hi, got {bounds[k]}")
        bds.append([lo, hi])
    return {"num_vars": len(names), "names": names, "bounds": bds}


def latin_hypercube(bounds: Mapping[str, Sequence[float]], n: int, seed: int = 0) -> Design:
    """``n`` Latin-hypercube points within the bounds (SALib)."""
    from SALib.sample import latin

    prob = _problem(bounds)
    pts = latin.sample(prob, int(n), seed=int(seed))
    return Design("lhs", tuple(prob["names"]), np.asarray(pts, float), prob,
                  {"bounds": prob["bounds"], "n": int(n), "seed": int(seed)})  # fmt: skip


def sobol(bounds: Mapping[str, Sequence[float]], n: int, seed: int = 0) -> Design:
    """Saltelli's Sobol' sampling for first- and total-order indices: ``n·(d + 2)`` points
    (``n`` a power of two), SALib."""
    from SALib.sample import sobol as sobol_sample

    if n < 2 or n & (n - 1):
        raise ValueError(f"Sobol' sampling needs n a power of two (e.g. 8, 16, 64), got {n}")
    prob = _problem(bounds)
    pts = sobol_sample.sample(prob, int(n), calc_second_order=False, seed=int(seed))
    return Design("sobol", tuple(prob["names"]), np.asarray(pts, float), prob,
                  {"bounds": prob["bounds"], "n": int(n), "seed": int(seed)})  # fmt: skip


def morris(bounds: Mapping[str, Sequence[float]], n: int, levels: int = 4, seed: int = 0) -> Design:
    """Morris' elementary-effects trajectories: ``n·(d + 1)`` points (SALib)."""
    from SALib.sample import morris as morris_sample

    prob = _problem(bounds)
    pts = morris_sample.sample(prob, int(n), num_levels=int(levels), seed=int(seed))
    return Design("morris", tuple(prob["names"]), np.asarray(pts, float), prob,
                  {"bounds": prob["bounds"], "n": int(n), "levels": int(levels),
                   "seed": int(seed)})  # fmt: skip


def make_design(spec: Mapping[str, Any]) -> Design:
    """A design from its specification (YAML/JSON form).

    ``{"kind": "grid", "ranges": {knob: [values]}}``; ``{"kind": "oat", "base": {…},
    "ranges": {…}}``; ``{"kind": "lhs" | "sobol" | "morris", "bounds": {knob: [lo, hi]},
    "n": N, "seed": S}`` (morris also ``levels``).
    """
    kind = str(spec.get("kind", "grid"))
    if kind not in DESIGNS:
        raise ValueError(f"unknown design {kind!r}; choose one of {', '.join(DESIGNS)}")
    if kind == "grid":
        return grid(spec["ranges"])
    if kind == "oat":
        return one_at_a_time(spec["base"], spec["ranges"])
    bounds = spec.get("bounds")
    if not isinstance(bounds, Mapping):
        raise ValueError(f"a {kind} design needs bounds: {{knob: [lo, hi], …}}")
    bounds = {k: (v[0], v[1]) for k, v in bounds.items()}
    n, seed = int(spec.get("n", 8)), int(spec.get("seed", 0))
    if kind == "lhs":
        return latin_hypercube(bounds, n, seed)
    if kind == "sobol":
        return sobol(bounds, n, seed)
    return morris(bounds, n, int(spec.get("levels", 4)), seed)


def realization_seed(sweep_seed: int, point: int, realization: int) -> int:
    """Seed of realization ``realization`` of point ``point``: a function of the three only."""
    ss = np.random.SeedSequence([int(sweep_seed), int(point), int(realization)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))  # < 2**63
