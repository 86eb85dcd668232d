"""`gencal export`: a twin as VTK/MetaImage/NRRD images, meshes per phase, or a pore network."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `export` subcommand."""
    p = sub.add_parser(
        "export",
        help="write a label volume for a simulator: vti, mhd, nrrd, stl, ply, pnm",
        description=(
            "Write a label volume (TIFF, NPY, slice folder, or a .zarr twin) in the formats that "
            "simulators open: VTK image data (.vti) and MetaImage/NRRD with spacing and origin, "
            "a watertight surface mesh per phase (.stl/.ply) that encloses the phase's voxel "
            "volume, or the pore network of one phase for OpenPNM (.pnm, PoreSpy's snow2). "
            "Lengths are in the volume's unit (its voxel size from the file, the zarr twin, or "
            "--voxel-size), else in voxels. A .zarr twin is written to vti/mhd chunk by chunk. "
            "See docs/simulators.md."
        ),
    )
    p.add_argument("volume", help="label volume: TIFF, NPY, slice folder, or a .zarr twin")
    p.add_argument(
        "--to", help="format(s), comma separated: vti, mhd, mha, nrrd, stl, ply, pnm "
        "(default: from the suffix of --out)",
    )  # fmt: skip
    p.add_argument(
        "--out", help="output file (several formats: its stem gets each suffix; meshes: one "
        "file per phase, NAME_LABEL.stl); default: beside the volume",
    )  # fmt: skip
    p.add_argument("--phases", help="label value of each phase, e.g. 0,85,170")
    p.add_argument(
        "--voxel-size", help="voxel size (z,y,x or one value), e.g. 0.1,0.02,0.02 or 0.4um; "
        "overrides the file's",
    )  # fmt: skip
    p.add_argument("--unit", help="unit of --voxel-size when it names none (default: um)")
    p.add_argument("--origin", help="centre of the first voxel, z,y,x in the unit (default 0)")
    p.add_argument(
        "--out-unit", help="write lengths in this unit (nm, um, mm, cm, m), e.g. m for COMSOL"
    )
    p.add_argument("--phase", type=int, help="pnm: the phase (label) whose pore network to extract")
    p.add_argument("--mesh-phases", help="stl/ply: the phases (labels) to mesh (default: all)")
    p.add_argument("--smooth", type=int, default=0, help="stl/ply: Taubin smoothing iterations")
    p.add_argument(
        "--decimate", type=float, help="stl/ply: fraction of triangles to keep, e.g. 0.2"
    )
    p.add_argument(
        "--no-volume-match", action="store_true",
        help="stl/ply: plain marching cubes at the voxel faces (volume not matched; the meshes "
        "of two phases then coincide on their interface)",
    )  # fmt: skip
    p.add_argument("--compress", action="store_true", help="compress where the format can")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def _numbers(text: str | None, what: str, cast: type = float) -> list | None:
    from . import CLIError

    if text is None:
        return None
    try:
        return [cast(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--{what} takes numbers separated by commas, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Export; returns the exit status."""
    from pathlib import Path

    from .. import api
    from . import CLIError

    src = Path(args.volume)
    if args.out is None and args.to is None:
        raise CLIError("say what to write: --to FORMAT and/or --out FILE.vti (or .mhd, .stl …)")
    out = args.out
    if out is None:
        stem = src.name[: -len(".zarr")] if src.name.lower().endswith(".zarr") else src.stem
        first = args.to.split(",")[0].strip()
        out = str(src.with_name(f"{stem}.{first}"))
    origin = _numbers(args.origin, "origin")
    result = api.export(
        src, out, args.to, phases=args.phases, voxel_size=args.voxel_size, unit=args.unit,
        origin=origin, out_unit=args.out_unit, phase=args.phase,
        mesh_phases=_numbers(args.mesh_phases, "mesh-phases", int),
        volume_match=not args.no_volume_match, smooth=args.smooth, decimate=args.decimate,
        compress=args.compress, overwrite=args.overwrite,
    )  # fmt: skip
    if not args.quiet:
        print(result.summary())
        print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))
    return 0
