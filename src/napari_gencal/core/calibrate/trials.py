"""Short trial fits that decide the phase order on evidence, not on decimals.

A calibration of three phases must choose which data phase plays the model's phase 1 (two orders:
:mod:`.phase_order`). Short fits (Algorithm 1: TPPF loss only) of each order are scored on hard
sections. A single score has
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

#: Optimizer steps of each trial by default (Algorithm 1: TPPF loss only, no discriminator);
#: ``CalibrationConfig.trial_steps``.
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
    """Order trials, with a second round on a close call.

    ``p`` is the :class:`~.pipeline.CalibrationPipeline`; sets ``p.order``, ``p._trial_engines``
    (the last engine per order) and ``p.trial_record``.
    """
    from .phase_order import PhaseOrder, choose_phase_order

    tl = p.config.time_limit
    cands = list(p._candidates)
    n = len(cands)
    steps = int(p.config.trial_steps)
    cap = TRIAL_SECONDS if tl is None else min(TRIAL_SHARE, TRIALS_SHARE / max(n, 1)) * tl
    trial_cfg = p._engine_config(
        algorithm=1, model="high", pretrain_model_steps=0, pretrain_disc_steps=0,
        steps_per_epoch=min(25, steps), max_epochs=max(1, math.ceil(steps / 25)),
        early_stop_start=1,
        patience=10_000, time_limit=cap, checkpoint=None, learn_truncation="none",
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
