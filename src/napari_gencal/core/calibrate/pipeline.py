"""One calibration, from a user's labels to a checked model: what every front end runs.

:class:`CalibrationPipeline` strings the rooms of the data flow together, so that the CLI, the
Python API and the napari widget do the same work:

1. **Settings from the data** (:mod:`.plan`): the working resolution (every f-th pixel when the
   images are made of blocks or the structure is very large; never losing a thin phase), then
   r_max, the kernel radius m, the window and the section size at that resolution.
2. **Phase order** (:mod:`.phase_order`): which labelled phase plays the model's phase 1, 2, 3 —
   the least-touching pair at the ends, short trial fits (Algorithm 1, the same steps and seed for
   each order) for which end is phase 1. Two phases of 3D data: which phase is the excursion set
   (and σ1) from the connectivity of each order's twin (:mod:`.connectivity_order`). Labels of
   generated volumes stay the user's; the model file records the choice and why.
3. **Calibration** (:class:`.loop.Calibration`) at the working resolution, in the time left;
   ``model="low"`` / ``"both"`` take the paper's route (high first, then reduce, recalibrate).
4. **Rescaling**: the model gets ``length_scale = f`` (exact: kernels at scaled coordinates).
5. **Anisotropy** (3D stacks sliced normal to z): b from the stack (Eq. 40), refined so that the
   model's chords along z relate to its in-plane chords as the data's do, per phase.
6. **Verdict** (:mod:`..fit_check`): hard realizations compared with the data; stored in the model.

``run()`` yields :class:`~.loop.Progress` records: ``stage="order"`` during the trials (one with
``message`` set when the order is chosen), the engine's (``"high"``/``"low"``), then
``stage="finish"`` for steps 5–6. ``result`` is the final model, ``verdict`` the check. Cancelling
keeps the best model found so far (``verdict`` None: not checked).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..phases import PhaseMap
from .config import CalibrationConfig
from .connectivity_order import choose_two_phase_order
from .data import PreparedData, analysis_view, section_frame_stretch
from .phase_order import PhaseOrder, candidate_orders, choose_phase_order
from .plan import Plan, coarsen, plan_calibration
from .trials import TRIAL_SHARE, TRIAL_STEPS, run_trials

__all__ = ["CalibrationPipeline", "TRIAL_STEPS", "TRIAL_SHARE", "SWITCH_AT"]

#: Share of the main stage after which a run that has not beaten its warm start (the trial's
#: best) gives the rest of its time to the other phase order.
SWITCH_AT = 0.5


def _section_axes(normal: int) -> list[int]:
    """The data axes that sections normal to ``normal`` have as their y (rows) and x (columns)."""
    return [a for a in range(3) if a != int(normal)]


def section_stretch_of(normal: int, stretch: float) -> tuple[float, float, float]:
    """``axis_stretch`` (data frame) of a model calibrated on sections normal to ``normal`` whose
    x chords are ``stretch`` times their y chords (:func:`.data.section_frame_stretch`)."""
    from .data import section_frame_stretch

    frame = section_frame_stretch(stretch)
    out = [1.0, 1.0, 1.0]
    for a, v in zip(_section_axes(normal), frame[1:], strict=True):
        out[a] = v
    return tuple(out)


class CalibrationPipeline:
    """Settings from the data → phase order → calibration → rescaling → anisotropy → verdict.

    Parameters
    ----------
    data : PreparedData
        From :func:`~napari_gencal.core.calibrate.prepare_data`.
    config : CalibrationConfig, optional
        Default: the ``"minutes"`` budget. Lengths left at None (window, r_max, m, working factor)
        are derived from the data. ``time_limit`` covers the order trials and the calibration.
    resume : str, optional
        Checkpoint of an earlier run of the same data and settings (its phase order is kept: no
        trials).
    auto_order : bool
        Choose the phase order from the data (default); False keeps the user's order.
    check : bool
        Judge the final model against the data (the verdict); False skips it.

    Attributes
    ----------
    plan : Plan
    order : PhaseOrder or None
        Known after the trials (at once with one candidate, two phases or ``auto_order=False``).
    engine : Calibration or None
        The calibration engine, once the order is known.
    notes : list of str
        What the user should read before the run: data warnings and the settings chosen. The
        phase order follows as a progress record's ``message`` (and in :meth:`summary`).
    result : ExcursionModel or None
        The final model after :meth:`run` (None before).
    verdict : Verdict or None
    models : dict
        ``"high"`` / ``"low"`` final models (rescaled, anisotropy applied).
    """

    def __init__(
        self,
        data: PreparedData,
        config: CalibrationConfig | None = None,
        *,
        resume: str | None = None,
        auto_order: bool = True,
        check: bool = True,
        continue_from: Any = None,
        remedy: str | None = None,
    ) -> None:
        self.data = data
        cfg = config if config is not None else CalibrationConfig.preset("minutes")
        self.previous = continue_from
        self.continuation: dict[str, Any] | None = None
        if continue_from is not None:
            from .remedy import plan_continuation

            self.continuation = plan_continuation(continue_from, data, remedy)
            cfg = cfg.replace(**self.continuation["settings"])
        self.config = cfg
        self.check = check
        self.resume = resume
        pm = data.phase_map
        self.plan: Plan
        self.plan, self._work = plan_calibration(data.sections, pm.n_phases, cfg)
        self.notes: list[str] = list(self.plan.warnings)
        if data.axis_note:
            self.notes.append(data.axis_note)
        self.notes.append(self.plan.summary())
        self._candidates, _ = candidate_orders(
            self._work, pm.n_phases,
            three_d=data.volume is not None and cfg.connectivity == "auto",
        )  # fmt: skip
        self.order: PhaseOrder | None = None
        if resume is not None:
            self.order = self._order_of_checkpoint(resume)
        elif self.continuation is not None:
            labels = tuple(pm.labels)
            perm = tuple(labels.index(v) for v in self.continuation["order_labels"])
            self.order = PhaseOrder(perm, f"continued ({self.continuation['kind']}: "
                                          f"{self.continuation['cause']})")  # fmt: skip
        elif not auto_order:
            self.order = PhaseOrder(tuple(range(pm.n_phases)), "the order given by the user")
        elif len(self._candidates) == 1:
            self.order = choose_phase_order(self._work, tuple(pm.labels))
        self.engine: Any = None
        self._trial_engines: dict[tuple[int, ...], Any] = {}
        #: Starting models whose σ1 was chosen for the data's connectivity (two phases, 3D).
        self._connectivity_init: dict[tuple[int, ...], Any] = {}
        self.construction = cfg.construction if pm.n_phases == 3 else "paper"
        if continue_from is not None and self.continuation["warm"]:
            from ..model.truncation import is_paper_rule

            if not is_paper_rule(continue_from) and self.construction == "paper":
                self.construction = "auto"
        self.trial_record: dict[str, Any] = {}
        self.switch_record: dict[str, Any] | None = None
        self._warm_score: float | None = None
        self._current: Any = None
        self._last_trial: Any = None
        self._t_start = time.perf_counter()
        self._cancelled = False
        self.result: Any = None
        self.verdict: Any = None
        self.models: dict[str, Any] = {}
        self.finish_seconds = 0.0
        self.trial_seconds = 0.0
        if self.order is not None:
            if pm.n_phases == 3:
                self.notes.append("phase order: " + self.order.reason)
            self._build_engine(cfg.time_limit)

    # ------------------------------------------------------------------ control
    def cancel(self) -> None:
        """Stop after the current step; the best model so far is kept (thread-safe)."""
        self._cancelled = True
        if self._current is not None:
            self._current.cancel()

    @property
    def stop_reason(self) -> str | None:
        """Why the calibration ended."""
        if self.switch_record is not None and not self._cancelled:
            return "time_limit"  # the budget was shared between the two orders
        if self.engine is not None:
            return self.engine.stop_reason
        return "cancelled" if self._cancelled else None

    @property
    def final_kind(self) -> str:
        """``"low"`` for ``model="low"``/``"both"``, else ``"high"``."""
        return "low" if self.config.model in ("low", "both") else "high"

    @property
    def model_phase_map(self) -> PhaseMap:
        """The phase map in the model's order (after the order is chosen)."""
        pm = self.data.phase_map
        perm = self.order.perm if self.order is not None else tuple(range(pm.n_phases))
        return PhaseMap(
            tuple(pm.labels[p] for p in perm), tuple(pm.display_names[p] for p in perm)
        )

    # ------------------------------------------------------------------ set-up
    def _order_of_checkpoint(self, path: str) -> PhaseOrder:
        """The phase order a checkpoint was calibrated in (its model's labels, in model order)."""
        import json

        from .checkpoint import load_checkpoint

        labels = tuple(self.data.phase_map.labels)
        saved = json.loads(load_checkpoint(path)["model_json"]).get("phase_map") or {}
        order = [int(v) for v in saved.get("labels", labels)]
        if sorted(order) != sorted(labels):
            raise ValueError(
                f"checkpoint {path} was calibrated on phases {order}, this data has "
                f"{list(labels)}; resume with the same image and phases"
            )
        return PhaseOrder(tuple(labels.index(v) for v in order), "kept from the checkpoint")

    def _engine_config(self, **changes: Any) -> CalibrationConfig:
        cfg = self.config
        derived = {
            key: value
            for key, value in (
                ("window", self.plan.window),
                ("r_max", self.plan.r_max),
                ("m", self.plan.m),
                ("working_factor", self.plan.factor),
            )
            if getattr(cfg, key) is None
        }
        return cfg.replace(**derived, **changes)

    def _make_engine(
        self, perm: tuple[int, ...], cfg: CalibrationConfig, resume=None, init=None
    ) -> Any:
        from .loop import Calibration, CalibrationWarning

        order = PhaseOrder(perm, "")
        pm = self.data.phase_map
        model_pm = PhaseMap(tuple(pm.labels[p] for p in perm),
                            tuple(pm.display_names[p] for p in perm))  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CalibrationWarning)
            engine = Calibration(
                order.apply(self._work),
                model_pm,
                cfg,
                self.data.voxel_size,
                data_sha256=self.data.sha256,
                anisotropy=1.0,
                resume=resume,
                init_model=init,
                section_stretch=self.data.inplane_b,
            )
        msgs = []
        for w in caught:
            if issubclass(w.category, CalibrationWarning):
                if not str(w.message).startswith("phase order"):  # chosen here, not advised
                    msgs.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return engine, msgs

    def _build_engine(self, time_limit: float | None, perm: tuple[int, ...] | None = None) -> None:
        perm = self.order.perm if perm is None else perm
        learn = {"paper": "none", "auto": "tilt", "plurigaussian": "all"}[self.construction]
        cfg = self._engine_config(time_limit=time_limit, learn_truncation=learn)
        # The winning trial's best parameters are the start: its steps are not lost, and the run
        # can only keep something at least as good by the evaluation (tracked from the start).
        trial = self._trial_engines.get(perm) if self.resume is None else None
        init = trial.best_model if trial is not None else None
        if perm in self._connectivity_init and self.resume is None:
            init = self._connectivity_init[perm]
            cfg = cfg.replace(fix_sigma1=True)
        if self.continuation is not None and self.continuation["warm"] and self.resume is None:
            prev = self.previous
            init = prev.copy(length_scale=prev.length_scale / self.plan.factor, anisotropy=1.0,
                             anisotropy_fields={}, kernel_scales={}, metadata={})  # fmt: skip
        self.engine, msgs = self._make_engine(perm, cfg, self.resume, init)
        self._warm_score = None
        if init is not None:
            self._warm_score = self.engine.keep_current_as_best()
        for m in msgs:
            if m not in self.notes:
                self.notes.append(m)

    # ------------------------------------------------------------------ the flow
    def run(self) -> Iterator[Any]:
        """Order trials, calibration, then finish (rescale, anisotropy, verdict); yields
        :class:`~.loop.Progress` records."""
        from .loop import Progress

        t_start = self._t_start = time.perf_counter()
        tl = self.config.time_limit
        left = tl
        if self.order is None:
            if self.data.phase_map.n_phases == 2:  # 3D data: the order from connectivity
                yield Progress(0, 0, 0, "connectivity", "order", {}, message="phase order: "
                               "comparing how both orders' 3D twins percolate with the data")
                choose_two_phase_order(self)
            else:
                yield from run_trials(self)
            self.trial_seconds = time.perf_counter() - t_start
            if self._cancelled:
                yield from self._finish(self._last_trial, finished=False)
                return
            left = None if tl is None else max(0.5 * tl, tl - self.trial_seconds)
            self._build_engine(left)
            msg = "phase order: " + self.order.reason
            if self.data.phase_map.n_phases == 3:
                msg += f"; construction: {self._construction_text()}"
            yield Progress(0, self.engine.total_steps, 0, "chosen", "order", {},
                           elapsed=self.trial_seconds, message=msg)  # fmt: skip
            self.notes.append(self.budget_text(left))
            yield Progress(0, self.engine.total_steps, 0, "chosen", "order", {},
                           elapsed=self.trial_seconds, message=self.notes[-1])  # fmt: skip
        finished = yield from self._run_engine(left)
        yield from self._finish(self._last_record, finished)

    def _run_engine(self, budget: float | None) -> Iterator[Any]:
        """The main stage. When the order trials were a close call, a run that has not beaten its
        warm start after :data:`SWITCH_AT` of its time gives the rest to the other phase order
        (warm-started from its trial), and the better of the two is kept (a clear order keeps
        its whole time: a trial that already fits is hard to beat, not a wrong order). Returns
        whether the calibration finished (not cancelled)."""
        self._current = self.engine
        if self._cancelled:
            self.engine.cancel()
        others = [q for q in self._trial_engines if q != self.order.perm]
        close = any(r.get("close") for r in self.trial_record.get("rounds", []))
        can_switch = (
            close and bool(others) and budget is not None and self._warm_score is not None
        )
        t0 = time.perf_counter()
        switched = False
        self._last_record = None
        for rec in self.engine.run():
            self._last_record = rec
            if self.trial_seconds:
                rec = dataclasses.replace(rec, elapsed=rec.elapsed + self.trial_seconds)
            yield rec
            if (
                can_switch and not switched and not rec.done
                and time.perf_counter() - t0 >= SWITCH_AT * budget
                and self.engine.best_score is not None
                and self.engine.best_score >= self._warm_score
            ):  # fmt: skip
                switched = True
                self.engine.cancel()
        reason = self.engine.stop_reason or ""
        if not switched or self._cancelled:
            return reason in ("max_epochs", "early_stopping", "time_limit")
        first, first_order = self.engine, self.order
        rest = max(1.0, budget - (time.perf_counter() - t0))
        other = others[0]
        self._build_engine(rest, perm=other)
        self._current = self.engine
        for rec in self.engine.run():
            self._last_record = rec
            yield dataclasses.replace(rec, elapsed=rec.elapsed + self.trial_seconds)
        a, b = first.best_score, self.engine.best_score
        keep_other = b is not None and (a is None or b < a)
        self.switch_record = {
            "reason": f"the main stage had not beaten its warm start ({self._warm_score:.4f}) "
            f"after {100 * SWITCH_AT:.0f} % of its time",
            "first_order_score": a,
            "other_order_score": b,
            "kept": "other order" if keep_other else "first order",
        }
        if keep_other:
            from .phase_order import PhaseOrder

            self.order = PhaseOrder(other, self.order.reason + "; switched to this order: the "
                                    "first one did not improve on its trial in the main stage",
                                    self.order.contacts, self.order.trials)  # fmt: skip
        else:
            self.engine, self.order = first, first_order
        return (self.engine.stop_reason or "") in (
            "max_epochs", "early_stopping", "time_limit", "cancelled"
        )  # fmt: skip

    def _construction_text(self) -> str:
        return {
            "paper": "the paper's truncation rule (as asked)",
            "auto": "the truncation rule's tilt is learned from the paper's rule (it stays near "
            "0 where the paper's rule fits)",
            "plurigaussian": "the plurigaussian truncation rule, tilt and coating learned",
        }[self.construction]

    def budget_text(self, main: float | None) -> str:
        """How the time budget is split (printed before the main stage)."""
        main_t = "until early stopping" if main is None else f"{main:.0f} s"
        if "connectivity" in self.trial_record:
            return (f"budget: connectivity of both orders {self.trial_seconds:.0f} s, main "
                    f"calibration {main_t}, then the check")  # fmt: skip
        rounds = self.trial_record.get("rounds", [])
        extra = " + a second round (close call)" if len(rounds) > 1 else ""
        return (
            f"budget: trial fits {self.trial_seconds:.0f} s ({len(self._trial_engines)} orders"
            f"{extra}), main calibration {main_t}, then the check"
        )

    def _finish(self, last: Any, finished: bool) -> Iterator[Any]:
        from .loop import Progress

        t0 = time.perf_counter()
        step = last.step if last is not None else 0
        total = last.total_steps if last is not None else 0

        elapsed = time.perf_counter() - self._t_start

        def note(phase: str) -> Progress:
            return Progress(step, total, 0, phase, "finish", {}, elapsed=elapsed)

        for kind, m in self._engine_models().items():
            self.models[kind] = self._rescaled(m)
        if finished and self.data.volume is not None and self.data.b_fitted:
            yield note("anisotropy")
            b, fields, record = self._anisotropy(self.models[self.final_kind])
            for kind, m in self.models.items():
                meta = dict(m.metadata, anisotropy=record)
                self.models[kind] = m.copy(anisotropy=b, anisotropy_fields=fields, metadata=meta)
        final = self.models[self.final_kind]
        if finished and self.check:
            yield note("verdict")
            from ..fit_check import check_fit

            self.verdict = check_fit(
                final,
                self.order.apply(self.data.sections),
                None if self.data.volume is None else self.order.apply(self.data.volume),
                seed=self.config.seed + 4242,
                device=str(self.engine.device),
                blocks=self.plan.factor if self.plan.blocks else 1,
                offset=self.plan.offset,
            )
            from .remedy import suggest_remedies

            self.verdict.remedies = suggest_remedies(self.verdict.to_dict(), final.metadata)
            final = final.copy(metadata=dict(final.metadata, verdict=self.verdict.to_dict()))
            if self.previous is not None:
                final = self._keep_better(final)
            self.models[self.final_kind] = final
        elif not finished:
            final = final.copy(metadata=dict(final.metadata, verdict=None))
            self.models[self.final_kind] = final
        self.result = final
        self.finish_seconds = time.perf_counter() - t0
        done = note("done")
        done.done = True
        done.stop_reason = self.stop_reason
        yield done

    def _keep_better(self, final: Any) -> Any:
        """A continued run keeps the previous model unless its verdict is better."""
        from ..fit_check import Verdict
        from .remedy import verdict_badness

        old_v = (self.previous.metadata or {}).get("verdict")
        new_b, old_b = verdict_badness(final.metadata.get("verdict")), verdict_badness(old_v)
        record = dict(self.continuation or {}, badness_previous=old_b, badness_new=new_b)
        if new_b <= old_b:
            record["kept"] = "the continued model"
            return final.copy(metadata=dict(final.metadata, continued=record))
        record["kept"] = "the previous model (the continued run did not improve its verdict)"
        self.verdict = Verdict.from_dict(old_v)
        return self.previous.copy(metadata=dict(self.previous.metadata, continued=record))

    def _engine_models(self) -> dict[str, Any]:
        if self.engine is not None:
            models = dict(self.engine.models)
            models.setdefault(self.final_kind, self.engine.best_model)
            return models
        trial = self._trial_engines.get(self.order.perm) if self.order is not None else None
        if trial is None and self._trial_engines:
            trial = next(iter(self._trial_engines.values()))
        if trial is None:
            raise RuntimeError("the calibration was cancelled before any model existed")
        return {self.final_kind: trial.best_model}

    def best_so_far(self) -> Any:
        """The final model if the run finished, else the best so far at the user's resolution
        (unchecked): what a cancelled or interrupted run keeps."""
        if self.result is not None:
            return self.result
        model = self._rescaled(self._engine_models()[self.final_kind])
        return model.copy(metadata=dict(model.metadata, verdict=None))

    @property
    def best_model(self) -> Any:
        """Same as :meth:`best_so_far` (the name the engine uses)."""
        return self.best_so_far()

    # ------------------------------------------------------------------ steps
    def _rescaled(self, model: Any) -> Any:
        """The working-resolution model at the user's resolution, with the pipeline's records."""
        meta = dict(model.metadata)
        meta["settings_from_data"] = self.plan.to_dict()
        if self.order is not None:
            meta["phase_order"] = self.order.to_dict(tuple(self.data.phase_map.labels))
        if self.trial_record:
            meta["trials"] = self.trial_record
        from ..model.truncation import rule_name

        meta["construction"] = {"chosen": self.construction, "rule": rule_name(model)}
        if self.switch_record:
            meta["order_switch"] = self.switch_record
        if self.data.b_fitted:
            meta["anisotropy"] = {"eq40_data_only": self.data.anisotropy}
        if self.data.inplane_b != 1.0:
            # Sections whose y and x chords differ: the stretch along the sections' x that the
            # model was calibrated with (data.inplane_stretch), on that axis of the data.
            meta["in_plane_stretch"] = {
                "x_over_y": self.data.inplane_b,
                "section_axes_yx": ["zyx"[a] for a in _section_axes(self.data.axis)],
                "method": "Eq. 40 between the sections' x and y chords",
            }
        return model.copy(
            length_scale=float(self.plan.factor) * float(model.length_scale),
            anisotropy=self.data.anisotropy if self.data.b_fitted else 1.0,
            anisotropy_axis=self.data.axis,
            axis_stretch=section_stretch_of(self.data.axis, self.data.inplane_b),
            metadata=meta,
        )

    def _anisotropy(self, model: Any) -> tuple[float, dict[str, float], dict[str, Any]]:
        """b (and b per field where the phases ask for it) with the calibrated model, at the
        working resolution."""
        from . import anisotropy

        f = self.plan.factor
        # The section normal first: the model is fitted stretched along axis 0, then turned back.
        vol = np.moveaxis(self.order.apply(self.data.volume), self.data.axis, 0)
        if f > 1:
            vol = coarsen(vol, f, (0, *self.plan.offset))
        vol = analysis_view(vol)
        work_model = model.copy(
            length_scale=model.length_scale / f, anisotropy=1.0, anisotropy_axis=0,
            axis_stretch=section_frame_stretch(self.data.inplane_b),
        )  # fmt: skip
        tol = (self.continuation or {}).get("per_field_tolerance")
        b, fields, fit = anisotropy.fit_field_anisotropy(
            vol, work_model, b_start=self.data.anisotropy, seed=self.config.seed,
            device=str(self.engine.device),
            tolerance=anisotropy.PER_FIELD_TOLERANCE if tol is None else float(tol),
        )  # fmt: skip
        record = {
            "eq40_data_only": float(self.data.anisotropy),
            "model_refined": float(b),
            **fit,
            "method": "b from Eq. 40 on the stack, refined so that the model's mean chords along z "
            "relate to its in-plane chords as the data's do, per phase; one b per group of fields "
            "where one b leaves a phase's ratio more than 3 % off (docs/decisions/"
            "calibration.md)",
        }
        return float(b), fields, record

    # ------------------------------------------------------------------ summaries
    def summary(self) -> str:
        """Lines for logs: notes, the phase order, then the verdict (after :meth:`run`)."""
        lines = list(self.notes)
        order = "phase order: " + self.order.reason if self.order is not None else None
        if order and self.data.phase_map.n_phases == 3 and order not in lines:
            lines.append(order)
        if self.verdict is not None:
            lines.append(self.verdict.table())
        return "\n".join(lines)

