"""`gencal cell`: a battery cell per twin (or volume) — figures, PyBaMM discharges, BPX."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `cell` subcommand."""
    p = sub.add_parser(
        "cell",
        help="simulate a battery cell whose cathode is the twin (PyBaMM): capacity per C-rate",
        description=(
            "Measure the twin's figures (interfaces, tortuosity factors, effective electronic "
            "conductivity, accessible active material), put them into a PyBaMM parameter set "
            "as its positive electrode, discharge it at each C-rate and report delivered "
            "capacity, energy and the voltage curves; export the parameters as BPX. Needs "
            "pip install 'napari-gencal[cell]'."
        ),
    )
    p.add_argument(
        "source", metavar="MODEL_OR_VOLUME",
        help="model file (*.gencal.json; twins are generated) or a 3D label volume",
    )  # fmt: skip
    p.add_argument("--active", required=True, help="label of the active material, e.g. 85")
    p.add_argument("--electrolyte", required=True, help="label of the electrolyte phase, e.g. 0")
    p.add_argument(
        "--conductor", action="append", default=[], metavar="LABEL",
        help="label of an electron-conducting phase (carbon binder), repeatable",
    )  # fmt: skip
    p.add_argument(
        "--voxel-size", help="voxel edge, e.g. 0.4um (a bare number is µm; default: the file's)"
    )
    p.add_argument("--thickness", help="electrode thickness, e.g. 60um (default: the base set's)")
    p.add_argument("--base", default="Chen2020", help="PyBaMM parameter set (default Chen2020)")
    p.add_argument("--rates", default="0.2,1,2,3", help="C-rates (default 0.2,1,2,3)")
    p.add_argument("--model", choices=("DFN", "SPMe"), default="DFN", help="cell model")
    p.add_argument("--data", help="also run this data volume, side by side with the twins")
    p.add_argument("--phases", help="label values of a volume's phases, e.g. 0,85,170")
    p.add_argument("--realizations", type=int, default=1, help="twins per model (default 1)")
    p.add_argument("--shape", type=int, nargs="+", default=[128], metavar="N",
                   help="twin shape: one edge or Z Y X (default 128)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the first twin (default 0)")
    p.add_argument("--axis", default="z", choices=("z", "y", "x"), help="through-plane axis")
    p.add_argument("--sigma-active", type=float, help="active material conductivity [S/m]")
    p.add_argument("--sigma-conductor", type=float, default=10.0,
                   help="conductor (carbon binder) conductivity [S/m] (default 10)")  # fmt: skip
    p.add_argument("--solid-electrolyte", type=float, metavar="SIGMA",
                   help="the electrolyte is a solid of this ionic conductivity [S/m]: single-ion "
                   "conductor, t+ = 1 (see docs/decisions/cell.md)")  # fmt: skip
    p.add_argument(
        "--radius", choices=("geometric", "wetted"), default="geometric",
        help="particle radius from the active surface (default) or its wetted part",
    )  # fmt: skip
    p.add_argument("--out", help="write table.csv, cell.json, discharge.png and BPX files here")
    p.add_argument("--csv", help="write the table as CSV to this file")
    p.add_argument("--plot", help="write the discharge curves to this PNG")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto (generation and TauFactor)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the cells and print the table; returns the exit status."""
    from pathlib import Path

    from .. import api
    from ..core.cell import pybamm_available
    from ..core.io import atomic_write
    from . import CLIError

    if not pybamm_available():
        raise CLIError("gencal cell needs PyBaMM: pip install 'napari-gencal[cell]'")
    for target in (args.csv, args.plot):
        if target and Path(target).exists() and not args.overwrite:
            raise FileExistsError(f"{target} already exists; choose another name or --overwrite")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"{args.out} exists and is not empty; choose another or --overwrite")
    if len(args.shape) not in (1, 3):
        raise CLIError("--shape takes one edge or three (Z Y X)")
    settings = {"axis": args.axis, "sigma_conductor": args.sigma_conductor, "radius": args.radius}
    if args.sigma_active is not None:
        settings["sigma_active"] = args.sigma_active
    if args.solid_electrolyte is not None:
        settings.update(electrolyte_kind="solid", electrolyte_conductivity=args.solid_electrolyte)

    def progress(rec: dict) -> None:
        if not args.quiet and rec.get("stage") in ("figures", "discharges"):
            print(f"{rec['run']}: {rec['stage']} …", flush=True)

    res = api.cell(
        args.source, args.active, args.electrolyte, tuple(args.conductor), args.voxel_size,
        args.thickness, args.base, args.rates, args.model, data=args.data, phases=args.phases,
        realizations=args.realizations,
        shape=args.shape[0] if len(args.shape) == 1 else tuple(args.shape), seed=args.seed,
        out=args.out, overwrite=args.overwrite, device=args.device, progress=progress,
        **settings,
    )  # fmt: skip
    if args.csv:
        res.to_csv(args.csv, overwrite=args.overwrite)
    if args.plot:
        fig = res.figure()
        atomic_write(args.plot, lambda tmp: fig.savefig(tmp, dpi=120, format="png"),
                     args.overwrite)  # fmt: skip
    if not args.quiet:
        print(res)
        spread = res.spread()
        if spread and sum(r.name.startswith("twin") for r in res.runs) > 1:
            print("twins' spread: " + ", ".join(
                f"{s['rate']:g}C {s['mean']:.4g} ± {s['sd']:.2g} A.h" for s in spread))  # fmt: skip
        for path in filter(None, (args.out, args.csv, args.plot)):
            print(f"wrote {path}")
    return 0 if all(not r.error for r in res.runs) else 1
