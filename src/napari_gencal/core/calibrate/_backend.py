"""The calibration engine's only contact points with the model, TPPF and descriptor modules.

Keeping every call into the other core modules here means the loop reads as the algorithm and a
change of a neighbouring contract is fixed in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import tppf as _tppf
from ..descriptors import specific_surface_area, volume_fraction
from ..model import ExcursionModel, ExcursionModule
from ..phases import PhaseMap, one_hot

#: Elements per chunk when one-hot encoding many large data sections for the TPPF.
_CHUNK_ELEMENTS = 2**25
#: Candidate count of the initial length-scale search.
_N_SCALES = 9


# ---------------------------------------------------------------------- descriptors
def volume_fractions(indices: np.ndarray, k: int) -> np.ndarray:
    """Phase fractions of a stack of sections ``(N, H, W)``."""
    return np.asarray(volume_fraction(indices, k, sections=True), dtype=float)


def surface_areas(indices: np.ndarray, k: int) -> np.ndarray:
    """S_V (1/pixel) per phase from a stack of sections, S_V = (4/π)·L_A (Crofton)."""
    return np.asarray(specific_surface_area(indices, k, sections=True), dtype=float)


# ---------------------------------------------------------------------- TPPF
def tppf_of_sections(
    sections: np.ndarray, k: int, r_max: int, device: torch.device
) -> torch.Tensor:
    """Data TPPF ``(k, k, r_max+1)``: mean of the per-section curves (Eq. 25), chunked in memory."""
    n, h, w = sections.shape
    per = max(1, _CHUNK_ELEMENTS // (k * h * w))
    total = None
    for s in range(0, n, per):
        chunk = torch.as_tensor(sections[s : s + per]).to(device)
        ind = one_hot(chunk, k, batch=True)
        c = _tppf.radial_tppf(ind, r_max).double() * chunk.shape[0]
        total = c if total is None else total + c
    return (total / n).float()


def choose_r_max(
    curves: torch.Tensor, fractions: np.ndarray, r_cap: int, image_shape: tuple[int, int]
) -> int:
    """method.md §4's r_max rule (core.tppf.choose_r_max), capped at ``r_cap``."""
    c = curves.detach().cpu().double().numpy()
    r = _tppf.choose_r_max(c, fractions, cap=r_cap, image_shape=image_shape)
    return int(max(2, min(r_cap, r)))


def tppf_loss(fake: torch.Tensor, data_curves: torch.Tensor, r_max: int) -> torch.Tensor:
    """TPPF loss of a batch of soft sections against the data curves."""
    return _tppf.tppf_loss(_tppf.radial_tppf(fake, r_max), data_curves)


def euler_densities(indices: np.ndarray, k: int) -> np.ndarray:
    """Euler number density (per pixel, 4-connectivity) of each phase in sections ``(N, H, W)``."""
    from ..descriptors.connectivity import euler_density

    return np.array([euler_density(indices, i, n_phases=k, sections=True) for i in range(k)])


def topology_densities(indices: np.ndarray, k: int) -> np.ndarray:
    """Components + holes per pixel of each phase in sections (the scale of χ's errors)."""
    from ..descriptors.connectivity import topology_density

    return np.array([topology_density(indices, i, n_phases=k) for i in range(k)])


def euler_loss(fake: torch.Tensor, data_euler: torch.Tensor) -> torch.Tensor:
    """Mean over phases of the squared Euler-density difference of soft sections and the data."""
    from ..descriptors.connectivity import soft_euler_density_2d

    return ((soft_euler_density_2d(fake) - data_euler) ** 2).mean()


# ---------------------------------------------------------------------- model
def module_from_model(
    model: ExcursionModel,
    device: torch.device,
    learn_truncation: bool = False,
    fix_sigma1: bool = False,
) -> ExcursionModule:
    """Differentiable module; calibration is isotropic along the section normal at the working
    resolution (b and the length scale are applied to the result only). A stretch within the
    sections (``axis_stretch``) stays: the sections show it. ``fix_sigma1``: σ1 is not learned
    (chosen for the data's connectivity, :func:`~.trials.connectivity_sigma`)."""
    iso = (
        model.copy(anisotropy=1.0, length_scale=1.0, kernel_scales={}, anisotropy_fields={})
        if (model.anisotropy, model.length_scale) != (1.0, 1.0)
        or model.kernel_scales
        or model.anisotropy_fields
        else model
    )
    module = ExcursionModule.from_model(iso, device, learn_truncation=learn_truncation)
    if module.kind == "low":
        module.family = _origin_safe(module.family)
    if fix_sigma1:
        module.raw_sigma1.requires_grad_(False)
    return module


def _origin_safe(family: Any) -> Any:
    """The same covariance family with ρ(0) = 1 set explicitly at r = 0.

    Terms like (r/a)^α with α < 1 have an infinite slope at r = 0; autograd then multiplies
    inf by 0 and the whole kernel gradient becomes NaN. Every family has ρ(0) = 1, so evaluating
    the function only at r > 0 gives identical values and finite gradients. (Only the calibration
    module's copy is changed.)
    """
    import dataclasses

    orig = family.func

    def func(r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        at0 = r == 0
        out = orig(torch.where(at0, torch.ones_like(r), r), p)
        return torch.where(at0, torch.ones_like(out), out)

    return dataclasses.replace(family, func=func)


def model_from_module(module: ExcursionModule) -> ExcursionModel:
    """Plain model of the module's current parameters."""
    return module.to_model()


def model_to_json(model: ExcursionModel) -> str:
    """JSON text of a model (checkpoints store models as text)."""
    import json

    return json.dumps(model.to_dict())


def model_from_json(text: str) -> ExcursionModel:
    """Inverse of :func:`model_to_json`."""
    import json

    return ExcursionModel.from_dict(json.loads(text))


def finish_model(
    model: ExcursionModel,
    phase_map: PhaseMap,
    voxel_size: Any,
    anisotropy: float,
    metadata: dict[str, Any],
) -> ExcursionModel:
    """Attach phase labels, voxel size, b and provenance to a calibrated model."""
    vs = None
    if voxel_size is not None:
        vs = (
            (float(voxel_size),) * 3
            if np.isscalar(voxel_size)
            else tuple(float(v) for v in voxel_size)
        )
    return model.copy(
        phase_map=phase_map,
        voxel_size=vs,
        anisotropy=float(anisotropy),
        metadata={**model.metadata, **metadata},
    )


#: Scalar samples of the one-point law used to match the thresholds to the data's fractions
#: (accuracy of the fractions ~ sqrt(φ(1 − φ) / n) ≈ 0.001).
_N_MARGINAL = 200_000


def match_thresholds(module: ExcursionModule, fractions: np.ndarray, seed: int = 0) -> bool:
    """Set ``λ1, λ2`` of ``module`` in place so that its volume fractions are ``fractions``.

    The fractions of the model depend only on ``σ1, σ2, a`` and the thresholds (every field has
    unit variance), so the thresholds follow from the scalar marginals
    (:func:`~napari_gencal.core.model.thresholds_for_fractions`). Returns False (module
    unchanged) when the fractions cannot be reached by this model.
    """
    from ..model import thresholds_for_fractions

    f = np.clip(np.asarray(fractions, dtype=float), 1e-4, None)
    f = f / f.sum()
    try:
        fitted = thresholds_for_fractions(module.to_model(), f, n_samples=_N_MARGINAL, seed=seed)
    except ValueError:
        return False
    with torch.no_grad():
        module.lambda1.fill_(fitted.lambda1)
        if module.n_phases == 3:
            module.lambda2.fill_(fitted.lambda2)
    return True


def sample_sections(
    module: ExcursionModule, batch: int, size: int, generator: torch.Generator, soft: bool = True
) -> torch.Tensor:
    """Exact planar sections ``(B, k, size, size)`` of the 3D model (core.generate)."""
    from ..generate import sample_sections as _ss

    return _ss(module, batch, size, generator, soft=soft)


def sample_sections_straight_through(
    module: ExcursionModule, batch: int, size: int, generator: torch.Generator
) -> torch.Tensor:
    """Hard-threshold sections in the forward pass, sigmoid (ν) gradients in the backward pass.

    ``hard + (soft − soft.detach())`` of the *same* fields: the losses see exactly the one-hot
    sections that are evaluated and generated, while gradients flow through the smooth relaxation.
    """
    from ..generate import section_fields

    z1, z2 = section_fields(module, batch, size, generator)
    soft = module.phases(z1, z2, soft=True)
    hard = module.phases(z1, z2, soft=False)
    return hard + (soft - soft.detach())


def hard_sections(
    module: ExcursionModule, n: int, size: int, generator: torch.Generator
) -> np.ndarray:
    """Hard-threshold sections as phase indices ``(n, size, size)`` uint8."""
    with torch.no_grad():
        ind = sample_sections(module, n, size, generator, soft=False)
    return ind.argmax(dim=1).to(torch.uint8).cpu().numpy()


def initial_model(
    k: int,
    m: int,
    fractions: np.ndarray,
    config: Any,
    data_curves: torch.Tensor,
    r_max: int,
    window: int,
    device: torch.device,
    phase_map: PhaseMap,
) -> ExcursionModel:
    """A data-driven start: thresholds from the data's fractions, kernel width by a TPPF search.

    All five kernels start Gaussian-shaped with one width ℓ; ℓ is picked from a log-spaced grid
    between 1 pixel and m/2 by the TPPF loss of a small batch of soft sections (fixed seed).
    """
    f = np.clip(np.asarray(fractions, dtype=float), 1e-3, None)
    f = f / f.sum()
    base = ExcursionModel.default(
        "high", m=m, n_phases=k, fractions=f, n_chi2=config.n_chi2, nu=config.nu,
        phase_map=phase_map, seed=config.seed, interpolation=config.interpolation,
    )  # fmt: skip
    if not config.init_scale_search:
        return base
    scales = np.exp(np.linspace(np.log(1.0), np.log(max(2.0, m / 2.0)), _N_SCALES))
    r = np.arange(m + 1, dtype=float)
    best, best_loss = base, float("inf")
    n_try = min(8, config.batch)
    for ell in scales:
        theta = np.exp(-0.5 * (r / ell) ** 2).tolist()
        cand = base.copy(kernels={name: list(theta) for name in base.kernels})
        module = module_from_model(cand, device, config.learn_truncation)
        g = torch.Generator(device=device)
        g.manual_seed(config.seed + 31)
        with torch.no_grad():
            loss = float(tppf_loss(sample_sections(module, n_try, window, g), data_curves, r_max))
        if loss < best_loss:
            best, best_loss = cand, loss
    return best
