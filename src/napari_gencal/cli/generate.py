"""`gencal generate`: a label volume (or image) from a model file."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `generate` subcommand."""
    p = sub.add_parser(
        "generate",
        help="generate a 3D label volume (or 2D section) from a model file",
        description=(
            "Generate a hard-threshold realization of a calibrated excursion-set model and write "
            "it as a TIFF with the model's label values and voxel size. Same model, seed and "
            "device give the same volume; --chunks gives the identical volume block by block."
        ),
    )
    p.add_argument("model", help="model file (JSON) written by `gencal calibrate`")
    p.add_argument(
        "--shape",
        nargs="+",
        type=int,
        required=True,
        metavar="N",
        help="output size: Z Y X for a volume, Y X for a planar section",
    )
    p.add_argument(
        "--out", required=True,
        help="output TIFF, or a .zarr folder: written chunk by chunk in parallel (twins larger "
        "than memory; identical voxels)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int,
        help="with .zarr: threads generating chunks at once (default: the cores); peak memory ≈ "
        "workers × one chunk's working memory",
    )  # fmt: skip
    p.add_argument(
        "--voxel-size",
        help="generate at this voxel size, exactly (through the model's length scale): one "
        "value for cubic voxels or z,y,x, with a unit (0.25um) or in the model's unit "
        "(default: the model's own voxels)",
    )
    p.add_argument("--unit", help="unit of --voxel-size when it names none (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument(
        "--periodic", action="store_true", help="periodic boundaries (default: no wrap-around)"
    )
    p.add_argument(
        "--chunks",
        type=int,
        nargs="+",
        metavar="N",
        help="generate in blocks of this size (one value or Z Y X) to bound memory; 0: whole "
        "(default: whole when it fits 2 GiB of working memory, else equal blocks that do)",
    )
    p.add_argument(
        "--precision",
        default="double",
        choices=("double", "single"),
        help="field arithmetic (single: faster, chunk exactness only up to rounding)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the model, generate, write the TIFF; returns the exit status."""
    from pathlib import Path

    from ..core.generate import generate
    from ..core.io import write_tiff
    from ..core.model import ExcursionModel
    from . import CLIError

    if len(args.shape) not in (2, 3):
        raise CLIError(f"--shape takes 2 (Y X) or 3 (Z Y X) sizes, got {len(args.shape)}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        # Check before the (possibly long) generation, not after.
        raise FileExistsError(f"{out} already exists; choose another name or pass --overwrite")
    model = ExcursionModel.load(args.model)
    if args.voxel_size is not None:
        from ..api import model_at_voxel_size

        model = model_at_voxel_size(model, args.voxel_size, args.unit)
    if out.name.lower().endswith(".zarr"):
        from ..core.outofcore import DEFAULT_CHUNK, generate_to_zarr

        if len(args.shape) != 3:
            raise CLIError("a .zarr twin is a 3D volume: give --shape Z Y X")
        if args.periodic:
            raise CLIError("a .zarr twin is generated in chunks, which cannot be periodic")
        ch = args.chunks[0] if args.chunks and len(args.chunks) == 1 else (
            tuple(args.chunks) if args.chunks else DEFAULT_CHUNK
        )  # fmt: skip
        t0 = time.perf_counter()
        device = "cpu" if args.device == "auto" else args.device
        generate_to_zarr(
            model, tuple(args.shape), out, seed=args.seed, chunks=ch,
            overwrite=args.overwrite, device=device, num_workers=args.workers,
        )  # fmt: skip
        if not args.quiet:
            print(f"wrote {out} ({'×'.join(map(str, args.shape))} voxels in chunks of {ch}, "
                  f"{time.perf_counter() - t0:.1f} s)")  # fmt: skip
        return 0
    chunks: object = "auto"
    if args.chunks == [0]:
        chunks = None
    elif args.chunks:
        if len(args.chunks) not in (1, len(args.shape)):
            raise CLIError(f"--chunks takes one size or {len(args.shape)} sizes")
        chunks = args.chunks[0] if len(args.chunks) == 1 else tuple(args.chunks)
    t0 = time.perf_counter()
    labels = generate(
        model,
        tuple(args.shape),
        seed=args.seed,
        device=args.device,
        periodic=args.periodic,
        chunks=chunks,
        precision=args.precision,
    )
    elapsed = time.perf_counter() - t0
    vs = model.voxel_size
    if vs is not None:
        vs = tuple(vs)[-labels.ndim :] if len(vs) >= labels.ndim else None
    write_tiff(
        out,
        labels,
        voxel_size=vs,
        unit=model.unit or "um",
        overwrite=args.overwrite,
    )
    if not args.quiet:
        print(
            f"wrote {out} shape {labels.shape} dtype {labels.dtype} "
            f"({labels.size / max(elapsed, 1e-9) / 1e6:.1f} Mvoxel/s, seed {args.seed})"
        )
    return 0
