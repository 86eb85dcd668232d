"""The pore network of one phase for OpenPNM, extracted with PoreSpy's SNOW algorithm (snow2).

The file is the PoreSpy network dictionary, pickled — the form OpenPNM loads with
``openpnm.io.network_from_porespy(path)`` — with every length in the physical unit and every
coordinate in the same frame as the image and mesh exports: ``(x, y, z)`` columns (x is the
volume's last axis, as in ``.vti``), voxel ``(0, 0, 0)``'s centre at the origin. PoreSpy itself
numbers coordinate columns in array-axis order ``(z, y, x)``, which is why they are reversed here.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ._common import ExportError, Grid, require, write_files

__all__ = ["extract_network", "write_network", "network_targets"]

#: Keys of snow2's network that hold points (one row per pore or throat, one column per axis).
_POINT_KEYS = (
    "pore.coords", "pore.local_peak", "pore.global_peak", "pore.geometric_centroid",
    "throat.global_peak",
)  # fmt: skip


def network_targets(path: str | os.PathLike) -> list[Path]:
    """The file a network export writes (``.pnm`` added when the suffix is another)."""
    p = Path(path)
    return [p if p.suffix.lower() == ".pnm" else p.with_name(p.name + ".pnm")]


def extract_network(array: Any, label: int, grid: Grid) -> dict[str, np.ndarray]:
    """snow2 network of the phase ``label`` in physical units, ``(x, y, z)`` coordinates.

    Raises
    ------
    ExportError
        Non-cubic voxels (SNOW takes one voxel size), a phase that is absent, or no PoreSpy.
    """
    ps = require("porespy", "network")
    sp = grid.spacing
    if max(sp) > min(sp) * (1 + 1e-9):
        raise ExportError(
            f"a pore network needs cubic voxels (PoreSpy's SNOW takes one voxel size), got "
            f"{sp}; generate the twin at a cubic spacing (gencal generate --voxel-size D)"
        )
    phase = np.asarray(array) == label
    if not phase.any():
        raise ExportError(f"phase {label} does not occur in the volume: it has no pore network")
    # PoreSpy prints progress bars and deprecation chatter; the caller reports instead.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = ps.networks.snow2(phase, voxel_size=float(sp[0]), boundary_width=0)
    net = {k: np.asarray(v) for k, v in result.network.items()}
    nd = phase.ndim
    origin = np.asarray(grid.xyz_origin[-nd:] if nd == 3 else grid.xyz_origin)
    for key in _POINT_KEYS:
        if key in net and net[key].ndim == 2 and net[key].shape[1] == nd:
            net[key] = net[key][:, ::-1] + origin
    return net


def write_network(
    array: Any, path: str | os.PathLike, label: int, grid: Grid, *, overwrite: bool = False
) -> tuple[list[Path], dict[str, Any]]:
    """Extract and write the network; returns the file and a summary (pores, throats)."""
    targets = network_targets(path)
    net = extract_network(array, label, grid)

    def _w(tmp: Path) -> None:
        with open(tmp / targets[0].name, "wb") as fh:
            pickle.dump(net, fh, protocol=4)

    written = write_files(targets, _w, overwrite)
    summary = {
        "label": int(label),
        "pores": int(len(net.get("pore.coords", ()))),
        "throats": int(len(net.get("throat.conns", ()))),
        "unit": grid.unit,
    }
    return written, summary
