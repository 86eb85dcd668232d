"""`gencal tppf`: two-point coverage probability functions of a segmented image, as CSV and PNG."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `tppf` subcommand."""
    p = sub.add_parser(
        "tppf",
        help="two-point coverage probability functions C_ij(r) of a segmented image",
        description=(
            "Estimate the two-point coverage probability functions C_ij(r) of every phase pair "
            "(minus-sampling lattice estimator, Gaussian-kernel radial regression over all "
            "orthants) of a 2D image or a 3D volume, write them as CSV and optionally plot them."
        ),
    )
    p.add_argument("image", help="segmented image: TIFF, PNG, NPY, zipped TIFF or a slice folder")
    p.add_argument(
        "--phases",
        help="label value of each phase in phase order, e.g. 0,85,170 (needed for > 3 labels)",
    )
    p.add_argument(
        "--axis",
        default="none",
        choices=("z", "y", "x", "none"),
        help="for a volume: treat it as 2D sections normal to this axis and average them "
        "(z: the x-y planes), or none for the 3D estimator (default)",
    )
    p.add_argument(
        "--rmax",
        type=int,
        help="largest distance in pixels (default: the data rule — where every curve settles "
        "within 0.01 of phi_i*phi_j, times 1.5, capped at 100 and a quarter of the side)",
    )
    p.add_argument(
        "--bandwidth", type=float, default=1.0, help="Gaussian kernel bandwidth in pixels (1)"
    )
    p.add_argument(
        "--voxel-size", help="pixel size, e.g. 0.4um (adds an r_phys column; overrides the file's)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--plot", help="also save a figure of the curves (PNG, PDF or SVG)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the image, estimate the curves, write CSV (and plot); returns the exit status."""
    from pathlib import Path

    from ..core.io import atomic_write, read_labels
    from ..core.tppf import tppf_of_labels
    from . import CLIError

    out = Path(args.out)
    plot = Path(args.plot) if args.plot else None
    # Check the outputs before the (possibly long) computation, not after.
    for path in (out, plot):
        if path is not None and path.exists() and not args.overwrite:
            raise FileExistsError(f"{path} already exists; choose another name or pass --overwrite")
    if plot is not None and plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise CLIError(f"--plot must end in .png, .pdf or .svg, got {plot.name!r}")
    image = read_labels(args.image, phases=args.phases, voxel_size=args.voxel_size)
    axis = None if args.axis == "none" else args.axis
    if image.ndim == 2 and axis is not None:
        raise CLIError(f"--axis {axis} needs a 3D volume; {args.image} is a 2D image")
    t0 = time.perf_counter()
    res = tppf_of_labels(
        image, axis=axis, r_max=args.rmax, bandwidth=args.bandwidth, device=args.device
    )
    elapsed = time.perf_counter() - t0
    res.to_csv(out, overwrite=args.overwrite)
    if plot is not None:
        fig = res.figure()
        fmt = plot.suffix.lower().lstrip(".")
        atomic_write(plot, lambda tmp: fig.savefig(tmp, format=fmt, dpi=150), args.overwrite)
    if not args.quiet:
        names = res.phase_names
        fr = ", ".join(f"{n} {f:.4f}" for n, f in zip(names, res.fractions, strict=True))
        print(f"{args.image}: {image.data.shape} {res.mode}, {res.n_images} image(s)")
        print(f"  volume fractions: {fr}")
        print(f"  r_max = {res.r_max} px, bandwidth {res.bandwidth:g} px, {elapsed:.2f} s")
        print(f"  wrote {out}" + (f" and {plot}" if plot is not None else ""))
    return 0
