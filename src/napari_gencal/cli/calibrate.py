"""`gencal calibrate`: calibrate an excursion-set model from a segmented image or stack."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `calibrate` subcommand."""
    p = sub.add_parser(
        "calibrate",
        help="calibrate a 3D excursion-set model from segmented 2D images (or slices of a stack)",
        description=(
            "Calibrate the 3D excursion-set model (method.md §5) on 2D sections of IMAGE and "
            "write a model file. Window, kernel radius, r_max and the working resolution follow "
            "the data's structure scale; the phase order is chosen from the data (the labels of "
            "generated volumes stay yours). A 3D stack is used as sections normal to --axis; "
            "with --axis z the anisotropy factor b along z is fitted from the stack. At the end "
            "the model is checked against the data and a verdict is printed and stored."
        ),
    )
    p.add_argument("image", help="segmented image: TIFF, PNG, NPY, zipped TIFF or folder of slices")
    p.add_argument("--out", required=True, help="model file to write (JSON)")
    p.add_argument("--phases", help="label of each phase in order, e.g. 0,85,170 (2 or 3 phases)")
    p.add_argument(
        "--axis",
        default="auto",
        choices=("auto", "z", "y", "x"),
        help="for a 3D stack: the axis normal to the sections used (z: the x–y planes; auto, "
        "the default: z unless the x–y planes are anisotropic and another axis's are not)",
    )
    p.add_argument("--model", default="high", choices=("high", "low", "both"))
    p.add_argument("--algorithm", type=int, default=3, choices=(1, 2, 3))
    p.add_argument(
        "--preset",
        default="minutes",
        choices=("minutes", "quick", "default", "paper"),
        help="budget (minutes: a few minutes on a laptop CPU, the default; quick: its old name; "
        "paper: the paper's budget, hours)",
    )
    p.add_argument("--max-epochs", type=int, help="epoch limit (overrides the preset)")
    p.add_argument("--time-limit", type=float, help="wall-clock limit in minutes")
    p.add_argument("--window", type=int, help="section/discriminator window (power of two ≥ 32)")
    p.add_argument("--batch", type=int, help="sections per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument(
        "--voxel-size",
        help="pixel/voxel size (stored in the model): one value or z,y,x, with a unit "
        "(0.4um, 0.1,0.02,0.02um) or in --unit; overrides the file's",
    )
    p.add_argument("--unit", help="unit of --voxel-size when it names none (default: the file's)")
    p.add_argument("--checkpoint", help="write a checkpoint here every few epochs")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint")
    p.add_argument(
        "--continue",
        dest="continue_from",
        metavar="MODEL",
        help="improve a model calibrated on this data: apply the remedy its verdict names (a "
        "longer run, the other phase order, per-field anisotropy, the plurigaussian rule) from "
        "where it stopped; the better of the two models is written",
    )
    p.add_argument(
        "--remedy",
        choices=("longer", "other_order", "per_field_anisotropy", "plurigaussian",
                 "connectivity"),
        help="with --continue: this remedy instead of the verdict's first",
    )  # fmt: skip
    p.add_argument(
        "--no-anisotropy",
        action="store_true",
        help="do not fit b from a 3D stack nor the stretch of a 2D image (keep b = 1)",
    )
    p.add_argument(
        "--keep-order",
        action="store_true",
        help="use --phases in the given order as the model's phases 1, 2, 3 (default: chosen "
        "from the data)",
    )
    p.add_argument(
        "--no-check", action="store_true", help="skip the final check against the data"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any calibration setting (docs/calibration.md), e.g. --set patience=50; repeatable",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _bar(rec, width: int = 28) -> str:
    filled = int(round(width * rec.fraction))
    eta = f"{rec.remaining / 60:.1f} min left" if rec.remaining is not None else ""
    best = f" best {rec.best_score:.4f}" if rec.best_score is not None else ""
    loss = rec.losses.get("total", float("nan"))
    loss_s = f" loss {loss:.4g}" if loss == loss else ""
    return (
        f"\r[{'#' * filled}{'.' * (width - filled)}] {rec.stage} {rec.phase:<14} "
        f"step {rec.step}/{rec.total_steps}{loss_s}{best} {eta}   "
    )


def follow(cal, log, quiet: bool = False) -> None:
    """Run a calibration (engine or pipeline) to its end, showing progress on ``log``.

    A terminal gets a bar redrawn at most 5 times a second; a log file gets a line per new best
    model and at least every 30 s, so CI logs and ``nohup`` files stay readable.
    """
    tty = log.isatty() and not quiet
    last = 0.0
    for rec in cal.run():
        if rec.message:  # a choice the user should read (e.g. the phase order), even when quiet
            print(("\n" if tty else "") + rec.message, file=log, flush=True)
        if quiet:
            continue
        now = time.monotonic()
        if tty and (now - last > 0.2 or rec.done):
            print(_bar(rec), end="", file=log, flush=True)
            last = now
        elif not tty and (rec.new_best or rec.done or rec.stage == "finish" or now - last > 30):
            print(rec.summary(), file=log, flush=True)
            last = now
    if tty:
        print(file=log)


def run(args: argparse.Namespace) -> int:
    """Read, calibrate, write the model; returns the exit status."""
    from ..core.calibrate import CalibrationConfig, prepare_data
    from ..core.calibrate.pipeline import CalibrationPipeline
    from ..core.io import read_labels
    from . import CLIError

    out = Path(args.out)
    high_out = out.with_name(out.stem + ".high" + out.suffix)
    for target in [out] + ([high_out] if args.model == "both" else []):
        if target.exists() and not args.overwrite:
            raise CLIError(f"{target} already exists; choose another --out or pass --overwrite")
    changes = {
        "algorithm": args.algorithm,
        "model": args.model,
        "seed": args.seed,
        "device": args.device,
        "checkpoint": args.checkpoint,
    }
    if args.max_epochs is not None:
        changes["max_epochs"] = args.max_epochs
    if args.time_limit is not None:
        changes["time_limit"] = 60.0 * args.time_limit
    if args.window is not None:
        changes["window"] = args.window
    if args.batch is not None:
        changes["batch"] = args.batch
    changes.update(_parse_sets(args.set))
    config = CalibrationConfig.preset(args.preset, **changes)

    img = read_labels(args.image, phases=args.phases, voxel_size=args.voxel_size, unit=args.unit)
    previous = None
    if args.continue_from:
        from ..core.model import ExcursionModel

        if not os.path.isfile(args.continue_from):
            raise CLIError(
                f"--continue {args.continue_from}: no such model file; give the .gencal.json "
                "that an earlier `gencal calibrate --out` wrote"
            )
        previous = ExcursionModel.load(args.continue_from)
    elif args.remedy:
        raise CLIError("--remedy goes with --continue MODEL")
    try:
        data = prepare_data(img, axis=args.axis, fit_b=not args.no_anisotropy)
        pipe = CalibrationPipeline(
            data, config, resume=args.resume, auto_order=not args.keep_order,
            check=not args.no_check, continue_from=previous, remedy=args.remedy,
        )  # fmt: skip
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    log = sys.stderr
    if data.anisotropy_note:
        print(data.anisotropy_note, file=log)
    print(
        f"calibrating on {data.sections.shape[0]} section(s) of {data.sections.shape[1]}×"
        f"{data.sections.shape[2]}, phases {list(data.phase_map.labels)}, algorithm "
        f"{config.algorithm}, model {config.model}",
        file=log,
    )
    for note in pipe.notes:  # one readable line each, not Python's file:line warning format
        told = note.startswith(("settings from", "phase order", "section axis"))
        prefix = "" if told else "warning: "
        print(f"{prefix}{note}", file=log)
    try:
        follow(pipe, log, quiet=args.quiet)
    except KeyboardInterrupt:
        print("\ninterrupted: writing the best model so far", file=log)
    final = pipe.result if pipe.result is not None else pipe.best_so_far()
    if final.metadata.get("anisotropy", {}).get("model_refined") is not None:
        axis = "zyx"[final.anisotropy_axis]
        print(f"anisotropy along {axis}: b = {final.anisotropy:.3f}", file=log)
    stretched = [(ax, v) for ax, v in zip("zyx", final.axis_stretch, strict=True) if v != 1.0]
    if stretched:
        shown = ", ".join(f"{v:.3f} along {ax}" for ax, v in stretched)
        print(f"stretch within the sections: {shown}", file=log)
    if pipe.verdict is not None:
        print(pipe.verdict.table(), file=log)
    elif not args.no_check:
        print(f"verdict: not checked ({pipe.stop_reason or 'interrupted'})", file=log)
    cont = final.metadata.get("continued")
    if cont:
        print(f"continued ({cont['kind']}): kept {cont['kept']}", file=log)
    final.save(out, overwrite=args.overwrite)
    print(f"wrote {out} ({pipe.stop_reason or 'finished'})", file=log)
    if args.model == "both" and "high" in pipe.models:
        pipe.models["high"].save(high_out, overwrite=args.overwrite)
        print(f"wrote {high_out} (high-parametric model)", file=log)
    reason = pipe.stop_reason or ""
    return 1 if reason.startswith("non-finite") else 0


def _parse_sets(items: list[str]) -> dict:
    """``["patience=50", "betas=[0.5,0.9]"]`` → dict; values are JSON when they parse as JSON."""
    import json

    from . import CLIError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set needs KEY=VALUE, got {item!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out
