"""Parameters of the excursion-set model (method.md §1–2): the dataclass, its checks and its file.

Fields (all unit-variance moving averages, each with its own kernel): ``X1, X2`` and the χ² building
blocks ``εX, εY, εZ`` (``n_chi2`` independent copies sharing the three kernels). With
``X̃ = sqrt(1 − a)·εX + sqrt(a)·εZ`` and ``Ỹ = sqrt(1 − a)·εY + sqrt(a)·εZ``:

* ``Z1 = Σ_j X̃_j² + σ1·X1``, ``Z2 = Σ_j Ỹ_j² + σ2·X2``
* which region of the ``(Z1, Z2)`` plane is which phase is the *truncation rule*
  (:mod:`.truncation`); with ``tilt = coating = 0`` it is the paper's: phase 1 = ``{Z1 ≥ λ1}``,
  phase 2 = ``{Z1 < λ1, Z2 ≥ λ2}``, phase 3 = the rest.

``n_phases=2`` is the two-phase reduction: phase 1 = ``{Z1 ≥ λ1}``, phase 2 its complement (the
parameters ``σ2, λ2`` and the kernels ``X2, eps_Y`` are then unused).

Stretches: every kernel is evaluated at scaled coordinates (exact, no resampling) — ``length_scale``
on every axis, ``anisotropy`` (b) along ``anisotropy_axis``, replaced per field by
``anisotropy_fields`` where the data's phases stretch differently, and ``kernel_scales`` per field.
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

from ..covariance import get_family, kernel_from_covariance
from ..fields import radial_kernel
from ..io import atomic_write
from ..phases import PhaseMap

__all__ = [
    "KERNEL_NAMES",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "READABLE_FORMAT_VERSIONS",
    "ExcursionModel",
]

KERNEL_NAMES = ("X1", "X2", "eps_X", "eps_Y", "eps_Z")
MODEL_FORMAT = "napari-gencal-model"
MODEL_FORMAT_VERSION = 4
#: Format versions this release reads (1 lacks ``length_scale``, which then is 1; 1 and 2 lack the
#: truncation parameters and ``anisotropy_fields``: the paper's rule and one shared b).
READABLE_FORMAT_VERSIONS = (1, 2, 3, 4)
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
    tilt : float
        Truncation rule (three phases, :mod:`.truncation`), in [0, π/2): where both fields exceed
        their thresholds, the boundary between phases 1 and 2 is the line through ``(λ1, λ2)`` at
        this angle: 0 (the paper) gives that corner to phase 1 — phase 2 is carved out of the
        complement of phase 1 and cut by its boundaries; larger tilts let phase 2 take the places
        where ``Z2`` exceeds ``λ2`` more than ``Z1`` exceeds ``λ1``, so it is cut less (coarser).
    coating : float
        Truncation rule (three phases), ≥ 0: the band ``λ1 − coating ≤ Z1 < λ1`` around phase 1
        belongs to phase 2 — a layer of phase 2 on phase 1 (a binder film on particles), which is
        as connected as phase 1's surface at any volume fraction. 0: the paper's rule.
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
    anisotropy_fields : dict
        Stretch of single fields along ``anisotropy_axis``, ``name → b_f``, in place of the
        shared ``anisotropy`` (absent: ``anisotropy``): phases whose shapes stretch differently
        along the pressing axis (see :mod:`..calibrate.anisotropy`). Empty: one b for all.
    axis_stretch : tuple of float
        Stretch per axis ``(z, y, x)`` of every kernel, on top of the rest: sections that are
        anisotropic in their own plane (a 2D image whose x chords are longer than its y chords; a
        stack with three different chord lengths) — fitted from the data's chords and held fixed
        while calibrating (:func:`~napari_gencal.core.calibrate.data.inplane_stretch`).
        ``(1, 1, 1)``: isotropic sections.
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
    tilt: float = 0.0
    coating: float = 0.0
    kind: str = "high"
    m: int = 20
    n_chi2: int = 3
    nu: float = 10.0
    anisotropy: float = 1.0
    anisotropy_axis: int = 0
    anisotropy_fields: dict[str, float] = field(default_factory=dict)
    length_scale: float = 1.0
    kernel_scales: dict[str, float] = field(default_factory=dict)
    axis_stretch: tuple[float, float, float] = (1.0, 1.0, 1.0)
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
        from .truncation import check_truncation

        check_truncation(self.n_phases, self.tilt, self.coating)
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
        if not isinstance(self.anisotropy_fields, Mapping):
            raise ValueError("anisotropy_fields must be a dict kernel name → stretch factor")
        for name, bf in self.anisotropy_fields.items():
            if name not in KERNEL_NAMES:
                raise ValueError(
                    f"anisotropy_fields names an unknown field {name!r}; use one of {KERNEL_NAMES}"
                )
            v = _finite(f"anisotropy_fields[{name!r}]", bf)
            if not ANISOTROPY_RANGE[0] <= v <= ANISOTROPY_RANGE[1]:
                raise ValueError(
                    f"anisotropy_fields[{name!r}] = {v} must lie in {list(ANISOTROPY_RANGE)}"
                )
        if self.anisotropy_axis not in (0, 1, 2):
            raise ValueError(
                f"anisotropy_axis must be 0 (z), 1 (y) or 2 (x), got {self.anisotropy_axis!r}"
            )
        st = tuple(self.axis_stretch)
        if len(st) != 3 or not all(
            ANISOTROPY_RANGE[0] <= _finite("axis_stretch", v) <= ANISOTROPY_RANGE[1] for v in st
        ):
            raise ValueError(
                f"axis_stretch must be three factors (z, y, x) in {list(ANISOTROPY_RANGE)}, "
                f"got {self.axis_stretch!r}"
            )
        self.axis_stretch = tuple(float(v) for v in st)
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
        return tuple(s * st * (b if i == int(self.anisotropy_axis) else 1.0)
                     for i, st in enumerate(self.axis_stretch))  # fmt: skip

    def field_anisotropy(self, name: str) -> float:
        """b of one field along the anisotropy axis (``anisotropy_fields`` or the shared b)."""
        return float(self.anisotropy_fields.get(name, self.anisotropy))

    def kernel_scale(self, name: str) -> tuple[float, float, float]:
        """Stretch per axis of one kernel: ``length_scale`` times its ``kernel_scales`` factor on
        every axis, times its b (:meth:`field_anisotropy`) along the anisotropy axis."""
        f = float(self.kernel_scales.get(name, 1.0)) * float(self.length_scale)
        b = self.field_anisotropy(name)
        return tuple(f * st * (b if i == int(self.anisotropy_axis) else 1.0)
                     for i, st in enumerate(self.axis_stretch))  # fmt: skip

    @property
    def per_field_anisotropy(self) -> bool:
        """The used fields do not all share one b."""
        return len({round(self.field_anisotropy(n), 9) for n in self.used_kernels()}) > 1

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
            "anisotropy_fields": {n: float(v) for n, v in self.anisotropy_fields.items()},
            "length_scale": float(self.length_scale),
            "kernel_scales": {n: float(v) for n, v in self.kernel_scales.items()},
            "axis_stretch": [float(v) for v in self.axis_stretch],
            "sigma1": float(self.sigma1),
            "sigma2": float(self.sigma2),
            "a": float(self.a),
            "lambda1": float(self.lambda1),
            "lambda2": float(self.lambda2),
            "tilt": float(self.tilt),
            "coating": float(self.coating),
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
            tilt=float(d.get("tilt", 0.0)),
            coating=float(d.get("coating", 0.0)),
            kind=kind,
            m=int(d["m"]),
            n_chi2=int(d.get("n_chi2", 3)),
            nu=d.get("nu", 10.0),
            anisotropy=d.get("anisotropy", 1.0),
            length_scale=d.get("length_scale", 1.0),
            kernel_scales={str(k): float(v) for k, v in (d.get("kernel_scales") or {}).items()},
            axis_stretch=tuple(float(v) for v in d.get("axis_stretch", (1.0, 1.0, 1.0))),
            anisotropy_axis=int(d.get("anisotropy_axis", 0)),
            anisotropy_fields={
                str(k): float(v) for k, v in (d.get("anisotropy_fields") or {}).items()
            },
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
        from .truncation import thresholds_for_fractions

        # 2e5 samples: fractions accurate to ~0.001, fast enough for interactive defaults.
        return thresholds_for_fractions(model, fractions, n_samples=200_000, seed=seed)
