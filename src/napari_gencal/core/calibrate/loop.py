"""Algorithms 1–3 of method.md §5 as one resumable engine that any front end drives.

:class:`Calibration` is an iterator factory: ``for rec in cal.run(): ...`` yields one
:class:`Progress` record per optimizer step. Breaking out of the loop (closing the generator) or
calling :meth:`Calibration.cancel` stops the run cleanly; :attr:`Calibration.best_model` always
holds the best :class:`~napari_gencal.core.model.ExcursionModel` found so far, with full metadata.

One step of each algorithm (θ = model parameters, D = discriminator):

* Algorithm 1: θ ← Adam(TPPF loss).
* Algorithm 2: D ← Adam(BCE(real→1, fake→0)); θ ← Adam(BCE(D(fake)→1)).
* Algorithm 3: pre-train θ on the TPPF loss, then D with θ fixed; then alternate D (skipped while
  its loss is below ``skip_threshold``) and θ ← Adam(adv + γ·TPPF).

Every epoch ends with an evaluation on hard-threshold sections (volume fractions and S_V against the
data); from ``early_stop_start`` on the best parameters are kept and the run stops after
``patience`` epochs without improvement. With ``match_fractions`` the evaluated and kept parameters
are a copy whose thresholds give the data's volume fractions exactly.
"""

from __future__ import annotations

import copy
import math
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..io import sha256_of_array
from ..phases import PhaseMap
from . import _backend as be
from .checkpoint import load_checkpoint, save_checkpoint
from .config import MIN_WINDOW, CalibrationConfig, largest_window
from .discriminator import Discriminator, RealSampler, adversarial_loss, disc_loss
from .phase_order import phase_order_advice

__all__ = ["Calibration", "Progress", "CalibrationWarning", "check_stationarity"]

#: Largest number of data sections used for the data TPPF and descriptors (a random subset beyond).
MAX_DATA_SECTIONS = 64
#: A volume-fraction change across the image larger than this (absolute) triggers a warning.
STATIONARITY_TOLERANCE = 0.1


class CalibrationWarning(UserWarning):
    """Something about the data or the run that the user should know (e.g. non-stationarity)."""


@dataclass
class Progress:
    """One record per optimizer step (what a progress bar or the napari widget shows).

    Attributes
    ----------
    step, total_steps : int
        Steps done (1-based after this record) and the step budget of the current stage.
    epoch : int
        Epoch of the training phase (0 during pre-training).
    phase : str
        ``"pretrain-model"``, ``"pretrain-disc"``, ``"train"`` or ``"done"``.
    stage : str
        ``"high"`` or ``"low"`` (which parametrization is calibrated).
    losses : dict
        ``tppf``, ``adv``, ``disc``, ``total`` of this step (NaN where not computed).
    descriptors : dict or None
        Latest evaluation of hard-threshold sections: ``volume_fraction`` and
        ``specific_surface_area`` lists (per phase) and the data's, as ``data_*``.
    score, best_score : float or None
        Latest and best evaluation score (sum of the mean absolute errors).
    new_best : bool
        This step's evaluation found new best parameters.
    disc_skipped : bool
        The discriminator update was skipped by the skip rule.
    elapsed, remaining : float
        Seconds since start (resumes included) and an upper estimate of the seconds left.
    done : bool
        Last record of the run.
    stop_reason : str or None
        Why the run ended (``"max_epochs"``, ``"early_stopping"``, ``"time_limit"``,
        ``"cancelled"``, or a non-finite loss with its values).
    message : str or None
        Something to tell the user at this point (e.g. the phase order the pipeline chose).
    """

    step: int
    total_steps: int
    epoch: int
    phase: str
    stage: str
    losses: dict[str, float]
    descriptors: dict[str, Any] | None = None
    score: float | None = None
    best_score: float | None = None
    new_best: bool = False
    disc_skipped: bool = False
    elapsed: float = 0.0
    remaining: float | None = None
    done: bool = False
    stop_reason: str | None = None
    message: str | None = None

    @property
    def fraction(self) -> float:
        """Share of the budget used, in [0, 1]: by time when ``remaining`` is known (a time
        limit usually ends a run before the step budget), else by steps."""
        if self.done:
            return 1.0
        if self.remaining is not None and self.elapsed + self.remaining > 0:
            return min(1.0, self.elapsed / (self.elapsed + self.remaining))
        return min(1.0, self.step / max(1, self.total_steps))

    def summary(self) -> str:
        """One line for logs and progress bars."""
        parts = [f"{self.stage} {self.phase} step {self.step}/{self.total_steps}"]
        if self.epoch:
            parts.append(f"epoch {self.epoch}")
        parts += [f"{k} {v:.4g}" for k, v in self.losses.items() if math.isfinite(v)]
        if self.best_score is not None:
            parts.append(f"best {self.best_score:.4f}")
        if self.stop_reason:
            parts.append(f"stopped: {self.stop_reason}")
        return ", ".join(parts)


def check_stationarity(
    sections: np.ndarray, n_phases: int, tolerance: float = STATIONARITY_TOLERANCE
) -> list[str]:
    """Linear trends of the volume fractions across the image (and across the stack).

    The image is cut into 8 strips along each axis (and the stack into 8 groups of sections); a
    straight line is fitted to each phase's strip fractions. A change of more than ``tolerance``
    from the first to the last strip that also exceeds four standard errors of the fitted slope is
    reported: a graded layer is no stationary random set.

    Returns
    -------
    list of str
        One message per offending axis and phase (empty when the data look stationary).
    """
    from scipy.stats import linregress

    msgs = []
    n, h, w = sections.shape
    axes = {"y": 1, "x": 2}
    if n >= 8:
        axes["section index"] = 0
    for name, ax in axes.items():
        parts = np.array_split(np.arange(sections.shape[ax]), 8)
        if min(len(p) for p in parts) == 0:
            continue
        t = np.array([p.mean() for p in parts]) / max(1, sections.shape[ax] - 1)
        for i in range(n_phases):
            f = np.array([np.mean(np.take(sections, p, axis=ax) == i) for p in parts])
            fit = linregress(t, f)
            change = fit.slope * (t[-1] - t[0])
            # Large and clearly beyond the strips' scatter (t > 4): random fluctuations of a
            # small stationary image rarely pass both.
            significant = fit.stderr == 0 or abs(fit.slope) > 4 * fit.stderr
            if abs(change) > tolerance and significant:
                msgs.append(
                    f"phase {i} volume fraction changes by {change:+.2f} along {name} "
                    f"(from {f[0]:.2f} to {f[-1]:.2f}); the model assumes a stationary structure — "
                    "crop a homogeneous region or calibrate the layers separately"
                )
    return msgs


def _package_versions() -> dict[str, str]:
    from ... import __version__

    return {
        "napari_gencal": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


class Calibration:
    """A calibration run of the excursion-set model on 2D sections (method.md §5).

    Parameters
    ----------
    sections : ndarray
        Phase indices ``(N, H, W)`` or one image ``(H, W)`` (values ``0 .. k-1``, uint8), e.g. from
        :func:`~napari_gencal.core.phases.to_indices` and
        :func:`~napari_gencal.core.phases.as_sections`.
    phase_map : PhaseMap
        Label values of the phases (stored in the model); ``k = phase_map.n_phases`` is 2 (two-phase
        reduction) or 3.
    config : CalibrationConfig, optional
        Settings (default: ``CalibrationConfig()``).
    voxel_size : float or tuple of float, optional
        Physical pixel size, stored in the model.
    data_sha256 : str, optional
        Hash of the user's input data for the model file (default: hash of ``sections``).
    anisotropy : float
        Factor b stored in the calibrated model (calibration itself is isotropic).
    init_model : ExcursionModel, optional
        Start from these parameters (a high-parametric model of this run's m and phase order,
        e.g. the best of a trial fit) instead of the data-driven initialization.
    resume : str or path, optional
        Checkpoint to continue from. Its settings are used; of ``config`` only the budget
        (``max_epochs``, ``time_limit``, ``patience``, ``checkpoint``, ``checkpoint_every``) applies
        when ``config`` is given.

    Raises
    ------
    ValueError
        Sections that are not phase indices of ``phase_map``, an absent phase, images smaller than
        32×32, a checkpoint made from other data or settings.
    """

    @classmethod
    def from_prepared(
        cls, data: Any, config: CalibrationConfig | None = None, *, resume: str | None = None
    ) -> Calibration:
        """A calibration of :func:`~napari_gencal.core.calibrate.prepare_data`'s output.

        Carries the data's sections, phase map, voxel size, hash and fitted anisotropy over, so
        that every front end builds the run the same way.
        """
        return cls(
            data.sections,
            data.phase_map,
            config,
            data.voxel_size,
            data_sha256=data.sha256,
            anisotropy=data.anisotropy,
            resume=resume,
        )

    @classmethod
    def from_prepared_with_notes(
        cls, data: Any, config: CalibrationConfig | None = None, *, resume: str | None = None
    ) -> tuple[Calibration, list[str]]:
        """:meth:`from_prepared`, returning its :class:`CalibrationWarning` messages (about the
        data: non-stationarity, phase order) instead of emitting them, for front ends that show
        them their own way (one CLI line each, a napari notification). Other warnings pass on.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CalibrationWarning)
            cal = cls.from_prepared(data, config, resume=resume)
        notes = []
        for w in caught:
            if issubclass(w.category, CalibrationWarning):
                notes.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return cal, notes

    def __init__(
        self,
        sections: np.ndarray,
        phase_map: PhaseMap,
        config: CalibrationConfig | None = None,
        voxel_size: float | tuple[float, ...] | None = None,
        *,
        data_sha256: str | None = None,
        anisotropy: float = 1.0,
        resume: str | None = None,
        init_model: Any = None,
    ) -> None:
        ckpt = load_checkpoint(resume) if resume is not None else None
        if ckpt is not None:
            saved = CalibrationConfig.from_dict(ckpt["config"])
            if config is not None:
                budget = (
                    "max_epochs",
                    "time_limit",
                    "patience",
                    "checkpoint",
                    "checkpoint_every",
                    "device",
                )
                saved = saved.replace(**{k: getattr(config, k) for k in budget})
            config = saved
        self.config = config = config if config is not None else CalibrationConfig()
        self.phase_map = phase_map
        self.k = phase_map.n_phases
        if self.k not in (2, 3):
            raise ValueError(
                f"the model has two or three phases, the phase map has {self.k}; merge phases "
                "in the mapping (e.g. --phases) to two or three"
            )
        self.sections = self._check_sections(sections)
        self.data_sha256 = data_sha256 or sha256_of_array(self.sections)
        if ckpt is not None and ckpt["data_sha256"] != self.data_sha256:
            raise ValueError(
                f"checkpoint {resume} was made from other data "
                f"(sha256 {ckpt['data_sha256'][:12]}…, "
                f"this data {self.data_sha256[:12]}…); resume with the same image and phases"
            )
        self.voxel_size = voxel_size
        self.anisotropy = float(anisotropy)
        self.device = resolve_device(config.device)
        for msg in check_stationarity(self.sections, self.k):
            warnings.warn(msg, CalibrationWarning, stacklevel=2)
        advice = phase_order_advice(self.sections, tuple(phase_map.labels))
        if advice is not None and ckpt is None:
            warnings.warn(advice, CalibrationWarning, stacklevel=2)

        _, h, w = self.sections.shape
        self.window = self._resolve_window(h, w)
        # Data statistics (a random subset of sections when there are very many).
        rng = np.random.default_rng(config.seed)
        n = self.sections.shape[0]
        pick = (
            np.sort(rng.choice(n, MAX_DATA_SECTIONS, replace=False))
            if n > MAX_DATA_SECTIONS
            else None
        )
        stat_sections = self.sections if pick is None else self.sections[pick]
        self.data_fractions = be.volume_fractions(stat_sections, self.k)
        self.data_sv = be.surface_areas(stat_sections, self.k)
        self.data_euler = be.euler_densities(stat_sections, self.k)
        self.data_topology = be.topology_densities(stat_sections, self.k)
        r_cap = max(4, min(config.r_max_cap, min(h, w) // 4))
        curves = be.tppf_of_sections(stat_sections, self.k, r_cap, self.device)
        if config.r_max is not None:
            self.r_max = min(int(config.r_max), r_cap)
        else:
            self.r_max = be.choose_r_max(curves, self.data_fractions, r_cap, (h, w))
        self.data_curves = curves[..., : self.r_max + 1].to(self.device)
        # m = r_max: a kernel must have room to fade out smoothly. With m = r_max / 2 the kernels
        # of long-range phases were still large at the cut (a jump → rough boundaries): on
        # electrode.tiff NMC S_V +18 % with m = 12 vs −1 % with m = 24 (docs/decisions).
        auto_m = max(4, int(self.r_max))
        self.m = int(config.m) if config.m is not None else min(config.m_cap, auto_m)
        self.sampler = (
            RealSampler(self.sections, self.k, self.window, self.device)
            if config.uses_discriminator
            else None
        )
        # Model sections must hold the TPPF out to r_max (side ≥ 4·r_max, method.md §4's quarter
        # rule); the discriminator sees a window-sized crop of them.
        self.section_size = max(self.window, 8 * math.ceil(4 * self.r_max / 8))
        self.eval_size = config.eval_size or self.section_size
        self.history: list[dict[str, float]] = []
        self.models: dict[str, Any] = {}
        self._cancel = False
        self._stop_reason: str | None = None
        if ckpt is not None:
            self._restore(ckpt)
        else:
            # "low" and "both" start high: the paper's route (high-parametric first, the family
            # fitted to each calibrated kernel's covariance, then recalibrated).
            self.stage = "high"
            if init_model is not None:
                init = self._check_init(init_model)
            else:
                init = be.initial_model(
                    self.k,
                    self.m,
                    self.data_fractions,
                    config,
                    self.data_curves,
                    self.r_max,
                    self.section_size,
                    self.device,
                    self.phase_map,
                )
            self._start_stage(init, elapsed=0.0)

    # ------------------------------------------------------------------ set-up
    def _check_init(self, model: Any) -> Any:
        """A starting model given by the caller (e.g. a trial's best), checked against the run."""
        if model.kind != "high" or int(model.m) != self.m or int(model.n_phases) != self.k:
            raise ValueError(
                f"init_model must be a high-parametric {self.k}-phase model with m = {self.m}, "
                f"got kind {model.kind!r}, m = {model.m}, {model.n_phases} phases"
            )
        if model.phase_map is not None and tuple(model.phase_map.labels) != tuple(
            self.phase_map.labels
        ):
            raise ValueError(
                f"init_model's phases {list(model.phase_map.labels)} differ from this run's "
                f"{list(self.phase_map.labels)}"
            )
        return model.copy(anisotropy=1.0, length_scale=1.0, kernel_scales={}, metadata={})

    def _check_sections(self, sections: np.ndarray) -> np.ndarray:
        arr = np.asarray(sections)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(
                f"sections must be a 2D image (H, W) or a stack (N, H, W), got shape {arr.shape}; "
                "for a 3D volume use core.phases.as_sections(volume, axis) first"
            )
        if arr.dtype.kind not in "iub":
            raise ValueError(
                f"sections must hold integer phase indices, got dtype {arr.dtype}; map labels with "
                "core.phases.to_indices"
            )
        if arr.size and (arr.min() < 0 or arr.max() >= self.k):
            raise ValueError(
                f"sections hold values {int(arr.min())}..{int(arr.max())}, but phase indices "
                "must be "
                f"0..{self.k - 1} for the {self.k} phases of the map; convert labels with "
                "core.phases.to_indices(image, phase_map)"
            )
        arr = arr.astype(np.uint8, copy=False)
        counts = np.bincount(arr.ravel(), minlength=self.k)
        absent = [self.phase_map.display_names[i] for i in range(self.k) if counts[i] == 0]
        if absent:
            raise ValueError(
                f"phase(s) {absent} do not occur in the data; an absent phase has no statistics to "
                "calibrate — check the phase mapping or calibrate with fewer phases"
            )
        return np.ascontiguousarray(arr)

    def _resolve_window(self, h: int, w: int) -> int:
        fit = largest_window(h, w, cap=4096)
        if fit == 0:
            raise ValueError(
                f"the images are {h}×{w} pixels; calibration needs at least "
                f"{MIN_WINDOW}×{MIN_WINDOW} "
                "(the discriminator window) — use larger images"
            )
        want = self.config.window or 128
        if want > fit:
            warnings.warn(
                f"window {want} does not fit the {h}×{w} images; using {fit}",
                CalibrationWarning,
                stacklevel=3,
            )
            return fit
        return want

    def _lr_theta(self) -> float:
        c = self.config
        return c.lr_theta_low if self.stage == "low" else c.lr_theta

    def _lr_disc(self) -> float:
        c = self.config
        return c.lr_disc_low if self.stage == "low" else c.lr_disc

    def _start_stage(self, model: Any, elapsed: float) -> None:
        """Fresh optimizers, counters and random streams for a stage (high or low)."""
        c = self.config
        stage_seed = c.seed + (1000 if self.stage == "low" else 0)
        self.module = be.module_from_model(model, self.device, c.learn_truncation)
        self._scratch = copy.deepcopy(self.module)
        self.opt_theta = torch.optim.Adam(
            self.module.parameters(), lr=self._lr_theta(), betas=c.betas
        )
        self.disc = None
        self.opt_disc = None
        if c.uses_discriminator:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(stage_seed + 17)
                disc = Discriminator(self.k, self.window, c.disc_width)
            self.disc = disc.to(self.device)
            self.opt_disc = torch.optim.Adam(
                self.disc.parameters(), lr=self._lr_disc(), betas=c.betas
            )
        self.g_model = torch.Generator(device=self.device)
        self.g_model.manual_seed(stage_seed + 1)
        self.g_real = torch.Generator()
        self.g_real.manual_seed(stage_seed + 2)
        self.step = 0
        self._stop_reason = None
        self.gamma: float | None = c.gamma
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_score: float | None = None
        self.epochs_since_best = 0
        self.last_eval: dict[str, Any] | None = None
        self.stage_history: list[dict[str, float]] = []
        self._elapsed_before = elapsed
        self._step_times: list[float] = []
        self._step_seconds = 0.0

    # ------------------------------------------------------------------ schedule
    @property
    def pretrain_model_steps(self) -> int:
        """Model pre-training steps (Algorithm 3 only)."""
        return self.config.pretrain_model_steps if self.config.algorithm == 3 else 0

    @property
    def pretrain_disc_steps(self) -> int:
        """Discriminator pre-training steps (Algorithm 3 only)."""
        return self.config.pretrain_disc_steps if self.config.algorithm == 3 else 0

    @property
    def total_steps(self) -> int:
        """Step budget of the current stage."""
        c = self.config
        return (
            self.pretrain_model_steps + self.pretrain_disc_steps + c.max_epochs * c.steps_per_epoch
        )

    def _phase_of(self, step: int) -> tuple[str, int]:
        pm, pd = self.pretrain_model_steps, self.pretrain_disc_steps
        if step < pm:
            return "pretrain-model", 0
        if step < pm + pd:
            return "pretrain-disc", 0
        return "train", (step - pm - pd) // self.config.steps_per_epoch + 1

    def _time_limit(self) -> float | None:
        tl = self.config.time_limit
        if tl is None or self.config.model == "high":
            return tl
        # "low" / "both": the high stage gets 60 % of the time, the low stage the rest.
        return 0.6 * tl if self.stage == "high" else tl

    # ------------------------------------------------------------------ one step
    def _sections(self, soft: bool = True) -> torch.Tensor:
        if soft and self.config.straight_through:
            return be.sample_sections_straight_through(
                self.module, self.config.batch, self.section_size, self.g_model
            )
        return be.sample_sections(
            self.module, self.config.batch, self.section_size, self.g_model, soft
        )

    def _crop(self, fake: torch.Tensor) -> torch.Tensor:
        """Discriminator window of the (stationary) sections: the top-left w×w corner."""
        return fake[..., : self.window, : self.window]

    def _tppf_loss(self, fake: torch.Tensor) -> torch.Tensor:
        loss = be.tppf_loss(fake, self.data_curves, self.r_max)
        if self.config.euler_weight > 0:
            target = torch.as_tensor(self.data_euler, dtype=fake.dtype, device=fake.device)
            loss = loss + self.config.euler_weight * be.euler_loss(fake, target)
        return loss

    def _disc_step(self, fake: torch.Tensor, allow_skip: bool) -> tuple[float, bool]:
        real = self.sampler.sample(self.config.batch, self.g_real).to(self.device)
        loss = disc_loss(self.disc, real, self._crop(fake.detach()))
        value = float(loss.detach())
        thr = self.config.skip_threshold
        if allow_skip and thr is not None and value < thr:
            return value, True
        self.opt_disc.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_disc.step()
        return value, False

    def _one_step(self) -> tuple[str, int, dict[str, float], bool]:
        c = self.config
        phase, epoch = self._phase_of(self.step)
        nan = float("nan")
        losses = {"tppf": nan, "adv": nan, "disc": nan, "total": nan}
        skipped = False
        if phase == "pretrain-disc":
            with torch.no_grad():
                fake = self._sections()
            losses["disc"], skipped = self._disc_step(fake, allow_skip=False)
        else:
            fake = self._sections()
            use_adv = phase == "train" and c.algorithm in (2, 3)
            use_tppf = c.algorithm in (1, 3)
            if use_adv:
                losses["disc"], skipped = self._disc_step(fake, allow_skip=c.algorithm == 3)
            terms = []
            if use_tppf:
                lt = self._tppf_loss(fake)
                losses["tppf"] = float(lt.detach())
            if use_adv:
                la = adversarial_loss(self.disc, self._crop(fake))
                losses["adv"] = float(la.detach())
                terms.append(la)
            if use_tppf:
                if use_adv:
                    if self.gamma is None:
                        # Both terms equally large at the first adversarial step (method.md §5).
                        self.gamma = losses["adv"] / max(losses["tppf"], 1e-12)
                    terms.append(self.gamma * lt)
                else:
                    terms.append(lt)
            total = sum(terms)
            losses["total"] = float(total.detach())
            if not math.isfinite(losses["total"]):
                shown = ", ".join(f"{k}={v}" for k, v in losses.items())
                self._stop_reason = (
                    f"non-finite loss at step {self.step + 1} ({shown}); the best parameters so "
                    "far are kept — try a smaller learning rate or nu"
                )
                return phase, epoch, losses, skipped
            self.opt_theta.zero_grad(set_to_none=True)
            total.backward()
            bad = [
                n
                for n, p in self.module.named_parameters()
                if p.grad is not None and not torch.isfinite(p.grad).all()
            ]
            if bad:
                self._stop_reason = (
                    f"non-finite gradient of {bad} at step {self.step + 1}; the best parameters "
                    "so far are kept — try a smaller learning rate or nu"
                )
                return phase, epoch, losses, skipped
            self._decay_lr()
            self.opt_theta.step()
        return phase, epoch, losses, skipped

    def _decay_lr(self) -> None:
        """Model learning rate ``lr·lr_decay^progress`` over the stage's budget (time, else steps):
        large steps early to find the structure, small ones late so that the kept parameters
        settle instead of wandering with the adversarial noise."""
        c = self.config
        if c.lr_decay is None or c.lr_decay == 1.0:
            return
        tl = self._time_limit()
        if tl is not None:
            progress = (self._elapsed_before + self._step_seconds) / tl
        else:
            progress = self.step / max(1, self.total_steps)
        lr = self._lr_theta() * float(c.lr_decay) ** min(1.0, max(0.0, progress))
        for group in self.opt_theta.param_groups:
            group["lr"] = lr

    # ------------------------------------------------------------------ evaluation
    def keep_current_as_best(self) -> float:
        """Evaluate the current parameters and keep them as the best so far (e.g. a warm start
        from a trial fit: the run can then only end with something at least as good by the
        evaluation). Returns the score."""
        candidate = self._candidate()
        ev = self.evaluate(candidate)
        self.last_eval = ev
        self.best_score = ev["score"]
        self.best_state = {k: v.detach().clone() for k, v in candidate.state_dict().items()}
        self.epochs_since_best = 0
        return float(ev["score"])

    def _candidate(self) -> torch.nn.Module:
        """The parameters an evaluation judges and early stopping keeps.

        With ``match_fractions`` a copy (the scratch module) of the current parameters whose
        thresholds give the data's volume fractions exactly; the training module is not touched.
        Otherwise the training module itself.
        """
        if not self.config.match_fractions:
            return self.module
        self._scratch.load_state_dict(self.module.state_dict())
        if be.match_thresholds(self._scratch, self.data_fractions, seed=self.config.seed):
            return self._scratch
        return self.module

    @torch.no_grad()
    def evaluate(
        self, module: torch.nn.Module | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Descriptors of hard-threshold sections of the current (or given) model vs the data.

        The sections use a fixed seed at every evaluation (common random numbers), so successive
        scores differ by the parameters, not by the noise.

        Returns
        -------
        dict
            ``volume_fraction``, ``specific_surface_area`` (per phase, 1/pixel), ``data_…`` of the
            same, ``score``: ``"paper"`` mean |ΔVF| + mean |ΔS_V|; ``"surface"`` the mean and the
            worst relative S_V error, averaged; plus ``score_euler`` times the same of the Euler
            densities' errors relative to the data's components + holes per area. ``seed``:
            other evaluation sections than the run's fixed ones (for the noise of a score).
        """
        module = module or self.module
        g = torch.Generator(device=self.device)
        g.manual_seed(self.config.seed + 7919 if seed is None else int(seed))
        idx = be.hard_sections(module, self.config.eval_sections, self.eval_size, g)
        vf = be.volume_fractions(idx, self.k)
        sv = be.surface_areas(idx, self.k)
        if self.config.score == "surface":
            # Relative S_V errors, the mean and the worst phase: what the verdict judges (each
            # phase within 5 %). Volume fractions are left out: with match_fractions they are the
            # data's in law, and their sampling noise would only blur the choice.
            rel = np.abs(sv - self.data_sv) / np.maximum(self.data_sv, 1e-12)
            score = float(0.5 * (rel.mean() + rel.max()))
        else:
            score = float(
                np.mean(np.abs(vf - self.data_fractions)) + np.mean(np.abs(sv - self.data_sv))
            )
        euler = be.euler_densities(idx, self.k)
        if self.config.score_euler > 0:
            rel_e = np.abs(euler - self.data_euler) / np.maximum(self.data_topology, 1e-12)
            score += float(self.config.score_euler * 0.5 * (rel_e.mean() + rel_e.max()))
        return {
            "volume_fraction": vf.tolist(),
            "specific_surface_area": sv.tolist(),
            "euler_density": euler.tolist(),
            "data_euler_density": self.data_euler.tolist(),
            "data_volume_fraction": self.data_fractions.tolist(),
            "data_specific_surface_area": self.data_sv.tolist(),
            "score": score,
        }

    # ------------------------------------------------------------------ the loop
    def cancel(self) -> None:
        """Ask the running loop to stop after the current step (thread-safe flag)."""
        self._cancel = True

    def run(self) -> Iterator[Progress]:
        """Run the calibration, yielding one :class:`Progress` per step.

        Closing the iterator (``break`` in a for loop, ``gen.close()``) or :meth:`cancel` stops it;
        :attr:`best_model` then holds the best model so far. With ``model="both"`` the high stage
        is followed by the reduction and the low stage in the same iterator.
        """
        try:
            while True:
                last = None
                for rec in self._run_stage():
                    last = rec
                    yield rec
                if (
                    self.config.model in ("low", "both")
                    and self.stage == "high"
                    and last is not None
                    and last.stop_reason in ("max_epochs", "early_stopping", "time_limit")
                ):
                    from .lowparam import reduce_to_low

                    self.models["high"] = self.best_model
                    elapsed = last.elapsed
                    self.stage = "low"
                    self._start_stage(reduce_to_low(self.models["high"]), elapsed=elapsed)
                    continue
                break
        except GeneratorExit:
            # The consumer closed the iterator: a cancellation, not an error.
            self._stop_reason = self._stop_reason or "cancelled"
            raise
        finally:
            self.models[self.stage] = self.best_model
            if self.config.checkpoint:
                self.save_checkpoint(self.config.checkpoint)

    def _run_stage(self) -> Iterator[Progress]:
        c = self.config
        t_start = time.perf_counter() - self._elapsed_before
        time_limit = self._time_limit()
        while True:
            if self._cancel:
                self._stop_reason = "cancelled"
            elif self.step >= self.total_steps:
                self._stop_reason = "max_epochs"
            elif time_limit is not None and time.perf_counter() - t_start >= time_limit:
                self._stop_reason = "time_limit"
            if self._stop_reason is not None:
                phase, epoch = self._phase_of(max(0, self.step - 1))
                yield self._record(phase, epoch, {}, False, t_start, done=True)
                return
            t0 = time.perf_counter()
            phase, epoch, losses, skipped = self._one_step()
            if self._stop_reason is not None:  # non-finite loss: report and stop
                yield self._record(phase, epoch, losses, skipped, t_start, done=True)
                return
            self.step += 1
            self._step_times.append(time.perf_counter() - t0)
            self._step_seconds += self._step_times[-1]
            self.stage_history.append({"step": self.step, "epoch": epoch, **losses})
            new_best = False
            score = None
            if phase == "train" and self._phase_of(self.step)[1] != epoch:  # epoch finished
                candidate = self._candidate()
                ev = self.evaluate(candidate)
                self.last_eval = ev
                score = ev["score"]
                if epoch >= c.early_stop_start:
                    if self.best_score is None or score < self.best_score:
                        self.best_score = score
                        self.best_state = {
                            k: v.detach().clone() for k, v in candidate.state_dict().items()
                        }
                        self.epochs_since_best = 0
                        new_best = True
                    else:
                        self.epochs_since_best += 1
                        epoch_s = float(np.mean(self._step_times[-50:])) * c.steps_per_epoch
                        if self.epochs_since_best >= c.patience_epochs(epoch_s, time_limit):
                            self._stop_reason = "early_stopping"
                if c.checkpoint and epoch % c.checkpoint_every == 0:
                    self.save_checkpoint(c.checkpoint)
            rec = self._record(
                phase, epoch, losses, skipped, t_start, new_best=new_best, score=score
            )
            yield rec

    def _record(
        self,
        phase: str,
        epoch: int,
        losses: dict[str, float],
        skipped: bool,
        t_start: float,
        *,
        done: bool = False,
        new_best: bool = False,
        score: float | None = None,
    ) -> Progress:
        elapsed = time.perf_counter() - t_start
        recent = self._step_times[-50:]
        per_step = float(np.mean(recent)) if recent else 0.0
        remaining = (self.total_steps - self.step) * per_step
        tl = self._time_limit()
        if tl is not None:
            remaining = min(remaining, max(0.0, tl - elapsed))
        if done:
            remaining = 0.0
        return Progress(
            step=self.step,
            total_steps=self.total_steps,
            epoch=epoch,
            phase="done" if done else phase,
            stage=self.stage,
            losses=dict(losses),
            descriptors=self.last_eval,
            score=score,
            best_score=self.best_score,
            new_best=new_best,
            disc_skipped=skipped,
            elapsed=elapsed,
            remaining=remaining,
            done=done,
            stop_reason=self._stop_reason if done else None,
        )

    # ------------------------------------------------------------------ results
    @property
    def stop_reason(self) -> str | None:
        """Why the last run ended (None while running or before)."""
        return self._stop_reason

    @property
    def best_model(self) -> Any:
        """The best :class:`ExcursionModel` so far (the current one before the first evaluation)."""
        if self.best_state is not None:
            self._scratch.load_state_dict(self.best_state)
            module = self._scratch
        else:
            module = self._candidate()
        model = be.model_from_module(module)
        return self._with_metadata(model, module)

    def _with_metadata(self, model: Any, module: torch.nn.Module) -> Any:
        c = self.config
        hist = self.stage_history
        summary: dict[str, Any] = {"steps": len(hist)}
        for key in ("tppf", "adv", "disc", "total"):
            vals = [h[key] for h in hist if math.isfinite(h.get(key, float("nan")))]
            if vals:
                summary[key] = {"first": vals[0], "last": vals[-1], "min": min(vals)}
        # A thinned loss curve (≤ 200 points) is enough to judge convergence later.
        stride = max(1, len(hist) // 200)
        summary["curve"] = [
            {
                k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else None)
                for k, v in h.items()
            }
            for h in hist[::stride]
        ]
        desc = self.last_eval if module is self.module and self.best_state is None else None
        try:
            desc = desc or self.evaluate(module)
        except Exception:  # noqa: BLE001 - metadata must never lose the model itself
            desc = None
        meta = {
            "calibration": {
                "algorithm": c.algorithm,
                "stage": self.stage,
                "settings": c.to_dict(),
                "window": self.window,
                "section_size": self.section_size,
                "r_max": self.r_max,
                "m": self.m,
                "gamma": self.gamma,
                "seed": c.seed,
                "steps": self.step,
                "best_score": self.best_score,
                "stop_reason": self._stop_reason,
                "device": str(self.device),
            },
            "data": {
                "sha256": self.data_sha256,
                "n_sections": int(self.sections.shape[0]),
                "section_shape": list(self.sections.shape[1:]),
            },
            "descriptors": desc,
            "loss_history": summary,
            "versions": _package_versions(),
        }
        return be.finish_model(model, self.phase_map, self.voxel_size, self.anisotropy, meta)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str) -> None:
        """Write everything needed to continue this run step for step."""
        state = {
            "config": self.config.to_dict(),
            "data_sha256": self.data_sha256,
            "stage": self.stage,
            "step": self.step,
            "window": self.window,
            "r_max": self.r_max,
            "m": self.m,
            "model_json": be.model_to_json(be.model_from_module(self.module)),
            "module": self.module.state_dict(),
            "opt_theta": self.opt_theta.state_dict(),
            "disc": None if self.disc is None else self.disc.state_dict(),
            "opt_disc": None if self.opt_disc is None else self.opt_disc.state_dict(),
            "g_model": self.g_model.get_state(),
            "g_real": self.g_real.get_state(),
            "gamma": self.gamma,
            "best_state": self.best_state,
            "best_score": self.best_score,
            "epochs_since_best": self.epochs_since_best,
            "last_eval": self.last_eval,
            "history": self.stage_history,
            "high_model_json": (
                be.model_to_json(self.models["high"]) if "high" in self.models else None
            ),
            "elapsed": self._elapsed_now(),
        }
        save_checkpoint(path, state)

    def _elapsed_now(self) -> float:
        return self._elapsed_before + float(sum(self._step_times))

    def _restore(self, ck: dict[str, Any]) -> None:
        for key in ("window", "r_max", "m"):
            if ck[key] != getattr(self, key):
                raise ValueError(
                    f"checkpoint {key}={ck[key]} differs from this run's "
                    f"{key}={getattr(self, key)}; "
                    "resume with the same data and settings"
                )
        self.stage = ck["stage"]
        self._start_stage(be.model_from_json(ck["model_json"]), elapsed=float(ck["elapsed"]))
        self.module.load_state_dict(ck["module"])
        self.opt_theta.load_state_dict(ck["opt_theta"])
        if self.disc is not None and ck["disc"] is not None:
            self.disc.load_state_dict(ck["disc"])
            self.opt_disc.load_state_dict(ck["opt_disc"])
        self.g_model.set_state(ck["g_model"])
        self.g_real.set_state(ck["g_real"])
        self.step = int(ck["step"])
        self.gamma = ck["gamma"]
        self.best_state = ck["best_state"]
        self.best_score = ck["best_score"]
        self.epochs_since_best = int(ck["epochs_since_best"])
        self.stage_history = list(ck["history"])
        self.last_eval = ck.get("last_eval")
        if ck.get("high_model_json"):
            self.models["high"] = be.model_from_json(ck["high_model_json"])


def calibrate_sections(
    sections: np.ndarray,
    phase_map: PhaseMap,
    config: CalibrationConfig | None = None,
    voxel_size: float | tuple[float, ...] | None = None,
    progress: Callable[[Progress], Any] | None = None,
    **kwargs: Any,
) -> Calibration:
    """Run a :class:`Calibration` to the end; ``progress(record)`` is called for every step.

    A ``progress`` callback that returns ``False`` cancels the run (the best model is kept).
    """
    cal = Calibration(sections, phase_map, config, voxel_size, **kwargs)
    for rec in cal.run():
        if progress is not None and progress(rec) is False:
            cal.cancel()
    return cal
