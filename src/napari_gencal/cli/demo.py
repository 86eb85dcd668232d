"""`gencal demo`: the whole path on the bundled SOFC sample, in a few minutes on a laptop CPU.

calibrate (the CLI's pipeline: settings from the data, phase order, verdict) → model.json → a 3D
volume → descriptors of the data, of 10 generated sections and of the volume → report.md with the
verdict, Table 1/2-style comparisons (errors in per cent) and a figure of real vs generated slices
at the same scale.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    p = sub.add_parser(
        "demo",
        help="calibrate, generate and compare on a bundled sample (a few minutes)",
        description=(
            "Run the whole workflow on the bundled 2D SOFC anode sample: calibrate the 3D model "
            "from the image, save it, generate a 3D volume, and write a comparison report."
        ),
    )
    p.add_argument("--out", default="gencal-demo", help="output folder (default: gencal-demo)")
    p.add_argument("--minutes", type=float, default=3.0, help="calibration time budget (default 3)")
    p.add_argument("--size", type=int, default=128, help="edge of the generated volume")
    p.add_argument("--sample", default="sofc_2d", help="bundled sample to use")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--overwrite", action="store_true", help="replace files of an earlier demo")
    p.set_defaults(func=run)


def _table(rows: list[tuple], header: tuple) -> str:
    """Markdown table; the last column (the error) as a difference for volume fractions and in
    per cent otherwise."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in r[:-1]]
        err = r[-1]
        if isinstance(err, float):
            cells.append(f"{err:+.3f}" if r[1] == "volume_fraction" else f"{100 * err:+.1f} %")
        else:
            cells.append(str(err))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _panel(data_img, volume) -> str:
    side = min(min(data_img.shape), min(volume.shape[1:]))
    return f"{side}×{side}"


def comparison_rows(data: dict, model: dict, directions: tuple[str, ...]) -> list[tuple]:
    """Rows (phase, descriptor, data, model, error) of two ``describe`` results: the error is
    model − data for volume fractions and (model − data) / data otherwise."""
    rows = []
    for label, dp in data["phases"].items():
        mp = model["phases"].get(label, {})
        name = dp.get("name", label)
        for key in ("volume_fraction", "specific_surface_area"):
            d, m = dp.get(key), mp.get(key)
            if d is not None and m is not None:
                err = m - d if key == "volume_fraction" else ((m - d) / d if d else float("nan"))
                rows.append((name, key, d, m, err))
        for ax in directions:
            d = (dp.get("mean_chord_length") or {}).get(ax)
            m = (mp.get("mean_chord_length") or {}).get(ax)
            if d is not None and m is not None:
                rows.append((name, f"mean chord {ax}", d, m, (m - d) / d if d else float("nan")))
    return rows


def slices_figure(data_img, sections, volume, path: Path) -> None:
    """Real image, generated sections and slices of the volume side by side, every panel the same
    field of view at the same scale (a window of the smallest side, not stretched)."""
    import numpy as np
    from matplotlib.figure import Figure

    side = min(min(data_img.shape), min(volume.shape[1:]), min(sections.shape[1:]))
    win = (slice(0, side), slice(0, side))
    fig = Figure(figsize=(12, 3.2), dpi=110)
    axes = fig.subplots(1, 5)
    panels = [
        (data_img[win], "data"),
        (sections[0][win], "model section 1"),
        (sections[1][win], "model section 2"),
        (volume[volume.shape[0] // 2][win], "volume x–y"),
        (volume[:side, volume.shape[1] // 2, :side], "volume x–z"),
    ]
    vmax = max(int(np.max(p[0])) for p in panels)
    for ax, (img, title) in zip(axes, panels, strict=True):
        ax.imshow(img, cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{title} ({side}×{side} px)", fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    import numpy as np

    from ..core.calibrate import CalibrationConfig, prepare_data
    from ..core.calibrate.pipeline import CalibrationPipeline
    from ..core.descriptors.describe import describe
    from ..core.generate import generate, generate_sections
    from ..core.io import write_tiff
    from ..core.phases import to_indices
    from ..samples import load_sample
    from . import CLIError
    from .calibrate import follow

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {n: out / n for n in ("model.json", "volume.tif", "report.md", "slices.png")}
    existing = [str(p) for p in files.values() if p.exists()]
    if existing and not args.overwrite:
        raise CLIError(f"{existing[0]} already exists; choose another --out or pass --overwrite")
    log = sys.stderr
    t0 = time.perf_counter()
    img = load_sample(args.sample)
    pm = img.phase_map
    idx = to_indices(img.data, pm)
    print(f"sample {args.sample}: {img.metadata.get('description', '')}", file=log)
    config = CalibrationConfig.preset(
        "minutes", seed=args.seed, device=args.device, time_limit=60.0 * args.minutes
    )
    pipe = CalibrationPipeline(prepare_data(img), config)
    for note in pipe.notes:
        print(note, file=log)
    follow(pipe, log)
    model = pipe.best_so_far()
    model.save(files["model.json"], overwrite=args.overwrite)
    t_cal = time.perf_counter() - t0
    print(f"calibrated and checked in {t_cal / 60:.1f} min ({pipe.stop_reason}); wrote "
          f"{files['model.json']}", file=log)  # fmt: skip
    if pipe.verdict is not None:
        print(pipe.verdict.table(), file=log)

    n = args.size
    volume = generate(model, (n, n, n), seed=args.seed, device=args.device)
    write_tiff(files["volume.tif"], volume, overwrite=args.overwrite)
    print(f"generated a {n}³ volume: {files['volume.tif']}", file=log)

    basic = ("volume_fraction", "specific_surface_area", "mean_chord_length")
    side = min(idx.shape[-2:])
    sections = generate_sections(model, 10, side, seed=args.seed + 1, device=args.device)
    d_data = describe(img, include=basic)
    d_sec = describe(to_indices(sections, pm), pm, include=basic, sections=True)
    d_vol = describe(to_indices(volume, pm), pm, include=basic)
    data_img = img.data if img.data.ndim == 2 else img.data[img.data.shape[0] // 2]
    slices_figure(data_img, sections, volume, files["slices.png"])

    rows2d = comparison_rows(d_data, d_sec, ("y", "x"))
    rows3d = comparison_rows(d_data, d_vol, ("y", "x"))
    # The 3D volume's z chords against the data's in-plane mean (isotropic model, 2D data).
    for label, dp in d_data["phases"].items():
        chords = dp.get("mean_chord_length") or {}
        mean_xy = float(np.mean([v for k, v in chords.items() if k in "yx"])) if chords else None
        mz = d_vol["phases"][label]["mean_chord_length"].get("z")
        if mean_xy and mz is not None:
            rows3d.append(
                (dp.get("name", label), "mean chord z", mean_xy, mz, (mz - mean_xy) / mean_xy)
            )
    header = ("phase", "descriptor", "data", "model", "error")
    verdict = (
        pipe.verdict.markdown()
        if pipe.verdict is not None
        else f"**Verdict: not checked** (the calibration ended by {pipe.stop_reason})."
    )
    text = [
        "# napari-gencal demo report",
        "",
        f"Sample: {img.source} ({args.sample}). Calibration: Algorithm 3, budget "
        f"{args.minutes:g} min, {t_cal / 60:.1f} min with the check, {pipe.engine.step} steps, "
        f"stopped by {pipe.stop_reason}. Model: `model.json`; volume: `volume.tif` ({n}³, seed "
        f"{args.seed}).",
        "",
        *[f"* {note}" for note in pipe.notes],
        "",
        "## The check made at the end of the calibration",
        "",
        verdict,
        "",
        "Lengths in pixels; S_V in 1/pixel (2D: (4/π)·L_A Crofton; 3D: Ohser–Schladitz). Errors: "
        "volume fractions as differences, the rest in per cent of the data's value.",
        "",
        "## Table 1 style: 10 generated 2D sections vs the data",
        "",
        _table(rows2d, header),
        "",
        f"## Table 2 style: the generated {n}³ volume vs the data (z chords vs the data's "
        "in-plane mean)",
        "",
        _table(rows3d, header),
        "",
        f"![real vs generated slices](slices.png) — every panel is a {_panel(data_img, volume)} "
        "pixel window at the same scale.",
        "",
    ]
    files["report.md"].write_text("\n".join(text), encoding="utf-8")
    print(
        f"wrote {files['report.md']} and {files['slices.png']} "
        f"(total {(time.perf_counter() - t0) / 60:.1f} min)",
        file=log,
    )
    return 0
