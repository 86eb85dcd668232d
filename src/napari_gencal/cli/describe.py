"""`gencal describe`: structural descriptors of a segmented image as a table and JSON."""

from __future__ import annotations

import argparse

_ALL = (
    "volume_fraction",
    "specific_surface_area",
    "mean_chord_length",
    "chord_length_distribution",
    "geodesic_tortuosity",
    "constrictivity",
    "transport",
    "interfaces",
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `describe` subcommand."""
    p = sub.add_parser(
        "describe",
        help="structural descriptors per phase (fractions, S_V, chords, tortuosity, β)",
        description=(
            "Volume fraction, specific surface area (Crofton), mean chord lengths (unbiased), and "
            "for 3D volumes geodesic tortuosity and constrictivity of every phase; optionally "
            "TauFactor transport. Prints a table; --json writes the stable-key dictionary."
        ),
    )
    p.add_argument("image", help="segmented image: TIFF, PNG, NPY, zipped TIFF or a slice folder")
    p.add_argument("--phases", help="label value of each phase in phase order, e.g. 0,85,170")
    p.add_argument(
        "--voxel-size", help="voxel size, e.g. 0.4um or z,y,x (lengths then in its unit; "
        "overrides the file's)"
    )
    p.add_argument("--unit", help="name of the voxel-size unit (default: from the file, or 'unit')")
    p.add_argument(
        "--directions", default="z,y,x", help="directions, comma separated (2D: y,x; default z,y,x)"
    )
    p.add_argument(
        "--include",
        help="descriptors, comma separated, from: " + ", ".join(_ALL) + " (default: all but "
        "transport and chord_length_distribution; 2D: the first three)",
    )
    p.add_argument("--transport", action="store_true", help="add TauFactor transport (slow)")
    p.add_argument("--json", dest="json_out", help="write the descriptors as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing JSON file")
    p.add_argument("--quiet", action="store_true", help="print no table")
    p.set_defaults(func=run)


def _cell(v: object) -> str:
    if v is None:
        return "n/p"  # not percolating / not available
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(desc: dict) -> str:
    """A plain-text table of a describe() dictionary, one row per phase and descriptor."""
    rows = [("phase", "descriptor", *desc["directions"])]
    for lab, p in desc["phases"].items():
        name = p.get("name", lab)
        for key in (
            "volume_fraction",
            "specific_surface_area",
            "mean_chord_length",
            "geodesic_tortuosity",
            "constrictivity",
            "r_max",
            "tortuosity_factor",
            "effective_diffusivity",
        ):
            if key not in p:
                continue
            v = p[key]
            if isinstance(v, dict):
                rows.append((name, key, *(_cell(v.get(d)) for d in desc["directions"])))
            else:
                rows.append((name, key, _cell(v)))
    names = {lab: p.get("name", lab) for lab, p in desc["phases"].items()}
    for pair, v in (desc.get("interfaces") or {}).items():
        a, b = pair.split("|")
        rows.append((f"{names.get(a, a)}|{names.get(b, b)}", "interface_area", _cell(v)))
    if desc.get("triple_phase_boundary") is not None:
        rows.append(("all three", "tpb_length", _cell(desc["triple_phase_boundary"])))
    widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    unit = desc["unit"]
    lines.append(
        f"lengths in {unit}, S_V and interface areas in 1/{unit}, TPB length in 1/{unit}²; "
        "n/p = not percolating / not available"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Read the image, compute the descriptors, print and (optionally) write JSON."""
    import json
    from pathlib import Path

    from ..core.descriptors import describe
    from ..core.io import atomic_write, read_labels

    out = Path(args.json_out) if args.json_out else None
    if out is not None and out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; choose another name or pass --overwrite")
    image = read_labels(args.image, phases=args.phases, voxel_size=args.voxel_size)
    directions = tuple(d.strip() for d in args.directions.split(",") if d.strip())
    include = None
    if args.include:
        include = tuple(d.strip() for d in args.include.split(",") if d.strip())
    if args.transport:
        base = include or (
            ("volume_fraction", "specific_surface_area", "mean_chord_length", "interfaces")
            + (("geodesic_tortuosity", "constrictivity") if image.ndim == 3 else ())
        )
        include = tuple(base) + ("transport",)
    desc = describe(image, directions=directions, include=include, unit=args.unit)
    if out is not None:
        text = json.dumps(desc, indent=2)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), args.overwrite)
    if not args.quiet:
        print(f"{args.image}: shape {tuple(image.data.shape)}")
        print(format_table(desc))
        for w in desc.get("warnings", []):
            print(f"note: {w}")
        if out is not None:
            print(f"wrote {out}")
    return 0
