"""Qt-free helpers between napari layers and the core's label images.

napari's Labels layers treat 0 as transparent background, so every phase image this plugin shows is
*display-coded*: the sorted label values ``v_0 < v_1 < …`` of the user's image are shown as
``1, 2, …`` and the original values are kept in ``layer.metadata["gencal"]["phase_map"]``. This
module does that coding in both directions, finds unique layer names and checks whether an Image
layer can be offered for conversion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..core.phases import PhaseError, PhaseMap

__all__ = [
    "MAX_LABEL_VALUES",
    "PHASE_COLORS",
    "GencalLayerInfo",
    "distinct_values",
    "is_label_like",
    "encode_labels",
    "decode_labels",
    "phase_colormap",
    "labels_layer_tuple",
    "layer_label_image",
    "unique_name",
]

#: More distinct values than this and an image is treated as greyscale, not as a segmentation.
MAX_LABEL_VALUES = 16

#: Fixed phase colours (display codes 1, 2, 3, …) so data and generated layers look alike.
PHASE_COLORS = (
    "#f2c14e",  # phase 1 — amber
    "#3a86ff",  # phase 2 — blue
    "#8d99ae",  # phase 3 — grey
    "#e63946",
    "#2a9d8f",
    "#9b5de5",
    "#f15bb5",
    "#00bbf9",
)


class GencalLayerInfo(dict):
    """The ``metadata["gencal"]`` dictionary of a layer (a plain dict; documented keys).

    Keys: ``phase_map`` (original label values, display code ``i + 1`` ↔ ``phase_map[i]``),
    ``phase_names``, ``voxel_size``, ``unit``, ``source``, ``kind`` (``"data"``, ``"generated"``,
    ``"preview"``), and for generated layers ``model`` (model dict), ``seed``, ``device``.
    """


def distinct_values(data: np.ndarray, limit: int = MAX_LABEL_VALUES) -> np.ndarray | None:
    """Sorted distinct values of an integer-valued array, or None if not a label image.

    Returns None for non-integral floats, NaN, and for more than ``limit`` distinct values.
    """
    arr = np.asarray(data)
    if arr.size == 0:
        return None
    if arr.dtype == bool:
        return np.unique(arr).astype(np.uint8)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(np.equal(np.mod(arr, 1), 0)):
            return None
    elif arr.dtype.kind not in "iu":
        return None
    if arr.dtype in (np.uint8, np.int8):
        # bincount is far faster than unique on large byte volumes
        counts = np.bincount(arr.view(np.uint8).ravel(), minlength=256)
        vals = np.nonzero(counts)[0]
        if arr.dtype == np.int8:
            vals = np.sort(vals.astype(np.uint8).view(np.int8).astype(np.int64))
    else:
        vals = np.unique(arr)
    if vals.size > limit:
        return None
    return vals


def is_label_like(data: np.ndarray, limit: int = MAX_LABEL_VALUES) -> bool:
    """Whether ``data`` has between 2 and ``limit`` distinct integer values."""
    vals = distinct_values(data, limit)
    return vals is not None and vals.size >= 2


def encode_labels(
    data: np.ndarray, labels: Sequence[int] | None = None
) -> tuple[np.ndarray, tuple]:
    """Display-code a label image: the ``i``-th label value becomes ``i + 1``.

    Parameters
    ----------
    data : ndarray
        Label image with the user's values.
    labels : sequence of int, optional
        Label values in phase order; default: the sorted distinct values of ``data``.

    Returns
    -------
    codes : ndarray of uint8
        Values ``1 .. k``.
    labels : tuple of int
        The label value of each code (``labels[c - 1]``).
    """
    arr = np.asarray(data)
    if labels is None:
        vals = distinct_values(arr, limit=255)
        if vals is None:
            raise PhaseError(
                "the image is not a label image (non-integer values or more than 255 distinct "
                "values); segment it first"
            )
        labels = tuple(int(v) for v in vals)
    labels = tuple(int(v) for v in labels)
    keys = np.asarray(labels, dtype=np.int64)
    order = np.argsort(keys)
    sk = keys[order]
    flat = arr.astype(np.int64, copy=False)
    pos = np.clip(np.searchsorted(sk, flat), 0, len(sk) - 1)
    if not np.all(sk[pos] == flat):
        bad = np.unique(flat[sk[pos] != flat])[:8].tolist()
        raise PhaseError(f"values {bad} are not among the phase labels {list(labels)}")
    return (order[pos] + 1).astype(np.uint8), labels


def decode_labels(codes: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode_labels`: display codes ``1 .. k`` → the user's label values.

    Raises
    ------
    PhaseError
        When the layer holds 0 (unpainted/erased voxels) or a code above ``k``.
    """
    arr = np.asarray(codes)
    k = len(labels)
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (1, 1)
    if lo < 1 or hi > k:
        raise PhaseError(
            f"the layer holds label {lo if lo < 1 else hi}, but its phase map has codes 1..{k} "
            f"(labels {list(labels)}); 0 means unpainted/erased voxels — paint them with a phase "
            "label, or remove the layer's gencal metadata to save the raw values"
        )
    pm = PhaseMap(tuple(labels))
    lut = np.asarray(pm.labels, dtype=pm.label_dtype())
    return lut[arr.astype(np.intp) - 1]


def phase_colormap(k: int) -> dict:
    """A direct Labels colormap for display codes ``1 .. k`` (0/None transparent)."""
    cmap: dict[Any, str] = {None: "transparent", 0: "transparent"}
    for i in range(k):
        cmap[i + 1] = PHASE_COLORS[i % len(PHASE_COLORS)]
    return cmap


_UNITS = {"um", "µm", "micron", "micrometer", "nm", "nanometer", "mm", "millimeter", "m", "meter"}


def labels_layer_tuple(
    data: np.ndarray,
    name: str,
    labels: Sequence[int] | None = None,
    phase_names: Sequence[str] | None = None,
    voxel_size: Sequence[float] | None = None,
    unit: str | None = None,
    **info: Any,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """A napari layer-data tuple for a label image, display-coded, with ``metadata["gencal"]``.

    Extra keyword arguments (``source``, ``kind``, ``model``, ``seed`` …) go into the gencal
    metadata.
    """
    codes, labels = encode_labels(data, labels)
    meta = GencalLayerInfo(
        phase_map=list(labels),
        phase_names=None if phase_names is None else list(phase_names),
        voxel_size=None if voxel_size is None else [float(v) for v in voxel_size],
        unit=unit,
    )
    meta.update(info)
    kwargs: dict[str, Any] = {
        "name": name,
        "metadata": {"gencal": dict(meta)},
        "colormap": phase_colormap(len(labels)),
    }
    if voxel_size is not None and len(voxel_size) == codes.ndim:
        kwargs["scale"] = tuple(float(v) for v in voxel_size)
        if unit in _UNITS:
            kwargs["units"] = ("um" if unit in ("µm", "micron") else unit,) * codes.ndim
    return codes, kwargs, "labels"


def layer_label_image(layer: Any, phases: str | Sequence[int] | None = None):
    """The user's label image behind a napari layer, ready for the core.

    Parameters
    ----------
    layer : napari.layers.Labels or napari.layers.Image
        A display-coded layer from this plugin (``metadata["gencal"]``), or any integer layer whose
        values are the phases themselves.
    phases : str or sequence of int, optional
        Explicit label values in phase order (original values), e.g. ``"0,85,170"``.

    Returns
    -------
    LabelImage
        ``data`` in the user's label values, ``phase_map``, ``voxel_size`` from the layer scale.

    Raises
    ------
    PhaseError
        With a message naming the problem and the fix.
    """
    from ..core.io import LabelImage
    from ..core.phases import infer_phase_map

    data = np.asarray(layer.data)
    if data.ndim not in (2, 3):
        raise PhaseError(
            f"layer {layer.name!r} has {data.ndim} dimensions {data.shape}; use a 2D image or a "
            "3D stack (split channels/time points first)"
        )
    info = (getattr(layer, "metadata", None) or {}).get("gencal") or {}
    names = info.get("phase_names")
    if info.get("phase_map"):
        data = decode_labels(data, info["phase_map"])
        if phases is None:
            phases = tuple(info["phase_map"])
    pm = infer_phase_map(data, phases, max_phases=MAX_LABEL_VALUES)
    if (
        names is not None
        and len(names) == pm.n_phases
        and tuple(pm.labels) == tuple(info.get("phase_map", ()))
    ):
        pm = PhaseMap(pm.labels, tuple(names))
    scale = tuple(float(s) for s in np.asarray(layer.scale)[-data.ndim :])
    vs = info.get("voxel_size")
    if vs is None and any(abs(s - 1.0) > 1e-12 for s in scale):
        vs = scale
    return LabelImage(
        data=data,
        phase_map=pm,
        voxel_size=None if vs is None else tuple(float(v) for v in vs),
        unit=info.get("unit"),
        source=str(info.get("source") or f"napari layer {layer.name!r}"),
        metadata={k: v for k, v in info.items() if k in ("model", "seed", "kind")},
    )


def unique_name(existing: Iterable[str], base: str) -> str:
    """``base`` if unused, else ``base [2]``, ``base [3]`` … (never an existing layer's name)."""
    names = set(existing)
    if base not in names:
        return base
    i = 2
    while f"{base} [{i}]" in names:
        i += 1
    return f"{base} [{i}]"
