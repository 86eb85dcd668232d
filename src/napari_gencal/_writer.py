"""npe2 writer: a Labels layer → TIFF in the user's label values, plus a JSON sidecar.

``<file>.tif`` gets the label values the data came with (display codes 1..k are mapped back through
``metadata["gencal"]["phase_map"]``), ImageJ voxel size, and ``<file>.tif.json`` holding the phase
map, voxel size, and — for generated layers — the model and seed. Both writes are atomic and never
replace existing files (the message says to pick another name or delete the old file first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._reader import SIDECAR
from ._widgets._layers import decode_labels

__all__ = ["write_labels", "write_image_export", "write_mesh_export", "sidecar_path"]

SIDECAR_FORMAT = "napari-gencal labels sidecar"


def sidecar_path(path: str | Path) -> Path:
    """``<file>.tif`` → ``<file>.tif.json``."""
    return Path(str(path) + SIDECAR)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one Labels layer as TIFF + sidecar.

    Parameters
    ----------
    path : str
        Target ``.tif``/``.tiff`` path.
    data : array-like
        The layer data (display codes when the layer came from this plugin).
    meta : dict
        napari's layer state (``metadata``, ``scale``, ``name`` …).

    Returns
    -------
    list of str
        The paths written: the TIFF and its sidecar.

    Raises
    ------
    FileExistsError
        When the TIFF or the sidecar already exists.
    ValueError
        When the layer has unpainted (0) voxels although it carries a phase map.
    """
    from .core.io import write_tiff

    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        p = p.with_name(p.name + ".tif")
    side = sidecar_path(p)
    for target in (p, side):
        if target.exists():
            raise FileExistsError(
                f"{target} already exists; napari-gencal never overwrites files — choose another "
                "name or delete the old file first"
            )
    arr = np.asarray(data)
    info = dict((meta.get("metadata") or {}).get("gencal") or {})
    labels = info.get("phase_map")
    out = decode_labels(arr, labels) if labels else arr
    ndim = out.ndim
    vs = info.get("voxel_size")
    scale = [float(s) for s in (meta.get("scale") if meta.get("scale") is not None else [])][-ndim:]
    if vs is None and scale and any(abs(s - 1.0) > 1e-12 for s in scale):
        vs = scale
    unit = info.get("unit") or "um"
    write_tiff(p, out, voxel_size=vs, unit=unit, overwrite=False)
    record = {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "layer_name": meta.get("name"),
        "shape": list(out.shape),
        "dtype": str(out.dtype),
        "phase_map": labels if labels else sorted(int(v) for v in np.unique(out)),
        "phase_names": info.get("phase_names"),
        "voxel_size": vs,
        "unit": info.get("unit"),
        "kind": info.get("kind", "data"),
        "source": info.get("source"),
        "seed": info.get("seed"),
        "device": info.get("device"),
        "model": info.get("model"),
    }
    text = json.dumps(_jsonable(record), indent=2)
    try:
        from .core.io import atomic_write

        atomic_write(side, lambda tmp: Path(tmp).write_text(text), overwrite=False)
    except BaseException:
        p.unlink(missing_ok=True)  # keep TIFF and sidecar together: all or nothing
        raise
    return [str(p), str(side)]


def _export_layer(path: str, data: Any, meta: dict[str, Any], fmt: str) -> list[str]:
    """One Labels layer through :func:`napari_gencal.api.export`: the user's label values, the
    layer's voxel size (the GenCal metadata, else the layer's scale) and its translate as origin."""
    from .api import export

    arr = np.asarray(data)
    info = dict((meta.get("metadata") or {}).get("gencal") or {})
    labels = info.get("phase_map")
    out = decode_labels(arr, labels) if labels else arr
    nd = out.ndim
    vs = info.get("voxel_size")
    scale = [float(s) for s in (meta.get("scale") if meta.get("scale") is not None else [])][-nd:]
    if vs is None and scale and any(abs(s - 1.0) > 1e-12 for s in scale):
        vs = scale
    translate = meta.get("translate")
    origin = [float(t) for t in translate][-nd:] if translate is not None else None
    unit = info.get("unit") if vs is not None else None
    if unit in ("unit", "pixel", "voxel"):
        unit = None
    res = export(out, path, fmt, voxel_size=vs, unit=unit if vs is not None else None,
                 origin=origin if origin and any(origin) else None)  # fmt: skip
    return [str(p) for p in res.paths]


def write_image_export(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save a Labels layer as VTK image data, MetaImage or NRRD (by the file's suffix), with its
    spacing and origin; never replaces an existing file."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("vti", "mhd", "mha", "nrrd"):
        fmt, path = "vti", str(path) + ".vti"
    return _export_layer(path, data, meta, fmt)


def write_mesh_export(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save a 3D Labels layer as one watertight surface mesh per phase (``NAME_LABEL.stl`` or
    ``.ply``) in the layer's physical units; never replaces an existing file."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("stl", "ply"):
        fmt, path = "stl", str(path) + ".stl"
    return _export_layer(path, data, meta, fmt)
