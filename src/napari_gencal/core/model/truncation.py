"""Truncation rules: which region of the ``(Z1, Z2)`` plane is which phase (plurigaussian).

The paper's rule (method.md §2) makes phase 1 = ``{Z1 ≥ λ1}``, phase 2 = ``{Z1 < λ1, Z2 ≥ λ2}``
and phase 3 the rest: phase 2 is carved out of the complement of phase 1, so its boundaries are
phase 1's wherever the two meet, and it comes out finer than a data phase that sits between the
other two (SOFC_hr_input.tif: +4.4 % S_V). A plurigaussian truncation (Armstrong et al.,
*Plurigaussian Simulations in Geosciences*) assigns regions of the plane of field values to phases;
this family has two interpretable parameters and contains the paper's rule at ``(0, 0)``:

* **tilt** θ ∈ [0, π/2): in the corner where both fields exceed their thresholds, the boundary
  between phases 1 and 2 is the line ``(Z1 − λ1) cos θ = (Z2 − λ2) sin θ``. θ = 0 gives the corner
  to phase 1 (the paper); θ = π/4 splits it by which field exceeds its threshold more, so phase 2's
  boundary with phase 1 is a level set of ``Z2 − Z1`` rather than of ``Z1`` (coarser phase 2).
* **coating** δ ≥ 0: the band ``λ1 − δ ≤ Z1 < λ1`` belongs to phase 2 — a two-cut set of ``Z1``
  (Berk's two-cut model; Roberts & Teubner): a layer of phase 2 on the surface of phase 1, as
  connected as that surface at any volume fraction (a carbon-binder film on active particles).

Phases: 1 = ``{Z1 ≥ λ1} ∖ {Z2 ≥ λ2, (Z2 − λ2) sin θ > (Z1 − λ1) cos θ}``, 3 = ``{Z1 < λ1 − δ,
Z2 < λ2}``, 2 = the rest. The volume fractions are the probabilities of the regions under the
one-point law of ``(Z1, Z2)`` (a law of scalar normals, sampled once), so thresholds for given
fractions — and the ``vf:`` knob — stay exact (:func:`thresholds_for_fractions`). Two-phase models
have phase 1 = ``{Z1 ≥ λ1}`` only (θ = δ = 0).

The soft form (:func:`soft_phases`) replaces each step by a sigmoid of sharpness ν and is
differentiable in the fields, the thresholds, θ and δ, so a calibration can learn the rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "TILT_MAX",
    "check_truncation",
    "is_paper_rule",
    "rule_name",
    "hard_indices",
    "soft_phases",
    "fractions_of_samples",
    "sample_marginals",
    "model_fractions",
    "thresholds_for_fractions",
]

#: Largest tilt: at π/2 phase 1 would be only where Z2 is below its threshold (the swapped order).
TILT_MAX = 0.5 * math.pi - 0.01


def check_truncation(n_phases: int, tilt: float, coating: float) -> None:
    """Raise ValueError naming the problem when the rule's parameters are invalid."""
    t, c = float(tilt), float(coating)
    if not (math.isfinite(t) and 0.0 <= t <= TILT_MAX):
        raise ValueError(f"tilt must lie in [0, {TILT_MAX:.3f}] (radians), got {tilt}")
    if not (math.isfinite(c) and c >= 0.0):
        raise ValueError(f"coating must be a finite number ≥ 0, got {coating}")
    if int(n_phases) == 2 and (t != 0.0 or c != 0.0):
        raise ValueError("a two-phase model has no truncation parameters: set tilt = coating = 0")


def is_paper_rule(model: Any) -> bool:
    """The paper's rule (θ = δ = 0, or a two-phase model)."""
    return float(model.tilt) == 0.0 and float(model.coating) == 0.0


def rule_name(model: Any) -> str:
    """A short description of the model's rule for tables and logs."""
    if int(model.n_phases) == 2:
        return "two phases: phase 1 = {Z1 ≥ λ1}"
    if is_paper_rule(model):
        return "the paper's rule (tilt 0, coating 0)"
    return (
        f"plurigaussian: tilt {math.degrees(float(model.tilt)):.1f}°, "
        f"coating {float(model.coating):.3g}"
    )


def hard_indices(
    Z1: Any, Z2: Any, lambda1: float, lambda2: float, tilt: float = 0.0, coating: float = 0.0
) -> Any:
    """Phase indices 0, 1, 2 (uint8; numpy or torch, as the fields) of the hard rule.

    ``Z2=None``: two phases (0 where ``Z1 ≥ λ1``, else 1).
    """
    in1 = Z1 >= lambda1
    xp = torch if isinstance(Z1, torch.Tensor) else np
    idx = xp.where(in1, 0, 1)
    idx = idx.to(torch.uint8) if xp is torch else idx.astype(np.uint8)
    if Z2 is None:
        return idx
    if tilt:
        dom2 = (Z2 >= lambda2) & ((Z2 - lambda2) * math.sin(tilt) > (Z1 - lambda1) * math.cos(tilt))
        idx[in1 & dom2] = 1
    below2 = Z2 < lambda2
    idx[(Z1 < lambda1 - coating) & below2] = 2
    return idx


def soft_phases(
    Z1: torch.Tensor,
    Z2: torch.Tensor | None,
    lambda1: Any,
    lambda2: Any,
    nu: float,
    tilt: Any = 0.0,
    coating: Any = 0.0,
) -> torch.Tensor:
    """Soft indicators ``(B, k, ...)`` of fields ``(B, ...)``: every step a sigmoid of sharpness ν.

    ``tilt`` and ``coating`` may be tensors (learned). With plain zeros this is the paper's soft
    model (method.md §2): ``Ξ̃1 = H(Z1 − λ1)``, ``Ξ̃2 = (1 − Ξ̃1) H(Z2 − λ2)``.
    """
    h1 = torch.sigmoid(nu * (Z1 - lambda1))
    if Z2 is None:
        return torch.stack([h1, 1.0 - h1], dim=1)
    h2 = torch.sigmoid(nu * (Z2 - lambda2))
    plain = not isinstance(tilt, torch.Tensor) and not isinstance(coating, torch.Tensor)
    if plain and float(tilt) == 0.0 and float(coating) == 0.0:
        xi2 = (1.0 - h1) * h2
        return torch.stack([h1, xi2, 1.0 - h1 - xi2], dim=1)
    t = torch.as_tensor(tilt, dtype=Z1.dtype, device=Z1.device)
    dom = torch.sigmoid(nu * ((Z2 - lambda2) * torch.sin(t) - (Z1 - lambda1) * torch.cos(t)))
    xi1 = h1 * (1.0 - h2 * dom)
    hc = torch.sigmoid(nu * (Z1 - lambda1 + coating))
    xi3 = (1.0 - hc) * (1.0 - h2)
    return torch.stack([xi1, 1.0 - xi1 - xi3, xi3], dim=1)


def fractions_of_samples(
    z1: np.ndarray,
    z2: np.ndarray | None,
    lambda1: float,
    lambda2: float,
    tilt: float = 0.0,
    coating: float = 0.0,
) -> np.ndarray:
    """Phase fractions of one-point samples ``(z1, z2)`` under the hard rule."""
    in1 = z1 >= lambda1
    if z2 is None:
        p1 = float(in1.mean())
        return np.array([p1, 1.0 - p1])
    p1 = in1
    if tilt:
        dom2 = (z2 >= lambda2) & ((z2 - lambda2) * math.sin(tilt) > (z1 - lambda1) * math.cos(tilt))
        p1 = in1 & ~dom2
    p3 = (z1 < lambda1 - coating) & (z2 < lambda2)
    f1, f3 = float(p1.mean()), float(p3.mean())
    return np.array([f1, 1.0 - f1 - f3, f3])


def sample_marginals(
    model: Any, n_samples: int = 1_000_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Samples of the one-point law of ``(Z1, Z2)`` (the fields at one voxel).

    At a single voxel every unit-variance field is a standard normal, independent across fields, so
    ``Z1 = Σ_j (sqrt(1−a) εX_j + sqrt(a) εZ_j)² + σ1 X1`` needs only scalar normals.
    """
    rng = np.random.default_rng(seed)
    n, a = int(model.n_chi2), float(model.a)
    ex, ey, ez = (rng.standard_normal((n, n_samples)) for _ in range(3))
    xt = math.sqrt(1 - a) * ex + math.sqrt(a) * ez
    yt = math.sqrt(1 - a) * ey + math.sqrt(a) * ez
    z1 = (xt**2).sum(0) + model.sigma1 * rng.standard_normal(n_samples)
    z2 = (yt**2).sum(0) + model.sigma2 * rng.standard_normal(n_samples)
    return z1, z2


def model_fractions(model: Any, n_samples: int = 1_000_000, seed: int = 0) -> np.ndarray:
    """The model's volume fractions from its one-point law (Monte Carlo)."""
    z1, z2 = sample_marginals(model, n_samples, seed)
    three = int(model.n_phases) == 3
    return fractions_of_samples(
        z1, z2 if three else None, float(model.lambda1), float(model.lambda2),
        float(model.tilt), float(model.coating),
    )  # fmt: skip


def _paper_thresholds(z1: np.ndarray, z2: np.ndarray, f1: float, f2: float) -> tuple[float, float]:
    lam1 = float(np.quantile(z1, 1.0 - f1))
    rest = z2[z1 < lam1]
    # P(Z1 < λ1, Z2 ≥ λ2) = φ2  ⇔  λ2 = quantile of Z2 | Z1 < λ1 at 1 − φ2 / P(Z1 < λ1)
    q = 1.0 - f2 * z1.size / max(rest.size, 1)
    if not 0.0 < q < 1.0:
        raise ValueError(f"volume fractions ({f1}, {f2}, …) cannot be reached by this model")
    return lam1, float(np.quantile(rest, q))


def _general_thresholds(
    z1: np.ndarray, z2: np.ndarray, f: Sequence[float], tilt: float, coating: float
) -> tuple[float, float]:
    """λ1, λ2 with P(phase 1) = f1 and P(phase 3) = f3 under the general rule: Newton steps on
    the Monte-Carlo fractions with a finite-difference Jacobian, from the paper's thresholds."""
    f1, f3 = float(f[0]), float(f[2])
    # Start: thresholds of the paper's rule for the same fractions, moved by the coating.
    lam = np.array(_paper_thresholds(z1, z2, f1, 1.0 - f1 - f3), dtype=float)
    scale = float(np.std(z1)) + float(np.std(z2))
    h = 0.01 * scale
    tol = 0.5 / math.sqrt(z1.size)  # below the Monte-Carlo error of the fractions themselves

    def resid(x: np.ndarray) -> np.ndarray:
        fr = fractions_of_samples(z1, z2, x[0], x[1], tilt, coating)
        return np.array([fr[0] - f1, fr[2] - f3])

    r = resid(lam)
    for _ in range(40):
        if np.max(np.abs(r)) <= tol:
            return float(lam[0]), float(lam[1])
        J = np.column_stack([(resid(lam + h * e) - r) / h for e in np.eye(2)])
        try:
            step = np.linalg.solve(J, -r)
        except np.linalg.LinAlgError:
            step = -r * scale
        step = np.clip(step, -0.5 * scale, 0.5 * scale)
        # Damped: halve until the residual shrinks (the fractions are step functions).
        for _ in range(8):
            new = lam + step
            rn = resid(new)
            if np.max(np.abs(rn)) < np.max(np.abs(r)):
                lam, r = new, rn
                break
            step = step / 2
        else:
            break
    if np.max(np.abs(r)) > 5 * tol:
        raise ValueError(
            f"volume fractions {list(f)} cannot be reached by this model's truncation rule "
            f"(closest: off by {np.max(np.abs(r)):.4f})"
        )
    return float(lam[0]), float(lam[1])


def thresholds_for_fractions(
    model: Any,
    fractions: Sequence[float],
    n_samples: int = 1_000_000,
    seed: int = 0,
) -> Any:
    """A copy of ``model`` with ``λ1, λ2`` set so that its volume fractions are ``fractions``.

    Monte Carlo over the scalar marginals (:func:`sample_marginals`). The paper's rule: ``λ1`` is
    the ``1 − φ1`` quantile of ``Z1``; ``λ2`` the quantile of ``Z2`` among samples with
    ``Z1 < λ1`` that leaves ``φ2`` of all samples in phase 2. Other rules: Newton steps on the
    fractions of the same samples. Accuracy ~ ``sqrt(φ(1−φ)/n_samples)`` in the fractions.

    Parameters
    ----------
    model : ExcursionModel
    fractions : sequence of float
        ``n_phases`` (or ``n_phases − 1``) fractions in (0, 1), summing to 1 (resp. < 1).
    n_samples : int
    seed : int

    Returns
    -------
    ExcursionModel
    """
    k = int(model.n_phases)
    f = [float(v) for v in fractions]
    if len(f) == k:
        if abs(sum(f) - 1.0) > 1e-6:
            raise ValueError(f"volume fractions must sum to 1, got {f} (sum {sum(f)})")
    elif len(f) != k - 1:
        raise ValueError(f"give {k} volume fractions for a {k}-phase model, got {len(f)}")
    if any(not (0.0 < v < 1.0) for v in f[: k - 1]) or sum(f[: k - 1]) >= 1.0:
        raise ValueError(f"every volume fraction must lie strictly between 0 and 1, got {f}")
    if len(f) == k - 1:
        f.append(1.0 - sum(f))
    model.validate()
    z1, z2 = sample_marginals(model, n_samples, seed)
    if k == 2:
        return model.copy(lambda1=float(np.quantile(z1, 1.0 - f[0])))
    if is_paper_rule(model):
        lam1, lam2 = _paper_thresholds(z1, z2, f[0], f[1])
    else:
        lam1, lam2 = _general_thresholds(z1, z2, f, float(model.tilt), float(model.coating))
    return model.copy(lambda1=lam1, lambda2=lam2)
