"""Realizations of the model conditioned on a low-resolution 3D scan (method.md §7).

A realization is a deterministic function of its white noise ``W`` (prior ``N(0, I)``). Fusion
draws ``W`` from the posterior

    p(W | scan) ∝ exp(−½‖W‖²) · Π_blocks softmax(κ · F_b(W))[scan_b]

where ``F_b`` are the fractions of the scan's label groups in block ``b`` (soft indicators with
the sigmoid ``H_ν``, optionally blurred by the scan's point-spread, averaged over the block) and
``κ`` the sharpness: the scan's label is taken as the *majority* content of its block, which is
what a segmented low-resolution scan says. A draw is made by *randomize-then-optimize* (RTO): a
prior draw ``W0`` (the unconditioned realization of the same seed) is moved to the nearby noise
that explains the scan, minimising ``½‖W − W0‖² + L(W)`` with ``L = −log`` of the likelihood;
different seeds give different draws. The noise coordinates the scan does not constrain stay
those of the prior draw, so the fine-scale statistics stay the model's. ``ν`` is annealed upwards
so that the soft indicators approach the hard ones. The noise lives on a torus larger than the
volume by the kernel radius and is kept as its orthonormal real FFT: fields cost one inverse FFT
each and gradients one forward FFT each. Step 0 is the unconditioned realization of
:func:`~napari_gencal.core.generate.generate` with the same seed (position-keyed noise).
The decision record is ``docs/decisions/fusion.md``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.fft import next_fast_len

from ..device import resolve_device
from ..fields import _even_spectrum, _kernel_fft, block_noise, kernel_radius
from ..generate import _phase_indices, field_stream
from ..model import ExcursionModel
from ..phases import to_labels
from .scan import ScanMapping, prepare_scan, resolve_scale

__all__ = ["FusionSettings", "FusionResult", "fuse", "fuse_draws", "fusion_memory", "check_memory"]


@dataclass
class FusionSettings:
    """Settings of the conditional sampler (defaults: see ``docs/decisions/fusion.md``).

    Attributes
    ----------
    steps : int
        Optimisation steps (Adam on the noise spectra).
    step_size : float
        Adam's learning rate, in units of the noise's standard deviation.
    sharpness : float
        ``κ``: how strongly a block must hold its scan label as the majority (log-odds per unit
        of fraction margin).
    nu : (float, float)
        Sigmoid steepness ``ν`` at the first and the last step (annealed geometrically).
    share_weight : float
        For scan labels that merge phases: weight of keeping each phase's share of its group at
        the unconditioned draw's share (the scan does not say how a group divides).
    blur : float or (float, float, float)
        Gaussian point-spread of the scan, standard deviation in high-resolution voxels
        (0: a block is averaged with no blur).
    precision : {"single", "double"}
    """

    steps: int = 60
    step_size: float = 0.05
    sharpness: float = 25.0
    nu: tuple[float, float] = (5.0, 40.0)
    share_weight: float = 3.0
    blur: float | tuple[float, float, float] = 0.0
    precision: str = "single"

    def validate(self) -> FusionSettings:
        if int(self.steps) < 0:
            raise ValueError(f"steps must be ≥ 0, got {self.steps}")
        if not 0 < float(self.step_size) <= 1:
            raise ValueError(f"step_size must be in (0, 1], got {self.step_size}")
        if not float(self.sharpness) > 0:
            raise ValueError(f"sharpness must be > 0, got {self.sharpness}")
        if len(tuple(self.nu)) != 2 or min(self.nu) <= 0:
            raise ValueError(f"nu must be two positive numbers (start, end), got {self.nu}")
        b = (self.blur,) * 3 if np.isscalar(self.blur) else tuple(self.blur)
        if len(b) != 3 or min(b) < 0:
            raise ValueError(f"blur must be ≥ 0 (one value or z, y, x), got {self.blur}")
        if self.precision not in ("single", "double"):
            raise ValueError(f"precision must be 'single' or 'double', got {self.precision!r}")
        return self


@dataclass
class FusionResult:
    """One conditional draw.

    Attributes
    ----------
    labels : ndarray
        The high-resolution volume with the model's label values.
    indices : ndarray
        The same as phase indices ``0..k−1`` (uint8).
    agreement : float
        Fraction of scan voxels whose block majority (merged as the mapping says) is the scan's
        label.
    history : list of dict
        Per step: ``step``, ``nu``, ``data_loss``, ``agreement``, ``seconds``.
    scale, seed, mapping, settings, cancelled, seconds
    probability : ndarray ``(k, Z, Y, X)``, optional
        With several draws: the fraction of draws in which each voxel is each model phase.
    draws : list of ndarray
        With several draws: the label volumes of the draws after the first.
    """

    labels: np.ndarray
    indices: np.ndarray
    agreement: float
    history: list[dict[str, float]]
    scale: tuple[int, int, int]
    seed: int
    mapping: dict[str, list[int]]
    settings: dict[str, Any]
    cancelled: bool = False
    seconds: float = 0.0
    probability: np.ndarray | None = None
    draws: list[np.ndarray] = field(default_factory=list)
    soft: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> str:
        """One line: agreement with the scan, draws, time."""
        n = 1 + len(self.draws)
        s = f"agreement with the scan {100 * self.agreement:.1f} % of its voxels"
        if n > 1:
            s += f" (first of {n} draws)"
        s += f", {self.seconds:.0f} s"
        return s + (" — cancelled, partial result" if self.cancelled else "")


_DTYPES = {"single": (torch.float32, torch.complex64), "double": (torch.float64, torch.complex128)}


def _gauss_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(v: torch.Tensor, sigma: Sequence[float]) -> torch.Tensor:
    """Separable Gaussian blur of ``(C, Z, Y, X)`` with replicated borders."""
    out = v
    for ax, s in enumerate(sigma):
        if s <= 0:
            continue
        k = _gauss_kernel(float(s), v.dtype, v.device)
        r = (k.numel() - 1) // 2
        moved = out.movedim(ax + 1, -1)
        shp = moved.shape
        flat = moved.reshape(-1, 1, shp[-1])
        flat = torch.nn.functional.pad(flat, (r, r), mode="replicate")
        flat = torch.nn.functional.conv1d(flat, k.view(1, 1, -1))
        out = flat.reshape(shp).movedim(-1, ax + 1)
    return out


class _Posterior:
    """The fields of one noise state and the data term's gradient (no autograd through FFTs)."""

    def __init__(
        self,
        model: ExcursionModel,
        fine_shape: tuple[int, int, int],
        origin: tuple[int, int, int],
        seed: int,
        settings: FusionSettings,
        device: torch.device,
    ) -> None:
        self.model = model
        self.three = int(model.n_phases) == 3
        self.rdtype, self.cdtype = _DTYPES[settings.precision]
        self.device = device
        radii = kernel_radius(int(model.m), model.support_scale, 3)
        self.torus = tuple(
            int(next_fast_len(s + 2 * r, real=True)) for s, r in zip(fine_shape, radii, strict=True)
        )
        self.crop = tuple(slice(r, r + s) for r, s in zip(radii, fine_shape, strict=True))
        self.fine_shape = fine_shape
        a = float(model.a)
        ca, sa = math.sqrt(1.0 - a), math.sqrt(a)
        spec = {}

        def K(name: str, w: float) -> torch.Tensor:
            k = model.kernel3d(name, dtype=torch.float64, device=device)
            if torch.equal(k, k.flip((-3, -2, -1))):
                # Real spectrum with a trailing axis of 1: it scales the (re, im) view of a
                # spectrum in place of a complex product (no complex copy of the kernel).
                # Stored twice along that axis: same-shape products vectorise, broadcasts do not.
                kf = _even_spectrum(k, self.torus).mul_(w).to(self.rdtype).unsqueeze(-1)
                return kf.expand(*kf.shape[:-1], 2).contiguous()
            return _kernel_fft(k, self.torus, centred=True).mul_(w).to(self.cdtype)

        spec["X1"] = K("X1", float(model.sigma1))
        if self.three:
            spec["X2"] = K("X2", float(model.sigma2))
            spec["eps_Y"] = K("eps_Y", ca)
        spec["eps_X"] = K("eps_X", ca)
        spec["eps_Z"] = K("eps_Z", sa)
        self.spec = spec
        # Noise sources (name, copy) and the outputs each feeds: outputs are X1 (σ1·X1), X2,
        # and per χ² copy X̃_j (from εX_j, εZ_j) and Ỹ_j (from εY_j, εZ_j).
        self.sources: list[tuple[str, int]] = [("X1", 0)] + ([("X2", 0)] if self.three else [])
        self.outputs: dict[str, list[tuple[str, int]]] = {"X1": [("X1", 0)]}
        if self.three:
            self.outputs["X2"] = [("X2", 0)]
        for j in range(int(model.n_chi2)):
            self.sources += [("eps_X", j), ("eps_Z", j)] + ([("eps_Y", j)] if self.three else [])
            self.outputs[f"Xt{j}"] = [("eps_X", j), ("eps_Z", j)]
            if self.three:
                self.outputs[f"Yt{j}"] = [("eps_Y", j), ("eps_Z", j)]
        # Initial noise: position-keyed, as generate() draws it (the torus's extra rows are more
        # of the same lattice; they lie farther than the kernel radius from the volume).
        noise_origin = tuple(o - r for o, r in zip(origin, radii, strict=True))
        self.W: dict[tuple[str, int], torch.Tensor] = {}
        for name, j in self.sources:
            w = block_noise(seed, self.torus, noise_origin, stream=field_stream(name, j),
                            dtype=self.rdtype)  # fmt: skip
            self.W[(name, j)] = torch.fft.rfftn(w.to(device), norm="ortho")

    @staticmethod
    def _mul_into(out: torch.Tensor, spec: torch.Tensor, k: torch.Tensor, add: bool,
                  conj: bool = False) -> None:  # fmt: skip
        """``out (+)= k · spec`` in place (``conj(k)`` on request): no temporaries."""
        if k.is_complex():
            kk = k.conj() if conj else k
            if add:
                out.addcmul_(spec, kk)
            else:
                torch.mul(spec, kk, out=out)
            return
        o, sp = torch.view_as_real(out), torch.view_as_real(spec)
        if add:
            o.addcmul_(sp, k)
        else:
            torch.mul(sp, k, out=o)

    def fields(self) -> dict[str, torch.Tensor]:
        """The output fields on the volume (cropped), from the current noise."""
        out = {}
        acc = torch.empty_like(next(iter(self.W.values())))
        for o, srcs in self.outputs.items():
            for i, (name, j) in enumerate(srcs):
                self._mul_into(acc, self.W[(name, j)], self.spec[name], add=i > 0)
            out[o] = torch.fft.irfftn(acc, s=self.torus, norm="ortho")[self.crop].contiguous()
        return out

    def Z(self, f: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = int(self.model.n_chi2)
        Z1 = f["X1"] + sum(f[f"Xt{j}"] ** 2 for j in range(n))
        Z2 = (f["X2"] + sum(f[f"Yt{j}"] ** 2 for j in range(n))) if self.three else None
        return Z1, Z2

    def phases(self, Z1: torch.Tensor, Z2: torch.Tensor | None, nu: float | None) -> torch.Tensor:
        """``(k, Z, Y, X)`` indicators: soft with steepness ``nu``, hard when ``nu`` is None."""
        from ..model.truncation import hard_indices, soft_phases

        m = self.model
        lam1, lam2, t, c = (float(v) for v in (m.lambda1, m.lambda2, m.tilt, m.coating))
        if nu is None:
            idx = hard_indices(Z1, Z2, lam1, lam2, t, c)
            k = 2 if Z2 is None else 3
            return torch.nn.functional.one_hot(idx.long(), k).to(Z1.dtype).movedim(-1, 0)
        return soft_phases(Z1[None], None if Z2 is None else Z2[None], lam1, lam2, nu, t, c)[0]

    def output_spectra(self, grads: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Orthonormal spectra of the data term's gradient w.r.t. each output field."""
        G = {}
        pad = torch.zeros(self.torus, dtype=self.rdtype, device=self.device)
        for o, g in grads.items():
            pad[self.crop] = g
            G[o] = torch.fft.rfftn(pad, norm="ortho")
        return G

    def grad_of(self, key: tuple[str, int], G: Mapping[str, torch.Tensor],
                out: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """∇ of the data term w.r.t. one noise source (as its spectrum), written into ``out``.

        A field is ``k ∗ W``; the gradient w.r.t. ``W`` is the correlation with ``k``: its
        spectrum is ``conj(K) · G`` summed over the outputs the source feeds.
        """
        first = True
        for o, srcs in self.outputs.items():
            if key in srcs:
                self._mul_into(out, G[o], self.spec[key[0]], add=not first, conj=True)
                first = False
        return out


def _block_fractions(phases: torch.Tensor, M: torch.Tensor, scale, blur) -> torch.Tensor:
    """Group fractions per block ``(g, *coarse)`` from phase indicators ``(k, *fine)``."""
    groups = torch.einsum("gk,k...->g...", M, phases)
    if any(b > 0 for b in blur):
        groups = _blur(groups, blur)
    return torch.nn.functional.avg_pool3d(groups.unsqueeze(0), scale, scale)[0]


def fuse(
    model: ExcursionModel,
    scan: np.ndarray,
    scale: int | Sequence[int] | None = None,
    mapping: str | Mapping[Any, Any] | ScanMapping | None = None,
    seed: int = 0,
    settings: FusionSettings | None = None,
    device: str | torch.device = "auto",
    scan_voxel_size: Sequence[float] | None = None,
    origin: Sequence[int] = (0, 0, 0),
    progress: Callable[[dict[str, float]], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    keep_soft: bool = False,
    **overrides: Any,
) -> FusionResult:
    """Draw one high-resolution realization of ``model`` conditioned on a low-resolution scan.

    Parameters
    ----------
    model : ExcursionModel
        Calibrated at the high resolution (its voxel is the output voxel).
    scan : ndarray (Z, Y, X)
        The low-resolution label volume.
    scale : int or (int, int, int), optional
        Up-sampling factor per axis; checked against (or, if None, taken from) the voxel sizes.
    mapping : str, dict or ScanMapping, optional
        Scan label → model label(s), e.g. ``"0=0+170,1=85"`` (pore and binder merged). Default:
        the scan uses the model's labels.
    seed : int
        The prior draw the fusion starts from and stays near (position-keyed noise, as
        :func:`~napari_gencal.core.generate.generate`). Same seed, inputs and device → the same
        volume; different seeds → different draws.
    settings : FusionSettings, optional
        Sampler settings; keyword ``overrides`` change single fields (``steps=…``).
    device : str
        ``"auto"``: CUDA when present, else CPU.
    scan_voxel_size : (z, y, x), optional
        Checked against ``model.voxel_size × scale``.
    origin : (z, y, x)
        Global high-resolution position of the volume's first voxel (for chunked fusion: the
        start noise is that of the same place in one large realization).
    progress : callable, optional
        Called with each step's history record.
    cancel : callable, optional
        Returning True stops after the current step; the result so far is returned with
        ``cancelled=True``.
    keep_soft : bool
        Also return the phase indicators at the final sigmoid steepness (``result.soft``).

    Returns
    -------
    FusionResult
    """
    t_start = time.perf_counter()
    model.validate()
    st = settings if settings is not None else FusionSettings()
    if overrides:
        st = FusionSettings(**{**asdict(st), **overrides})
    st.validate()
    k = int(model.n_phases)
    labels = model.phase_map.labels if model.phase_map is not None else tuple(range(1, k + 1))
    scan, mapping = prepare_scan(scan, labels, k, mapping)
    sc = resolve_scale(scale, scan_voxel_size, model.voxel_size)
    check_memory(model, scan.shape, sc, st.precision)
    fine = tuple(int(n) * f for n, f in zip(scan.shape, sc, strict=True))
    dev = resolve_device(device)
    post = _Posterior(model, fine, tuple(int(o) for o in origin), int(seed), st, dev)
    rdt = post.rdtype
    M = torch.as_tensor(mapping.matrix(k), dtype=rdt, device=dev)
    target = torch.as_tensor(mapping.to_indices(scan).astype(np.int64), device=dev)
    blur = (float(st.blur),) * 3 if np.isscalar(st.blur) else tuple(float(b) for b in st.blur)
    h = float(st.step_size)
    steps = int(st.steps)
    # The start noise is the anchor of ½‖W − W0‖².
    W0 = {} if steps == 0 else {key: v.clone() for key, v in post.W.items()}
    # Adam on the (re, im) parts of the spectra: its per-coordinate scaling absorbs the stiffness
    # of the data term, and its fixed point is the RTO solution whatever the path.
    # Real layout (re, im as two coordinates): same-shape products, no complex broadcasting.
    adam = {
        key: (torch.zeros_like(torch.view_as_real(v)), torch.zeros_like(torch.view_as_real(v)))
        for key, v in W0.items()
    }
    b1, b2, eps = 0.9, 0.99, 1e-8
    nu0, nu1 = (float(v) for v in st.nu)
    n_vox = float(np.prod(fine))
    group_size = M.sum(1)  # phases per scan label
    merged = (M.T @ (group_size > 1).to(rdt)).clamp(max=1.0)  # phases in a merged group
    Z_start = None
    if steps and bool(merged.any()) and float(st.share_weight) > 0:
        with torch.no_grad():
            Z_start = post.Z(post.fields())  # the unconditioned draw's fields

    def shares_of(Z1: torch.Tensor, Z2: torch.Tensor | None, nu: float) -> torch.Tensor:
        """Each phase's share of its scan label's group, with indicators of steepness nu."""
        frac = post.phases(Z1, Z2, nu).mean(dim=(1, 2, 3))
        return frac / (M.T @ (M @ frac)).clamp_min(1e-6)

    history: list[dict[str, float]] = []
    cancelled = False

    def agreement_of(Z1: torch.Tensor, Z2: torch.Tensor | None) -> float:
        """Fraction of blocks whose hard majority is the scan's label."""
        F = _block_fractions(post.phases(Z1, Z2, None), M, sc, (0.0, 0.0, 0.0))
        return float((F.argmax(0) == target).to(rdt).mean())

    for t in range(steps):
        nu = nu0 * (nu1 / nu0) ** (t / max(steps - 1, 1))
        f = {o: v.requires_grad_(True) for o, v in post.fields().items()}
        Z1, Z2 = post.Z(f)
        phases_soft = post.phases(Z1, Z2, nu)
        F = _block_fractions(phases_soft, M, sc, blur)
        logits = float(st.sharpness) * F
        loss = torch.nn.functional.cross_entropy(logits.unsqueeze(0), target.unsqueeze(0),
                                                 reduction="sum")  # fmt: skip
        total = loss
        if Z_start is not None:
            # Merged phases: the scan is silent on how a group divides among its phases; keep
            # each phase's share of its group at the unconditioned draw's, measured with the
            # same steepness (soft and hard shares differ).
            with torch.no_grad():
                want = shares_of(*Z_start, nu)
            got = shares_of(Z1, Z2, nu)
            total = loss + float(st.share_weight) * n_vox * ((got - want) ** 2 * merged).sum()
        total.backward()
        with torch.no_grad():
            agree = agreement_of(Z1.detach(), None if Z2 is None else Z2.detach())
            grads = {o: v.grad for o, v in f.items()}
            del f, Z1, Z2, F, logits, phases_soft, total
            G = post.output_spectra(grads)
            del grads
            g = torch.empty_like(next(iter(post.W.values())))
            for key, W in post.W.items():
                post.grad_of(key, G, g).add_(W).sub_(W0[key])  # ∇ of ½‖W − W0‖² + L
                m1, v2 = adam[key]
                gr = torch.view_as_real(g)
                m1.mul_(b1).add_(gr, alpha=1 - b1)
                v2.mul_(b2).addcmul_(gr, gr, value=1 - b2)
                corr1, corr2 = 1 - b1 ** (t + 1), 1 - b2 ** (t + 1)
                torch.sqrt(v2, out=gr).div_(math.sqrt(corr2)).add_(eps)  # g's buffer reused
                torch.view_as_real(W).addcdiv_(m1, gr, value=-h / corr1)
            del G, g
        rec = {"step": t + 1, "nu": nu, "data_loss": float(loss.detach()) / target.numel(),
               "agreement": agree, "seconds": time.perf_counter() - t_start}  # fmt: skip
        history.append(rec)
        if progress is not None:
            progress(rec)
        if cancel is not None and cancel():
            cancelled = True
            break
    with torch.no_grad():
        Z1, Z2 = post.Z(post.fields())
        agreement = agreement_of(Z1, Z2)
        idx = _phase_indices(model, Z1, Z2)
        # The indicators at the final steepness: how close each voxel is to a threshold; averaged
        # over draws they give a phase probability without ties.
        soft = post.phases(Z1, Z2, nu1).cpu().numpy() if keep_soft else None
    lab = (
        to_labels(idx, model.phase_map)
        if model.phase_map is not None
        else (idx + 1).astype(np.uint8)
    )
    return FusionResult(
        labels=lab, indices=idx, agreement=agreement, history=history, scale=sc, seed=int(seed),
        mapping=mapping.to_dict(labels), settings=asdict(st), cancelled=cancelled,
        seconds=time.perf_counter() - t_start, soft=soft,
    )  # fmt: skip


def fusion_memory(
    model: ExcursionModel, scan_shape: Sequence[int], scale: Sequence[int],
    precision: str = "single",
) -> int:  # fmt: skip
    """Estimated peak bytes of :func:`fuse` on a whole scan.

    Per noise source four half spectra on the torus (the noise, its anchor, Adam's two moments);
    per output field its value and gradient, plus the autograd intermediates of the phases.
    """
    item = 4 if precision == "single" else 8
    radii = kernel_radius(int(model.m), model.support_scale, 3)
    fine = [int(n) * int(s) for n, s in zip(scan_shape, scale, strict=True)]
    torus = math.prod(
        int(next_fast_len(f + 2 * r, real=True)) for f, r in zip(fine, radii, strict=True)
    )
    n = int(model.n_chi2)
    sources = 2 + 3 * n if int(model.n_phases) == 3 else 1 + 2 * n
    outputs = 2 + 2 * n if int(model.n_phases) == 3 else 1 + n
    half = torus / 2
    return int(item * (7 * half * sources + 4 * torus + (2 * outputs + 14) * math.prod(fine)))


def check_memory(model: ExcursionModel, scan_shape: Sequence[int], scale: Sequence[int],
                 precision: str = "single", available: int | None = None) -> None:  # fmt: skip
    """Refuse a whole-volume fusion that would not fit in memory; name the limit and the fix."""
    need = fusion_memory(model, scan_shape, scale, precision)
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    if need > 0.8 * available:
        raise ValueError(
            f"fusing this {'×'.join(map(str, scan_shape))} scan at scale "
            f"{'×'.join(map(str, scale))} in one pass needs about {need / 2**30:.1f} GiB, "
            f"more than 80 % of the {available / 2**30:.1f} GiB available; fuse it in chunks "
            "(--chunks 32 / chunks=32)"
        )


def fuse_draws(
    model: ExcursionModel,
    scan: np.ndarray,
    n_draws: int = 4,
    seed: int = 0,
    progress: Callable[[int, dict[str, float]], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    **kwargs: Any,
) -> tuple[list[FusionResult], np.ndarray]:
    """Several conditional draws (seeds ``seed, seed + 1, …``) and the per-voxel phase probability.

    Returns
    -------
    draws : list of FusionResult
    probability : ndarray ``(k, Z, Y, X)`` float32
        Per voxel and model phase (model order), the mean over draws of the phase indicators at
        the final sigmoid steepness — the fraction of draws in which the voxel is that phase,
        with voxels within a hair of a threshold counted fractionally (so that few draws give
        no ties). A run cancelled part-way returns the draws it finished.
    """
    if int(n_draws) < 1:
        raise ValueError(f"n_draws must be ≥ 1, got {n_draws}")
    draws: list[FusionResult] = []
    prob = None
    for d in range(int(n_draws)):
        res = fuse(model, scan, seed=int(seed) + d, cancel=cancel, keep_soft=True,
                   progress=None if progress is None else (lambda r, d=d: progress(d, r)),
                   **kwargs)  # fmt: skip
        if res.cancelled and draws:
            break
        draws.append(res)
        k = int(model.n_phases)
        if prob is None:
            prob = np.zeros((k, *res.indices.shape), dtype=np.float32)
        prob += res.soft
        res.soft = None
        if res.cancelled:
            break
    assert prob is not None
    prob /= len(draws)
    return draws, prob
