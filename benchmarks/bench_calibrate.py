"""Benchmarks of the calibration engine (issue 5 acceptance).

Sub-benchmarks (``python benchmarks/bench_calibrate.py NAME [--minutes M] [--threads T]``):

* ``known``  — known truth: 2D sections of a model with known parameters → Algorithm 3 → 3D
  descriptors of calibrated vs true realizations (targets: VF within 0.01, S_V and mean chords
  within 5 %). Reference in the same run: the same descriptors of a second realization of the
  truth (the Monte-Carlo spread), printed as the ratio error / MC spread.
* ``sofc``   — ../shared/data/SOFC_hr_input.tif (1024², 2D): time to accuracy (first epoch whose
  hard sections have every VF within 0.01 and every S_V within 5 % of the data), then 10 generated
  1024² sections vs the data (VF, S_V, mean chords). Reference: the 10-minute target (ratio).
* ``electrode`` — x–y slices of ../shared/data/electrode.tiff: calibrate, fit b, then 10 sections
  and a 3D volume vs the data's 2D and 3D descriptors including z. Reference: data descriptors.
* ``ablation`` — Algorithms 1, 2, 3 with the same time budget on the bundled 256² SOFC sample:
  table and figure (docs/images/ablation.png, table printed in markdown for docs/ablation.md).
  Reference: Algorithm 3's error (ratio of each algorithm's score to it).

Every figure is printed with the exact settings; nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from napari_gencal.core.calibrate import CalibrationConfig, prepare_data, refine_anisotropy
from napari_gencal.core.calibrate.loop import Calibration
from napari_gencal.core.descriptors.describe import describe
from napari_gencal.core.generate import generate, generate_sections
from napari_gencal.core.io import read_labels
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.phases import PhaseMap, to_indices

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
BASIC = ("volume_fraction", "specific_surface_area", "mean_chord_length")


def accurate(desc: dict | None, vf_tol: float = 0.01, sv_rel: float = 0.05) -> bool:
    """Every phase's VF within ``vf_tol`` and S_V within ``sv_rel`` (relative) of the data."""
    if not desc:
        return False
    vf, dvf = np.array(desc["volume_fraction"]), np.array(desc["data_volume_fraction"])
    sv, dsv = np.array(desc["specific_surface_area"]), np.array(desc["data_specific_surface_area"])
    return bool(np.all(np.abs(vf - dvf) <= vf_tol) and np.all(np.abs(sv - dsv) <= sv_rel * dsv))


def run_calibration(sections, pm, cfg, label: str, voxel_size=None, **kw) -> tuple:
    """Run to the end, printing one line per epoch; returns (cal, seconds, time-to-accuracy)."""
    t0 = time.perf_counter()
    cal = Calibration(sections, pm, cfg, voxel_size, **kw)
    t_init = time.perf_counter() - t0
    print(
        f"[{label}] init {t_init:.1f} s: r_max {cal.r_max}, m {cal.m}, window {cal.window}, "
        f"sections {cal.section_size}",
        flush=True,
    )
    t_acc = None
    for rec in cal.run():
        if rec.score is not None:
            d = rec.descriptors
            ok = accurate(d)
            if ok and t_acc is None:
                t_acc = time.perf_counter() - t0
            print(
                f"[{label}] epoch {rec.epoch:3d} step {rec.step:5d} "
                f"{time.perf_counter() - t0:7.1f} s score {rec.score:.4f} best {rec.best_score} vf "
                f"{np.round(d['volume_fraction'], 3).tolist()} sv "
                f"{np.round(d['specific_surface_area'], 4).tolist()}{' ACCURATE' if ok else ''}",
                flush=True,
            )
        if rec.done:
            print(f"[{label}] stopped: {rec.stop_reason} after {rec.step} steps", flush=True)
    return cal, time.perf_counter() - t0, t_acc


def table(rows, header) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append(
            "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |"
        )
    return "\n".join(out)


def _values(d: dict, lab: str, name: str) -> float:
    p = d["phases"][lab]
    if name == "VF":
        return p["volume_fraction"]
    if name == "S_V":
        return p["specific_surface_area"]
    return p["mean_chord_length"][name.split()[1]]


def compare_rows(d_ref, d_mod, axes, d_mc: list | None = None) -> list[tuple]:
    """(phase, descriptor, reference, model, error[, error / MC sd]) rows.

    ``d_ref`` and ``d_mod`` are ``describe`` results or lists of them (averaged). ``d_mc``: the
    reference's realizations, whose spread gives the Monte-Carlo standard deviation of the
    difference of two such averages.
    """
    refs = d_ref if isinstance(d_ref, list) else [d_ref]
    mods = d_mod if isinstance(d_mod, list) else [d_mod]
    names = ["VF", "S_V"] + [f"chord {ax}" for ax in axes]
    rows = []
    for lab, p in refs[0]["phases"].items():
        for name in names:
            a = float(np.mean([_values(d, lab, name) for d in refs]))
            b = float(np.mean([_values(d, lab, name) for d in mods]))
            absolute = name == "VF"
            err = (b - a) if absolute else (b - a) / a
            row = [p.get("name", lab), name, a, b, f"{err:+.4f}{'' if absolute else ' rel'}"]
            if d_mc is not None:
                sd = float(np.std([_values(d, lab, name) for d in d_mc], ddof=1))
                sd_diff = sd * np.sqrt(1 / len(refs) + 1 / len(mods))
                row.append(f"{abs(b - a) / max(sd_diff, 1e-12):.1f}")
            rows.append(tuple(row))
    return rows


# ---------------------------------------------------------------------- known truth
def bench_known(minutes: float) -> None:
    pm = PhaseMap((0, 1, 2), ("SE", "AM", "pore"))
    truth = ExcursionModel.default(
        "high", m=10, n_phases=3, fractions=[0.42, 0.51, 0.07], width=3.0, phase_map=pm
    ).copy(sigma1=0.8, sigma2=1.2, a=0.3)
    from napari_gencal.core.model import thresholds_for_fractions

    truth = thresholds_for_fractions(truth, [0.42, 0.51, 0.07])
    sections = generate_sections(truth, 8, 256, seed=1, device="cpu")
    print("[known] truth: m 10, ℓ 3, σ (0.8, 1.2), a 0.3; data: 8 sections of 256²", flush=True)
    cfg = CalibrationConfig.preset("quick", time_limit=60 * minutes, max_epochs=1000, patience=40)
    cal, secs, t_acc = run_calibration(to_indices(sections, pm), pm, cfg, "known")
    model = cal.best_model
    shape = (128, 128, 128)

    def desc3(mdl, seed):
        vol = generate(mdl, shape, seed=seed, device="cpu")
        return describe(to_indices(vol, pm), pm, include=BASIC)

    d_true = [desc3(truth, s) for s in (11, 12, 13)]
    d_cal = [desc3(model, s) for s in (21, 22, 23)]
    print(
        f"\n[known] calibration {secs / 60:.1f} min, time to 2D accuracy "
        f"{'-' if t_acc is None else f'{t_acc / 60:.1f} min'}"
    )
    print(
        "[known] 3D descriptors, mean of three 128³ realizations each, calibrated vs truth "
        "(last column: |difference| / its Monte-Carlo sd from the truth's realizations)"
    )
    print(
        table(
            compare_rows(d_true, d_cal, ("z", "y", "x"), d_true),
            ("phase", "descriptor", "truth", "calibrated", "error", "|diff|/MC sd"),
        )
    )
    print(f"[known] truth: σ1 {truth.sigma1:.3f} σ2 {truth.sigma2:.3f} a {truth.a:.3f}")
    print(f"[known] calibrated: σ1 {model.sigma1:.3f} σ2 {model.sigma2:.3f} a {model.a:.3f}")


# ---------------------------------------------------------------------- SOFC 1024²
def bench_sofc(minutes: float) -> None:
    img = read_labels(DATA / "SOFC_hr_input.tif")
    data = prepare_data(img)
    cfg = CalibrationConfig.preset("quick", time_limit=60 * minutes, max_epochs=1000, patience=40)
    cal, secs, t_acc = run_calibration(
        data.sections, data.phase_map, cfg, "sofc", data_sha256=data.sha256
    )
    model = cal.best_model
    pm = data.phase_map
    print(
        f"\n[sofc] calibration {secs / 60:.1f} min ({cal.step} steps); time to accuracy "
        f"{'not reached' if t_acc is None else f'{t_acc / 60:.2f} min'}; target 10 min → ratio "
        f"{'-' if t_acc is None else f'{t_acc / 600:.2f}'}"
    )
    sec = generate_sections(model, 10, 1024, seed=3, device="cpu")
    d_data = describe(img, include=BASIC)
    d_mod = describe(to_indices(sec, pm), pm, include=BASIC, sections=True)
    print("[sofc] 10 generated 1024² sections vs the data")
    print(
        table(
            compare_rows(d_data, d_mod, ("y", "x")),
            ("phase", "descriptor", "data", "model", "error"),
        )
    )
    model.save(Path("/tmp") / "bench_sofc_model.json", overwrite=True)


# ---------------------------------------------------------------------- electrode
def bench_electrode(minutes: float, phases: str = "85,170,0") -> None:
    names = {0: "pore", 85: "NMC", 170: "binder"}
    labels = tuple(int(v) for v in phases.split(","))
    img = read_labels(DATA / "electrode.tiff", phases=phases)
    img.phase_map = PhaseMap(labels, tuple(names[v] for v in labels))
    print(f"[electrode] phase order {labels} = {img.phase_map.names}", flush=True)
    data = prepare_data(img, axis="z")
    print(f"[electrode] Eq. 40 b from the stack: {data.anisotropy:.3f}", flush=True)
    cfg = CalibrationConfig.preset("quick", time_limit=60 * minutes, max_epochs=1000, patience=40)
    cal, secs, t_acc = run_calibration(
        data.sections,
        data.phase_map,
        cfg,
        "electrode",
        data_sha256=data.sha256,
        anisotropy=data.anisotropy,
    )
    pm = data.phase_map
    t0 = time.perf_counter()
    model = refine_anisotropy(cal.best_model, data)
    print(
        f"[electrode] calibration {secs / 60:.1f} min; model-refined b {model.anisotropy:.3f} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    sec = generate_sections(model, 10, 256, seed=3, device="cpu")
    d_sec_data = describe(data.sections, pm, include=BASIC, sections=True)
    d_sec = describe(to_indices(sec, pm), pm, include=BASIC, sections=True)
    print("[electrode] 10 generated 256² x–y sections vs the data's 256 x–y slices")
    print(
        table(
            compare_rows(d_sec_data, d_sec, ("y", "x")),
            ("phase", "descriptor", "data", "model", "error"),
        )
    )
    vol = generate(model, (256, 256, 256), seed=4, device="cpu")
    d_vol_data = describe(data.volume, pm, include=BASIC)
    d_vol = describe(to_indices(vol, pm), pm, include=BASIC)
    print("[electrode] generated 256³ volume vs the 256³ data (3D, including z)")
    print(
        table(
            compare_rows(d_vol_data, d_vol, ("z", "y", "x")),
            ("phase", "descriptor", "data", "model", "error"),
        )
    )
    model.save(Path("/tmp") / "bench_electrode_model.json", overwrite=True)


# ---------------------------------------------------------------------- ablation
def bench_ablation(minutes: float) -> None:
    from matplotlib.figure import Figure

    from napari_gencal.samples import load_sample

    img = load_sample("sofc_2d")
    pm = img.phase_map
    idx = to_indices(img.data, pm)
    results = {}
    for alg in (1, 2, 3):
        cfg = CalibrationConfig.preset(
            "quick",
            algorithm=alg,
            time_limit=60 * minutes,
            max_epochs=1000,
            patience=1000,
            early_stop_start=1,
        )
        cal, secs, _ = run_calibration(idx, pm, cfg, f"alg{alg}")
        model = cal.best_model
        sec = generate_sections(model, 10, 256, seed=5, device="cpu")
        d = describe(to_indices(sec, pm), pm, include=BASIC, sections=True)
        results[alg] = (cal, secs, d, sec)
    d_data = describe(img, include=BASIC)
    rows = []
    ref = None
    for alg, (cal, secs, d, _) in results.items():
        vf_err = np.mean(
            [
                abs(d["phases"][k]["volume_fraction"] - v["volume_fraction"])
                for k, v in d_data["phases"].items()
            ]
        )
        dp = d["phases"]
        sv_err = np.mean(
            [
                abs(dp[k]["specific_surface_area"] / v["specific_surface_area"] - 1)
                for k, v in d_data["phases"].items()
            ]
        )
        ch_err = np.mean(
            [
                abs(dp[k]["mean_chord_length"][ax] / v["mean_chord_length"][ax] - 1)
                for k, v in d_data["phases"].items()
                for ax in ("y", "x")
            ]
        )
        score = vf_err + sv_err + ch_err
        if alg == 3:
            ref = score
        rows.append(
            [f"Algorithm {alg}", cal.step, f"{secs / 60:.1f}", vf_err, sv_err, ch_err, score]
        )
    for r in rows:
        r.append(f"{r[-1] / ref:.2f}")
    print("\n[ablation] same time budget, bundled sofc_2d (256²); 10 generated 256² sections")
    print(
        table(
            rows,
            (
                "algorithm",
                "steps",
                "minutes",
                "mean |ΔVF|",
                "mean |ΔS_V|/S_V",
                "mean |Δchord|/chord",
                "sum",
                "sum / Alg. 3",
            ),
        )
    )
    fig = Figure(figsize=(12, 3.4), dpi=110)
    axes = fig.subplots(1, 4)
    panels = [(idx, "data (SOFC crop)")] + [
        (to_indices(results[a][3][0], pm), f"Algorithm {a}") for a in (1, 2, 3)
    ]
    for ax, (im, title) in zip(axes, panels, strict=True):
        ax.imshow(im, cmap="viridis", vmin=0, vmax=2, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.tight_layout()
    out = ROOT / "docs" / "images" / "ablation.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"[ablation] figure: {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("name", choices=("known", "sofc", "electrode", "ablation", "all"))
    p.add_argument("--minutes", type=float, default=8.0, help="time budget per calibration")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--phases", default="85,170,0", help="electrode: phase order (labels; NMC, binder, pore)"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}))
    names = ("known", "sofc", "electrode", "ablation") if args.name == "all" else (args.name,)
    for n in names:
        if n == "electrode":
            bench_electrode(args.minutes, args.phases)
        else:
            globals()[f"bench_{n}"](args.minutes)


if __name__ == "__main__":
    main()
