"""Fusion with a low-resolution scan: known truth, a real pair, anisotropy, time (issue 12).

Cases (run any subset by name):

* ``truth`` — SuperRes' case-study design. ``electrode.tiff`` is the truth; the model is
  calibrated from its x–y sections only (``gencal calibrate --axis z --no-anisotropy``, default
  settings); low-resolution scans are the ×4 block majorities (a) with three phases, (b) with
  binder and pore merged. Each scan is fused ``--draws`` times; every draw and the argmax of the
  phase-probability volume are compared voxel by voxel with the truth, beside nearest-neighbour
  up-sampling of the scan and an unconditioned realization; VF, S_V, mean chords and TauFactor's
  tortuosity factor (along z) per phase against the truth.
* ``sofc`` — the real pair ``SOFC_hr_input.tif`` (2D, calibrated) + ``SOFC_lr_input.tif`` (62³):
  agreement of the fused volume with the scan, and its x–y sections' descriptors against the 2D
  image's.
* ``separator`` — ``Separator_lr_input.tif`` with an anisotropic model (calibrated from the scan
  itself, then rescaled ×2: the high-resolution model the scan would come from), fused ×2.
* ``time`` — ``gencal fuse`` of a 64³ scan at ×4 (→ 256³) as a whole process: wall clock and
  peak memory (the target is 10 min on 2 CPU cores).

Usage::

    python benchmarks/bench_fusion.py truth sofc separator time [--draws 4] [--device cpu]
    python benchmarks/bench_fusion.py --table

Results: one JSON per case in ``--out`` (default ``/tmp/gencal-fusion``) and ``table.md``.
Never run two benchmarks at once on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
ELECTRODE = (0, 85, 170)  # pore, NMC, binder


def _calibrate(image: Path, phases: str, out: Path, extra: list[str]) -> Path:
    """A model by the CLI with default settings (cached in the results folder)."""
    if out.exists():
        return out
    cmd = [sys.executable, "-m", "napari_gencal.cli", "calibrate", str(image), "--phases", phases,
           "--out", str(out), "--quiet", *extra]  # fmt: skip
    print("[calibrate]", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return out


def _descriptors(idx: np.ndarray, k: int, tau: bool) -> dict:
    from napari_gencal.core.descriptors.chords import mean_chord_length
    from napari_gencal.core.descriptors.surface import specific_surface_area

    sv = specific_surface_area(idx, n_phases=k)
    out = {"vf": [float(np.mean(idx == i)) for i in range(k)], "sv": [float(v) for v in sv]}
    out["chord"] = [
        float(np.mean([mean_chord_length(idx, i, ax, n_phases=k) for ax in ("z", "y", "x")]))
        for i in range(k)
    ]
    if tau:
        from napari_gencal.core.descriptors.transport import effective_transport

        taus = []
        for i in range(k):
            try:
                taus.append(float(effective_transport(idx, i, "z", n_phases=k).tau_factor))
            except Exception:  # noqa: BLE001 - a phase that does not percolate has no τ
                taus.append(float("nan"))
        out["tau"] = taus
    return out


def case_truth(args, out: Path) -> dict:
    import tifffile

    from napari_gencal.core.fuse import downsample_majority, fuse_draws, upsample_nearest
    from napari_gencal.core.generate import generate
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import to_indices

    model_path = _calibrate(DATA / "electrode.tiff", "0,85,170", out / "electrode_xy.gencal.json",
                            ["--axis", "z", "--no-anisotropy"])  # fmt: skip
    model = ExcursionModel.load(model_path)
    pm = model.phase_map  # model order
    n = int(args.size)
    truth = to_indices(tifffile.imread(DATA / "electrode.tiff")[:n, :n, :n], pm)
    k = 3
    s = (4, 4, 4)
    names = [f"label {v}" for v in pm.labels]
    res: dict = {"case": "truth", "model_order": list(pm.labels), "size": n, "scans": {}}
    res["truth"] = _descriptors(truth, k, args.tau)
    unc = generate(model, truth.shape, seed=12345, device=args.device)
    unc_idx = to_indices(unc, pm)
    res["unconditioned"] = {"accuracy": float(np.mean(unc_idx == truth)),
                            **_descriptors(unc_idx, k, args.tau)}  # fmt: skip
    merged_groups = np.array([1 if v == 85 else 0 for v in pm.labels])  # NMC vs the rest
    for scan_name, groups, mapping in (
        ("three phases", None, None),
        ("binder+pore merged", merged_groups, "0=0+170,1=85"),
    ):
        scan_idx = downsample_majority(truth, s, k, groups)
        if groups is None:
            scan = np.asarray(pm.labels)[scan_idx]
            nn = upsample_nearest(scan_idx, s)
        else:
            scan = scan_idx  # labels 0 (pore + binder) and 1 (NMC)
            nn = None
        t0 = time.perf_counter()
        draws, prob = fuse_draws(model, scan, n_draws=args.draws, scale=s, mapping=mapping,
                                 seed=0, device=args.device)  # fmt: skip
        dt = time.perf_counter() - t0
        rec: dict = {"seconds_per_draw": dt / len(draws), "draws": []}
        if nn is not None:
            rec["nearest"] = {"accuracy": float(np.mean(nn == truth)),
                              **_descriptors(nn, k, args.tau)}  # fmt: skip
        for j, d in enumerate(draws):
            rec["draws"].append({"seed": d.seed, "agreement": d.agreement,
                                 "accuracy": float(np.mean(d.indices == truth)),
                                 **_descriptors(d.indices, k, args.tau and j == 0)})  # fmt: skip
        am = prob.argmax(0).astype(np.uint8)
        rec["argmax"] = {"accuracy": float(np.mean(am == truth)), **_descriptors(am, k, False)}
        res["scans"][scan_name] = rec
        print(f"[truth] {scan_name}: {len(draws)} draws, {rec['seconds_per_draw']:.0f} s each; "
              f"accuracy draws {[round(d['accuracy'], 3) for d in rec['draws']]}, argmax "
              f"{rec['argmax']['accuracy']:.3f}, nearest "
              f"{rec.get('nearest', {}).get('accuracy', float('nan')):.3f}",
              flush=True)  # fmt: skip
    res["names"] = names
    return res


def case_sofc(args, out: Path) -> dict:
    import tifffile

    from napari_gencal.core.descriptors.chords import mean_chord_length
    from napari_gencal.core.descriptors.surface import specific_surface_area
    from napari_gencal.core.fuse import fuse
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import to_indices

    model = ExcursionModel.load(_calibrate(DATA / "SOFC_hr_input.tif", "0,1,2",
                                           out / "sofc.gencal.json", []))  # fmt: skip
    pm = model.phase_map
    scan = tifffile.imread(DATA / "SOFC_lr_input.tif").astype(np.int16)
    hr = to_indices(np.squeeze(tifffile.imread(DATA / "SOFC_hr_input.tif")), pm)
    k = 3
    # The scale the structure sizes imply: the scan's mean chords against the image's.
    scan_idx = to_indices(scan, pm)
    ratio = [
        float(np.mean([mean_chord_length(scan_idx, i, ax, n_phases=k) for ax in "zyx"])
              / np.mean([mean_chord_length(hr, i, ax, n_phases=k) for ax in "yx"]))
        for i in range(k)
    ]  # fmt: skip
    sc = int(args.sofc_scale)
    t0 = time.perf_counter()
    r = fuse(model, scan, scale=sc, seed=0, device=args.device)
    dt = time.perf_counter() - t0
    fused = r.indices
    sec = fused[:: max(1, fused.shape[0] // 16)]  # x–y sections through the volume
    img_sv = specific_surface_area(hr, n_phases=k)
    sec_sv = specific_surface_area(sec, n_phases=k, sections=True)
    rows = []
    for i in range(k):
        dc = np.mean([mean_chord_length(hr, i, ax, n_phases=k) for ax in "yx"])
        mc = np.mean([mean_chord_length(sec, i, ax, n_phases=k, sections=True) for ax in "yx"])
        rows.append({"label": int(pm.labels[i]), "vf_image": float(np.mean(hr == i)),
                     "vf_fused": float(np.mean(fused == i)), "sv_image": float(img_sv[i]),
                     "sv_fused": float(sec_sv[i]), "chord_image": float(dc),
                     "chord_fused": float(mc)})  # fmt: skip
    return {"case": "sofc", "scale": sc, "chord_ratio_scan_over_image": ratio,
            "agreement": r.agreement, "seconds": dt, "rows": rows,
            "scan_shape": list(scan.shape)}  # fmt: skip


def case_separator(args, out: Path) -> dict:
    import tifffile

    from napari_gencal.core.descriptors.chords import mean_chord_length
    from napari_gencal.core.fuse import fuse, upsample_nearest
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import to_indices

    base = ExcursionModel.load(_calibrate(DATA / "Separator_lr_input.tif", "0,1",
                                          out / "separator.gencal.json", []))  # fmt: skip
    model = base.copy(length_scale=2.0 * float(base.length_scale))
    pm = model.phase_map
    scan = tifffile.imread(DATA / "Separator_lr_input.tif").astype(np.int16)[:48, :48, :48]
    t0 = time.perf_counter()
    r = fuse(model, scan, scale=2, seed=0, device=args.device)
    dt = time.perf_counter() - t0
    k = 2
    scan_idx = to_indices(scan, pm)
    nn = upsample_nearest(scan_idx, (2, 2, 2))
    rows = []
    for i in range(k):
        rows.append({"label": int(pm.labels[i]), "vf_scan": float(np.mean(scan_idx == i)),
                     "vf_fused": float(np.mean(r.indices == i)),
                     "chords_scan_x2": [2 * mean_chord_length(scan_idx, i, ax, n_phases=k)
                                        for ax in "zyx"],
                     "chords_fused": [mean_chord_length(r.indices, i, ax, n_phases=k)
                                      for ax in "zyx"],
                     "chords_nearest": [mean_chord_length(nn, i, ax, n_phases=k)
                                        for ax in "zyx"]})  # fmt: skip
    return {"case": "separator", "b": float(model.anisotropy), "axis": int(model.anisotropy_axis),
            "agreement": r.agreement, "seconds": dt, "rows": rows}  # fmt: skip


def case_time(args, out: Path) -> dict:
    import tifffile

    from napari_gencal.core.fuse import downsample_majority
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import to_indices

    model_path = _calibrate(DATA / "electrode.tiff", "0,85,170", out / "electrode_xy.gencal.json",
                            ["--axis", "z", "--no-anisotropy"])  # fmt: skip
    pm = ExcursionModel.load(model_path).phase_map
    truth = to_indices(tifffile.imread(DATA / "electrode.tiff"), pm)
    scan = np.asarray(pm.labels, dtype=np.uint8)[downsample_majority(truth, (4, 4, 4), 3)]
    tifffile.imwrite(out / "scan64.tif", scan)
    fused = out / "fused256.tif"
    cmd = [sys.executable, "-m", "napari_gencal.cli", "fuse", str(model_path),
           str(out / "scan64.tif"), "--scale", "4", "--out", str(fused), "--overwrite",
           "--device", args.device]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(proc.stdout.strip().splitlines()[-1], flush=True)
    from napari_gencal.core.fuse import upsample_nearest

    fused_idx = to_indices(tifffile.imread(fused), pm)
    nn = upsample_nearest(downsample_majority(truth, (4, 4, 4), 3), (4, 4, 4))
    return {
        "case": "time", "minutes": wall / 60, "peak_gb": peak / 2**30,
        "command": " ".join(cmd[2:]), "last_line": proc.stdout.strip().splitlines()[-1],
        "accuracy": float(np.mean(fused_idx == truth)),
        "nearest_accuracy": float(np.mean(nn == truth)),
        "fused": _descriptors(fused_idx, 3, False), "truth": _descriptors(truth, 3, False),
    }  # fmt: skip


def table(out: Path) -> str:
    """Markdown of the stored results."""
    lines = []
    t = out / "truth.json"
    if t.exists():
        r = json.loads(t.read_text())
        names = r["names"]
        lines += [f"### Known truth: electrode.tiff {r['size']}³, ×4 scans "
                  f"(model phases {names})", ""]  # fmt: skip
        truth = r["truth"]
        for scan_name, rec in r["scans"].items():
            lines += [f"**{scan_name}** ({len(rec['draws'])} draws, "
                      f"{rec['seconds_per_draw']:.0f} s per draw)", "",
                      "| volume | voxel accuracy | agreement | VF error (per phase) | "
                      "S_V error | mean chord error | τ (z) |",
                      "|---|---|---|---|---|---|---|"]  # fmt: skip

            def row(label: str, d: dict, agree: str = "–") -> str:
                vf = " / ".join(f"{a - b:+.3f}" for a, b in zip(d["vf"], truth["vf"], strict=True))
                sv = " / ".join(f"{100 * (a / b - 1):+.1f} %" for a, b in
                                zip(d["sv"], truth["sv"], strict=True))  # fmt: skip
                ch = " / ".join(f"{100 * (a / b - 1):+.1f} %" for a, b in
                                zip(d["chord"], truth["chord"], strict=True))  # fmt: skip
                tau = " / ".join(f"{v:.2f}" for v in d["tau"]) if "tau" in d else "–"
                return f"| {label} | {d['accuracy']:.3f} | {agree} | {vf} | {sv} | {ch} | {tau} |"

            if "tau" in truth:
                lines.append("| truth | 1 | – | – | – | – | "
                             + " / ".join(f"{v:.2f}" for v in truth["tau"]) + " |")  # fmt: skip
            if "nearest" in rec:
                lines.append(row("nearest up-sampling", rec["nearest"], "1.000"))
            lines.append(row("unconditioned realization", r["unconditioned"]))
            for d in rec["draws"]:
                lines.append(row(f"fused, seed {d['seed']}", d, f"{d['agreement']:.3f}"))
            lines.append(row(f"argmax of {len(rec['draws'])} draws", rec["argmax"]))
            lines.append("")
    for name in ("sofc", "separator", "time"):
        p = out / f"{name}.json"
        if p.exists():
            lines += [f"### {name}", "", "```", json.dumps(json.loads(p.read_text()), indent=1),
                      "```", ""]  # fmt: skip
    return "\n".join(lines)


CASES = {"truth": case_truth, "sofc": case_sofc, "separator": case_separator, "time": case_time}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help=f"cases: {', '.join(CASES)}")
    p.add_argument("--out", default="/tmp/gencal-fusion")
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--size", type=int, default=256, help="truth: edge of the truth crop")
    p.add_argument("--sofc-scale", type=int, default=4)
    p.add_argument("--no-tau", dest="tau", action="store_false", help="skip TauFactor")
    p.add_argument("--device", default="cpu")
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        if name not in CASES:
            p.error(f"unknown case {name!r}; choose from {', '.join(CASES)}")
        res = CASES[name](args, out)
        (out / f"{name}.json").write_text(json.dumps(res, indent=1))
    text = table(out)
    (out / "table.md").write_text(text)
    if args.table or args.names:
        print(text)


if __name__ == "__main__":
    main()
