"""Short trial fits that decide the phase order and the construction, on evidence, not decimals.

A calibration of three phases must choose which data phase plays the model's phase 1 (two orders:
:mod:`.phase_order`) and which truncation rule carries the data's structure (the paper's, or the
plurigaussian family learned with the other parameters: :mod:`..model.truncation`). Both are
decided by short fits (Algorithm 1: TPPF loss only) scored on hard sections. A single score has
noise — on a 128³ crop of electrode.tiff the two orders scored 0.293 and 0.315 and the one chosen
was the one the full volume rejects — so every candidate is scored on the same
:data:`EVIDENCE_SEEDS` sets of evaluation sections (common random numbers) and the paired
differences decide: a difference within :data:`CLOSE_SE` standard errors is a close call, and then
both candidates are carried on for another round (warm-started from where they stopped) and judged
on twice the sections. What was decided, how and at what cost is recorded for the model file.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "TRIAL_STEPS",
    "TRIAL_SHARE",
    "TRIALS_SHARE",
    "TRIAL_SECONDS",
    "EVIDENCE_SEEDS",
    "CLOSE_SE",
    "score_samples",
    "paired_decision",
    "run_trials",
]

#: Optimizer steps of each trial (Algorithm 1: TPPF loss only, no discriminator).
TRIAL_STEPS = 250
#: Largest share of the time budget one trial round may take (it stops early at the time cap),
#: and of the first round of all order trials together.
TRIAL_SHARE = 0.08
TRIALS_SHARE = 0.25
#: Trial time cap without a time budget (seconds).
TRIAL_SECONDS = 60.0
#: Evaluation section sets per candidate (their paired differences decide).
EVIDENCE_SEEDS = 4
#: A paired mean difference within this many standard errors is a close call.
CLOSE_SE = 2.0


def score_samples(engine: Any, seeds: list[int]) -> np.ndarray:
    """Scores of an engine's best parameters on several sets of evaluation sections."""
    module = engine._candidate() if engine.best_state is None else _best_module(engine)
    return np.array([float(engine.evaluate(module, seed=s)["score"]) for s in seeds])


def _best_module(engine: Any) -> Any:
    engine._scratch.load_state_dict(engine.best_state)
    return engine._scratch


def paired_decision(a: np.ndarray, b: np.ndarray) -> tuple[int, bool, float, float]:
    """Which of two candidates scored lower on the same evaluation sets, and whether it is close.

    Returns
    -------
    (winner, close, mean_difference, standard_error)
        ``winner`` 0 for ``a``, 1 for ``b``; ``close`` when ``|mean(a − b)| ≤ CLOSE_SE · se``.
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else float("inf")
    return (0 if mean <= 0 else 1), abs(mean) <= CLOSE_SE * se, mean, se


def _run(p: Any, engine: Any, label: str, records: list) -> Iterator[Any]:
    """Drive one trial engine, re-labelling its records with the pipeline's clock."""
    tl = p.config.time_limit
    p._current = engine
    for rec in engine.run():
        elapsed = time.perf_counter() - p._t_start
        left = None if tl is None else max(0.0, tl - elapsed)
        rec = dataclasses.replace(rec, stage="order", elapsed=elapsed, remaining=left, phase=label)
        p._last_trial = rec
        records.append(rec)
        yield rec


def run_trials(p: Any) -> Iterator[Any]:
    """Order trials (with a second round on a close call), then the construction trial.

    ``p`` is the :class:`~.pipeline.CalibrationPipeline`; sets ``p.order``, ``p.construction``
    (``"paper"`` or ``"plurigaussian"``), ``p._trial_engines`` (best engine per order) and
    ``p.trial_record``.
    """
    from .phase_order import PhaseOrder, choose_phase_order

    tl = p.config.time_limit
    cands = list(p._candidates)
    n = len(cands)
    cap = TRIAL_SECONDS if tl is None else min(TRIAL_SHARE, TRIALS_SHARE / max(n, 1)) * tl
    trial_cfg = p._engine_config(
        algorithm=1, model="high", pretrain_model_steps=0, pretrain_disc_steps=0,
        steps_per_epoch=25, max_epochs=max(1, math.ceil(TRIAL_STEPS / 25)), early_stop_start=1,
        patience=10_000, time_limit=cap, checkpoint=None, learn_truncation=False,
    )  # fmt: skip
    labels = p.data.phase_map.labels
    seeds = [p.config.seed + 50_000 + 17 * j for j in range(EVIDENCE_SEEDS)]
    record: dict[str, Any] = {"rounds": []}
    p.trial_record = record
    records: list = []
    samples: dict[tuple[int, ...], np.ndarray] = {}

    def name(perm: tuple[int, ...]) -> str:
        return ",".join(str(labels[q]) for q in perm)

    # Round 1: every candidate order with the paper's rule.
    for i, perm in enumerate(cands):
        if p._cancelled:
            break
        engine, _ = p._make_engine(perm, trial_cfg)
        p._trial_engines[perm] = engine
        yield from _run(p, engine, f"trial {i + 1}/{n} ({name(perm)})", records)
        if engine.stop_reason == "cancelled":
            break
        samples[perm] = score_samples(engine, seeds)
    if p._cancelled or len(samples) < len(cands):
        if samples:
            best = min(samples, key=lambda q: samples[q].mean())
            scores = {q: float(v.mean()) for q, v in samples.items()}
            p.order = PhaseOrder(best, "trials cancelled; best so far", trials=scores)
        else:
            p.order = PhaseOrder(cands[0], "cancelled before the trials")
        p.construction = "paper"
        return
    decided_by = "one round"
    if n == 2:
        a, b = cands
        win, close, diff, se = paired_decision(samples[a], samples[b])
        record["rounds"].append({"mean_difference": diff, "standard_error": se, "close": close})
        if close:
            # Close call: both orders carried on from where they stopped, judged on more sections.
            more = seeds + [p.config.seed + 90_000 + 17 * j for j in range(EVIDENCE_SEEDS)]
            for i, perm in enumerate(cands):
                if p._cancelled:
                    break
                prev = p._trial_engines[perm]
                engine, _ = p._make_engine(perm, trial_cfg, init=prev.best_model)
                engine.keep_current_as_best()
                p._trial_engines[perm] = engine
                yield from _run(p, engine, f"close call, round 2: trial {i + 1}/2 "
                                           f"({name(perm)})", records)  # fmt: skip
                samples[perm] = score_samples(engine, more)
            if not p._cancelled:
                win, close2, diff, se = paired_decision(samples[a], samples[b])
                record["rounds"].append(
                    {"mean_difference": diff, "standard_error": se, "close": close2}
                )
                decided_by = (
                    "a close call after one round, decided after a second round on twice the "
                    "evaluation sections" + (" (still within the noise)" if close2 else "")
                )
    scores = {q: float(v.mean()) for q, v in samples.items()}
    p.order = choose_phase_order(p._work, tuple(labels), trial=scores.__getitem__)
    if n == 2:
        p.order.reason += f"; {decided_by}"
    record["scores"] = {name(q): v for q, v in scores.items()}
    record["decided_by"] = decided_by
    p.construction = "paper"
    if p.data.phase_map.n_phases == 3 and p.config.construction == "auto" and not p._cancelled:
        yield from _construction_trial(p, trial_cfg, samples[p.order.perm], seeds, records)
    elif p.config.construction == "plurigaussian":
        p.construction = "plurigaussian"


#: The construction trial runs when the paper-rule trial leaves a phase's S_V or Euler density
#: (relative to its components + holes) this far from the data's: the paper's rule stays where it
#: fits, and the extra trials are spent where it does not.
CONSTRUCTION_TRIGGER = 0.05


def _misfit(engine: Any) -> float:
    """Worst relative S_V or Euler-density error of an engine's best parameters."""
    module = engine._candidate() if engine.best_state is None else _best_module(engine)
    ev = engine.evaluate(module)
    sv = np.abs(np.subtract(ev["specific_surface_area"], engine.data_sv)) / np.maximum(
        engine.data_sv, 1e-12
    )
    eu = np.abs(np.subtract(ev["euler_density"], engine.data_euler)) / np.maximum(
        engine.data_topology, 1e-12
    )
    return float(max(sv.max(), eu.max() / 3.0))  # Euler errors are noisier: a third counts


def _construction_trial(
    p: Any, trial_cfg: Any, paper_scores: np.ndarray, seeds: list[int], records: list
) -> Iterator[Any]:
    """Where the paper-rule trial misfits: the plurigaussian rule learned from its best, against
    the paper's rule continued for the same steps (a fair comparison); the plurigaussian rule is
    kept only when it scores better beyond the noise, connectivity included in the score."""
    perm = p.order.perm
    prev = p._trial_engines[perm]
    miss = _misfit(prev)
    rec: dict[str, Any] = {"paper_trial_worst_error": miss}
    p.trial_record["construction"] = rec
    if miss <= CONSTRUCTION_TRIGGER:
        rec["chosen"] = "paper"
        rec["why"] = (f"the paper-rule trial fits within {100 * CONSTRUCTION_TRIGGER:.0f} % "
                      "(S_V; Euler densities within three times that)")  # fmt: skip
        return
    cfg = trial_cfg.replace(score_euler=1.0)
    engines = {}
    for label, learn in (("paper", False), ("plurigaussian", True)):
        engine, _ = p._make_engine(perm, cfg.replace(learn_truncation=learn),
                                   init=prev.best_model)  # fmt: skip
        engine.keep_current_as_best()
        yield from _run(p, engine, f"construction trial ({label} rule)", records)
        if p._cancelled:
            return
        engines[label] = engine
    a = score_samples(engines["paper"], seeds)
    b = score_samples(engines["plurigaussian"], seeds)
    win, close, diff, se = paired_decision(a, b)
    model = engines["plurigaussian"].best_model
    rec.update(
        paper_score=float(a.mean()), plurigaussian_score=float(b.mean()), standard_error=se,
        tilt=float(model.tilt), coating=float(model.coating),
    )  # fmt: skip
    p._trial_engines[perm] = engines["paper"]  # the paper rule's start, if it stays
    if win == 1 and not close:
        p.construction = "plurigaussian"
        p._construction_engine = engines["plurigaussian"]
        rec["chosen"] = "plurigaussian"
    else:
        rec["chosen"] = "paper"
