"""Does a calibrated twin reproduce its data? The verdict printed after every calibration.

:func:`judge` compares two :func:`~napari_gencal.core.descriptors.describe` dictionaries — the
data's and a realization's — phase by phase: volume fraction (absolute difference), specific
surface area and mean chord length per direction (relative difference), each against a tolerance
(:data:`TOLERANCES`). Where the data's own y and x chords differ by more than
:data:`INPLANE_AGREE`, an in-plane isotropic model cannot match both, so their mean is judged (and
the row says why). The result is a :class:`Verdict`: the rows, a one-line summary ("fits: all
within 5 %" or "does not fit: phase NMC S_V +30 %, chords −28 %") and a ``fits`` flag.

:func:`check_fit` generates the realizations for a model: hard-threshold 2D sections of the data's
size (exact planar sections of the 3D model, 2D cost) and, for 3D data, a 3D volume with the
model's anisotropy; it adds the TPPF distance of the sections and joins the two verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Verdict", "judge", "check_fit", "TOLERANCES", "INPLANE_AGREE", "tppf_distance"]

#: Tolerance per descriptor: absolute for volume fractions, relative otherwise.
TOLERANCES = {
    "volume_fraction": 0.01,
    "specific_surface_area": 0.05,
    "mean_chord_length": 0.05,
    # connectivity (core.fit_connectivity): the Euler density's error relative to the data's
    # components + holes per area; τ relative; the percolating fraction absolute
    "euler_density": 0.15,
    "tortuosity_factor": 0.15,
    "percolating_fraction": 0.10,
    # interfaces (issue 17): each pair's area per volume like S_V; the triple-phase boundary
    "interfacial_area": 0.05,
    "triple_phase_boundary": 0.10,
}
#: Interfaces smaller than this share of the pair's smaller S_V are not judged (the two phases
#: hardly touch; a relative error of a near-zero area is noise).
MIN_INTERFACE_SHARE = 0.05
#: Descriptors whose error is a difference, not a relative difference.
ABSOLUTE = ("volume_fraction", "percolating_fraction")
#: The data's own y and x mean chords must agree within this (relative) to be judged separately.
INPLANE_AGREE = 0.03
#: Stacks with fewer voxels than this along an axis are judged by their sections only.
MIN_VOLUME_SIDE = 16
_SHORT = {
    "volume_fraction": "VF",
    "specific_surface_area": "S_V",
    "mean_chord_length": "chord",
    "euler_density": "Euler",
    "tortuosity_factor": "tau",
    "percolating_fraction": "perc",
    "interfacial_area": "S_V pair",
    "triple_phase_boundary": "TPB",
}
_WORDS = {
    "volume_fraction": "VF",
    "specific_surface_area": "S_V",
    "mean_chord_length": "chords",
    "euler_density": "Euler density",
    "tortuosity_factor": "tau",
    "percolating_fraction": "percolating fraction",
    "interfacial_area": "interface",
    "triple_phase_boundary": "TPB length",
}


@dataclass
class Verdict:
    """Data vs realization, judged against tolerances.

    Attributes
    ----------
    fits : bool
        Every row within its tolerance.
    line : str
        One line: ``"fits: …"`` or ``"does not fit: …"``.
    rows : list of dict
        ``phase`` (label), ``name``, ``descriptor``, ``direction`` (None, ``"z"``, ``"y"``,
        ``"x"`` or ``"y/x mean"``), ``data``, ``model``, ``error`` (absolute for VF, relative
        otherwise), ``tolerance``, ``ok``, ``note``.
    what : str
        What was compared (e.g. "10 sections of 256² vs 256 data sections").
    tppf_distance : float or None
        RMS difference of the TPPF curves over the RMS of the data's deviation from ``φ_iφ_j``
        (0 = identical; 1 = as far as a structureless image).
    parts : list of Verdict
        Sub-verdicts joined into this one (2D sections, 3D volume).
    """

    fits: bool
    line: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    what: str = ""
    tppf_distance: float | None = None
    parts: list[Verdict] = field(default_factory=list)
    remedies: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        """Plain-text table of every row (what the CLI prints), then the verdict line."""
        blocks = []
        for v in self.parts or [self]:
            out = [f"{v.what}:"] if v.what else []
            out.append(
                f"  {'phase':<12}{'descriptor':<16}{'data':>10}{'model':>10}{'error':>10}  ok"
            )
            for r in v.rows:
                desc = _SHORT[r["descriptor"]] + (f" {r['direction']}" if r["direction"] else "")
                out.append(
                    f"  {str(r['name'])[:11]:<12}{desc:<16}{r['data']:>10.4g}{r['model']:>10.4g}"
                    f"{_fmt_err(r):>10}  {'yes' if r['ok'] else 'NO'}"
                    + (f"  ({r['note']})" if r["note"] else "")
                )
            if v.tppf_distance is not None:
                out.append(f"  TPPF distance {v.tppf_distance:.3f} (0 = identical)")
            blocks.append("\n".join(out))
        tail = [f"verdict: {self.line}"]
        for r in self.remedies[:2]:
            how = ("gencal calibrate … --continue MODEL applies it" if r["applicable"]
                   else "the tool cannot do this for you")  # fmt: skip
            tail.append(f"  likely cause: {r['cause']}; remedy: {r['remedy']} ({how})")
        return "\n".join(blocks + tail)

    def markdown(self) -> str:
        """Markdown table (reports)."""
        out = [f"**Verdict: {self.line}**", ""]
        for v in self.parts or [self]:
            if v.what:
                out.append(f"*{v.what}*")
                out.append("")
            out += ["| phase | descriptor | data | model | error | within tolerance |",
                    "|---|---|---|---|---|---|"]  # fmt: skip
            for r in v.rows:
                desc = _SHORT[r["descriptor"]] + (f" {r['direction']}" if r["direction"] else "")
                note = f" ({r['note']})" if r["note"] else ""
                out.append(
                    f"| {r['name']} | {desc} | {r['data']:.4g} | {r['model']:.4g} | "
                    f"{_fmt_err(r)} | {'yes' if r['ok'] else '**no**'}{note} |"
                )
            if v.tppf_distance is not None:
                out.append(f"\nTPPF distance {v.tppf_distance:.3f} (0 = identical).")
            out.append("")
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in model files; non-finite numbers become None)."""
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "fits": self.fits,
            "line": self.line,
            "what": self.what,
            "tppf_distance": clean(self.tppf_distance),
            "rows": [{k: clean(v) for k, v in r.items()} for r in self.rows],
            "parts": [p.to_dict() for p in self.parts],
            "remedies": list(self.remedies),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        """Inverse of :meth:`to_dict`."""
        return cls(
            bool(d["fits"]),
            str(d["line"]),
            [dict(r) for r in d.get("rows", [])],
            str(d.get("what", "")),
            d.get("tppf_distance"),
            [cls.from_dict(p) for p in d.get("parts", [])],
            [dict(r) for r in d.get("remedies", [])],
        )


def _fmt_err(r: dict[str, Any]) -> str:
    if r.get("error") is None or not math.isfinite(r["error"]):
        return "n/a"
    if r["descriptor"] in ABSOLUTE:
        return f"{r['error']:+.3f}"
    return f"{100 * r['error']:+.1f} %"


def _row(
    name, label, descriptor, direction, data, model, note="", sd=None, scale=None, ok=None
) -> dict[str, Any]:
    """One verdict row. ``scale``: divide the difference by it instead of by ``data``; ``ok``:
    a decision made by the caller (e.g. percolation that disagrees), kept as it is."""
    tol = TOLERANCES[descriptor]
    if descriptor in ABSOLUTE:
        err = model - data
    elif scale is not None:
        err = (model - data) / scale if scale else math.inf
    else:
        err = (model - data) / data if data else math.inf
    forced = ok is not None
    if not forced:
        ok = abs(err) <= tol + 1e-12
    if not forced and not ok and sd is not None and abs(err) <= 2 * sd:
        # Two realizations of the same structure differ by this much: not evidence of a misfit.
        ok = True
        note = "; ".join(
            n for n in (note, f"within the sampling error of data and realization (2 sd = "
                              f"{_fmt_err({'descriptor': descriptor, 'error': 2 * sd})})") if n
        )  # fmt: skip
    return {
        "phase": label,
        "name": name,
        "descriptor": descriptor,
        "direction": direction,
        "data": float(data),
        "model": float(model),
        "error": float(err),
        "tolerance": tol,
        "sampling_sd": None if sd is None else float(sd),
        "ok": bool(ok),
        "note": note,
    }


def judge(
    data: dict[str, Any],
    model: dict[str, Any],
    what: str = "",
    sd: dict[tuple[str, str, str | None], float] | None = None,
    plane: tuple[str, str] = ("y", "x"),
) -> Verdict:
    """Judge a realization's descriptors against the data's.

    Parameters
    ----------
    data, model : dict
        :func:`~napari_gencal.core.descriptors.describe` results with volume fraction, specific
        surface area and mean chord lengths, keyed by the same phase labels.
    what : str
        Description of the comparison for the table.
    sd : dict, optional
        Standard deviation of the error that sampling alone causes, keyed ``(label, descriptor,
        direction)`` (absolute for VF, relative otherwise). A row outside its tolerance but within
        two of these passes, with a note: data and realization are each one sample.

    Returns
    -------
    Verdict
    """
    rows: list[dict[str, Any]] = []
    sd = sd or {}
    for lab, dp in data["phases"].items():
        mp = model["phases"].get(lab)
        if mp is None:
            raise ValueError(f"phase {lab} is missing from the model's descriptors")
        name = dp.get("name", lab)
        vf_sd = sd.get((lab, "volume_fraction", None))
        rows.append(_row(name, lab, "volume_fraction", None, dp["volume_fraction"],
                         mp["volume_fraction"], sd=vf_sd))  # fmt: skip
        if dp.get("specific_surface_area") and mp.get("specific_surface_area") is not None:
            rows.append(_row(name, lab, "specific_surface_area", None,
                             dp["specific_surface_area"], mp["specific_surface_area"],
                             sd=sd.get((lab, "specific_surface_area", None))))  # fmt: skip
        dc, mc = dp.get("mean_chord_length") or {}, mp.get("mean_chord_length") or {}
        dirs = [d for d in ("z", "y", "x") if dc.get(d) and mc.get(d) is not None]
        p, q = plane
        if p in dirs and q in dirs:
            spread = abs(dc[p] - dc[q]) / (0.5 * (dc[p] + dc[q]))
            if spread > INPLANE_AGREE:
                dirs = [d for d in dirs if d not in plane]
                rows.append(_row(
                    name, lab, "mean_chord_length", f"{p}/{q} mean", 0.5 * (dc[p] + dc[q]),
                    0.5 * (mc[p] + mc[q]),
                    f"the data's own {p} and {q} chords differ by {100 * spread:.0f} %",
                    sd=sd.get((lab, "mean_chord_length", f"{p}/{q} mean")),
                ))  # fmt: skip
        for d in dirs:
            rows.append(_row(name, lab, "mean_chord_length", d, dc[d], mc[d],
                             sd=sd.get((lab, "mean_chord_length", d))))  # fmt: skip
    rows += _interface_rows(data, model, sd)
    fits = all(r["ok"] for r in rows)
    return Verdict(fits, _line(rows, fits), rows, what)


def _interface_rows(
    data: dict[str, Any], model: dict[str, Any], sd: dict[tuple[str, str, str | None], float]
) -> list[dict[str, Any]]:
    """Rows of the pair interfaces (like S_V) and the triple-phase boundary, when both have them.

    Pairs whose data area is below :data:`MIN_INTERFACE_SHARE` of the smaller phase S_V are left
    out (the phases hardly touch).
    """
    rows = []
    di, mi = data.get("interfaces") or {}, model.get("interfaces") or {}
    names = {str(lab): p.get("name", lab) for lab, p in data["phases"].items()}
    for pair, dv in di.items():
        mv = mi.get(pair)
        if dv is None or mv is None:
            continue
        a, b = pair.split("|")
        svs = [data["phases"].get(x, {}).get("specific_surface_area") for x in (a, b)]
        if any(v is None for v in svs) or dv < MIN_INTERFACE_SHARE * min(svs):
            continue
        rows.append(_row(f"{names.get(a, a)}|{names.get(b, b)}", pair, "interfacial_area", None,
                         dv, mv, sd=sd.get((pair, "interfacial_area", None))))  # fmt: skip
    dt, mt = data.get("triple_phase_boundary"), model.get("triple_phase_boundary")
    if dt and mt is not None:
        rows.append(_row("TPB", "TPB", "triple_phase_boundary", None, dt, mt,
                         sd=sd.get(("TPB", "triple_phase_boundary", None))))  # fmt: skip
    return rows


def _line(rows: list[dict[str, Any]], fits: bool) -> str:
    if fits:
        line = (
            f"fits: every volume fraction within {TOLERANCES['volume_fraction']:g}, surface areas "
            f"and mean chords within {100 * TOLERANCES['specific_surface_area']:g} %"
        )
        judged = {r["descriptor"] for r in rows}
        conn = []
        if "euler_density" in judged:
            conn.append(f"Euler densities within {100 * TOLERANCES['euler_density']:g} %")
        if "percolating_fraction" in judged:
            conn.append("percolation as the data's")
        if "tortuosity_factor" in judged:
            conn.append(f"tortuosity factors within {100 * TOLERANCES['tortuosity_factor']:g} %")
        if conn:
            line += ", " + ", ".join(conn)
        loose = [
            r for r in rows if r["error"] is not None and abs(r["error"]) > r["tolerance"] + 1e-12
        ]
        if loose:
            line += " or within sampling error (" + ", ".join(
                f"{r['name']} {_SHORT[r['descriptor']]}"
                + (f" {r['direction']}" if r["direction"] else "")
                + f" {_fmt_err(r).replace(' ', '')}"
                for r in loose
            ) + ")"
        return line
    parts = []
    for lab in dict.fromkeys(r["phase"] for r in rows):
        bad = [r for r in rows if r["phase"] == lab and not r["ok"]]
        if not bad:
            continue
        words = []
        for desc in _WORDS:
            sel = [r for r in bad if r["descriptor"] == desc]
            if not sel:
                continue
            worst = max(sel, key=lambda r: abs(r["error"]) if math.isfinite(r["error"]) else 9e9)
            label = _WORDS[desc]
            words.append(f"{label} {_fmt_err(worst).replace(' ', '')}"
                         + (f" ({worst['direction']})" if worst["direction"] else ""))  # fmt: skip
        whole = "|" in str(lab) or lab == "TPB"  # an interface or the TPB, not a phase
        parts.append(("" if whole else "phase ") + f"{bad[0]['name']} " + ", ".join(words))
    return "does not fit: " + "; ".join(parts)


def tppf_distance(
    data_curves: np.ndarray, model_curves: np.ndarray, fractions: np.ndarray
) -> float:
    """RMS(model − data) over RMS(data − φ_iφ_j), over all pairs and r ≥ 1."""
    d = np.asarray(data_curves, dtype=float)[..., 1:]
    m = np.asarray(model_curves, dtype=float)[..., 1:]
    r = min(d.shape[-1], m.shape[-1])
    d, m = d[..., :r], m[..., :r]
    phi = np.asarray(fractions, dtype=float)
    ref = np.sqrt(np.mean((d - np.outer(phi, phi)[:, :, None]) ** 2))
    return float(np.sqrt(np.mean((m - d) ** 2)) / max(ref, 1e-12))


def _values(desc: dict[str, Any]) -> dict[tuple[str, str, str | None], float]:
    """Flat ``(label, descriptor, direction) → value`` of a describe dict (with the y/x mean)."""
    out: dict[tuple[str, str, str | None], float] = {}
    for lab, p in desc["phases"].items():
        for key in ("volume_fraction", "specific_surface_area"):
            if p.get(key) is not None:
                out[(lab, key, None)] = float(p[key])
        ch = p.get("mean_chord_length") or {}
        for d, v in ch.items():
            if v is not None:
                out[(lab, "mean_chord_length", d)] = float(v)
        for p, q in (("y", "x"), ("z", "x"), ("z", "y")):
            if ch.get(p) is not None and ch.get(q) is not None:
                out[(lab, "mean_chord_length", f"{p}/{q} mean")] = 0.5 * (ch[p] + ch[q])
    for pair, v in (desc.get("interfaces") or {}).items():
        if v is not None:
            out[(pair, "interfacial_area", None)] = float(v)
    if desc.get("triple_phase_boundary") is not None:
        out[("TPB", "triple_phase_boundary", None)] = float(desc["triple_phase_boundary"])
    return out


def sampling_sd(
    pieces: list[dict[str, Any]], n_model: float, n_data: float
) -> dict[tuple[str, str, str | None], float]:
    """Sampling sd of (model − data) from the spread of equal pieces of a realization.

    ``pieces``: describe dicts of pieces (sections, sub-volumes), each of the size whose spread
    is measured; the model's estimate averages ``n_model`` such pieces and the data's ``n_data``
    (effective, independent) ones. Relative for all but volume fractions (divided by the mean).
    """
    vals = [_values(p) for p in pieces]
    out = {}
    for key in vals[0]:
        xs = np.array([v[key] for v in vals if key in v and np.isfinite(v[key])])
        if xs.size < 3:
            continue
        sd = float(np.std(xs, ddof=1)) * math.sqrt(1.0 / n_model + 1.0 / max(n_data, 1.0))
        if key[1] != "volume_fraction":
            sd /= max(abs(float(np.mean(xs))), 1e-12)
        out[key] = sd
    return out


def _join(parts: list[Verdict]) -> Verdict:
    rows = [dict(r, what=p.what) for p in parts for r in p.rows]
    fits = all(p.fits for p in parts)
    if fits:
        line = _line(rows, True)
    else:
        line = "does not fit: " + "; ".join(
            f"{p.line.removeprefix('does not fit: ')} [{p.what.split(' (')[0]}]"
            for p in parts
            if not p.fits
        )
    return Verdict(fits, line, rows, " + ".join(p.what for p in parts),
                   parts[0].tppf_distance, parts)  # fmt: skip


def check_fit(
    model: Any,
    sections: np.ndarray,
    volume: np.ndarray | None = None,
    *,
    n_sections: int | None = None,
    max_section: int = 1024,
    max_volume: int = 256,
    seed: int = 12345,
    device: str = "cpu",
    blocks: int = 1,
    offset: Sequence[int] = (0, 0),
    connectivity: bool = True,
    transport: bool | None = None,
) -> Verdict:
    """Generate hard realizations of ``model`` and judge them against the data.

    Parameters
    ----------
    model : ExcursionModel
        The final model (length scale and anisotropy applied; its phase map gives the labels).
    sections : ndarray
        The data's 2D sections ``(N, H, W)`` as phase indices of ``model.phase_map``.
    volume : ndarray, optional
        The data's 3D phase-index volume (3D data only): a volume of the model (with its
        anisotropy) of the same shape, each side capped at ``max_volume``, is compared with it
        (with its central crop of at most 320 voxels per side, for large stacks), chords along
        z, y and x.
    n_sections : int, optional
        Generated sections (each of the data's smaller side, capped at ``max_section``).
        Default: as many as hold four 1024² images (10 … 64), so that the model's side of the
        comparison is not noisier for small images.
    seed : int
        Seed of the realizations (fixed: the verdict of a model file is reproducible).
    device : str
        Where realizations are generated.
    blocks : int
        The data are made of ``blocks``×``blocks`` pixel blocks (nearest-neighbour up-sampled;
        :attr:`Plan.blocks`): data and realizations are then compared on one pixel per block
        (at ``offset`` in the data's sections), the resolution the data carry. At the full
        resolution the blocks' staircase boundaries add surface that no smooth twin has (+18 % S_V
        on electrode.tiff up-sampled ×2), which would be judged as a misfit.
    connectivity : bool
        Judge connectivity too (:mod:`.fit_connectivity`): the Euler density of sections, and for
        3D data the percolating fraction and τ per phase and axis.
    transport : bool, optional
        Solve τ with TauFactor in the 3D part (default: when TauFactor is installed).

    Returns
    -------
    Verdict
        For 3D data the join of the 2D-section and the 3D-volume verdicts.
    """
    import torch

    from .descriptors import describe
    from .generate import generate, generate_sections
    from .phases import one_hot, to_indices
    from .tppf import radial_tppf

    pm = model.phase_map
    k = int(model.n_phases)
    f = max(1, int(blocks))
    sec = np.asarray(sections)
    if sec.ndim == 2:
        sec = sec[None]
    if f > 1:
        oy, ox = (int(o) for o in offset)
        sec = np.ascontiguousarray(sec[:, oy::f, ox::f])
    if sec.shape[0] > 64:
        pick = np.random.default_rng(seed).choice(sec.shape[0], 64, replace=False)
        sec = sec[np.sort(pick)]
    include = ("volume_fraction", "specific_surface_area", "mean_chord_length", "interfaces")
    size = int(min(max_section, min(sec.shape[1:])))
    if n_sections is None:
        n_sections = int(min(64, max(10, math.ceil(4 * 1024**2 / size**2))))
    # Sections are x–y planes of the isotropic model (the calibration's view) at the final scale;
    # with blocks, at one pixel per block: the model at length scale s / f has exactly the law of
    # its full-resolution realizations sampled every f-th pixel.
    coarse = model.copy(length_scale=model.length_scale / f) if f > 1 else model
    # A stretch along the section normal does not change the sections; one along the sections' x
    # (sections whose y and x chords differ: data.inplane_stretch) does, in the sections' frame.
    ya, xa = (a for a in range(3) if a != int(model.anisotropy_axis))
    st = model.axis_stretch
    flat = coarse.copy(anisotropy=1.0, anisotropy_fields={},
                       axis_stretch=(1.0, float(st[ya]), float(st[xa])))  # fmt: skip
    gen = generate_sections(flat, n_sections, size, seed=seed, device=device)
    gen_idx = to_indices(gen, pm) if pm is not None else gen - 1
    d2 = describe(sec, pm, include=include, sections=True, allow_absent=True)
    m2 = describe(gen_idx, pm, include=include, sections=True, allow_absent=True)
    # Sampling error: the spread between generated sections of the data's size; the data's
    # sections count as independent only when they lie a coarsest mean chord apart.
    pieces = [describe(g[None], pm, include=include, sections=True, allow_absent=True)
              for g in gen_idx]  # fmt: skip
    coarsest = max(
        (c for p in d2["phases"].values() for c in (p.get("mean_chord_length") or {}).values()
         if c),
        default=1.0,
    )  # fmt: skip
    n_all = np.asarray(sections).shape[0] if np.asarray(sections).ndim == 3 else 1
    n_data = n_all if volume is None else max(1.0, n_all / max(1.0, coarsest))
    sd2 = sampling_sd(pieces, n_sections, min(n_data, sec.shape[0]))
    r_max = int(min(size // 4, 100 * model.length_scale / f))
    with torch.no_grad():
        cd = radial_tppf(one_hot(torch.as_tensor(sec[:16]), k, batch=True), r_max).numpy()
        cm = radial_tppf(one_hot(torch.as_tensor(gen_idx), k, batch=True), r_max).numpy()
    phi = np.asarray([d2["phases"][key]["volume_fraction"] for key in d2["phases"]])
    where = f" (one pixel per {f}×{f} block: the data are made of such blocks)" if f > 1 else ""
    v2 = judge(d2, m2, f"{n_sections} generated sections of {size}² vs {sec.shape[0]} data "
                       f"sections of {sec.shape[1]}×{sec.shape[2]}{where}", sd2)  # fmt: skip
    if connectivity:
        from .fit_connectivity import euler_rows

        v2.rows += euler_rows(sec, gen_idx, pm, min(n_data, sec.shape[0]))
        v2.fits = all(r["ok"] for r in v2.rows)
        v2.line = _line(v2.rows, v2.fits)
    v2.tppf_distance = tppf_distance(cd, cm, phi)
    if volume is None or min(np.shape(volume)) < MIN_VOLUME_SIDE:
        return v2  # 2D data, or a stack of a few sections: no 3D structure to judge
    from .calibrate.data import analysis_view

    vol = np.asarray(volume)
    if f > 1:
        # one voxel per block: the sections' offsets on their in-plane axes, 0 along the normal
        normal = int(model.anisotropy_axis)
        starts = iter(int(o) for o in offset)
        vol = vol[tuple(slice(0 if a == normal else next(starts), None, f) for a in range(3))]
    vol = analysis_view(vol)
    shape = tuple(int(min(s, max_volume)) for s in vol.shape)
    gv = generate(coarse, shape, seed=seed + 1, device=device)
    gv_idx = to_indices(gv, pm) if pm is not None else gv - 1
    d3 = describe(vol, pm, include=include, allow_absent=True)
    m3 = describe(gv_idx, pm, include=include, allow_absent=True)
    # Sampling error of one volume: the spread of its eight octants, over sqrt(8); the data volume
    # is one such sample too (scaled to its size).
    half = [s // 2 for s in shape]
    octants = [
        describe(gv_idx[tuple(slice(o * h, (o + 1) * h) for o, h in zip(c, half, strict=True))],
                 pm, include=include, allow_absent=True)
        for c in np.ndindex(2, 2, 2)
    ]  # fmt: skip
    sd3 = sampling_sd(octants, 8, 8 * vol.size / gv_idx.size)
    gen_shape, data_shape = "×".join(map(str, shape)), "×".join(map(str, vol.shape))
    ax = int(model.anisotropy_axis)
    plane = tuple("zyx"[a] for a in range(3) if a != ax)
    if model.per_field_anisotropy:
        b_text = "b per field " + ", ".join(
            f"{n} {model.field_anisotropy(n):.3f}" for n in model.used_kernels()
        )
    else:
        b_text = f"b = {model.anisotropy:.3f}"
    v3 = judge(
        d3,
        m3,
        f"a generated {gen_shape} volume ({b_text} along {'zyx'[ax]}) vs the "
        f"{data_shape} data{where}",
        sd3,
        plane,
    )
    parts = [v2, v3]
    if connectivity:
        from .fit_connectivity import transport_verdict

        parts.append(transport_verdict(coarse, vol, seed=seed + 2, device=device, tau=transport))
    return _join(parts)
