"""The differentiable form of the excursion-set model that calibration optimizes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..covariance import get_family, kernel_from_covariance
from ..fields import radial_kernel
from .params import KERNEL_NAMES, ExcursionModel
from .truncation import TILT_MAX, hard_indices, soft_phases

__all__ = ["ExcursionModule"]

#: A learned truncation starts at least this far inside its domain (the logit/softplus of an exact
#: 0 would be infinite; the rule is then the paper's to within 1 %).
_TILT_START = 0.02
_COATING_START = 0.02


def _inv_softplus(x: float) -> float:
    # log(expm1(x)) overflows for large x, where softplus(x) ≈ x anyway.
    return x + math.log(-math.expm1(-x)) if x > 20 else math.log(math.expm1(x))


class ExcursionModule(torch.nn.Module):
    """Differentiable form of :class:`ExcursionModel` for calibration.

    Unconstrained parameters: ``raw_sigma1/2`` (σ = softplus), ``raw_a`` (a = sigmoid),
    ``lambda1/2`` free; high-parametric kernels ``theta[name]`` free (the kernel is normalized
    anyway); low-parametric kernels ``cov[name]`` = the family parameters mapped to R within their
    bounds. ``m``, ``n_chi2``, ``nu``, ``anisotropy``, ``length_scale``, ``n_phases`` are fixed
    settings. The truncation rule's ``tilt`` and ``coating`` (:mod:`.truncation`) are fixed too,
    unless ``learn_truncation`` (three phases): ``"tilt"`` learns ``raw_tilt`` (θ =
    TILT_MAX·sigmoid), ``"all"`` (or True) also ``raw_coating`` (δ = softplus).
    """

    def __init__(
        self,
        model: ExcursionModel,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        learn_truncation: bool | str = False,
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
        self.axis_stretch = tuple(float(v) for v in model.axis_stretch)
        self.kernel_scales = {n: float(v) for n, v in model.kernel_scales.items()}
        self.anisotropy_fields = {n: float(v) for n, v in model.anisotropy_fields.items()}
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
        mode = {False: "none", True: "all"}.get(learn_truncation, learn_truncation)
        if mode not in ("none", "tilt", "all"):
            raise ValueError(f"learn_truncation must be 'none', 'tilt' or 'all', got {mode!r}")
        self.learn_tilt = mode in ("tilt", "all") and self.n_phases == 3
        self.learn_coating = mode == "all" and self.n_phases == 3
        self._tilt, self._coating = float(model.tilt), float(model.coating)
        if self.learn_tilt:
            t = min(max(self._tilt, _TILT_START), TILT_MAX - _TILT_START) / TILT_MAX
            self.raw_tilt = P(torch.tensor(math.log(t / (1 - t)), **kw))
        if self.learn_coating:
            self.raw_coating = P(torch.tensor(_inv_softplus(max(self._coating, _COATING_START)),
                                              **kw))  # fmt: skip
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
        learn_truncation: bool | str = False,
    ) -> ExcursionModule:
        """Build the module from a model (``device=None``: CPU; ``"auto"`` allowed)."""
        from ..device import resolve_device

        dev = None if device is None else resolve_device(device)
        return cls(model, device=dev, dtype=dtype, learn_truncation=learn_truncation)

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
    def tilt(self) -> torch.Tensor | float:
        """Truncation tilt θ (a tensor when learned)."""
        if self.learn_tilt:
            return TILT_MAX * torch.sigmoid(self.raw_tilt)
        return self._tilt

    @property
    def coating(self) -> torch.Tensor | float:
        """Truncation coating δ (a tensor when learned)."""
        if self.learn_coating:
            return torch.nn.functional.softplus(self.raw_coating)
        return self._coating

    def kernel_scale(self, name: str) -> tuple[float, float, float]:
        """Stretch per axis of one kernel (see :meth:`ExcursionModel.kernel_scale`)."""
        f = self.kernel_scales.get(name, 1.0) * self.length_scale
        b = self.anisotropy_fields.get(name, self.anisotropy)
        return tuple(f * st * (b if i == self.anisotropy_axis else 1.0)
                     for i, st in enumerate(self.axis_stretch))  # fmt: skip

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
        from ..fields import radial_section_spectrum, section_spectrum

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
        if self.n_phases == 3 and Z2 is None:
            raise ValueError("a three-phase model needs Z2")
        z2 = Z2 if self.n_phases == 3 else None
        if soft:
            return soft_phases(Z1, z2, self.lambda1, self.lambda2, nu, self.tilt, self.coating)
        t, c = (float(torch.as_tensor(v).detach()) for v in (self.tilt, self.coating))
        idx = hard_indices(Z1, z2, self.lambda1, self.lambda2, t, c)
        hard = torch.nn.functional.one_hot(idx.long(), self.n_phases).to(Z1.dtype)
        return hard.movedim(-1, 1)

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
                tilt=float(torch.as_tensor(self.tilt).detach()),
                coating=float(torch.as_tensor(self.coating).detach()),
            ).validate()
