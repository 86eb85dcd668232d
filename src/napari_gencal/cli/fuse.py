"""`gencal fuse`: a high-resolution twin conditioned on a low-resolution 3D scan."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `fuse` subcommand."""
    p = sub.add_parser(
        "fuse",
        help="fuse a calibrated model with a low-resolution 3D scan (super-resolution twin)",
        description=(
            "Draw a high-resolution 3D realization of MODEL conditioned on the low-resolution "
            "label volume LOWRES: its block majorities reproduce the scan, its fine structure "
            "is the model's. Several --draws give a per-voxel phase probability."
        ),
    )
    p.add_argument("model", help="model file (JSON) calibrated at the high resolution")
    p.add_argument("lowres", help="low-resolution 3D label volume (TIFF, NPY, folder of slices)")
    p.add_argument(
        "--scale", type=int, nargs="+", metavar="S",
        help="up-sampling factor (one, or Z Y X); default: the ratio of the voxel sizes",
    )  # fmt: skip
    p.add_argument(
        "--map", dest="mapping", metavar="SCAN=MODEL[+MODEL],…",
        help="scan labels → model labels, e.g. '0=0+170,1=85' when the scan merges pore and "
        "binder (default: the scan uses the model's labels)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output TIFF of the fused volume")
    p.add_argument("--draws", type=int, default=1, help="conditional draws (default 1)")
    p.add_argument(
        "--probability", metavar="FILE",
        help="with --draws > 1: write the per-voxel phase probability (float32, C Z Y X TIFF)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the first draw (default 0)")
    p.add_argument("--steps", type=int, help="optimisation steps (default 60)")
    p.add_argument(
        "--blur", type=float, help="the scan's point-spread, Gaussian sd in high-res voxels"
    )
    p.add_argument(
        "--chunks", type=int, nargs="+", metavar="N",
        help="fuse in chunks of this many scan voxels (one or Z Y X), with halos: bounded memory",
    )  # fmt: skip
    p.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="with --chunks: run the chunks on this Dask scheduler (tcp://host:8786)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, help="with --chunks: a local Dask cluster of this many workers"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, fuse, write; returns the exit status."""
    from pathlib import Path

    from .. import api
    from ..core.io import atomic_write, write_tiff
    from . import CLIError

    out = Path(args.out)
    targets = [out] + ([Path(args.probability)] if args.probability else [])
    for t in targets:
        if t.exists() and not args.overwrite:
            raise FileExistsError(f"{t} already exists; choose another name or pass --overwrite")
    if args.probability and args.draws < 2:
        raise CLIError("--probability needs --draws 2 or more")
    if args.scale is not None and len(args.scale) not in (1, 3):
        raise CLIError("--scale takes one factor or three (Z Y X)")
    if (args.scheduler or args.workers) and not args.chunks:
        raise CLIError("--scheduler / --workers distribute chunks: give --chunks too")
    scale = None if args.scale is None else (args.scale[0] if len(args.scale) == 1 else args.scale)
    settings = {k: v for k, v in (("steps", args.steps), ("blur", args.blur)) if v is not None}
    model = api.load_model(args.model)
    client = None
    if args.scheduler or args.workers:
        from ..core.sweep.run import connect

        client = connect(args.scheduler, args.workers)
    chunks = None
    if args.chunks:
        chunks = args.chunks[0] if len(args.chunks) == 1 else tuple(args.chunks)
    last = [-1]

    def progress(rec: dict) -> None:
        if args.quiet:
            return
        if "chunk" in rec:
            print(f"chunk {rec['chunk']}/{rec['chunks']}", flush=True)
        elif rec["step"] % 10 == 0 and rec["step"] != last[0]:
            last[0] = rec["step"]
            draw = f"draw {rec['draw']}, " if "draw" in rec else ""
            print(f"{draw}step {rec['step']}: agreement {100 * rec['agreement']:.1f} %, "
                  f"{rec['seconds']:.0f} s", flush=True)  # fmt: skip

    try:
        res = api.fuse(model, args.lowres, scale, args.mapping, seed=args.seed, draws=args.draws,
                       chunks=chunks, client=client, device=args.device, progress=progress,
                       **settings)  # fmt: skip
    finally:
        if client is not None:
            client.close()
    vs = model.voxel_size
    vs = tuple(vs)[-3:] if vs is not None and len(vs) >= 3 else None
    write_tiff(out, res.labels, voxel_size=vs, unit=model.unit or "um", overwrite=args.overwrite)
    if args.probability:
        import tifffile

        prob = res.probability

        def _w(tmp: str) -> None:
            tifffile.imwrite(tmp, prob, metadata={"axes": "CZYX"}, photometric="minisblack")

        atomic_write(args.probability, _w, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {out} shape {res.labels.shape}: {res.summary()}")
        if args.probability:
            print(f"wrote {args.probability}: phase probability (C Z Y X), phases in model order "
                  f"{list(model.phase_map.labels) if model.phase_map else '1..k'}")  # fmt: skip
    return 0
