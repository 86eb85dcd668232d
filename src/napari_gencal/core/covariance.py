"""Low-parametric covariance families and the kernel of a covariance (method.md §2, Eq. 39).

The low-parametric model replaces each of the five high-parametric kernels by the kernel of a
parametric covariance ``ρ_ϑ(r)``: ``k_ϑ = Re IFFT( sqrt( max(FFT(ρ_ϑ(|·|)), 0) ) )``, cropped to
radius ``m`` and renormalized. The family is pluggable (:class:`CovarianceFamily`); the default
(:data:`DEFAULT_FAMILY`) is method.md's 13-parameter mixture

``ρ = w·C(a1, α1, β1)·PE(a2, α2)·S(a3) + (1 − w)·C(a4, α3, β2)·PE(a5, α4)·S(a6)``

with Cauchy ``C(a, α, β) = (1 + (r/a)^α)^(−β/α)``, powered exponential ``PE(a, α) = exp(−(r/a)^α)``
and cardinal sine ``S(a) = sin(r/a)/(r/a)``. Scales are in voxels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.fft import next_fast_len

from .fields import kernel_radius

__all__ = [
    "CovarianceFamily",
    "DEFAULT_FAMILY",
    "FAMILIES",
    "register_family",
    "get_family",
    "cauchy",
    "powered_exponential",
    "cardinal_sine",
    "kernel_from_covariance",
    "radial_covariance_of_kernel",
    "fit_family",
]


def _safe_pow(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``x^α`` for ``x ≥ 0`` with finite gradients at ``x = 0``.

    ``x ** α`` has an infinite derivative at 0 for α < 1 (and ``log 0`` in its α-gradient), which
    turns the gradients of a whole calibration step into NaN; the value at 0 is 0 either way.
    """
    pos = x > 0
    safe = torch.where(pos, x, torch.ones_like(x))
    return torch.where(pos, torch.exp(alpha * torch.log(safe)), torch.zeros_like(safe))


def cauchy(r: torch.Tensor, a: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor):
    """Generalized Cauchy covariance ``(1 + (r/a)^α)^(−β/α)``."""
    return (1.0 + _safe_pow(r / a, alpha)) ** (-beta / alpha)


def powered_exponential(r: torch.Tensor, a: torch.Tensor, alpha: torch.Tensor):
    """Powered exponential ``exp(−(r/a)^α)`` (α ≤ 2 is not enforced, as in the paper)."""
    return torch.exp(-_safe_pow(r / a, alpha))


def cardinal_sine(r: torch.Tensor, a: torch.Tensor):
    """Cardinal sine ``sin(r/a)/(r/a)`` (1 at r = 0; a large ``a`` switches it off)."""
    x = r / a
    # torch.sinc is sin(πx)/(πx): rescale the argument; it is smooth (and differentiable) at 0.
    return torch.sinc(x / math.pi)


@dataclass(frozen=True)
class CovarianceFamily:
    """A parametric family of isotropic covariances ``ρ_ϑ(r)`` with ``ρ_ϑ(0) = 1``.

    Parameters
    ----------
    name : str
        Registry name stored in model files.
    param_names : tuple of str
        Names of the parameters, in order.
    lower, upper : tuple of float
        Bounds per parameter (used by the fit and by the optimizer reparameterization).
    defaults : tuple of float
        A smooth, sensible starting point.
    func : callable
        ``func(r, params) -> ρ`` on torch tensors (``params`` 1D, same order); differentiable.
    log_scale : tuple of bool
        Parameters to reparameterize on a log scale (length scales spanning decades).
    """

    name: str
    param_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    defaults: tuple[float, ...]
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    log_scale: tuple[bool, ...]

    def __post_init__(self) -> None:
        n = len(self.param_names)
        for what in ("lower", "upper", "defaults", "log_scale"):
            if len(getattr(self, what)) != n:
                raise ValueError(f"family {self.name!r}: {what} needs {n} entries")
        for nm, lo, hi, d in zip(
            self.param_names, self.lower, self.upper, self.defaults, strict=True
        ):
            if not lo < hi or not lo <= d <= hi:
                raise ValueError(f"family {self.name!r}: bad bounds/default for {nm}")

    @property
    def n_params(self) -> int:
        """Number of parameters."""
        return len(self.param_names)

    def __call__(self, r: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return self.func(r, params)

    def vector(self, params: Mapping[str, float] | Sequence[float]) -> np.ndarray:
        """Parameters as a vector in ``param_names`` order; checks names and bounds."""
        if isinstance(params, Mapping):
            unknown = set(params) - set(self.param_names)
            missing = [n for n in self.param_names if n not in params]
            if unknown or missing:
                raise ValueError(
                    f"covariance parameters for family {self.name!r}: unknown {sorted(unknown)}, "
                    f"missing {missing}; expected {list(self.param_names)}"
                )
            vec = np.array([float(params[n]) for n in self.param_names])
        else:
            vec = np.asarray(params, dtype=float)
            if vec.shape != (self.n_params,):
                raise ValueError(f"family {self.name!r} needs {self.n_params} parameters")
        for nm, v, lo, hi in zip(self.param_names, vec, self.lower, self.upper, strict=True):
            if not (lo <= v <= hi):  # also catches NaN
                raise ValueError(
                    f"covariance parameter {nm} = {v} is outside its bounds [{lo}, {hi}] "
                    f"(family {self.name!r})"
                )
        return vec

    def as_dict(self, vec: Sequence[float]) -> dict[str, float]:
        """Vector → ``{name: value}``."""
        return {n: float(v) for n, v in zip(self.param_names, vec, strict=True)}

    def to_unconstrained(self, vec: torch.Tensor) -> torch.Tensor:
        """Map bounded parameters to R (logit of the position within the bounds, log for scales)."""
        lo, hi, logm = self._bounds_t(vec)
        x = torch.where(logm, torch.log(vec), vec)
        lo2 = torch.where(logm, torch.log(lo), lo)
        hi2 = torch.where(logm, torch.log(hi), hi)
        u = ((x - lo2) / (hi2 - lo2)).clamp(1e-6, 1 - 1e-6)
        return torch.log(u) - torch.log1p(-u)

    def from_unconstrained(self, raw: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_unconstrained` (differentiable)."""
        lo, hi, logm = self._bounds_t(raw)
        lo2 = torch.where(logm, torch.log(lo), lo)
        hi2 = torch.where(logm, torch.log(hi), hi)
        x = lo2 + (hi2 - lo2) * torch.sigmoid(raw)
        return torch.where(logm, torch.exp(x), x)

    def _bounds_t(self, like: torch.Tensor):
        kw = {"dtype": like.dtype, "device": like.device}
        return (
            torch.tensor(self.lower, **kw),
            torch.tensor(self.upper, **kw),
            torch.tensor(self.log_scale, device=like.device),
        )


def _default_family_func(r: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    w, a1, al1, b1, a2, al2, a3, a4, al3, b2, a5, al4, a6 = p.unbind(-1)
    first = cauchy(r, a1, al1, b1) * powered_exponential(r, a2, al2) * cardinal_sine(r, a3)
    second = cauchy(r, a4, al3, b2) * powered_exponential(r, a5, al4) * cardinal_sine(r, a6)
    return w * first + (1.0 - w) * second


#: method.md's default: a convex combination of two Cauchy × powered-exponential × sine products.
DEFAULT_FAMILY = CovarianceFamily(
    name="default",
    param_names=(
        "w",
        "a1",
        "alpha1",
        "beta1",
        "a2",
        "alpha2",
        "a3",
        "a4",
        "alpha3",
        "beta2",
        "a5",
        "alpha4",
        "a6",
    ),  # fmt: skip
    lower=(0.0, 0.1, 0.05, 0.05, 0.1, 0.05, 0.1, 0.1, 0.05, 0.05, 0.1, 0.05, 0.1),
    upper=(1.0, 1e4, 2.0, 20.0, 1e4, 3.0, 1e5, 1e4, 2.0, 20.0, 1e4, 3.0, 1e5),
    # Start: mostly a squared-exponential-like bump of scale ~4 voxels, sine switched off.
    defaults=(0.5, 8.0, 1.5, 2.0, 4.0, 2.0, 1e4, 16.0, 1.5, 2.0, 8.0, 1.5, 1e4),
    func=_default_family_func,
    log_scale=(False, True, False, False, True, False, True, True, False, False, True, False, True),
)

FAMILIES: dict[str, CovarianceFamily] = {"default": DEFAULT_FAMILY}


def register_family(family: CovarianceFamily) -> None:
    """Make a family available to model files by its name."""
    FAMILIES[family.name] = family


def get_family(name: str | CovarianceFamily) -> CovarianceFamily:
    """Look a family up by name (or pass one through)."""
    if isinstance(name, CovarianceFamily):
        return name
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown covariance family {name!r}; known: {sorted(FAMILIES)} "
            "(register a custom one with covariance.register_family)"
        ) from None


def kernel_from_covariance(
    family: CovarianceFamily | str,
    params: torch.Tensor | Mapping[str, float] | Sequence[float],
    m: int,
    dim: int = 3,
    scale: Sequence[float] | float | None = None,
) -> torch.Tensor:
    """Kernel whose moving average has (approximately) the covariance ``ρ_ϑ`` (Eq. 39).

    ``k = Re IFFT( sqrt( max(FFT ρ, 0) ) )`` on a torus large enough for the cropped kernel,
    centred, cropped to the ball ``round(|s'|) ≤ m`` (``s'`` the scaled coordinates) and
    renormalized to unit sum of squares. Differentiable in ``params`` when it is a tensor.

    Parameters
    ----------
    family : CovarianceFamily or str
    params : Tensor or mapping or sequence
        Family parameters (tensor: used as is, no bound checks, for the optimizer).
    m : int
        Kernel radius.
    dim : int
        2 or 3.
    scale : float or sequence, optional
        Stretch per axis (anisotropy ``(b, 1, 1)``): ``ρ`` is evaluated at ``s / scale``.

    Returns
    -------
    Tensor, shape ``(2 r_i + 1, …)`` with ``r_i = ceil(m · scale_i)``
    """
    fam = get_family(family)
    if isinstance(params, torch.Tensor):
        p = params
    else:
        p = torch.as_tensor(fam.vector(params), dtype=torch.float64)
    sc = (
        (1.0,) * dim
        if scale is None
        else (
            (float(scale),) * dim if np.isscalar(scale) else tuple(float(s) for s in scale)  # type: ignore[union-attr]
        )
    )
    radii = kernel_radius(m, sc, dim)
    # The torus must hold the covariance out to 2r so the square root is not aliased at the crop.
    sizes = [int(next_fast_len(4 * r + 2)) for r in radii]
    axes = []
    for n, s in zip(sizes, sc, strict=True):
        i = torch.arange(n, dtype=p.dtype, device=p.device)
        axes.append(torch.minimum(i, n - i) / s)  # periodic distance to the origin
    grids = torch.meshgrid(*axes, indexing="ij")
    dist = torch.sqrt(sum(g * g for g in grids))
    rho = fam(dist, p)
    spec = torch.fft.fftn(rho).real.clamp_min(0.0)
    # Small floor: sqrt has an infinite slope at 0; the floor only touches a zero spectrum.
    k = torch.fft.ifftn(torch.sqrt(spec + 1e-30)).real
    k = torch.fft.fftshift(k)
    centre = [n // 2 for n in sizes]
    k = k[tuple(slice(c - r, c + r + 1) for c, r in zip(centre, radii, strict=True))]
    crop_axes = [
        torch.arange(-r, r + 1, dtype=torch.float64, device=p.device) / s
        for r, s in zip(radii, sc, strict=True)
    ]
    cg = torch.meshgrid(*crop_axes, indexing="ij")
    inside = torch.floor(torch.sqrt(sum(g * g for g in cg)) + 0.5) <= m
    k = k * inside.to(k.dtype)
    return k / torch.sqrt((k * k).sum())


def radial_covariance_of_kernel(kernel: torch.Tensor | np.ndarray) -> np.ndarray:
    """Radial profile of the covariance ``ρ = k ∗ k̃`` of a (normalized) kernel.

    The autocorrelation is computed for every lattice vector by zero-padded FFT; ``ρ(r)`` at integer
    ``r`` is the mean over all lattice vectors with ``|h| = r`` exactly (``|h|² = r²``, all orthants
    and e.g. both (5, 0, 0) and (3, 4, 0)). Exact distances avoid the bias of averaging a curved
    profile over a shell of width one.

    Returns
    -------
    ndarray, shape (2 r_max + 1,)
        ``ρ(r)`` at ``r = 0 .. 2 r_max`` (``r_max`` the largest kernel radius); ``ρ(0) = Σ k²``.
    """
    k = torch.as_tensor(kernel, dtype=torch.float64).detach()
    shape = k.shape
    full = [2 * s - 1 for s in shape]
    kf = torch.fft.rfftn(k, s=full)
    ac = torch.fft.irfftn(kf.real**2 + kf.imag**2, s=full)
    ac = torch.fft.fftshift(ac)  # lag 0 at the centre
    axes = [torch.arange(n) - (n - 1) // 2 for n in full]
    grids = torch.meshgrid(*axes, indexing="ij")
    rad2 = sum(g * g for g in grids).ravel()
    r_max = max(shape) - 1  # twice the largest kernel radius
    vals = ac.ravel()
    keep = rad2 <= r_max * r_max
    n2 = r_max * r_max + 1
    sums = torch.zeros(n2, dtype=torch.float64).index_add_(0, rad2[keep], vals[keep])
    counts = torch.zeros(n2, dtype=torch.float64).index_add_(
        0, rad2[keep], torch.ones_like(vals[keep])
    )
    sq = torch.arange(r_max + 1) ** 2
    # Along every axis with extent ≥ r there is a vector of length r, so no square bin is empty.
    return (sums[sq] / counts[sq].clamp_min(1)).numpy()


def fit_family(
    r: Sequence[float] | np.ndarray,
    rho: Sequence[float] | np.ndarray,
    family: CovarianceFamily | str = DEFAULT_FAMILY,
    x0: Mapping[str, float] | Sequence[float] | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    n_starts: int = 4,
    seed: int = 0,
) -> dict[str, float]:
    """Least-squares fit of a covariance family to a radial covariance profile.

    Minimizes ``Σ_r w_r (ρ_ϑ(r) − ρ(r))²`` within the family's bounds with
    :func:`scipy.optimize.least_squares` (trust-region reflective), from ``x0`` (default: the family
    defaults) and ``n_starts − 1`` further random starts inside the bounds; the best fit wins.

    Parameters
    ----------
    r, rho : array
        Distances (voxels) and covariance values (``rho[0]`` ≈ 1 for a normalized kernel).
    family : CovarianceFamily or str
    x0 : mapping or sequence, optional
        Starting parameters.
    weights : array, optional
        Non-negative weight per point (default 1).
    n_starts : int
        Number of starts (≥ 1).
    seed : int
        Seed for the extra starts.

    Returns
    -------
    dict
        ``{parameter name: value}``.
    """
    from scipy.optimize import least_squares

    fam = get_family(family)
    r_arr = np.asarray(r, dtype=float)
    y = np.asarray(rho, dtype=float)
    if r_arr.shape != y.shape or r_arr.ndim != 1 or r_arr.size < 2:
        raise ValueError("fit_family needs matching 1D arrays r and rho with at least 2 points")
    if not (np.all(np.isfinite(r_arr)) and np.all(np.isfinite(y))):
        raise ValueError("r and rho must be finite")
    w = np.ones_like(y) if weights is None else np.sqrt(np.asarray(weights, dtype=float))
    r_t = torch.as_tensor(r_arr)
    lo, hi = np.array(fam.lower), np.array(fam.upper)

    def resid(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            model = fam(r_t, torch.as_tensor(x)).numpy()
        return w * (model - y)

    rng = np.random.default_rng(seed)
    starts = [fam.vector(x0) if x0 is not None else np.array(fam.defaults, dtype=float)]
    logm = np.array(fam.log_scale)
    for _ in range(max(0, n_starts - 1)):
        u = rng.uniform(size=fam.n_params)
        # Random starts: log-uniform for scales (capped at 4× the data range), uniform otherwise.
        hi_eff = np.where(logm, np.minimum(hi, 4 * max(r_arr.max(), 1.0)), hi)
        llo = np.log(np.where(logm, lo, 1.0))  # log only where it is used (w may be 0)
        lhi = np.log(np.where(logm, hi_eff, 1.0))
        s = np.where(logm, np.exp(llo + u * (lhi - llo)), lo + u * (hi - lo))
        starts.append(np.clip(s, lo, hi))
    best = None
    for x in starts:
        res = least_squares(resid, np.clip(x, lo, hi), bounds=(lo, hi), method="trf")
        if best is None or res.cost < best.cost:
            best = res
    return fam.as_dict(best.x)
