"""`gencal calibrate` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `calibrate` subcommand."""
    p = sub.add_parser("calibrate", help="(not yet available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Not yet implemented."""
    raise NotImplementedError("gencal calibrate is not implemented yet")
