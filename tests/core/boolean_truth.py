"""A three-phase Boolean model with known interfaces: the independent truth for pair areas and TPB.

Two independent Boolean models of balls, B1 (radius R1, intensity λ1) and B2 (R2, λ2); phase 1 = B1,
phase 2 = B2 \\ B1, phase 0 = the rest. Analytic expectations (stationary, isotropic):

* p_i = 1 − exp(−λ_i·V_i), S_i = 4πR_i²·λ_i·(1 − p_i)
* S_V(0|1) = S_1·(1 − p_2), S_V(1|2) = S_1·p_2, S_V(0|2) = S_2·(1 − p_1)
* TPB = ∂B1 ∩ ∂B2 (every point of it touches all three phases): L_V = (π/4)·S_1·S_2, the
  intersection density of two independent isotropic surfaces (mean |sin| of the angle between
  their normals is π/4).

:func:`realized_truth` measures the same quantities on one realization, geometrically: points on
every sphere (and on every circle where a B1 sphere meets a B2 sphere) that no other ball covers,
inside the window — free of the model's Monte-Carlo noise, so an estimator's digitization error
shows alone. Used by ``tests/core/test_descriptors_interfaces.py`` and ``benchmarks/bench_cell.py``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["three_phase_boolean", "analytic_truth", "realized_truth", "intensity", "lattice_ratio"]


def intensity(p: float, r: float) -> float:
    """λ of a Boolean model of balls of radius ``r`` covering the fraction ``p``."""
    return float(-np.log(1.0 - p) / (4.0 / 3.0 * np.pi * r**3))


def _centres(n: int, r: float, lam: float, rng: np.random.Generator) -> np.ndarray:
    lo, hi = -0.5 - r, n - 0.5 + r  # the window of voxels [−½, n − ½]³ dilated by r
    k = rng.poisson(lam * (hi - lo) ** 3)
    return rng.uniform(lo, hi, size=(k, 3))


def _paint(n: int, centres: np.ndarray, r: float) -> np.ndarray:
    out = np.zeros((n, n, n), bool)
    ri = int(np.ceil(r))
    for c in centres:
        lo = [max(0, int(np.floor(v)) - ri) for v in c]
        hi = [min(n, int(np.floor(v)) + ri + 2) for v in c]
        if any(a >= b for a, b in zip(lo, hi, strict=True)):
            continue
        zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        out[box] |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
    return out


def three_phase_boolean(
    n: int, r1: float, p1: float, r2: float, p2: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phase indices ``(n, n, n)`` uint8 and the ball centres of B1 and B2."""
    rng = np.random.default_rng(seed)
    c1 = _centres(n, r1, intensity(p1, r1), rng)
    c2 = _centres(n, r2, intensity(p2, r2), rng)
    vol = np.zeros((n, n, n), np.uint8)
    vol[_paint(n, c2, r2)] = 2
    vol[_paint(n, c1, r1)] = 1
    return vol, c1, c2


def analytic_truth(r1: float, p1: float, r2: float, p2: float) -> dict[str, float]:
    """Expected pair areas (1/voxel) and TPB length (1/voxel²) of the model."""
    s1 = 4 * np.pi * r1**2 * intensity(p1, r1) * (1 - p1)
    s2 = 4 * np.pi * r2**2 * intensity(p2, r2) * (1 - p2)
    return {"0|1": s1 * (1 - p2), "1|2": s1 * p2, "0|2": s2 * (1 - p1),
            "tpb": np.pi / 4 * s1 * s2}  # fmt: skip


def _sphere_points(m: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(m, 3))
    return x / np.linalg.norm(x, axis=1)[:, None]


def _inside(points: np.ndarray, centres: np.ndarray, r: float, tree, exclude: int = -1):
    """Whether each point lies strictly inside a ball other than ``exclude``."""
    if len(centres) == 0:
        return np.zeros(len(points), bool)
    hits = tree.query_ball_point(points, r * (1 - 1e-9))
    return np.array([any(j != exclude for j in h) for h in hits], bool)


def realized_truth(
    n: int, c1: np.ndarray, r1: float, c2: np.ndarray, r2: float, m: int = 400, seed: int = 0
) -> dict[str, float]:
    """Pair areas and TPB length of one realization, per unit volume of the window [−½, n−½]³.

    ``m`` points per sphere (and per circle); the estimates' own sampling error is
    ≈ 1/sqrt(m · number of spheres) — well below 0.5 % for a few hundred spheres.
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    t1, t2 = cKDTree(c1), cKDTree(c2)
    lo, hi = -0.5, n - 0.5
    vol = float(n) ** 3

    def in_window(p: np.ndarray) -> np.ndarray:
        return np.all((p >= lo) & (p <= hi), axis=1)

    area = {"0|1": 0.0, "1|2": 0.0, "0|2": 0.0}
    for i, c in enumerate(c1):
        p = c + r1 * _sphere_points(m, rng)
        keep = in_window(p) & ~_inside(p, c1, r1, t1, i)
        in2 = _inside(p, c2, r2, t2)
        w = 4 * np.pi * r1**2 / m
        area["1|2"] += w * np.count_nonzero(keep & in2)
        area["0|1"] += w * np.count_nonzero(keep & ~in2)
    for i, c in enumerate(c2):
        p = c + r2 * _sphere_points(m, rng)
        keep = in_window(p) & ~_inside(p, c2, r2, t2, i) & ~_inside(p, c1, r1, t1)
        area["0|2"] += 4 * np.pi * r2**2 / m * np.count_nonzero(keep)
    tpb = 0.0
    pairs = t1.query_ball_tree(t2, r1 + r2)
    phi = np.linspace(0, 2 * np.pi, m, endpoint=False)
    for i, js in enumerate(pairs):
        for j in js:
            d = c2[j] - c1[i]
            dist = float(np.linalg.norm(d))
            if dist <= abs(r1 - r2) or dist >= r1 + r2:
                continue
            u = d / dist
            a = (dist**2 + r1**2 - r2**2) / (2 * dist)  # circle centre along u from c1
            rho = np.sqrt(max(r1**2 - a**2, 0.0))
            e1 = np.cross(u, [1.0, 0.0, 0.0])
            if np.linalg.norm(e1) < 1e-6:
                e1 = np.cross(u, [0.0, 1.0, 0.0])
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(u, e1)
            p = c1[i] + a * u + rho * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
            keep = in_window(p) & ~_inside(p, c1, r1, t1, i) & ~_inside(p, c2, r2, t2, j)
            tpb += 2 * np.pi * rho / m * np.count_nonzero(keep)
    out = {k: v / vol for k, v in area.items()}
    out["tpb"] = tpb / vol
    return out


def lattice_ratio(r1: float, p1: float, r2: float, p2: float) -> dict[str, float]:
    """Expected Crofton pair areas on the voxel lattice divided by the continuum values.

    The lattice estimator counts pairs ``(t, t + h)`` with ``|h| = 1, √2, √3``: a boundary pair
    closer than ``|h|`` is missed. With ``c_i(h) = P(t ∉ B_i, t + h ∈ B_i) = (1 − p_i)(1 −
    exp(−λ_i(πR_i²|h| − π|h|³/12)))``: ``P_01 = c_1(1 − p_2)``, ``P_12 = c_1 p_2``, ``P_02 =
    (1 − p_1 − c_1) c_2``; S_V(a|b) = 2 Σ_v w_v · 2 P_ab(|v|) / |v| (Crofton weights of
    :func:`~napari_gencal.core.descriptors.crofton_directions`).
    """
    from napari_gencal.core.descriptors import crofton_directions

    lam1, lam2 = intensity(p1, r1), intensity(p2, r2)

    def cross(h: float, p: float, lam: float, r: float) -> float:
        return (1 - p) * (1 - np.exp(-lam * (np.pi * r**2 * h - np.pi * h**3 / 12)))

    dirs, w = crofton_directions(3)
    lat = {"0|1": 0.0, "1|2": 0.0, "0|2": 0.0}
    for d, wi in zip(dirs, w, strict=True):
        h = float(np.linalg.norm(d))
        c1, c2 = cross(h, p1, lam1, r1), cross(h, p2, lam2, r2)
        for key, pab in (("0|1", c1 * (1 - p2)), ("1|2", c1 * p2),
                         ("0|2", (1 - p1 - c1) * c2)):  # fmt: skip
            lat[key] += 2 * wi * 2 * pab / h
    cont = analytic_truth(r1, p1, r2, p2)
    return {k: lat[k] / cont[k] for k in lat}
