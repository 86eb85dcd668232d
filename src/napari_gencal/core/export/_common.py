"""What every exporter shares: the physical grid, format names, slabs, and all-or-nothing writes."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..units import UnitError, check_voxel_size, normalize_unit, unit_factor

__all__ = [
    "ExportError",
    "Grid",
    "FORMATS",
    "IMAGE_FORMATS",
    "MESH_FORMATS",
    "NETWORK_FORMATS",
    "resolve_format",
    "make_grid",
    "iter_slabs",
    "slab_depth",
    "write_files",
    "require",
]

IMAGE_FORMATS = ("vti", "mhd", "mha", "nrrd")
MESH_FORMATS = ("stl", "ply")
NETWORK_FORMATS = ("pnm",)
#: Format name → what it holds.
FORMATS = {
    **{f: "image" for f in IMAGE_FORMATS},
    **{f: "mesh" for f in MESH_FORMATS},
    **{f: "network" for f in NETWORK_FORMATS},
}
#: Bytes of labels read at once when an array is streamed (zarr, dask, or a large ndarray).
SLAB_BYTES = 16 << 20


class ExportError(ValueError):
    """An export that cannot be done as asked; the message names the problem and the fix."""


@dataclass(frozen=True)
class Grid:
    """Where the voxels sit: shape, spacing and origin per axis ``(z, y, x)``, and the unit.

    ``origin`` is the position of the *centre* of voxel ``(0, 0, 0)`` (the ITK, MetaImage and
    NRRD convention); voxel ``i`` covers ``origin + (i ± 1/2) · spacing``. ``unit`` is None when
    the spacing is in voxels (no voxel size known).
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    unit: str | None

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """Physical extent ``(lo, hi)`` of the voxels per axis (outer faces), ``(z, y, x)``."""
        return tuple(
            (o - s / 2, o + (n - 0.5) * s)
            for n, s, o in zip(self.shape, self.spacing, self.origin, strict=True)
        )

    @property
    def xyz_spacing(self) -> tuple[float, ...]:
        """Spacing in ``(x, y, z)`` order, as VTK and ITK want it."""
        return tuple(reversed(self.spacing))

    @property
    def xyz_origin(self) -> tuple[float, ...]:
        """Origin in ``(x, y, z)`` order."""
        return tuple(reversed(self.origin))


def resolve_format(path: str | os.PathLike, to: str | None) -> str:
    """The format name from ``to`` or, when None, from the file suffix; refuse unknown ones."""
    name = (to or Path(path).suffix.lstrip(".")).lower().lstrip(".")
    if name not in FORMATS:
        raise ExportError(
            f"unknown export format {name or '(none)'!r} for {path}; choose one of "
            f"{', '.join(FORMATS)} (--to FORMAT, or a file suffix)"
        )
    return name


def make_grid(
    shape: Sequence[int],
    voxel_size: float | Sequence[float] | None,
    unit: str | None = None,
    origin: Sequence[float] | None = None,
    out_unit: str | None = None,
) -> Grid:
    """A checked :class:`Grid`; lengths converted to ``out_unit`` when given.

    Raises
    ------
    ExportError
        A spacing with zeros, negatives or the wrong length; ``out_unit`` without a voxel size.
    """
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    try:
        u = normalize_unit(unit)
        ou = normalize_unit(out_unit) if out_unit is not None else None
        if voxel_size is None:
            if out_unit is not None:
                raise ExportError(
                    f"lengths in {out_unit} were requested but the volume has no voxel size; "
                    "give it (--voxel-size 0.1,0.02,0.02 or 0.4um, or voxel_size=...)"
                )
            spacing, u = (1.0,) * nd, None
        else:
            spacing = check_voxel_size(voxel_size, nd)
        org = (0.0,) * nd if origin is None else tuple(float(o) for o in origin)
        if len(org) != nd or not all(math.isfinite(o) for o in org):
            raise ExportError(f"origin must be {nd} finite numbers (z, y, x), got {origin!r}")
        if ou is not None and voxel_size is not None:
            if u is None:
                raise ExportError(
                    f"the voxel size has no unit, so it cannot be converted to {out_unit}; "
                    "give it with a unit (e.g. --voxel-size 0.4um)"
                )
            f = unit_factor(u, ou)
            spacing, org, u = tuple(s * f for s in spacing), tuple(o * f for o in org), ou
    except UnitError as exc:
        raise ExportError(str(exc)) from None
    return Grid(shape, spacing, org, u)


def slab_depth(shape: Sequence[int], itemsize: int, slab_bytes: int = SLAB_BYTES) -> int:
    """Number of z planes per slab so that one slab holds about ``slab_bytes``."""
    plane = max(1, int(np.prod(shape[1:])) * int(itemsize))
    return max(1, min(int(shape[0]), slab_bytes // plane))


def iter_slabs(array: Any, depth: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(z0, labels[z0:z0 + depth])`` as NumPy, slab by slab (zarr, dask or ndarray)."""
    n = int(array.shape[0])
    for z0 in range(0, n, depth):
        yield z0, np.asarray(array[z0 : min(n, z0 + depth)])


def require(module: str, extra: str = "export") -> Any:
    """Import an optional dependency or say how to install it."""
    import importlib

    pip_name = {"SimpleITK": "SimpleITK", "vtk": "vtk", "trimesh": "trimesh",
                "fast_simplification": "fast-simplification", "porespy": "porespy"}  # fmt: skip
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"this export needs {pip_name.get(module, module)}, which is not installed; "
            f'install the extra: pip install "napari-gencal[{extra}]"'
        ) from None


def write_files(
    targets: Sequence[str | os.PathLike],
    writer: Callable[[Path], None],
    overwrite: bool = False,
) -> list[Path]:
    """Write several files all or nothing: ``writer(tmpdir)`` writes them under their final names
    into a temporary folder beside the targets, then each is renamed into place.

    Files that refer to each other by name (a MetaImage header and its ``.raw``) stay consistent,
    a crash leaves nothing half-written, and nothing existing is replaced unless ``overwrite``.
    """
    paths = [Path(t) for t in targets]
    parent = paths[0].parent
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; choose "
            "another name or pass --overwrite (overwrite=True)"
        )
    if any(p.parent != parent for p in paths):
        raise ExportError("the files of one export must go into one folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".gencal-export-", dir=parent))
    except OSError as exc:
        raise ExportError(
            f"cannot write into {parent}: {exc.strerror or exc}; choose a folder you can write to"
        ) from None
    try:
        writer(tmp)
        missing = [p.name for p in paths if not (tmp / p.name).exists()]
        if missing:  # pragma: no cover - a writer bug, not a user error
            raise RuntimeError(f"the exporter did not write {missing}")
        umask = os.umask(0)
        os.umask(umask)
        for p in paths:
            os.chmod(tmp / p.name, 0o666 & ~umask)
            os.replace(tmp / p.name, p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths
