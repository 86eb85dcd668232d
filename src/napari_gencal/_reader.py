"""npe2 readers: segmented label images/stacks, and GenCal model files.

* :func:`get_reader` — multi-page TIFF, PNG, ``.npy`` and folders of PNG/TIFF slices. A file opens
  as a display-coded Labels layer (sorted label values → 1..k, originals in
  ``metadata["gencal"]["phase_map"]``, scale from the voxel size). Files that are not label images
  (non-integer values, more than 16 distinct values) get ``None`` so napari's own reader opens them
  as ordinary images. A ``<file>.json`` sidecar written by :mod:`._writer` is read back.
* :func:`get_model_reader` — ``*.gencal.json`` model files: the model is added to the session (the
  generator and compare widgets offer it) and a small preview section opens as a Labels layer
  ``"<name> preview"`` with the model in its metadata.
* :func:`get_zarr_reader` — ``*.zarr`` twins written by ``gencal generate --out twin.zarr``: a
  lazy Labels layer (dask; napari reads only the chunks it shows), display-coded chunk by chunk.

This module imports neither torch nor Qt at import time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._widgets._layers import MAX_LABEL_VALUES, distinct_values, labels_layer_tuple

__all__ = [
    "get_reader",
    "get_model_reader",
    "get_zarr_reader",
    "read_label_layers",
    "read_model_layers",
    "SIDECAR",
]

_SUFFIXES = (".tif", ".tiff", ".png", ".npy")
#: Sidecar written next to a saved TIFF: ``<file>.tif`` → ``<file>.tif.json`` (never
#: ``*.gencal.json``, so it is not mistaken for a model file).
SIDECAR = ".json"
PREVIEW_SIZE = 128

LayerData = list[tuple[Any, dict[str, Any], str]]


def _single_path(path: str | list[str]) -> str | None:
    if isinstance(path, list | tuple):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


def _accepts(p: Path) -> bool:
    if p.is_dir():
        return any(f.suffix.lower() in (".tif", ".tiff", ".png") for f in p.iterdir())
    return p.suffix.lower() in _SUFFIXES and not p.name.lower().endswith(".gencal.json")


def get_reader(path: str | list[str]) -> Callable[[Any], LayerData] | None:
    """Return a reader for a label image/stack/folder, or None when it is not one.

    The file is read once here (to decide whether it is a label image) and the reader returned
    reuses that array.
    """
    single = _single_path(path)
    if single is None:
        return None
    p = Path(single)
    if not p.exists() or not _accepts(p):
        return None
    try:
        from .core.io import read_array

        data, meta = read_array(p)
    except Exception:  # noqa: BLE001 - not ours to open: let another reader try
        return None
    vals = distinct_values(data, MAX_LABEL_VALUES)
    if vals is None or vals.size < 2:
        return None  # greyscale or constant image: napari's own reader shows it as an Image

    def _reader(_path: Any) -> LayerData:
        return [_layer_from_array(data, meta, p)]

    return _reader


def _read_sidecar(p: Path) -> dict[str, Any]:
    side = Path(str(p) + SIDECAR)
    if p.is_file() and side.is_file():
        try:
            d = json.loads(side.read_text())
            return d if isinstance(d, dict) else {}
        except (OSError, ValueError):
            return {}
    return {}


def _layer_from_array(data: Any, meta: dict[str, Any], p: Path) -> tuple:
    side = _read_sidecar(p)
    labels = side.get("phase_map")
    vs = side.get("voxel_size") or meta.get("voxel_size")
    unit = side.get("unit") or meta.get("unit")
    info: dict[str, Any] = {"source": str(p), "kind": side.get("kind", "data")}
    for key in ("model", "seed", "device"):
        if key in side:
            info[key] = side[key]
    name = p.name if p.is_dir() else p.name[: -len(p.suffix)] if p.suffix else p.name
    try:
        return labels_layer_tuple(
            data,
            name,
            labels=labels,
            phase_names=side.get("phase_names"),
            voxel_size=vs,
            unit=unit,
            **info,
        )
    except ValueError:
        # a stale sidecar (labels no longer match the image): ignore it rather than fail
        return labels_layer_tuple(data, name, voxel_size=meta.get("voxel_size"), unit=unit, **info)


def read_label_layers(path: str | os.PathLike) -> LayerData:
    """Read a label image/stack/folder as napari layer data (raises on non-label files)."""
    reader = get_reader(str(path))
    if reader is None:
        raise ValueError(
            f"{path} is not a label image (it has non-integer values or more than "
            f"{MAX_LABEL_VALUES} distinct values); open it as an image and segment it first"
        )
    return reader(path)


def get_model_reader(path: str | list[str]) -> Callable[[Any], LayerData] | None:
    """Return a reader for a ``*.gencal.json`` model file, or None."""
    single = _single_path(path)
    if single is None or not single.lower().endswith(".gencal.json"):
        return None
    if not Path(single).is_file():
        return None
    return read_model_layers


def read_model_layers(path: str | list[str]) -> LayerData:
    """Load a model file into the session and return a small preview section as a Labels layer.

    The preview is a ``128×128`` planar section (seed 0, CPU) so opening a model file is quick; use
    the Generate widget for volumes.
    """
    from ._widgets._session import session
    from .core.model import ExcursionModel  # torch-dependent core: imported on use only

    p = Path(_single_path(path) or "")
    model = ExcursionModel.load(p)
    stem = p.name[: -len(".gencal.json")]
    name = session.add(stem, model, source=str(p), path=str(p))
    section = _preview_section(model, PREVIEW_SIZE, seed=0)
    pm = getattr(model, "phase_map", None)
    labels = None if pm is None else list(getattr(pm, "labels", pm))
    return [
        labels_layer_tuple(
            section,
            f"{name} preview",
            labels=labels if labels is not None and set(labels) >= set(_uniq(section)) else None,
            phase_names=getattr(pm, "names", None),
            voxel_size=_voxel_size_2d(model),
            unit=getattr(model, "metadata", {}).get("unit") if hasattr(model, "metadata") else None,
            source=str(p),
            kind="preview",
            model=_model_dict(model),
            model_name=name,
            seed=0,
        )
    ]


def _uniq(a: Any) -> list[int]:
    import numpy as np

    return [int(v) for v in np.unique(a)]


def _voxel_size_2d(model: Any) -> tuple[float, float] | None:
    vs = getattr(model, "voxel_size", None)
    if vs is None:
        return None
    vs = tuple(float(v) for v in (vs if hasattr(vs, "__len__") else (vs,) * 3))
    return vs[-2:]


def _model_dict(model: Any) -> dict[str, Any] | None:
    """JSON-ready model dict for layer metadata (None if the model cannot give one)."""
    for attr in ("to_dict", "as_dict"):
        fn = getattr(model, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:  # noqa: BLE001 - metadata is a convenience
                return None
    return None


def _preview_section(model: Any, size: int, seed: int = 0) -> Any:
    """One planar section of the model in the user's label values (numpy, CPU)."""
    import numpy as np

    from .core import generate as gen

    if hasattr(gen, "generate_sections"):
        out = gen.generate_sections(model, 1, size, seed=seed, device="cpu")
        return np.asarray(out)[0]
    return np.asarray(gen.generate(model, (1, size, size), seed=seed, device="cpu"))[0]


def get_zarr_reader(path: str | list[str]) -> Callable[[Any], LayerData] | None:
    """Return a reader for a zarr twin (a ``.zarr`` folder written by napari-gencal), or None."""
    single = _single_path(path)
    if single is None:
        return None
    p = Path(single)
    if not (p.is_dir() and p.name.lower().endswith(".zarr")):
        return None
    try:
        from .core.outofcore import open_zarr_twin

        arr, attrs = open_zarr_twin(p)
    except Exception:  # noqa: BLE001 - not a zarr array of ours: let another reader try
        return None
    if attrs.get("napari_gencal") != "twin" or arr.ndim not in (2, 3):
        return None

    def _reader(_path: Any) -> LayerData:
        return [_lazy_twin_layer(arr, attrs, p)]

    return _reader


def _lazy_twin_layer(arr: Any, attrs: dict[str, Any], p: Path) -> tuple:
    """Display codes 1..k computed chunk by chunk (nothing is read before napari asks)."""
    import numpy as np

    from ._widgets._layers import phase_colormap

    labels = [int(v) for v in attrs.get("phase_labels") or []]
    if not labels:
        raise ValueError(f"{p} holds no phase labels; it was not written by napari-gencal")
    lut = np.zeros(max(labels) + 1, dtype=np.uint8)
    for i, v in enumerate(labels):
        lut[v] = i + 1
    codes = arr.map_blocks(lambda b: lut[b], dtype=np.uint8)
    vs = attrs.get("voxel_size")
    model = attrs.get("model") or {}
    meta = {
        "gencal": {
            "phase_map": labels,
            "phase_names": None,
            "voxel_size": vs,
            "unit": model.get("unit"),
            "source": str(p),
            "kind": "generated",
            "model": model,
            "seed": attrs.get("seed"),
            "lazy": True,
        }
    }
    kwargs: dict[str, Any] = {"name": p.name[: -len(".zarr")], "metadata": meta,
                              "colormap": phase_colormap(len(labels))}  # fmt: skip
    if vs is not None and len(vs) == codes.ndim:
        kwargs["scale"] = tuple(float(v) for v in vs)
    return codes, kwargs, "labels"
