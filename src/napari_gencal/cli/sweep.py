"""`gencal sweep`: virtual materials testing — vary a twin's knobs on a Dask cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `sweep` subcommand."""
    p = sub.add_parser(
        "sweep",
        help="vary a calibrated model's knobs, measure descriptors and transport (Dask)",
        description=(
            "Run a parameter sweep: for every point of a design and every realization, generate "
            "a 3D volume of the model with the knobs set, measure its descriptors and (with "
            "TauFactor) its effective transport, and write a tidy table. SPEC is a YAML file "
            "(model, design, realizations, shape, seed), or a model file with --knob/--values "
            "for the common one-knob grid. Finished rows are kept: an interrupted sweep continues "
            "with --resume."
        ),
    )
    p.add_argument("spec", help="sweep specification (YAML) or a model file (*.gencal.json)")
    p.add_argument("--out", required=True, help="result folder")
    p.add_argument(
        "--knob", action="append", default=[], metavar="NAME",
        help="with a model file: a knob to vary (repeat for a grid), e.g. vf:85, length_scale",
    )  # fmt: skip
    p.add_argument(
        "--values", action="append", default=[], metavar="V1,V2,…",
        help="with a model file: the values of the matching --knob",
    )  # fmt: skip
    p.add_argument("--n", type=int, default=3, help="realizations per point (default 3)")
    p.add_argument("--size", type=int, default=128, help="volume edge in voxels (default 128)")
    p.add_argument("--seed", type=int, default=0, help="sweep seed")
    p.add_argument("--no-transport", action="store_true", help="skip TauFactor (faster)")
    p.add_argument(
        "--cell", metavar="KEY=VALUE,…",
        help="also discharge each realization as a cell's cathode (PyBaMM), e.g. "
        "'active=85,electrolyte=0,conductors=170,voxel_size=0.4um,rates=0.2;1;2;3' "
        "(see gencal cell; a YAML spec takes a cell: section)",
    )  # fmt: skip
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--workers", type=int, help="workers of the local cluster (default: cores)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _spec(args: argparse.Namespace):
    from ..core.model import ExcursionModel
    from ..core.sweep.design import grid
    from ..core.sweep.run import MEASURES, SweepSpec
    from . import CLIError

    path = Path(args.spec)
    if path.name.endswith(".json"):
        if not args.knob or len(args.knob) != len(args.values):
            raise CLIError(
                "with a model file give each knob and its values: --knob vf:85 --values 0.3,0.4"
            )
        try:
            ranges = {k: [float(v) for v in vals.split(",") if v.strip()]
                      for k, vals in zip(args.knob, args.values, strict=True)}  # fmt: skip
        except ValueError:
            raise CLIError("--values takes numbers separated by commas, e.g. 0.3,0.4,0.5") from None
        measures = tuple(m for m in MEASURES if not (args.no_transport and m == "transport"))
        extra = {}
        if args.cell:
            measures += ("cell",)
            extra["cell"] = _cell_option(args.cell)
        return SweepSpec(ExcursionModel.load(path).to_dict(), grid(ranges), args.n,
                         (args.size,) * 3, args.seed, measures, extra=extra)  # fmt: skip
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CLIError(f"{path} is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise CLIError(f"{path} must hold a mapping (model:, design:, …)")
    if args.no_transport:
        data["measures"] = [m for m in data.get("measures", MEASURES) if m != "transport"]
    if args.cell:
        data["cell"] = _cell_option(args.cell)
    return SweepSpec.from_mapping(data, base_dir=path.parent)


def _cell_option(text: str) -> dict:
    """``active=85,electrolyte=0,conductors=170;171,rates=0.2;1;2`` → a cell settings dict."""
    from . import CLIError

    out: dict = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise CLIError(f"--cell takes KEY=VALUE pairs separated by commas, got {part!r}")
        values = [v.strip() for v in value.split(";")]
        if key in ("conductors", "rates"):
            out[key] = values
        elif key in ("voxel_size", "thickness", "base", "model", "axis", "radius", "active",
                     "electrolyte", "separator", "electrolyte_kind"):  # fmt: skip
            out[key] = value.strip()
        else:
            try:
                out[key] = float(value)
            except ValueError:
                raise CLIError(f"--cell {key} must be a number, got {value!r}") from None
    return out


def run(args: argparse.Namespace) -> int:
    """Run the sweep; print where the table is and the fitted relations."""
    from ..core.sweep.report import sweep_report
    from ..core.sweep.run import run_sweep

    spec = _spec(args)
    log = sys.stderr
    print(
        f"sweep: {spec.design.n_points} points × {spec.realizations} realizations of "
        f"{'×'.join(map(str, spec.shape))} voxels, knobs {', '.join(spec.design.knobs)}",
        file=log,
    )
    width = 30

    def progress(done: int, total: int, row: dict) -> None:
        if args.quiet:
            return
        filled = int(width * done / max(total, 1))
        err = " (error recorded)" if row.get("error") else ""
        end = "\n" if done == total or not log.isatty() else ""
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}{err}   ", end=end,
              file=log, flush=True)  # fmt: skip

    table = run_sweep(spec, args.out, scheduler=args.scheduler, n_workers=args.workers,
                      resume=args.resume, progress=progress)  # fmt: skip
    errors = int((table["error"].fillna("") != "").sum()) if "error" in table else 0
    text = sweep_report(spec, table, Path(args.out))
    print(text, file=log)
    print(f"wrote {Path(args.out) / 'table.parquet'}, table.csv, summary.csv, report.md"
          + (f" ({errors} rows with errors)" if errors else ""), file=log)  # fmt: skip
    return 0
