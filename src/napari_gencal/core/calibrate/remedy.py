"""A way forward when a twin does not fit: the likely cause, and the remedy the tool can apply.

:func:`suggest_remedies` reads a verdict and the calibration's record (stop reason, trials,
anisotropy fit, data size) and returns remedies in the order worth trying. Each names its cause in
words, the settings that apply it, and whether the tool can apply it itself; ``gencal calibrate …
--continue MODEL`` (and the Calibrate widget's *Improve*) apply the first applicable one from where
the run stopped and keep the better of the two models (:func:`verdict_badness`).

Remedies:

``longer``
    The run used its whole time budget: continue from the model with the same budget again.
``other_order``
    The order trials were a close call (or the main stage switched orders): calibrate the other
    order from its start.
``per_field_anisotropy``
    3D data whose z chords miss while the in-plane fit holds: one stretch factor b per group of
    fields (refitted however small the single b's miss was).
``plurigaussian``
    Connectivity misses (Euler density, percolation, τ) under the paper's rule or a learned tilt
    alone: learn the whole plurigaussian truncation (tilt and coating).
``connectivity``
    Connectivity misses under a learned rule: the Euler-density term in the loss and the score.
``bigger_image``
    The images hold fewer than eight of their coarsest structures across: the statistics are too
    noisy for any model; give a larger image (not something the tool can do).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["suggest_remedies", "verdict_badness", "REMEDY_KINDS"]

REMEDY_KINDS = (
    "longer",
    "other_order",
    "per_field_anisotropy",
    "plurigaussian",
    "connectivity",
    "bigger_image",
)
_FIRST_ORDER = ("volume_fraction", "specific_surface_area", "mean_chord_length")
_CONNECTIVITY = ("euler_density", "percolating_fraction", "tortuosity_factor")


def verdict_badness(verdict: dict[str, Any] | None) -> float:
    """Σ over rows of how far beyond its tolerance each row is (0 for a twin that fits): the
    figure by which a continued run is kept or dropped. None (unchecked) is infinitely bad."""
    if not verdict:
        return math.inf
    total = 0.0
    for r in verdict.get("rows", []):
        if r.get("ok"):
            continue
        err, tol = r.get("error"), r.get("tolerance") or 1.0
        if err is None or not math.isfinite(float(err)):
            total += 10.0  # e.g. percolation that disagrees
        else:
            total += max(0.0, abs(float(err)) / float(tol) - 1.0) + 1.0
    return total


def suggest_remedies(verdict: dict[str, Any], metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Likely causes and remedies of a verdict that does not fit (empty when it fits).

    Parameters
    ----------
    verdict : dict
        :meth:`~napari_gencal.core.fit_check.Verdict.to_dict`.
    metadata : dict
        The model's metadata (calibration record, trials, anisotropy, settings from the data).

    Returns
    -------
    list of dict
        ``kind``, ``cause`` (words), ``remedy`` (words), ``settings`` (calibration settings that
        apply it), ``applicable`` (the tool can apply it with ``--continue``).
    """
    if not verdict or verdict.get("fits"):
        return []
    rows = [r for r in verdict.get("rows", []) if not r.get("ok")]
    kinds = {r["descriptor"] for r in rows}
    cal = metadata.get("calibration") or {}
    trials = metadata.get("trials") or {}
    aniso = metadata.get("anisotropy") or {}
    plan = metadata.get("settings_from_data") or {}
    out: list[dict[str, Any]] = []

    def add(kind: str, cause: str, remedy: str, settings: dict[str, Any], ok: bool = True) -> None:
        out.append({"kind": kind, "cause": cause, "remedy": remedy, "settings": settings,
                    "applicable": ok})  # fmt: skip

    warnings = " ".join(plan.get("warnings") or [])
    if "small for their structure" in warnings or "do not settle" in warnings:
        add("bigger_image", "the images show few of their coarsest structures, so their "
            "statistics are noisy", "calibrate on a larger image or more sections", {},
            ok=False)  # fmt: skip
    z_rows = [r for r in rows if r["descriptor"] == "mean_chord_length"
              and r.get("direction") in ("z", "y", "x") and "volume" in str(r.get("what", ""))]
    plane_bad = [r for r in rows if r["descriptor"] in _FIRST_ORDER and r not in z_rows]
    if z_rows and not plane_bad and not aniso.get("per_field"):
        add("per_field_anisotropy", "the phases stretch differently along the stack axis than one "
            "b allows (" + ", ".join(f"{r['name']} {100 * r['error']:+.1f} %" for r in z_rows)
            + ")", "one stretch factor per group of fields", {"per_field_tolerance": 0.0})
    if kinds & set(_FIRST_ORDER) and cal.get("stop_reason") == "time_limit":
        add("longer", "the calibration used its whole time budget", "continue from this model "
            "with the same budget again", {})  # fmt: skip
    close = any(r.get("close") for r in trials.get("rounds", []))
    if close and not metadata.get("order_switch"):  # a switch already tried the other order
        add("other_order", "the phase-order trials were within their noise", "calibrate the "
            "other phase order", {"order": "other"})  # fmt: skip
    if kinds & set(_CONNECTIVITY):
        rule = (metadata.get("construction") or {}).get("chosen", "paper")
        order = (metadata.get("phase_order") or {}).get("model_order_labels") or []
        # The truncation rule's tilt and coating shape a middle phase: three phases only.
        if rule != "plurigaussian" and len(order) != 2:
            add("plurigaussian", "the paper's truncation rule does not carry the data's "
                "connectivity", "learn the plurigaussian truncation (tilt, coating)",
                {"construction": "plurigaussian"})  # fmt: skip
        else:
            add("connectivity", "connectivity is not in the loss", "add the Euler-density term "
                "to the loss and the score", {"euler_weight": 1.0, "score_euler": 1.0})
    if not out and kinds & set(_FIRST_ORDER):
        add("longer", "the fit has not converged", "continue from this model", {})
    return out


def plan_continuation(model: Any, data: Any, remedy: str | None = None) -> dict[str, Any]:
    """How ``--continue MODEL`` proceeds: the remedy to apply and what it changes.

    Parameters
    ----------
    model : ExcursionModel
        A model calibrated on ``data`` (its metadata records the data, the order and the verdict).
    data : PreparedData
        The same data.
    remedy : str, optional
        A kind from :data:`REMEDY_KINDS` (default: the first applicable one the verdict names, or
        ``"longer"``).

    Returns
    -------
    dict
        ``kind``, ``settings`` (calibration settings to change), ``order_labels`` (the model's
        phase labels in model order, or the other order's for ``other_order``), ``warm``
        (start from the model's parameters), ``per_field_tolerance`` (or None), ``cause``.

    Raises
    ------
    ValueError
        The model was calibrated on other data, or the remedy cannot be applied by the tool.
    """
    meta = model.metadata or {}
    sha = (meta.get("data") or {}).get("sha256")
    if sha is not None and sha != data.sha256:
        raise ValueError(
            "the model to continue was calibrated on other data (or other phases); continue with "
            "the image and --phases it was calibrated on"
        )
    if model.phase_map is None or sorted(model.phase_map.labels) != sorted(data.phase_map.labels):
        raise ValueError("the model to continue has other phases than this data")
    verdict = meta.get("verdict") or {}
    options = verdict.get("remedies") or suggest_remedies(verdict, meta)
    if remedy is None:
        chosen = next((r for r in options if r.get("applicable")), None)
        if chosen is None:
            chosen = {"kind": "longer", "cause": "continue as asked", "settings": {}}
    else:
        if remedy not in REMEDY_KINDS:
            raise ValueError(f"unknown remedy {remedy!r}; choose one of {', '.join(REMEDY_KINDS)}")
        if remedy == "bigger_image":
            raise ValueError("a bigger image is a remedy for you to apply, not the tool")
        default = {"kind": remedy, "cause": "asked for", "settings": _SETTINGS[remedy]}
        chosen = next((r for r in options if r["kind"] == remedy), default)
    settings = dict(chosen.get("settings") or {})
    order = list(model.phase_map.labels)
    warm = True
    if settings.pop("order", None) == "other":
        order = order[::-1]  # the candidate orders differ by which end is phase 1
        warm = False
    tol = settings.pop("per_field_tolerance", None)
    return {"kind": chosen["kind"], "cause": chosen.get("cause", ""), "settings": settings,
            "order_labels": order, "warm": warm, "per_field_tolerance": tol}  # fmt: skip


_SETTINGS: dict[str, dict[str, Any]] = {
    "longer": {},
    "other_order": {"order": "other"},
    "per_field_anisotropy": {"per_field_tolerance": 0.0},
    "plurigaussian": {"construction": "plurigaussian"},
    "connectivity": {"euler_weight": 1.0, "score_euler": 1.0},
}
