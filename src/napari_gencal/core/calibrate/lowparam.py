"""High → low-parametric reduction (method.md §2, the paper's workflow).

Each calibrated high-parametric kernel k̄ defines a covariance ρ = k̄ ∗ k̃̄; its radial profile
is fitted by least squares with the covariance family (default: 13 parameters), and the
low-parametric model keeps σ1, σ2, a, λ1, λ2, n, ν, m, b of the high one. The result is a starting
point: it is then recalibrated with Algorithm 3 (``CalibrationConfig(model="both")`` or
``model="low"``), because the fitted kernels differ slightly from the calibrated ones.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..covariance import DEFAULT_FAMILY, fit_family, get_family, radial_covariance_of_kernel
from ..model import KERNEL_NAMES, ExcursionModel

__all__ = ["reduce_to_low"]


def reduce_to_low(
    model: ExcursionModel, family: str = DEFAULT_FAMILY.name, n_starts: int = 4, seed: int = 0
) -> ExcursionModel:
    """Low-parametric model whose kernels' covariances best fit those of ``model``.

    Parameters
    ----------
    model : ExcursionModel
        High-parametric model (a low one is returned unchanged).
    family : str
        Covariance family name (see ``core.covariance``).
    n_starts : int
        Starts of each least-squares fit.
    seed : int
        Seed of the extra starts.

    Returns
    -------
    ExcursionModel
        ``kind="low"``; ``metadata["reduction"]`` holds the RMS error of each covariance fit.
    """
    if model.kind == "low":
        return model
    fam = get_family(family)
    # Shape exponents α < 1 make (r/a)^α non-differentiable at r = 0 (NaN gradients in the
    # recalibration that follows), so the fit keeps them ≥ 1; the family itself is unchanged.
    lower = tuple(
        max(lo, 1.0) if name.startswith("alpha") else lo
        for name, lo in zip(fam.param_names, fam.lower, strict=True)
    )
    fit_fam = dataclasses.replace(fam, lower=lower)
    # fit in model units; the stretches (s, b, per-kernel factors) are kept on the result
    iso = model.copy(anisotropy=1.0, length_scale=1.0, kernel_scales={},
                     axis_stretch=(1.0, 1.0, 1.0))  # fmt: skip
    kernels: dict[str, dict[str, float]] = {}
    rms: dict[str, float] = {}
    for name in KERNEL_NAMES:
        rho = radial_covariance_of_kernel(iso.kernel3d(name))
        r = np.arange(rho.size, dtype=float)
        params = fit_family(r, rho, fit_fam, n_starts=n_starts, seed=seed)
        kernels[name] = params
        import torch

        with torch.no_grad():
            fit = fam(torch.as_tensor(r), torch.as_tensor(fam.vector(params))).numpy()
        rms[name] = float(np.sqrt(np.mean((fit - rho) ** 2)))
    meta = dict(model.metadata)
    meta["reduction"] = {"family": fam.name, "covariance_rms": rms}
    low = model.copy(kind="low", family=fam.name, kernels=kernels, metadata=meta)
    return low.validate()
