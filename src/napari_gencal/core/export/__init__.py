"""Twins that simulators open: images with spacing and origin, meshes per phase, pore networks.

* :mod:`.images` — VTK image data (``.vti``), MetaImage (``.mhd``/``.mha``), NRRD; ``.vti`` and
  ``.mhd`` are written chunk by chunk from zarr twins larger than memory.
* :mod:`.meshes` — a watertight surface mesh per phase (``.stl``, ``.ply``) that encloses the
  phase's voxel volume.
* :mod:`.network` — the pore network of one phase for OpenPNM (``.pnm``, PoreSpy's snow2).

One frame for all of them: lengths in the volume's unit (or voxels, and then said so),
``(x, y, z)`` with x the array's last axis, the centre of voxel ``(0, 0, 0)`` at ``origin``.
:func:`export` is what the API, the CLI and the napari writers call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._common import (
    FORMATS,
    IMAGE_FORMATS,
    MESH_FORMATS,
    NETWORK_FORMATS,
    ExportError,
    Grid,
    make_grid,
    resolve_format,
)
from .images import image_targets, write_image
from .meshes import MeshInfo, mesh_targets, phase_mesh, write_meshes
from .network import extract_network, network_targets, write_network

__all__ = [
    "export",
    "export_targets",
    "ExportResult",
    "ExportError",
    "Grid",
    "MeshInfo",
    "make_grid",
    "phase_mesh",
    "extract_network",
    "FORMATS",
    "IMAGE_FORMATS",
    "MESH_FORMATS",
    "NETWORK_FORMATS",
]


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    paths : list of Path
        Every file written.
    formats : list of str
    grid : Grid
        Shape, spacing, origin and unit of the output (``unit`` None: voxels).
    meshes : list of MeshInfo
        Per phase and mesh export: the vertex offset, voxel and mesh volumes, triangles.
    network : dict or None
        Pores and throats of the network export.
    notes : list of str
    seconds : dict
        Wall time per format.
    """

    paths: list[Path]
    formats: list[str]
    grid: Grid
    meshes: list[MeshInfo] = field(default_factory=list)
    network: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the terminal."""
        g = self.grid
        unit = g.unit or "voxels"
        lines = [
            f"{'×'.join(map(str, g.shape))} voxels, spacing (z, y, x) "
            f"{', '.join(f'{s:g}' for s in g.spacing)} {unit}, origin "
            f"{', '.join(f'{o:g}' for o in g.origin)}"
        ]
        for m in self.meshes:
            lines.append(
                f"phase {m.label}: {m.n_triangles} triangles, encloses {m.mesh_volume:.6g} "
                f"{unit}³ (voxels {m.voxel_volume:.6g}, {100 * m.volume_error:+.3f} %), "
                f"offset s = {m.s:.3f}" + (f"; {'; '.join(m.notes)}" if m.notes else "")
            )
        if self.network:
            n = self.network
            lines.append(f"network of phase {n['label']}: {n['pores']} pores, {n['throats']} "
                         "throats")  # fmt: skip
        lines += self.notes
        lines += [f"wrote {p}" for p in self.paths]
        return "\n".join(lines)


def _formats(path: str | os.PathLike, to: str | Sequence[str] | None) -> list[str]:
    if to is None or isinstance(to, str):
        names = [t for t in (to or "").replace(" ", "").split(",") if t] or [None]
    else:
        names = list(to)
    out = [resolve_format(path, t) for t in names]
    return list(dict.fromkeys(out))


def _base(path: str | os.PathLike, fmt: str, n_formats: int) -> Path:
    """The path of one format: the given one, or its stem + the format's suffix."""
    p = Path(path)
    if n_formats == 1:
        return p
    stem = p.name[: -len(p.suffix)] if p.suffix.lower().lstrip(".") in FORMATS else p.name
    return p.with_name(f"{stem}.{fmt}")


def export_targets(
    path: str | os.PathLike,
    to: str | Sequence[str] | None,
    labels: Sequence[int] = (),
) -> dict[str, list[Path]]:
    """The files an export will write, per format (checked before anything is computed)."""
    fmts = _formats(path, to)
    out: dict[str, list[Path]] = {}
    for fmt in fmts:
        base = _base(path, fmt, len(fmts))
        if fmt in IMAGE_FORMATS:
            out[fmt] = image_targets(base, fmt)
        elif fmt in MESH_FORMATS:
            out[fmt] = mesh_targets(base, fmt, labels)
        else:
            out[fmt] = network_targets(base)
    return out


def _check_targets(targets: dict[str, list[Path]], overwrite: bool) -> None:
    every = [p for ps in targets.values() for p in ps]
    existing = [str(p) for p in every if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing[:4])}{' …' if len(existing) > 4 else ''} already exist"
            f"{'s' if len(existing) == 1 else ''}; choose another name or pass --overwrite "
            "(overwrite=True)"
        )
    for parent in {p.parent for p in every}:
        probe = parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise ExportError(
                f"cannot write into {parent}: {probe} is not a folder you can write to; "
                "choose another output path"
            )


def export(
    array: Any,
    path: str | os.PathLike,
    to: str | Sequence[str] | None = None,
    *,
    labels: Sequence[int] | None = None,
    voxel_size: float | Sequence[float] | None = None,
    unit: str | None = None,
    origin: Sequence[float] | None = None,
    out_unit: str | None = None,
    phase: int | None = None,
    phases: Sequence[int] | None = None,
    volume_match: bool = True,
    smooth: int = 0,
    decimate: float | None = None,
    compress: bool = False,
    overwrite: bool = False,
) -> ExportResult:
    """Export a label volume (ndarray, zarr or dask array) to one or more formats.

    Parameters
    ----------
    array : array-like
        2D or 3D labels (meshes and networks: 3D).
    path : path
        Output file; with several formats, its stem gets each format's suffix. Meshes write
        one file per phase (``twin_85.stl``).
    to : str or sequence of str, optional
        ``"vti"``, ``"mhd"``, ``"mha"``, ``"nrrd"``, ``"stl"``, ``"ply"``, ``"pnm"`` or a
        comma-separated list; default: from the suffix of ``path``.
    labels : sequence of int, optional
        The label values present (for meshes: every phase is meshed unless ``phases``).
    voxel_size : float or (dz, dy, dx), optional
        Physical voxel size; None: lengths in voxels.
    unit : str, optional
        Unit of ``voxel_size`` (``"um"``).
    origin : (z, y, x), optional
        Position of the centre of voxel (0, 0, 0); default 0.
    out_unit : str, optional
        Write lengths in this unit (e.g. ``"m"`` for COMSOL); needs a voxel size with a unit.
    phase : int, optional
        The phase (label value) of a pore network (required for ``pnm``).
    phases : sequence of int, optional
        The phases to mesh (default: all).
    volume_match, smooth, decimate
        Mesh options (:func:`.meshes.write_meshes`).
    compress : bool
        zlib in ``.vti``, gzip in ``.nrrd``, compressed MetaImage.
    overwrite : bool
        Replace existing files (default: refuse before computing anything).

    Returns
    -------
    ExportResult
    """
    shape = tuple(int(s) for s in array.shape)
    grid = make_grid(shape, voxel_size, unit, origin, out_unit)
    fmts = _formats(path, to)
    mesh_labels: list[int] = []
    if any(f in MESH_FORMATS for f in fmts):
        if len(shape) != 3:
            raise ExportError(f"surface meshes need a 3D volume, got shape {shape}")
        known = [int(v) for v in labels] if labels is not None else None
        if phases is not None:
            mesh_labels = [int(v) for v in phases]
            bad = [v for v in mesh_labels if known is not None and v not in known]
            if bad:
                raise ExportError(f"phase(s) {bad} are not labels of the volume {known}")
        elif known is not None:
            mesh_labels = known
        else:
            raise ExportError("give the labels to mesh (phases=[...] or --phases)")
    if "pnm" in fmts:
        if phase is None:
            raise ExportError(
                "a pore network is extracted from one phase; choose it with --phase LABEL "
                "(phase=LABEL), e.g. the pore phase"
            )
        if labels is not None and int(phase) not in [int(v) for v in labels]:
            raise ExportError(f"phase {phase} is not a label of the volume {list(labels)}")
    targets = export_targets(path, fmts, mesh_labels)
    _check_targets(targets, overwrite)
    result = ExportResult([], fmts, grid)
    if grid.unit is None:
        result.notes.append("no voxel size known: spacing 1, lengths in voxels")
    mesh_fmts = [f for f in fmts if f in MESH_FORMATS]
    for fmt in fmts:
        t0 = time.perf_counter()
        if fmt in IMAGE_FORMATS:
            result.paths += write_image(array, targets[fmt][0], fmt, grid, compress=compress,
                                        overwrite=overwrite)  # fmt: skip
        elif fmt == "pnm":
            written, summary = write_network(array, targets[fmt][0], int(phase), grid,
                                             overwrite=overwrite)  # type: ignore[arg-type]
            result.paths += written
            result.network = summary
        elif fmt == mesh_fmts[0]:
            # Every mesh format in one pass: marching cubes runs once per phase.
            infos = write_meshes(array, {f: targets[f] for f in mesh_fmts}, mesh_labels, grid,
                                 volume_match=volume_match, smooth=smooth, decimate=decimate,
                                 overwrite=overwrite)  # fmt: skip
            result.meshes += infos
            result.paths += [p for i in infos for p in i.paths]
        result.seconds[fmt] = time.perf_counter() - t0
    return result
