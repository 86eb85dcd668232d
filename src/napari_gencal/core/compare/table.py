"""Data vs model descriptor tables: :class:`Comparison` rows (the paper's Tables 1–2 style) and
:func:`compare` of two :func:`~napari_gencal.core.descriptors.describe` dictionaries."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Comparison", "compare"]

# (key in the describe dict, short name in tables)
_ROWS = (
    ("volume_fraction", "volume fraction"),
    ("specific_surface_area", "S_V"),
    ("mean_chord_length", "mean chord"),
    ("geodesic_tortuosity", "geodesic tortuosity"),
    ("constrictivity", "constrictivity"),
    ("r_max", "r_max"),
    ("tortuosity_factor", "tortuosity factor"),
    ("effective_diffusivity", "D_eff/D_0"),
)
_UNITS = {
    "specific_surface_area": "1/{u}",
    "mean_chord_length": "{u}",
    "r_max": "{u}",
}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


@dataclass
class Comparison:
    """Descriptor-by-descriptor comparison of data and model.

    Attributes
    ----------
    rows : list of dict
        One row per phase and descriptor (and direction): ``phase`` (label), ``phase_name``,
        ``name`` (readable row label, e.g. ``"SE: mean chord z"``), ``descriptor``, ``direction``
        (or None), ``unit``, ``data``, ``model``, ``abs_error``,
        ``rel_error`` (None where undefined, e.g. not percolating or data = 0).
    data, model : dict
        The two ``describe`` dictionaries.
    extras : dict
        Material for figures (``cld_data``/``cld_model``, ``tppf_data``/``tppf_model``/``tppf_r``,
        ``slice_data``/``slice_model``), filled by :func:`compare_images`.
    warnings : list of str
    verdict : Verdict or None
        :func:`~napari_gencal.core.fit_check.judge` of the two: does the model fit the data?
    """

    rows: list[dict[str, Any]]
    data: dict[str, Any]
    model: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    verdict: Any = None

    # --- renderings -------------------------------------------------------------------------
    def _table(self) -> tuple[list[str], list[list[str]]]:
        head = ["phase", "descriptor", "dir", "unit", "data", "model", "abs err", "rel err"]
        body = []
        for r in self.rows:
            rel = r["rel_error"]
            body.append(
                [
                    str(r["phase_name"]),
                    r["descriptor"],
                    r["direction"] or "",
                    r["unit"] or "",
                    _fmt(r["data"]),
                    _fmt(r["model"]),
                    _fmt(r["abs_error"]),
                    "–" if rel is None else f"{100 * abs(rel):.1f} %",
                ]
            )
        return head, body

    def __str__(self) -> str:
        head, body = self._table()
        widths = [
            max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
        ]
        line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
        out = [line, "  ".join("-" * w for w in widths)]
        for b in body:
            out.append("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)))
        for w in self.warnings:
            out.append(f"note: {w}")
        if self.verdict is not None:
            out.append(f"verdict: {self.verdict.line}")
        return "\n".join(out)

    def to_markdown(self) -> str:
        """The table as GitHub-flavoured Markdown (after the verdict line, when there is one)."""
        head, body = self._table()
        out = [f"**Verdict: {self.verdict.line}**", ""] if self.verdict is not None else []
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(out) + "\n"

    def to_csv(self, path: str | os.PathLike | None = None, overwrite: bool = False) -> str:
        """CSV text of the rows (full precision); written atomically to ``path`` when given."""
        cols = [
            "phase",
            "phase_name",
            "descriptor",
            "direction",
            "unit",
            "data",
            "model",
            "abs_error",
            "rel_error",
        ]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({c: ("" if r[c] is None else r[c]) for c in cols})
        text = buf.getvalue()
        if path is not None:
            _write_text(path, text, overwrite)
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: rows, both descriptor sets, warnings."""
        return {
            "rows": self.rows,
            "data": self.data,
            "model": self.model,
            "warnings": self.warnings,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
        }

    def to_json(self, path: str | os.PathLike | None = None, overwrite: bool = False) -> str:
        """JSON text (``to_dict``); written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, default=_json_default)
        if path is not None:
            _write_text(path, text, overwrite)
        return text

    # --- figures ----------------------------------------------------------------------------
    def figures(self) -> dict[str, Figure]:
        """The figures this comparison has material for, by file stem."""
        from .figures import chord_cdf_figure, slices_figure, tppf_figure

        figs: dict[str, Figure] = {}
        ex = self.extras
        names = ex.get("phase_names")
        if ex.get("cld_data") and ex.get("cld_model"):
            figs["chord_length_cdf"] = chord_cdf_figure(
                ex["cld_data"], ex["cld_model"], names, unit=self.data.get("unit", "voxel")
            )
        if ex.get("tppf_data") is not None and ex.get("tppf_model") is not None:
            figs["tppf"] = tppf_figure(
                ex.get("tppf_r"),
                ex["tppf_data"],
                ex["tppf_model"],
                names,
                unit=self.data.get("unit", "voxel"),
                voxel_size=self.data.get("voxel_size"),
            )
        if ex.get("slice_data") is not None and ex.get("slice_model") is not None:
            figs["slices"] = slices_figure(ex["slice_data"], ex["slice_model"])
        return figs


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _fmt(v: Any) -> str:
    f = _num(v)
    if f is None:
        return "–" if v is None else str(v)
    return f"{f:.4g}"


def _write_text(path: str | os.PathLike, text: str, overwrite: bool) -> None:
    from ..io import atomic_write

    def _w(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_write(path, _w, overwrite=overwrite)


def compare(data_descriptors: dict[str, Any], model_descriptors: dict[str, Any]) -> Comparison:
    """Compare two ``describe`` dictionaries descriptor by descriptor.

    Parameters
    ----------
    data_descriptors, model_descriptors : dict
        Results of :func:`napari_gencal.core.descriptors.describe` (same phase labels).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        When the two have no phase label in common, or their units differ.
    """
    dp, mp = data_descriptors.get("phases", {}), model_descriptors.get("phases", {})
    common = [lab for lab in dp if lab in mp]
    if not common:
        raise ValueError(
            f"the data phases {list(dp)} and model phases {list(mp)} have no label in common; "
            "compare a model with the data it was calibrated on (same phase mapping)"
        )
    u_d, u_m = data_descriptors.get("unit", "voxel"), model_descriptors.get("unit", "voxel")
    if u_d != u_m:
        raise ValueError(
            f"data lengths are in {u_d!r} but model lengths in {u_m!r}; describe both with the "
            "same voxel size (the generated voxel is the data's voxel)"
        )
    vs_d, vs_m = data_descriptors.get("voxel_size"), model_descriptors.get("voxel_size")
    warnings = []
    if vs_d is not None and vs_m is not None and abs(vs_d - vs_m) > 1e-9 * abs(vs_d):
        warnings.append(f"voxel sizes differ: data {vs_d}, model {vs_m}")
    only = sorted(set(dp) ^ set(mp))
    if only:
        warnings.append(f"phase label(s) {only} are in only one of the two and are left out")
    rows: list[dict[str, Any]] = []
    for lab in common:
        d, m = dp[lab], mp[lab]
        name = d.get("name", lab)
        for key, short in _ROWS:
            if key not in d or key not in m:
                continue
            unit = _UNITS.get(key, "").format(u=u_d) or None
            dv, mv = d[key], m[key]
            if isinstance(dv, dict):
                for direc, dval in dv.items():
                    if not isinstance(mv, dict) or direc not in mv:
                        continue
                    rows.append(_row(lab, name, short, direc, unit, dval, mv[direc]))
            else:
                rows.append(_row(lab, name, short, None, unit, dv, mv))
    rows += _interface_rows(data_descriptors, model_descriptors, u_d)
    from ..fit_check import judge

    verdict = judge(
        {"phases": {lab: dp[lab] for lab in common}}, {"phases": {lab: mp[lab] for lab in common}}
    )
    return Comparison(rows, data_descriptors, model_descriptors, warnings=warnings,
                      verdict=verdict)  # fmt: skip


def _interface_rows(dd: dict[str, Any], md: dict[str, Any], u: str) -> list[dict[str, Any]]:
    """Rows for the pair interface areas and the triple-phase boundary (when both have them)."""
    names = {lab: p.get("name", lab) for lab, p in dd.get("phases", {}).items()}
    rows = []
    di, mi = dd.get("interfaces") or {}, md.get("interfaces") or {}
    for pair, dv in di.items():
        if pair not in mi:
            continue
        a, b = pair.split("|")
        name = f"{names.get(a, a)}|{names.get(b, b)}"
        rows.append(_row(pair, name, "interface area", None, f"1/{u}", dv, mi[pair]))
    if dd.get("triple_phase_boundary") is not None and "triple_phase_boundary" in md:
        rows.append(_row("tpb", "all three", "TPB length", None, f"1/{u}²",
                         dd["triple_phase_boundary"], md["triple_phase_boundary"]))  # fmt: skip
    return rows


def _row(lab, name, short, direc, unit, dv, mv) -> dict[str, Any]:
    a, b = _num(dv), _num(mv)
    abs_e = None if a is None or b is None else abs(b - a)
    rel = None if abs_e is None or a == 0 else (b - a) / abs(a)
    full = f"{name}: {short}" + (f" {direc}" if direc else "")
    return {
        "phase": lab,
        "phase_name": name,
        "name": full,  # one readable label per row, e.g. "SE: mean chord z"
        "descriptor": short,
        "direction": direc,
        "unit": unit,
        "data": a if a is not None else dv,
        "model": b if b is not None else mv,
        "abs_error": abs_e,
        "rel_error": rel,
    }
