"""`gencal tppf` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `tppf` subcommand."""
    p = sub.add_parser("tppf", help="(not yet available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Not yet implemented."""
    raise NotImplementedError("gencal tppf is not implemented yet")
