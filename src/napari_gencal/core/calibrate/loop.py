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
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..io import sha256_of_array
from ..phases import PhaseMap
from . import _backend as be
from ._evaluation import EvaluationMixin
from ._inputs import InputChecksMixin
from ._record import RunRecordMixin
from .checkpoint import load_checkpoint
from .config import CalibrationConfig
from .data import section_frame_stretch
from .discriminator import Discriminator, RealSampler, adversarial_loss, disc_loss
from .phase_order import phase_order_advice
from .progress import (
    MAX_DATA_SECTIONS,
    CalibrationWarning,
    Progress,
    check_stationarity,
)

__all__ = ["Calibration", "Progress", "CalibrationWarning", "check_stationarity"]


class Calibration(InputChecksMixin, EvaluationMixin, RunRecordMixin):
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
    section_stretch : float
        The sections' x chords over their y chords, held fixed during the calibration as a
        stretch of the longer direction (:func:`~.data.section_frame_stretch`): sections whose
        y and x chords differ
        (:func:`~napari_gencal.core.calibrate.data.inplane_stretch`; ``axis_stretch`` of the
        model). 1.0: isotropic sections.
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
        section_stretch: float = 1.0,
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
        self.section_stretch = float(section_stretch)
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
        # Sections whose two directions' chords differ: the model is trained stretched along the
        # longer of the sections' directions; isotropic sections: (1, 1, 1).
        model = model.copy(axis_stretch=section_frame_stretch(self.section_stretch))
        self.module = be.module_from_model(model, self.device, c.learn_truncation, c.fix_sigma1)
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
