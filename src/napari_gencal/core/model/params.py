"""The three-phase excursion-set model (method.md §1–2): parameters, validation, files, and the
differentiable torch module used by calibration.

Fields (all unit-variance moving averages, each with its own kernel): ``X1, X2`` and the χ² building
blocks ``εX, εY, εZ`` (``n_chi2`` independent copies sharing the three kernels). With
``X̃ = sqrt(1 − a)·εX + sqrt(a)·εZ`` and ``Ỹ = sqrt(1 − a)·εY + sqrt(a)·εZ``:

* ``Z1 = Σ_j X̃_j² + σ1·X1``, ``Z2 = Σ_j Ỹ_j² + σ2·X2``
* phase 1 = ``{Z1 ≥ λ1}``, phase 2 = ``{Z1 < λ1, Z2 ≥ λ2}``, phase 3 = the rest.

``n_phases=2`` is the two-phase reduction: phase 1 = ``{Z1 ≥ λ1}``, phase 2 its complement (the
parameters ``σ2, λ2`` and the kernels ``X2, eps_Y`` are then unused).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .covariance import get_family, kernel_from_covariance
from .fields import radial_kernel
from .io import atomic_write
from .phases import PhaseMap

__all__ = [
    "KERNEL_NAMES",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "ExcursionModel",
    "ExcursionModule",
    "thresholds_for_fractions",
    "sample_marginals",
]

KERNEL_NAMES = ("X1", "X2", "eps_X", "eps_Y", "eps_Z")
MODEL_FORMAT = "napari-gencal-model"
MODEL_FORMAT_VERSION = 2
#: Format versions this release reads (1 lacks ``length_scale``, which then is 1).
READABLE_FORMAT_VERSIONS = (1, 2)
N_CHI2_RANGE = (1, 6)
M_MAX = 400
ANISOTROPY_RANGE = (0.05, 20.0)
LENGTH_SCALE_RANGE = (0.05, 50.0)


def _finite(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} is {f}; give a finite number")
    return f


@dataclass
class ExcursionModel:
    """Parameters of a (calibrated) three-phase excursion-set model; plain and JSON-serializable.

    Attributes
    ----------
    kernels : dict
        One entry per name in :data:`KERNEL_NAMES`. ``kind="high"``: a list of ``m + 1`` kernel
        values ``θ`` at distances ``0 .. m`` (voxels). ``kind="low"``: ``{parameter: value}`` of the
        covariance ``family``.
    sigma1, sigma2 : float
        Weights (> 0) of the Gaussian parts ``X1, X2`` against the χ² parts: small σ → blobby,
        χ²-dominated shapes; large σ → Gaussian-like, more interwoven shapes.
    a : float
        Correlation (in [0, 1]) of the χ² building blocks of phases 1 and 2; large ``a`` makes
        phases 1 and 2 occupy the same places of the χ² fields (more contact between
        them, less with phase 3).
    lambda1, lambda2 : float
        Thresholds; they set the volume fractions (see :func:`thresholds_for_fractions`).
    kind : {"high", "low"}
        High-parametric (free radial kernels) or low-parametric (covariance family).
    m : int
        Kernel radius in voxels (support ``2m + 1``).
    n_chi2 : int
        Degrees of freedom ``n`` of the χ² fields (1..6).
    nu : float
        Sigmoid sharpness of the differentiable phases (calibration only).
    anisotropy : float
        Stretch ``b`` along ``anisotropy_axis`` (default z, axis 0): structures are ``b`` times
        longer along it.
    anisotropy_axis : int
        The stretched (pressing) axis of generated volumes: 0 = z, 1 = y, 2 = x. A calibration
        from sections normal to y or x puts it there.
    kernel_scales : dict
        Extra stretch of single kernels, ``name → factor`` (absent: 1): that field is evaluated at
        ``x / factor`` on top of ``length_scale`` and ``anisotropy`` — an interpretable knob for
        virtual materials testing (e.g. only the χ² blobs coarser). Empty after a calibration.
    length_scale : float
        Overall stretch ``s`` of every kernel (all axes): the model is the one with
        ``length_scale = 1`` evaluated at ``x / s``, so every length (chords, correlation lengths,
        the support ``m·s``) is ``s`` times larger while volume fractions stay. Calibration on a
        coarser working resolution (every f-th voxel) gives ``s = f`` (exact: the kernels are
        evaluated at scaled coordinates, not resampled).
    n_phases : int
        3, or 2 for the two-phase reduction.
    phase_map : PhaseMap or None
        Label values of the phases in generated volumes (None: 1..k).
    voxel_size : tuple of float or None
        Physical voxel size ``(z, y, x)``, unit ``unit``.
    family : str
        Covariance family name (``kind="low"``).
    interpolation : {"nearest", "linear"}
        High-parametric kernel between the integer radii: ``"linear"`` (default; continuous) or
        ``"nearest"`` (method.md's shells θ[round|s|], which roughen boundaries and stretch badly
        under anisotropy; see docs/decisions/model.md).
    metadata : dict
        Free-form provenance (data hash, calibration settings, …); must be JSON-serializable.
    """

    kernels: dict[str, Any]
    sigma1: float = 1.0
    sigma2: float = 1.0
    a: float = 0.5
    lambda1: float = 3.0
    lambda2: float = 3.0
    kind: str = "high"
    m: int = 20
    n_chi2: int = 3
    nu: float = 10.0
    anisotropy: float = 1.0
    anisotropy_axis: int = 0
    length_scale: float = 1.0
    kernel_scales: dict[str, float] = field(default_factory=dict)
    n_phases: int = 3
    phase_map: PhaseMap | None = None
    voxel_size: tuple[float, ...] | None = None
    unit: str | None = None
    family: str = "default"
    interpolation: str = "linear"
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def validate(self) -> ExcursionModel:
        """Check every parameter; raise ValueError naming the problem and the fix.

        Returns
        -------
        ExcursionModel
            ``self``, for chaining.
        """
        if self.kind not in ("high", "low"):
            raise ValueError(f"kind must be 'high' or 'low', got {self.kind!r}")
        if self.interpolation not in ("nearest", "linear"):
            raise ValueError(
                f"interpolation must be 'nearest' or 'linear', got {self.interpolation!r}"
            )
        if not isinstance(self.m, int | np.integer) or not 1 <= int(self.m) <= M_MAX:
            raise ValueError(f"m (kernel radius) must be an integer in 1..{M_MAX}, got {self.m!r}")
        for nm in ("sigma1", "sigma2"):
            if _finite(nm, getattr(self, nm)) <= 0:
                raise ValueError(f"{nm} must be > 0, got {getattr(self, nm)}; it is a scale")
        a = _finite("a", self.a)
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"a must lie in [0, 1] (a correlation), got {a}")
        _finite("lambda1", self.lambda1)
        _finite("lambda2", self.lambda2)
        lo, hi = N_CHI2_RANGE
        if not isinstance(self.n_chi2, int | np.integer) or not lo <= int(self.n_chi2) <= hi:
            raise ValueError(
                f"n_chi2 (degrees of freedom of the χ² fields) must be an integer in {lo}..{hi}, "
                f"got {self.n_chi2!r}"
            )
        if _finite("nu", self.nu) <= 0:
            raise ValueError(f"nu (sigmoid sharpness) must be > 0, got {self.nu}")
        b = _finite("anisotropy", self.anisotropy)
        if not ANISOTROPY_RANGE[0] <= b <= ANISOTROPY_RANGE[1]:
            raise ValueError(
                f"anisotropy b must lie in {list(ANISOTROPY_RANGE)} (a stretch factor along z), "
                f"got {b}"
            )
        if self.anisotropy_axis not in (0, 1, 2):
            raise ValueError(
                f"anisotropy_axis must be 0 (z), 1 (y) or 2 (x), got {self.anisotropy_axis!r}"
            )
        ls = _finite("length_scale", self.length_scale)
        if not LENGTH_SCALE_RANGE[0] <= ls <= LENGTH_SCALE_RANGE[1]:
            raise ValueError(
                f"length_scale must lie in {list(LENGTH_SCALE_RANGE)} (a stretch factor of every "
                f"length), got {ls}"
            )
        if not isinstance(self.kernel_scales, Mapping):
            raise ValueError("kernel_scales must be a dict kernel name → factor")
        for name, f in self.kernel_scales.items():
            if name not in KERNEL_NAMES:
                raise ValueError(
                    f"kernel_scales names an unknown kernel {name!r}; use one of {KERNEL_NAMES}"
                )
            v = _finite(f"kernel_scales[{name!r}]", f)
            if not LENGTH_SCALE_RANGE[0] <= v * ls <= LENGTH_SCALE_RANGE[1]:
                raise ValueError(
                    f"kernel_scales[{name!r}] = {v} gives a total stretch {v * ls} outside "
                    f"{list(LENGTH_SCALE_RANGE)}"
                )
        if self.n_phases not in (2, 3):
            raise ValueError(f"n_phases must be 2 or 3, got {self.n_phases!r}")
        if self.phase_map is not None:
            if not isinstance(self.phase_map, PhaseMap):
                raise ValueError("phase_map must be a core.phases.PhaseMap or None")
            if self.phase_map.n_phases != self.n_phases:
                raise ValueError(
                    f"phase_map has {self.phase_map.n_phases} phases but the model has "
                    f"n_phases={self.n_phases}"
                )
        if self.voxel_size is not None:
            vs = tuple(self.voxel_size)
            if len(vs) not in (2, 3) or any(not (_finite("voxel_size", v) > 0) for v in vs):
                raise ValueError(
                    f"voxel_size must be 2 or 3 positive numbers (z, y, x), got {self.voxel_size}"
                )
        if not isinstance(self.kernels, Mapping):
            raise ValueError("kernels must be a dict name → parameters")
        missing = [n for n in KERNEL_NAMES if n not in self.kernels]
        extra = sorted(set(self.kernels) - set(KERNEL_NAMES))
        if missing or extra:
            raise ValueError(
                f"kernels must be exactly {list(KERNEL_NAMES)}; missing {missing}, unknown {extra}"
            )
        for name in KERNEL_NAMES:
            k = self.kernels[name]
            if self.kind == "high":
                th = np.asarray(k, dtype=float)
                if th.shape != (int(self.m) + 1,):
                    raise ValueError(
                        f"kernel {name}: a high-parametric kernel needs m + 1 = {int(self.m) + 1} "
                        f"values, got shape {th.shape}"
                    )
                if not np.all(np.isfinite(th)):
                    raise ValueError(f"kernel {name} contains NaN or infinite values")
                if not np.any(th != 0):
                    raise ValueError(f"kernel {name} is all zeros; a field needs a non-zero kernel")
            else:
                if not isinstance(k, Mapping):
                    raise ValueError(
                        f"kernel {name}: a low-parametric kernel is a dict of covariance "
                        f"parameters, got {type(k).__name__}"
                    )
                try:
                    get_family(self.family).vector(k)
                except ValueError as exc:
                    raise ValueError(f"kernel {name}: {exc}") from None
        try:
            json.dumps(self.metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata must be JSON-serializable: {exc}") from None
        return self

    # ------------------------------------------------------------------ kernels
    @property
    def scale(self) -> tuple[float, float, float]:
        """Kernel stretch per axis: ``s`` (``length_scale``) on every axis, times ``b`` on the
        ``anisotropy_axis`` (``(b·s, s, s)`` by default)."""
        s = float(self.length_scale)
        b = float(self.anisotropy)
        return tuple(s * (b if i == int(self.anisotropy_axis) else 1.0) for i in range(3))

    def kernel_scale(self, name: str) -> tuple[float, float, float]:
        """Stretch per axis of one kernel: :attr:`scale` times its ``kernel_scales`` factor."""
        f = float(self.kernel_scales.get(name, 1.0))
        return tuple(f * v for v in self.scale)

    @property
    def support_scale(self) -> tuple[float, float, float]:
        """Per axis, the largest stretch of the kernels in use: their support is ``m`` times it."""
        scales = [self.kernel_scale(n) for n in self.used_kernels()]
        return tuple(max(s[i] for s in scales) for i in range(3))

    def kernel3d(
        self, name: str, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        """The normalized 3D kernel of one field (anisotropy applied)."""
        if name not in KERNEL_NAMES:
            raise ValueError(f"unknown kernel {name!r}; use one of {KERNEL_NAMES}")
        if self.kind == "high":
            th = torch.as_tensor(np.asarray(self.kernels[name], dtype=float), dtype=dtype)
            return radial_kernel(
                th.to(device), dim=3, scale=self.kernel_scale(name),
                interpolation=self.interpolation,
            )  # fmt: skip
        fam = get_family(self.family)
        p = torch.as_tensor(fam.vector(self.kernels[name]), dtype=dtype, device=device)
        return kernel_from_covariance(fam, p, int(self.m), dim=3, scale=self.kernel_scale(name))

    @property
    def user_phase_map(self) -> PhaseMap | None:
        """The phase map in the order the user gave the labels (for display and tables).

        A calibration chooses which labelled phase plays the model's phase 1, 2, 3 and records
        the user's order in ``metadata["phase_order"]``; ``phase_map`` is in the model's order.
        Generated label values are the same either way; this order keeps colours and tables as
        the user's data shows them.
        """
        pm = self.phase_map
        user = (self.metadata.get("phase_order") or {}).get("user_order_labels")
        if pm is None or not user or sorted(user) != sorted(pm.labels):
            return pm
        pos = [pm.labels.index(int(v)) for v in user]
        names = None if pm.names is None else tuple(pm.names[i] for i in pos)
        return PhaseMap(tuple(pm.labels[i] for i in pos), names)

    def used_kernels(self) -> tuple[str, ...]:
        """Kernels that influence the phases (two-phase models ignore X2 and eps_Y)."""
        if self.n_phases == 2:
            return ("X1", "eps_X", "eps_Z")
        return KERNEL_NAMES

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with format name and version)."""
        if self.kind == "high":
            kernels = {n: [float(v) for v in self.kernels[n]] for n in KERNEL_NAMES}
        else:
            kernels = {n: {k: float(v) for k, v in self.kernels[n].items()} for n in KERNEL_NAMES}
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "kind": self.kind,
            "family": self.family,
            "interpolation": self.interpolation,
            "m": int(self.m),
            "n_chi2": int(self.n_chi2),
            "n_phases": int(self.n_phases),
            "nu": float(self.nu),
            "anisotropy": float(self.anisotropy),
            "anisotropy_axis": int(self.anisotropy_axis),
            "length_scale": float(self.length_scale),
            "kernel_scales": {n: float(v) for n, v in self.kernel_scales.items()},
            "sigma1": float(self.sigma1),
            "sigma2": float(self.sigma2),
            "a": float(self.a),
            "lambda1": float(self.lambda1),
            "lambda2": float(self.lambda2),
            "kernels": kernels,
            "phase_map": None if self.phase_map is None else self.phase_map.to_dict(),
            "voxel_size": None if self.voxel_size is None else [float(v) for v in self.voxel_size],
            "unit": self.unit,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExcursionModel:
        """Inverse of :meth:`to_dict`; validates."""
        if d.get("format") != MODEL_FORMAT:
            raise ValueError(
                f"not a napari-gencal model (format {d.get('format')!r}); expected {MODEL_FORMAT!r}"
            )
        ver = d.get("format_version")
        if ver not in READABLE_FORMAT_VERSIONS:
            raise ValueError(
                f"model format version {ver!r} is not supported by this napari-gencal (reads "
                f"versions {', '.join(map(str, READABLE_FORMAT_VERSIONS))}); update napari-gencal"
            )
        missing = [
            k for k in ("kernels", "sigma1", "sigma2", "a", "lambda1", "lambda2", "m") if k not in d
        ]
        if missing:
            raise ValueError(f"the model file lacks {missing}; it is incomplete or damaged")
        pm = d.get("phase_map")
        vs = d.get("voxel_size")
        kind = d.get("kind", "high")
        kernels = {
            n: (list(v) if kind == "high" else dict(v)) for n, v in dict(d["kernels"]).items()
        }
        return cls(
            kernels=kernels,
            sigma1=d["sigma1"],
            sigma2=d["sigma2"],
            a=d["a"],
            lambda1=d["lambda1"],
            lambda2=d["lambda2"],
            kind=kind,
            m=int(d["m"]),
            n_chi2=int(d.get("n_chi2", 3)),
            nu=d.get("nu", 10.0),
            anisotropy=d.get("anisotropy", 1.0),
            length_scale=d.get("length_scale", 1.0),
            kernel_scales={str(k): float(v) for k, v in (d.get("kernel_scales") or {}).items()},
            anisotropy_axis=int(d.get("anisotropy_axis", 0)),
            n_phases=int(d.get("n_phases", 3)),
            phase_map=None if pm is None else PhaseMap.from_dict(pm),
            voxel_size=None if vs is None else tuple(float(v) for v in vs),
            unit=d.get("unit"),
            family=d.get("family", "default"),
            interpolation=d.get("interpolation", "nearest"),
            metadata=dict(d.get("metadata") or {}),
        ).validate()

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the model as JSON (atomic; refuses to overwrite unless asked)."""
        self.validate()
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)

        def _w(tmp: str) -> None:
            Path(tmp).write_text(text + "\n", encoding="utf-8")

        return atomic_write(path, _w, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExcursionModel:
        """Read a model file written by :meth:`save`."""
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not a valid JSON model file ({exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{p}: not a napari-gencal model file")
        return cls.from_dict(d)

    def copy(self, **changes: Any) -> ExcursionModel:
        """A deep copy with some attributes replaced."""
        c = ExcursionModel.from_dict(self.to_dict())
        return replace(c, **changes) if changes else c

    # ------------------------------------------------------------------ defaults
    @classmethod
    def default(
        cls,
        kind: str = "high",
        m: int = 20,
        n_phases: int = 3,
        fractions: Sequence[float] | None = None,
        width: float | None = None,
        n_chi2: int = 3,
        seed: int = 0,
        **kwargs: Any,
    ) -> ExcursionModel:
        """A sensible starting model: smooth kernels, thresholds set for the given fractions.

        Parameters
        ----------
        kind : {"high", "low"}
        m : int
            Kernel radius (voxels).
        n_phases : int
            3 or 2.
        fractions : sequence of float, optional
            Target volume fractions (summing to 1); default equal fractions.
        width : float, optional
            Width ℓ (voxels) of the Gaussian-shaped starting kernels ``exp(−r²/2ℓ²)``; default
            ``m / 4``.
        n_chi2 : int
            χ² degrees of freedom.
        seed : int
            Seed of the Monte-Carlo threshold computation.
        **kwargs
            Any other :class:`ExcursionModel` attribute (e.g. ``anisotropy``, ``phase_map``).
        """
        ell = float(width) if width is not None else max(m / 4.0, 1.0)
        if not ell > 0:
            raise ValueError(f"width must be > 0, got {width}")
        if kind == "high":
            r = np.arange(m + 1, dtype=float)
            # Gaussian-shaped θ: a smooth, positive kernel whose field has correlation length ~ℓ.
            theta = np.exp(-0.5 * (r / ell) ** 2)
            kernels: dict[str, Any] = {n: theta.tolist() for n in KERNEL_NAMES}
        elif kind == "low":
            fam = get_family(kwargs.get("family", "default"))
            kernels = {n: fam.as_dict(fam.defaults) for n in KERNEL_NAMES}
        else:
            raise ValueError(f"kind must be 'high' or 'low', got {kind!r}")
        model = cls(
            kernels=kernels, kind=kind, m=int(m), n_phases=n_phases, n_chi2=n_chi2, **kwargs
        )
        if fractions is None:
            fractions = [1.0 / n_phases] * n_phases
        # 2e5 samples: fractions accurate to ~0.001, fast enough for interactive defaults.
        return thresholds_for_fractions(model, fractions, n_samples=200_000, seed=seed)


# ---------------------------------------------------------------------- marginals and thresholds
def sample_marginals(
    model: ExcursionModel, n_samples: int = 1_000_000, seed: int = 0
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


def thresholds_for_fractions(
    model: ExcursionModel,
    fractions: Sequence[float],
    n_samples: int = 1_000_000,
    seed: int = 0,
) -> ExcursionModel:
    """A copy of ``model`` with ``λ1, λ2`` set so that its volume fractions are ``fractions``.

    Monte-Carlo over the scalar marginals (:func:`sample_marginals`): ``λ1`` is the
    ``1 − φ1`` quantile of ``Z1``; ``λ2`` the quantile of ``Z2`` among samples with ``Z1 < λ1`` that
    leaves ``φ2`` of all samples in phase 2. Accuracy ~ ``sqrt(φ(1−φ)/n_samples)`` in the fractions.

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
    model.validate()
    z1, z2 = sample_marginals(model, n_samples, seed)
    lam1 = float(np.quantile(z1, 1.0 - f[0]))
    changes: dict[str, float] = {"lambda1": lam1}
    if k == 3:
        rest = z2[z1 < lam1]
        # P(Z1 < λ1, Z2 ≥ λ2) = φ2  ⇔  λ2 = quantile of Z2 | Z1 < λ1 at 1 − φ2 / P(Z1 < λ1)
        q = 1.0 - f[1] * z1.size / rest.size
        if not 0.0 < q < 1.0:
            raise ValueError(f"volume fractions {f} cannot be reached by this model")
        changes["lambda2"] = float(np.quantile(rest, q))
    return model.copy(**changes)


# ---------------------------------------------------------------------- torch module
def _inv_softplus(x: float) -> float:
    # log(expm1(x)) overflows for large x, where softplus(x) ≈ x anyway.
    return x + math.log(-math.expm1(-x)) if x > 20 else math.log(math.expm1(x))


class ExcursionModule(torch.nn.Module):
    """Differentiable form of :class:`ExcursionModel` for calibration.

    Unconstrained parameters: ``raw_sigma1/2`` (σ = softplus), ``raw_a`` (a = sigmoid),
    ``lambda1/2`` free; high-parametric kernels ``theta[name]`` free (the kernel is normalized
    anyway); low-parametric kernels ``cov[name]`` = the family parameters mapped to R within their
    bounds. ``m``, ``n_chi2``, ``nu``, ``anisotropy``, ``length_scale``, ``n_phases`` are fixed
    settings.
    """

    def __init__(
        self,
        model: ExcursionModel,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        model.validate()
        self._template = model.copy()
        self.kind = model.kind
        self.m = int(model.m)
        self.n_chi2 = int(model.n_chi2)
        self.nu = float(model.nu)
        self.anisotropy = float(model.anisotropy)
        self.length_scale = float(model.length_scale)
        self.anisotropy_axis = int(model.anisotropy_axis)
        self.kernel_scales = {n: float(v) for n, v in model.kernel_scales.items()}
        self.n_phases = int(model.n_phases)
        self.interpolation = model.interpolation
        kw = {"dtype": dtype, "device": device}
        P = torch.nn.Parameter
        self.raw_sigma1 = P(torch.tensor(_inv_softplus(float(model.sigma1)), **kw))
        self.raw_sigma2 = P(torch.tensor(_inv_softplus(float(model.sigma2)), **kw))
        a = min(max(float(model.a), 1e-6), 1 - 1e-6)  # keep the logit finite at a = 0 or 1
        self.raw_a = P(torch.tensor(math.log(a / (1 - a)), **kw))
        self.lambda1 = P(torch.tensor(float(model.lambda1), **kw))
        self.lambda2 = P(torch.tensor(float(model.lambda2), **kw))
        if self.kind == "high":
            self.theta = torch.nn.ParameterDict(
                {n: P(torch.tensor(model.kernels[n], **kw)) for n in KERNEL_NAMES}
            )
        else:
            self.family = get_family(model.family)
            self.cov = torch.nn.ParameterDict(
                {
                    n: P(
                        self.family.to_unconstrained(
                            torch.tensor(self.family.vector(model.kernels[n]), **kw)
                        )
                    )
                    for n in KERNEL_NAMES
                }
            )

    @classmethod
    def from_model(
        cls,
        model: ExcursionModel,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> ExcursionModule:
        """Build the module from a model (``device=None``: CPU; ``"auto"`` allowed)."""
        from .device import resolve_device

        dev = None if device is None else resolve_device(device)
        return cls(model, device=dev, dtype=dtype)

    @property
    def sigma1(self) -> torch.Tensor:
        return torch.nn.functional.softplus(self.raw_sigma1)

    @property
    def sigma2(self) -> torch.Tensor:
        return torch.nn.functional.softplus(self.raw_sigma2)

    @property
    def a(self) -> torch.Tensor:
        return torch.sigmoid(self.raw_a)

    @property
    def scale(self) -> tuple[float, float, float]:
        s, b = self.length_scale, self.anisotropy
        return tuple(s * (b if i == self.anisotropy_axis else 1.0) for i in range(3))

    def kernel_scale(self, name: str) -> tuple[float, float, float]:
        """Stretch per axis of one kernel (see :meth:`ExcursionModel.kernel_scale`)."""
        f = self.kernel_scales.get(name, 1.0)
        return tuple(f * v for v in self.scale)

    def covariance_params(self, name: str) -> torch.Tensor:
        """Low-parametric: the family parameters of one kernel (bounded values)."""
        return self.family.from_unconstrained(self.cov[name])

    def kernels(self, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Normalized 3D kernels ``name → (Kz, Ky, Kx)`` tensor, built differentiably."""
        out = {}
        for n in names or KERNEL_NAMES:
            if self.kind == "high":
                out[n] = radial_kernel(
                    self.theta[n], dim=3, scale=self.kernel_scale(n),
                    interpolation=self.interpolation,
                )  # fmt: skip
            else:
                out[n] = kernel_from_covariance(
                    self.family, self.covariance_params(n), self.m, dim=3,
                    scale=self.kernel_scale(n),
                )  # fmt: skip
        return out

    def used_kernels(self) -> tuple[str, ...]:
        """Kernels that influence the phases."""
        return ("X1", "eps_X", "eps_Z") if self.n_phases == 2 else KERNEL_NAMES

    def section_spectra(self, names: Sequence[str], size: int) -> dict[str, torch.Tensor]:
        """Section spectra ``name → (size, size // 2 + 1)`` of the x–y planes (differentiable).

        Isotropic high-parametric kernels take the octant route
        (:func:`~napari_gencal.core.fields.radial_section_spectrum`); others build the 3D kernel.
        """
        from .fields import radial_section_spectrum, section_spectrum

        unit = [n for n in names if self.kind == "high" and self.kernel_scale(n) == (1.0,) * 3]
        out = {n: radial_section_spectrum(self.theta[n], size, self.interpolation) for n in unit}
        rest = [n for n in names if n not in out]
        if rest:
            out.update({n: section_spectrum(k, size) for n, k in self.kernels(rest).items()})
        return {n: out[n] for n in names}

    def phases(
        self,
        Z1: torch.Tensor,
        Z2: torch.Tensor | None,
        soft: bool = True,
        nu: float | None = None,
    ) -> torch.Tensor:
        """Phase indicators ``(B, k, ...)`` from ``Z1, Z2`` of shape ``(B, ...)``.

        ``soft``: sigmoid ``H_ν(x) = 1 / (1 + exp(−ν x))`` (differentiable); else Heaviside
        (``Z ≥ λ`` is in).
        """
        nu = self.nu if nu is None else float(nu)
        if soft:
            xi1 = torch.sigmoid(nu * (Z1 - self.lambda1))
        else:
            xi1 = (Z1 >= self.lambda1).to(Z1.dtype)
        if self.n_phases == 2:
            return torch.stack([xi1, 1.0 - xi1], dim=1)
        if Z2 is None:
            raise ValueError("a three-phase model needs Z2")
        if soft:
            h2 = torch.sigmoid(nu * (Z2 - self.lambda2))
        else:
            h2 = (Z2 >= self.lambda2).to(Z2.dtype)
        xi2 = (1.0 - xi1) * h2
        return torch.stack([xi1, xi2, 1.0 - xi1 - xi2], dim=1)

    def to_model(self) -> ExcursionModel:
        """The current parameters as a plain :class:`ExcursionModel`."""
        with torch.no_grad():
            if self.kind == "high":
                kernels: dict[str, Any] = {
                    n: self.theta[n].detach().double().cpu().tolist() for n in KERNEL_NAMES
                }
            else:
                kernels = {}
                for n in KERNEL_NAMES:
                    vec = self.covariance_params(n).detach().double().cpu().numpy()
                    # Clip: float32 round-off may step a hair outside the bounds.
                    vec = np.clip(vec, self.family.lower, self.family.upper)
                    kernels[n] = self.family.as_dict(vec)
            return self._template.copy(
                kernels=kernels,
                sigma1=float(self.sigma1),
                sigma2=float(self.sigma2),
                a=float(self.a),
                lambda1=float(self.lambda1),
                lambda2=float(self.lambda2),
            ).validate()
