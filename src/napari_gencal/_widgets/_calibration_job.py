"""The Calibrate widget's worker: the shared pipeline run as a generator of plain records.

No Qt here: :func:`calibration_job` is what the widget runs in a napari thread worker (and what
tests drive directly). It sends plain numbers and numpy arrays only (never tensors): throttled
progress records, a preview section of the current best model every few epochs, and the final
model with its verdict at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["calibration_job", "PREVIEW_MIN", "EMIT_INTERVAL"]

PREVIEW_MIN = 128  # smallest side of the preview section
EMIT_INTERVAL = 0.25  # seconds between progress messages from the worker (keeps the GUI fluid)


def _np(x: Any) -> np.ndarray:
    """A tensor or array as a CPU numpy array (called in the worker thread only)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _model_curves(sections_labels: np.ndarray, phase_map: Any, r_max: int) -> np.ndarray:
    """Radial TPPF curves (k, k, R) of hard model sections (worker thread)."""
    from ..core.phases import one_hot, to_indices
    from ..core.tppf import radial_tppf

    idx = to_indices(sections_labels, phase_map)
    ind = one_hot(idx, phase_map.n_phases, batch=True)
    return _np(radial_tppf(ind, r_max))


def calibration_job(
    image: Any,
    phases: str | None,
    axis: str,
    fit_b: bool,
    config: Any,
    preview_every: int,
    holder: dict[str, Any],
    continue_from: Any = None,
) -> Iterator[dict[str, Any]]:
    """The worker body: prepare data, run the calibration pipeline, stream plain records.

    The pipeline is the CLI's and the API's (settings from the data, phase order, rescaling,
    anisotropy, verdict). Yields dicts with ``kind`` ``"status"``, ``"warning"``, ``"note"``,
    ``"data"``, ``"progress"`` or ``"preview"``; returns ``{"model", "stop_reason", "note",
    "best_score", "verdict"}``. ``holder["cal"]`` receives the pipeline so the GUI can call its
    thread-safe :meth:`cancel`. ``continue_from``: a model of this data to improve (the remedy its
    verdict names; the better of the two models is returned).
    """
    from ..core.calibrate import prepare_data
    from ..core.calibrate.pipeline import CalibrationPipeline
    from ..core.generate import generate_sections

    yield {"kind": "status", "text": "preparing data…"}
    data = prepare_data(image, phases, axis, fit_b=fit_b)
    yield {"kind": "status", "text": "measuring the structure; choosing settings and phase order…"}
    if holder.get("cancelled"):
        return {"model": None, "stop_reason": "cancelled", "note": "", "best_score": None,
                "verdict": None}  # fmt: skip
    pipe = CalibrationPipeline(data, config, continue_from=continue_from)
    for note in pipe.notes:  # settings, phase order, data warnings: shown in napari
        known = note.startswith(("settings from", "phase order", "section axis"))
        yield {"kind": "note" if known else "warning", "text": note}
    holder["cal"] = pipe
    if holder.get("cancelled"):
        pipe.cancel()
    user_pm = data.phase_map  # the user's order: the preview layer gets the data's colours
    state: dict[str, Any] = {}

    def preview(work_model, final_model, epoch: int) -> dict:
        """A preview record: a hard section at the data's scale, the TPPF of two for the plot."""
        # two sections of the working model give the model's TPPF on the data curves' lattice
        size = state["size"]
        secs = np.asarray(
            generate_sections(work_model, 2, size, seed=config.seed, device=config.device)
        )
        shown = final_model if final_model is not None else work_model.copy(
            length_scale=float(pipe.plan.factor)
        )  # fmt: skip
        section = np.asarray(generate_sections(
            shown, 1, size * pipe.plan.factor, seed=config.seed, device=config.device
        ))[0]  # fmt: skip
        return {
            "kind": "preview",
            "section": section,
            "curves": _model_curves(secs, state["pm"], int(state["r_max"])),
            "labels": list(user_pm.labels),
            "names": list(user_pm.display_names),
            "epoch": epoch,
        }

    def data_record(cal) -> dict:
        """The data's TPPF for the plot, once the engine (and the model's phase order) exists."""
        state.update(pm=cal.phase_map, r_max=cal.r_max, size=max(int(cal.window), PREVIEW_MIN))
        return {
            "kind": "data",
            "curves": _np(cal.data_curves),
            "r_max": int(cal.r_max),
            "window": int(cal.window),
            "factor": int(pipe.plan.factor),
            "names": list(cal.phase_map.display_names),
            "note": data.anisotropy_note,
        }

    gstep = 0
    last_emit = 0.0
    pending: list[tuple[int, dict[str, float]]] = []
    last_preview = -1
    rec = None
    best_score = None
    for rec in pipe.run():
        if rec.message:
            yield {"kind": "note", "text": rec.message}
        if rec.stage == "finish":
            text = {"anisotropy": "fitting the anisotropy b with the calibrated model…",
                    "verdict": "checking the model against the data…"}.get(rec.phase)  # fmt: skip
            if text:
                yield {"kind": "status", "text": text}
            continue
        if rec.stage == "order":
            if rec.done or time.perf_counter() - last_emit >= EMIT_INTERVAL:
                last_emit = time.perf_counter()
                yield {"kind": "status", "text": f"choosing the phase order: {rec.phase}"}
            continue
        if "pm" not in state:
            yield data_record(pipe.engine)
        best_score = rec.best_score
        gstep += 1
        pending.append((gstep, {k: float(v) for k, v in rec.losses.items()}))
        now = time.perf_counter()
        if rec.done or rec.new_best or now - last_emit >= EMIT_INTERVAL:
            last_emit = now
            yield {
                "kind": "progress",
                "summary": rec.summary(),
                "fraction": float(rec.fraction),
                "elapsed": float(rec.elapsed),
                "remaining": rec.remaining,
                "epoch": int(rec.epoch),
                "phase": rec.phase,
                "stage": rec.stage,
                "losses": pending,
                "descriptors": rec.descriptors,
                "best_score": rec.best_score,
                "new_best": bool(rec.new_best),
            }
            pending = []
        if rec.epoch and rec.epoch != last_preview and rec.epoch % max(1, preview_every) == 0:
            last_preview = rec.epoch
            yield preview(pipe.engine.best_model, None, rec.epoch)
    model = pipe.best_so_far()
    if pipe.engine is not None and "pm" in state:
        yield preview(pipe.engine.best_model, model, rec.epoch if rec is not None else 0)
    return {
        "model": model,
        "stop_reason": pipe.stop_reason,
        "note": data.anisotropy_note,
        "best_score": best_score,
        "verdict": None if pipe.verdict is None else pipe.verdict.to_dict(),
    }
