"""`gencal compare`: data vs model (or vs a generated volume) descriptors, table and report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `compare` subcommand."""
    p = sub.add_parser(
        "compare",
        help="compare the descriptors of data and a model (or a generated label volume)",
        description=(
            "Describe the data and the model realizations (or a label volume) and print data, "
            "model, absolute and relative errors per phase and descriptor (paper Tables 1-2 "
            "style). --report writes report.md with the figures, JSON and CSV into a new folder."
        ),
    )
    p.add_argument("data", help="segmented data image or volume")
    p.add_argument(
        "model", help="a model file (*.json) to generate from, or a label image/volume to compare"
    )
    p.add_argument("--phases", help="label value of each phase in phase order, e.g. 0,85,170")
    p.add_argument(
        "--voxel-size", help="voxel size of the data: one value or z,y,x, e.g. 0.4um (overrides "
        "the file's)",
    )  # fmt: skip
    p.add_argument("--n", type=int, default=10, help="generated sections for 2D data (10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the realizations (0)")
    p.add_argument("--directions", default="z,y,x", help="directions, comma separated")
    p.add_argument("--include", help="descriptors, comma separated (see gencal describe)")
    p.add_argument("--device", default="cpu", help="device for generation (cpu, auto, cuda)")
    p.add_argument("--report", help="write report.md (+ PNG, JSON, CSV) at this path")
    p.add_argument("--csv", help="write the table as CSV")
    p.add_argument("--json", dest="json_out", help="write the comparison as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read both inputs, compare, print, and write the requested outputs."""
    from pathlib import Path

    from ..core.compare import compare_images, write_report
    from ..core.io import read_labels

    for path in (args.report, args.csv, args.json_out):
        if path and Path(path).exists() and not args.overwrite:
            raise FileExistsError(f"{path} already exists; choose another name or pass --overwrite")
    data = read_labels(args.data, phases=args.phases, voxel_size=args.voxel_size)
    if str(args.model).lower().endswith(".json"):
        from ..core.model import ExcursionModel

        other = ExcursionModel.load(args.model)
    else:
        other = read_labels(args.model, phases=data.phase_map)
    include = None
    if args.include:
        include = tuple(d.strip() for d in args.include.split(",") if d.strip())
    directions = tuple(d.strip() for d in args.directions.split(",") if d.strip())
    comp = compare_images(
        data,
        other,
        n=args.n,
        seed=args.seed,
        include=include,
        directions=directions,
        device=args.device,
        tppf=bool(args.report),
    )
    print(comp)
    if args.csv:
        comp.to_csv(args.csv, overwrite=args.overwrite)
        print(f"wrote {args.csv}")
    if args.json_out:
        comp.to_json(args.json_out, overwrite=args.overwrite)
        print(f"wrote {args.json_out}")
    if args.report:
        out = write_report(comp, args.report, overwrite=args.overwrite)
        print(f"wrote {out}")
    return 0
