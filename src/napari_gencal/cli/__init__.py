"""The ``gencal`` command line: the same work as the Python API and the napari widgets, headless.

Each subcommand lives in its own module in this package with two functions:
``register(subparsers)`` adds its parser (cheap: no torch import) and sets ``func`` to a runner
``run(args) -> int`` that imports the core lazily.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__

SUBCOMMANDS = ("demo", "calibrate", "generate", "tppf", "describe", "compare", "sweep", "fuse",
               "cell", "export")


class CLIError(Exception):
    """A user error: printed as one line without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="gencal",
        description=(
            "Calibrate 3D excursion-set models of three-phase microstructures from segmented 2D "
            "images, generate 3D label volumes, and compare them with data."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gencal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gencal`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError, FileExistsError) as exc:
        # User errors (bad input, existing output, missing files) get one clear line.
        print(f"gencal {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gencal {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
