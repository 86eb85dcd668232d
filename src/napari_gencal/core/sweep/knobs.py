"""Knobs a scientist thinks in, on top of a calibrated model's raw parameters (method.md §7).

A knob is a named, validated change of an :class:`~napari_gencal.core.model.ExcursionModel` that
leaves every other parameter untouched, so what it does to the structure is interpretable:

``vf:<label>``
    Target volume fraction of one phase (0 … 1). The thresholds λ1, λ2 are solved from the
    one-point law (Monte Carlo over the scalar marginals, accurate to ~0.001); the other phases
    keep their ratio. Shapes and length scales stay; only how much of each phase changes.
``length_scale``
    Factor on every length (relative to the model as given, 1 = unchanged): kernels evaluated at
    x / s — exact, like the anisotropy. Chords, correlation lengths, particle sizes × s; volume
    fractions stay; specific surface areas ÷ s.
``length_scale:<kernel>``
    The same for one field (``X1``, ``X2``, ``eps_X``, ``eps_Y``, ``eps_Z``): e.g. only the χ²
    blobs (``eps_X``/``eps_Z``) coarser, or only phase 1's Gaussian roughness (``X1``).
``anisotropy``
    The stretch b along the model's anisotropy axis (0.1 … 10): chords along it × b (per-field
    factors keep their ratio to it).
``stretch:z``, ``stretch:y``, ``stretch:x``
    The model's stretch along one data axis (``axis_stretch``, 0.1 … 10; a calibration sets it
    when the sections' two directions differ): e.g. pores elongated along x in the x–y planes.
``anisotropy:<field>``
    The stretch of one field alone along the anisotropy axis: e.g. only the phase whose shapes
    that field makes longer along z.
``tilt``, ``coating``
    The truncation rule of a three-phase model (:mod:`~napari_gencal.core.model.truncation`):
    how much phase 2 is cut by phase 1 (tilt), and a layer of phase 2 on phase 1 (coating); the
    volume fractions are kept.
``sigma1``, ``sigma2``
    Weight (> 0) of the Gaussian part of phase 1 / 2 against the χ² part: small → compact,
    particle-like; large → interwoven, rougher.
``a``
    Coupling (0 … 1) of the χ² parts of phases 1 and 2: large → phases 1 and 2 touch more.
``<kernel>.<parameter>``
    A raw covariance-family parameter of a low-parametric model (e.g. ``eps_Z.a1``), within the
    family's bounds.

:func:`knobs_of` lists the knobs of a model; :func:`apply_knobs` returns the changed copy; an
unknown name or a value outside a knob's domain is refused with the valid names / the domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..model import ExcursionModel, thresholds_for_fractions
from ..model.truncation import TILT_MAX

#: Scalar samples of the one-point law (fractions and thresholds to ~0.0005).
_N_ONE_POINT = 1_000_000

__all__ = ["Knob", "knobs_of", "get_knob", "apply_knobs", "knob_value", "set_fractions"]


@dataclass(frozen=True)
class Knob:
    """One named change of a model.

    Attributes
    ----------
    name : str
    domain : (float, float)
        Allowed values (inclusive).
    doc : str
        What it does to the structure.
    apply : callable
        ``apply(model, value) -> model``.
    current : callable
        ``current(model) -> value`` (the value that leaves the model unchanged).
    """

    name: str
    domain: tuple[float, float]
    doc: str
    apply: Callable[[ExcursionModel, float], ExcursionModel]
    current: Callable[[ExcursionModel], float]

    def check(self, value: Any) -> float:
        """The value as a float; ValueError naming the domain when it lies outside."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"knob {self.name!r} needs a number, got {value!r}") from None
        lo, hi = self.domain
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"knob {self.name!r} = {v} is outside its domain [{lo}, {hi}]")
        return v


def _fractions(model: ExcursionModel) -> list[float]:
    """The model's volume fractions from its one-point law (Monte Carlo, ~0.001)."""
    from ..model import model_fractions

    return [float(v) for v in model_fractions(model, _N_ONE_POINT, seed=0)]


def set_fractions(
    model: ExcursionModel, targets: Mapping[int, float], current: list[float] | None = None
) -> ExcursionModel:
    """Thresholds for target fractions of some phases (index → fraction); the other phases share
    the rest in the ratio of ``current`` (default: the model's own fractions)."""
    k = int(model.n_phases)
    fixed = sum(targets.values())
    if not fixed < 1.0 or (len(targets) == k and abs(fixed - 1.0) > 1e-6):
        raise ValueError(
            f"target volume fractions {dict(targets)} leave no room for the other phases "
            "(they must sum to less than 1)"
        )
    f = _fractions(model) if current is None else list(current)
    free = [j for j in range(k) if j not in targets]
    rest = sum(f[j] for j in free)
    new = [
        targets[j] if j in targets else (1 - fixed) * (f[j] / rest if rest > 0 else 1 / len(free))
        for j in range(k)
    ]
    if min(new) <= 0:
        raise ValueError(f"volume fractions {new} are not all positive")
    return thresholds_for_fractions(model, new, n_samples=_N_ONE_POINT, seed=0).copy(
        metadata=model.metadata
    )


def _vf_knob(i: int, label: Any, k: int) -> Knob:
    def apply(model: ExcursionModel, v: float) -> ExcursionModel:
        return set_fractions(model, {i: v})

    return Knob(
        f"vf:{label}", (0.01, 0.99),
        f"volume fraction of phase {label}; thresholds from the one-point law, the other phases "
        "keep their ratio", apply, lambda m: _fractions(m)[i],
    )  # fmt: skip


def knobs_of(model: ExcursionModel) -> dict[str, Knob]:
    """Every knob of ``model``, by name."""
    k = int(model.n_phases)
    labels = model.phase_map.labels if model.phase_map is not None else tuple(range(1, k + 1))
    out: dict[str, Knob] = {}
    for i, lab in enumerate(labels):
        kn = _vf_knob(i, lab, k)
        out[kn.name] = kn
    out["length_scale"] = Knob(
        "length_scale", (0.05, 20.0),
        "factor on every length (kernels at x/s, exact): chords × s, S_V ÷ s, fractions kept",
        lambda m, v: m.copy(length_scale=m.length_scale * v), lambda m: 1.0,
    )  # fmt: skip
    for name in model.used_kernels():
        out[f"length_scale:{name}"] = Knob(
            f"length_scale:{name}", (0.05, 20.0),
            f"factor on the lengths of field {name} alone (its kernel at x/s, exact)",
            lambda m, v, n=name: m.copy(
                kernel_scales={**m.kernel_scales, n: m.kernel_scales.get(n, 1.0) * v}
            ),
            lambda m: 1.0,
        )  # fmt: skip
    out["anisotropy"] = Knob(
        "anisotropy", (0.1, 10.0),
        "stretch b along the anisotropy axis: chords along it × b / b_model (per-field factors "
        "scale with it)", _set_shared_b, lambda m: float(m.anisotropy),
    )  # fmt: skip
    for i, ax in enumerate("zyx"):
        out[f"stretch:{ax}"] = Knob(
            f"stretch:{ax}", (0.1, 10.0),
            f"stretch of every kernel along {ax} (axis_stretch, on top of b): chords along {ax} "
            "× the value / the model's",
            lambda m, v, i=i: m.copy(axis_stretch=tuple(
                float(v) if j == i else s for j, s in enumerate(m.axis_stretch))),
            lambda m, i=i: float(m.axis_stretch[i]),
        )  # fmt: skip
    for name in model.used_kernels():
        out[f"anisotropy:{name}"] = Knob(
            f"anisotropy:{name}", (0.1, 10.0),
            f"stretch b of field {name} alone along the anisotropy axis (its kernel at z/b)",
            lambda m, v, n=name: m.copy(anisotropy_fields={
                **{f: m.field_anisotropy(f) for f in m.used_kernels()}, n: v}),
            lambda m, n=name: m.field_anisotropy(n),
        )  # fmt: skip
    out["sigma1"] = Knob(
        "sigma1", (0.01, 20.0), "Gaussian weight of phase 1: small = compact, large = interwoven",
        lambda m, v: _keep_fractions(m, m.copy(sigma1=v)), lambda m: float(m.sigma1),
    )  # fmt: skip
    if k == 3:
        out["sigma2"] = Knob(
            "sigma2", (0.01, 20.0), "Gaussian weight of phase 2",
            lambda m, v: _keep_fractions(m, m.copy(sigma2=v)), lambda m: float(m.sigma2),
        )  # fmt: skip
        out["a"] = Knob(
            "a", (0.0, 1.0), "coupling of phases 1 and 2 (large: they touch more)",
            lambda m, v: _keep_fractions(m, m.copy(a=v)), lambda m: float(m.a),
        )  # fmt: skip
        out["tilt"] = Knob(
            "tilt", (0.0, TILT_MAX),
            "truncation tilt (radians): 0 = the paper's rule; larger = phase 2 cut less by phase "
            "1 (coarser); fractions kept",
            lambda m, v: _keep_fractions(m, m.copy(tilt=v)), lambda m: float(m.tilt),
        )  # fmt: skip
        out["coating"] = Knob(
            "coating", (0.0, 20.0),
            "truncation coating: a layer of phase 2 on phase 1 (field units); fractions kept",
            lambda m, v: _keep_fractions(m, m.copy(coating=v)), lambda m: float(m.coating),
        )  # fmt: skip
    if model.kind == "low":
        from ..covariance import get_family

        fam = get_family(model.family)
        for name in model.used_kernels():
            for j, p in enumerate(fam.param_names):
                out[f"{name}.{p}"] = Knob(
                    f"{name}.{p}", (float(fam.lower[j]), float(fam.upper[j])),
                    f"covariance parameter {p} of field {name} ({fam.name} family)",
                    lambda m, v, n=name, p=p: m.copy(kernels={**m.kernels, n: {**m.kernels[n],
                                                                             p: v}}),
                    lambda m, n=name, p=p: float(m.kernels[n][p]),
                )  # fmt: skip
    return out


def _set_shared_b(m: ExcursionModel, v: float) -> ExcursionModel:
    """The shared b; per-field factors keep their ratio to it."""
    r = v / float(m.anisotropy)
    return m.copy(anisotropy=v,
                  anisotropy_fields={n: b * r for n, b in m.anisotropy_fields.items()})  # fmt: skip


def _keep_fractions(old: ExcursionModel, new: ExcursionModel) -> ExcursionModel:
    """σ and a change the one-point law; re-solve the thresholds so the fractions stay."""
    return thresholds_for_fractions(new, _fractions(old), n_samples=_N_ONE_POINT, seed=0).copy(
        metadata=old.metadata
    )


#: Knobs that change the one-point law (the thresholds are re-solved after them).
_LAW = ("sigma1", "sigma2", "a", "tilt", "coating")


def get_knob(model: ExcursionModel, name: str) -> Knob:
    """The knob ``name`` of ``model``; ValueError listing the valid names otherwise."""
    knobs = knobs_of(model)
    if name not in knobs:
        raise ValueError(f"unknown knob {name!r}; this model's knobs are: {', '.join(knobs)}")
    return knobs[name]


def knob_value(model: ExcursionModel, name: str) -> float:
    """The value of knob ``name`` that leaves ``model`` unchanged."""
    return float(get_knob(model, name).current(model))


def apply_knobs(model: ExcursionModel, values: Mapping[str, Any]) -> ExcursionModel:
    """A copy of ``model`` with every knob in ``values`` set (volume fractions last, so that they
    hold whatever else changed). Raises ValueError for unknown names or values out of domain."""
    knobs = knobs_of(model)
    checked = {}
    for name, v in values.items():
        if name not in knobs:
            raise ValueError(f"unknown knob {name!r}; this model's knobs are: {', '.join(knobs)}")
        checked[name] = knobs[name].check(v)
    out = model
    vf = {name: v for name, v in checked.items() if name.startswith("vf:")}
    law = {name: v for name, v in checked.items() if name in _LAW}
    for name, v in checked.items():
        if name not in vf and name not in law:
            out = knobs[name].apply(out, v)
    if law or vf:
        # σ, a and target fractions together: one threshold solve for the fractions wanted (the
        # model's own for the phases not named), so errors do not add up knob by knob.
        start = _fractions(model)
        out = out.copy(**law)
        names = [n for n in knobs if n.startswith("vf:")]  # in phase order
        targets = {names.index(n): v for n, v in vf.items()}
        if targets:
            out = set_fractions(out, targets, current=start)
        else:
            out = thresholds_for_fractions(out, start, n_samples=_N_ONE_POINT, seed=0).copy(
                metadata=model.metadata
            )
    return out
