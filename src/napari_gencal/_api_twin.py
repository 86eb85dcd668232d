"""The API's doors for simulators: :func:`export` (files a simulator opens) and :func:`cell`
(a battery cell per twin). Re-exported by :mod:`napari_gencal.api`; the heavy libraries (VTK,
SimpleITK, PyBaMM, TauFactor) load on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .core.io import LabelImage

if TYPE_CHECKING:
    from .api import ImageLike
    from .core.model import ExcursionModel

__all__ = ["export", "cell"]


def _as_label_image(*args: Any, **kwargs: Any) -> LabelImage:
    from .api import _as_label_image as _impl

    return _impl(*args, **kwargs)


def load_model(path: str | os.PathLike) -> ExcursionModel:
    from .api import load_model as _impl

    return _impl(path)


def export(
    volume: Any,
    path: str | os.PathLike,
    to: str | Sequence[str] | None = None,
    *,
    phases: str | Sequence[int] | None = None,
    voxel_size: str | float | Sequence[float] | None = None,
    unit: str | None = None,
    origin: Sequence[float] | None = None,
    out_unit: str | None = None,
    phase: int | None = None,
    mesh_phases: Sequence[int] | None = None,
    volume_match: bool = True,
    smooth: int = 0,
    decimate: float | None = None,
    compress: bool = False,
    overwrite: bool = False,
) -> Any:
    """Write a twin for a simulator: VTK/MetaImage/NRRD images, meshes per phase, pore networks.

    Parameters
    ----------
    volume : LabelImage, ndarray, path, or a zarr/dask array
        The labels; a path may be a TIFF/NPY/slice folder or a ``.zarr`` twin, which is exported
        chunk by chunk to ``vti`` and ``mhd`` (never held in memory).
    path : path
        Output file (several formats: its stem gets each suffix; meshes: one file per phase,
        ``twin_85.stl``).
    to : str or sequence of str, optional
        ``vti``, ``mhd``, ``mha``, ``nrrd``, ``stl``, ``ply``, ``pnm`` (or a comma-separated
        list); default: the suffix of ``path``.
    phases : str or sequence of int, optional
        Label values of the phases, for a volume holding more than three values.
    voxel_size : str, float or (dz, dy, dx), optional
        Overrides the volume's own (``"0.4um"``, ``"0.1,0.02,0.02"``). Without any, lengths
        are written in voxels (and the result's notes say so).
    unit, origin, out_unit
        Unit of ``voxel_size``; the centre of voxel (0, 0, 0) in physical units ``(z, y, x)``;
        the unit to write lengths in (e.g. ``"m"``).
    phase : int, optional
        The phase whose pore network ``pnm`` extracts (e.g. the pore label).
    mesh_phases : sequence of int, optional
        The phases to mesh (default: all).
    volume_match, smooth, decimate
        Mesh options: enclose the voxel volume exactly; Taubin iterations; fraction of
        triangles kept.
    compress, overwrite
        Compressed output where the format has it; replace existing files.

    Returns
    -------
    ExportResult
        ``.paths``, ``.grid`` (spacing, origin, unit), ``.meshes`` (volumes), ``.summary()``.
    """
    from .core.export import export as _export

    arr, labels, vs, u = _export_source(volume, phases, voxel_size, unit)
    return _export(arr, path, to, labels=labels, voxel_size=vs, unit=u, origin=origin,
                   out_unit=out_unit, phase=phase, phases=mesh_phases,
                   volume_match=volume_match, smooth=smooth, decimate=decimate,
                   compress=compress, overwrite=overwrite)  # fmt: skip


def _export_source(volume: Any, phases: Any, voxel_size: Any, unit: str | None) -> tuple:
    """``(array, labels, voxel_size, unit)`` of what :func:`export` was given; zarr stays lazy."""
    from pathlib import Path

    from .core.units import UnitError, normalize_unit, parse_voxel_size

    if isinstance(volume, str | os.PathLike) and Path(volume).name.lower().endswith(".zarr"):
        import zarr

        z = zarr.open_array(str(volume), mode="r")
        attrs = dict(z.attrs)
        labels = attrs.get("phase_labels")
        vs0 = attrs.get("voxel_size")
        u0 = (attrs.get("model") or {}).get("unit")
        arr: Any = z
    elif isinstance(volume, LabelImage | str | os.PathLike | np.ndarray):
        img = _as_label_image(volume, phases)
        arr, labels, vs0, u0 = img.data, list(img.phase_map.labels), img.voxel_size, img.unit
    else:  # a zarr or dask array: labels from the phases given, or found chunk by chunk
        arr, vs0, u0 = volume, None, None
        labels = None
        if phases is not None:
            from .core.phases import parse_phases

            labels = list(parse_phases(phases) or ())
    if labels is None:
        from .core.phases import present_values

        found: set[int] = set()
        for z0 in range(0, int(arr.shape[0]), 16):
            found.update(int(v) for v in present_values(np.asarray(arr[z0 : z0 + 16])))
        labels = sorted(found)
    try:
        u0 = normalize_unit(u0)
    except UnitError:
        u0 = None
    if voxel_size is not None:
        vs, u = parse_voxel_size(voxel_size, len(arr.shape), unit)
        u = u if u is not None else (u0 if unit is None else normalize_unit(unit))
    else:
        vs, u = vs0, normalize_unit(unit) if unit is not None else u0
    if vs is not None and len(vs) != len(arr.shape):
        vs = tuple(vs)[-len(arr.shape):] if len(vs) > len(arr.shape) else None
    return arr, [int(v) for v in labels], vs, u


def cell(
    model_or_volume: ExcursionModel | ImageLike,
    active: Any,
    electrolyte: Any,
    conductors: Any = (),
    voxel_size: str | float | None = None,
    thickness: str | float | None = None,
    base: str = "Chen2020",
    rates: str | Sequence[float] = (0.2, 1.0, 2.0, 3.0),
    model: str = "DFN",
    *,
    data: ImageLike | None = None,
    phases: str | Sequence[int] | None = None,
    realizations: int = 1,
    shape: int | Sequence[int] = 128,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    device: str = "cpu",
    progress: Callable[[dict], Any] | None = None,
    **settings: Any,
) -> Any:
    """A battery cell per twin: interfaces, conductivities, a PyBaMM parameter set, discharges.

    Parameters
    ----------
    model_or_volume : ExcursionModel, model file, label volume or path
        A model (``realizations`` twins of ``shape`` are generated with seeds ``seed, seed+1,
        …``) or a 3D label volume.
    active, electrolyte : label
        Label values of the active material and of the electrolyte phase (e.g. 85 and 0).
    conductors : label or sequence of labels
        Further electron-conducting phases (e.g. 170, the carbon binder).
    voxel_size : str or float
        ``"0.4um"`` (a bare number is read as µm); default: the model's or the volume's.
    thickness : str or float, optional
        Electrode thickness (``"60um"``; default: the base set's).
    base : str
        PyBaMM parameter set whose positive electrode the twin replaces.
    rates : str or sequence of float
        C-rates (``"0.2,1,2,3"``).
    model : {"DFN", "SPMe"}
    data : label volume or path, optional
        Also run the data (named ``"data"``), first, for data vs twins side by side.
    phases : str or sequence, optional
        Label values of a volume's phases (as for :func:`read_labels`).
    out : path, optional
        Write ``table.csv``, ``cell.json``, ``discharge.png`` and BPX files into this new folder.
    **settings
        Further :class:`~napari_gencal.core.cell.CellSettings` fields (``sigma_active``,
        ``sigma_conductor``, ``electrolyte_kind="solid"`` with ``electrolyte_conductivity``,
        ``radius``, ``axis``, ``separator``, ``cutoff``).

    Returns
    -------
    CellResult
        ``str()`` table, ``rows()``, ``spread()``, ``to_csv``, ``figure()``, ``write(folder)``;
        ``.runs[i].figures`` (the microstructure figures), ``.parameters`` (the mapping record),
        ``.parameter_values`` (PyBaMM).
    """
    from .core.cell import CellError, CellSettings, cell_runs, parse_length
    from .core.phases import to_indices

    conductors = (conductors,) if np.isscalar(conductors) else tuple(conductors)
    volumes: list[tuple[str, np.ndarray]] = []
    pm = None
    vs_default = None
    if data is not None:
        d = _as_label_image(data, phases)
        pm = d.phase_map
        volumes.append(("data", to_indices(d.data, pm)))
        vs_default = d.voxel_size
    m = None
    if isinstance(model_or_volume, str | os.PathLike) and str(model_or_volume).endswith(".json"):
        m = load_model(model_or_volume)
    elif hasattr(model_or_volume, "phase_map") and not hasattr(model_or_volume, "data"):
        m = model_or_volume
    if m is not None:
        from .core.generate import generate as _generate

        shp = (int(shape),) * 3 if np.isscalar(shape) else tuple(int(v) for v in shape)
        mpm = m.user_phase_map or m.phase_map
        if pm is not None and set(map(str, pm.labels)) != set(map(str, mpm.labels)):
            raise CellError(f"the data labels {list(pm.labels)} and the model labels "
                            f"{list(mpm.labels)} differ")  # fmt: skip
        pm = pm or mpm
        for r in range(int(realizations)):
            lab = _generate(m, shp, seed=int(seed) + r, device=device)
            volumes.append((f"twin seed {int(seed) + r}", to_indices(lab, pm)))
        if vs_default is None and m.voxel_size is not None:
            vs_default = m.voxel_size
            settings.setdefault("extra", {})["unit"] = m.unit
    else:
        img = _as_label_image(model_or_volume, phases if pm is None else pm)
        pm = pm or img.phase_map
        name = "volume" if data is None else "other"
        if isinstance(model_or_volume, str | os.PathLike):
            name = os.path.basename(str(model_or_volume))
        volumes.append((name, to_indices(img.data, pm)))
        vs_default = vs_default or img.voxel_size
    unit = (settings.get("extra") or {}).get("unit") or "um"
    if voxel_size is None:
        if vs_default is None:
            raise CellError("give the voxel size: voxel_size='0.4um' (--voxel-size 0.4um)")
        vs_default = vs_default[0] if not np.isscalar(vs_default) else vs_default
        voxel_size = f"{float(vs_default)}{'um' if unit in (None, 'unit', 'um', 'µm') else unit}"
    st = CellSettings(
        active=active, electrolyte=electrolyte, conductors=conductors,
        voxel_size=parse_length(voxel_size, "voxel size", "um"),
        thickness=None if thickness is None else parse_length(thickness, "thickness", "um"),
        base=base, rates=rates, model=model, **settings,
    ).validate()  # fmt: skip
    result = cell_runs(volumes, tuple(pm.labels), st, device=device, progress=progress)
    if out is not None:
        result.write(out, overwrite=overwrite)
    return result
