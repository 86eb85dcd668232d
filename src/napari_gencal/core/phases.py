"""Label images ⇄ phase indices ⇄ one-hot phase indicators.

Every entry point of the package (CLI, Python API, napari widgets) turns the user's label image into
*phase indices* ``0 .. k-1`` here, and turns generated phase indices back into the user's label
values here. The mapping between the two is a :class:`PhaseMap`, which is stored in model files so
that a generated volume carries the same label values as the data it was calibrated from.

Conventions
-----------
* phase index ``i`` (0-based) is phase ``i + 1`` of ``method.md`` (1 = SE, 2 = AM, 3 = pore for the
  paper's cathode; any three-phase material works the same way);
* spatial axes are ``(z, y, x)`` for volumes and ``(y, x)`` for images;
* indicator tensors are ``(k, *spatial)`` for one image and ``(B, k, *spatial)`` for a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily so that napari starts fast
    import torch

__all__ = [
    "PhaseError",
    "PhaseMap",
    "infer_phase_map",
    "parse_phases",
    "to_indices",
    "to_labels",
    "one_hot",
    "as_sections",
]

MAX_PHASES_DEFAULT = 3


class PhaseError(ValueError):
    """The input is not a usable label image; the message says why and what to do."""


@dataclass(frozen=True)
class PhaseMap:
    """Which label value in the user's image is which phase.

    Parameters
    ----------
    labels : tuple of int
        ``labels[i]`` is the label value of phase index ``i``.
    names : tuple of str, optional
        Human-readable phase names (e.g. ``("SE", "AM", "pore")``). Defaults to ``"label <v>"``.
    """

    labels: tuple[int, ...]
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        labels = tuple(int(v) for v in self.labels)
        if len(labels) < 2:
            raise PhaseError(
                f"a phase map needs at least two phases, got labels {labels}; "
                "a one-phase image carries no structure to calibrate"
            )
        if len(set(labels)) != len(labels):
            raise PhaseError(f"phase labels must be distinct, got {labels}")
        object.__setattr__(self, "labels", labels)
        if self.names is not None:
            names = tuple(str(n) for n in self.names)
            if len(names) != len(labels):
                raise PhaseError(
                    f"{len(names)} phase names given for {len(labels)} phases ({labels})"
                )
            object.__setattr__(self, "names", names)

    @property
    def n_phases(self) -> int:
        """Number of phases ``k``."""
        return len(self.labels)

    @property
    def display_names(self) -> tuple[str, ...]:
        """Names to show: the given names, else ``"label <value>"``."""
        if self.names is not None:
            return self.names
        return tuple(f"label {v}" for v in self.labels)

    def label_dtype(self) -> np.dtype:
        """Smallest dtype that holds every label value (uint8, uint16, int16 or int32)."""
        lo, hi = min(self.labels), max(self.labels)
        for dt in (np.uint8, np.uint16, np.int16, np.int32):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return np.dtype(dt)
        return np.dtype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {
            "labels": list(self.labels),
            "names": None if self.names is None else list(self.names),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhaseMap:
        """Inverse of :meth:`to_dict`."""
        names = d.get("names")
        return cls(tuple(d["labels"]), None if names is None else tuple(names))


def parse_phases(phases: str | Sequence[int] | PhaseMap | None) -> tuple[int, ...] | None:
    """Parse a user's phase specification (``"0,85,170"``, ``[0, 85, 170]`` or a PhaseMap)."""
    if phases is None:
        return None
    if isinstance(phases, PhaseMap):
        return phases.labels
    if isinstance(phases, str):
        parts = [p.strip() for p in phases.replace(";", ",").split(",") if p.strip()]
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            raise PhaseError(
                f"could not read phase labels from {phases!r}; write them as integers "
                "separated by commas, e.g. --phases 0,85,170"
            ) from None
    return tuple(int(v) for v in phases)


def _check_numeric(image: np.ndarray) -> np.ndarray:
    """Refuse arrays that cannot be label images; return an integer view/copy."""
    if image.dtype == bool:
        return image.astype(np.uint8)
    if image.dtype.kind in "iu":
        return image
    if image.dtype.kind == "f":
        if not np.all(np.isfinite(image)):
            raise PhaseError(
                "the image contains NaN or infinite values; a label image holds one integer "
                "label per voxel — fill or mask the invalid voxels first"
            )
        if not np.all(np.equal(np.mod(image, 1), 0)):
            raise PhaseError(
                f"the image has non-integer values (dtype {image.dtype}); it looks like a "
                "greyscale image, not a segmentation. Segment it into phases first (e.g. with "
                "napari's Labels tools or skimage.filters.threshold_multiotsu) and pass the label "
                "image"
            )
        return image.astype(np.int64)
    raise PhaseError(
        f"unsupported image dtype {image.dtype}; pass an integer (or boolean) label image"
    )


def _small_int(arr: np.ndarray) -> bool:
    """8- or 16-bit integers: label values found by counting, not sorting."""
    return arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2


def present_values(image: np.ndarray) -> np.ndarray:
    """The distinct values of a label image, sorted (``np.unique``; by counting for 8/16-bit
    integers, which is 10–30× faster on large volumes)."""
    arr = np.asarray(image)
    if not _small_int(arr):
        return np.unique(arr)
    lo = int(np.iinfo(arr.dtype).min)
    flat = arr.reshape(-1).view(np.dtype(f"u{arr.dtype.itemsize}"))
    counts = np.bincount(flat, minlength=1 << (8 * arr.dtype.itemsize))
    values = np.flatnonzero(counts)
    if lo < 0:  # two's complement: the upper half of the unsigned view holds the negatives
        half = 1 << (8 * arr.dtype.itemsize - 1)
        values = np.where(values >= half, values - 2 * half, values)
        values.sort()
    return values.astype(arr.dtype)


def infer_phase_map(
    image: np.ndarray,
    phases: str | Sequence[int] | PhaseMap | None = None,
    max_phases: int = MAX_PHASES_DEFAULT,
    names: Sequence[str] | None = None,
) -> PhaseMap:
    """Decide which label value is which phase, and check that the image is a usable segmentation.

    Parameters
    ----------
    image : ndarray
        Integer (or boolean, or integral float) label image, any dimension.
    phases : str or sequence of int or PhaseMap, optional
        Explicit label values in phase order. Required when the image has more than ``max_phases``
        distinct values. Every listed label must occur in the image and every value of the image
        must be listed.
    max_phases : int
        Largest number of distinct values accepted without an explicit mapping.
    names : sequence of str, optional
        Phase names stored with the map.

    Returns
    -------
    PhaseMap

    Raises
    ------
    PhaseError
        Greyscale-looking data, NaN, too many labels without a mapping, a listed phase that is
        absent from the image, or values that the mapping does not cover.
    """
    if isinstance(phases, PhaseMap) and names is None:
        names = phases.names
    arr = _check_numeric(np.asarray(image))
    if arr.size == 0:
        raise PhaseError("the image is empty (size 0)")
    present = present_values(arr)
    wanted = parse_phases(phases)
    if wanted is None:
        if present.size > max_phases:
            shown = ", ".join(str(v) for v in present[:8]) + (" …" if present.size > 8 else "")
            raise PhaseError(
                f"the image has {present.size} distinct values ({shown}); at most {max_phases} "
                "phases are accepted without an explicit mapping. If it is a segmentation, list "
                "the label of each phase (e.g. phases='0,1,2' or --phases 0,1,2); if it is a "
                "greyscale image, segment it first"
            )
        if present.size < 2:
            raise PhaseError(
                f"the image contains a single value ({present[0]}); it has no phase structure"
            )
        return PhaseMap(tuple(int(v) for v in present), None if names is None else tuple(names))
    missing = [v for v in wanted if v not in set(present.tolist())]
    if missing:
        raise PhaseError(
            f"phase label(s) {missing} do not occur in the image (its values are "
            f"{present.tolist()[:10]}); an absent phase has no statistics to calibrate — check the "
            "phase mapping"
        )
    extra = sorted(set(present.tolist()) - set(wanted))
    if extra:
        raise PhaseError(
            f"the image contains values {extra[:10]} that are not in the phase mapping "
            f"{list(wanted)}; add them to the mapping (merge them into a phase) or relabel the "
            "image"
        )
    return PhaseMap(wanted, None if names is None else tuple(names))


def to_indices(image: np.ndarray, phase_map: PhaseMap) -> np.ndarray:
    """Map label values to phase indices ``0 .. k-1`` (uint8).

    Raises
    ------
    PhaseError
        If the image holds a value that is not in ``phase_map``.
    """
    arr = _check_numeric(np.asarray(image))
    if _small_int(arr):
        # A lookup table over every value of the dtype: one gather instead of a binary search.
        bits = 8 * arr.dtype.itemsize
        lo = int(np.iinfo(arr.dtype).min)
        lut = np.full(1 << bits, 255, dtype=np.uint8)
        for i, v in enumerate(phase_map.labels):
            if np.iinfo(arr.dtype).min <= v <= np.iinfo(arr.dtype).max:
                lut[int(v) - lo] = i
        out = lut[arr] if lo == 0 else lut[arr.astype(np.int32) - lo]
        bad = out == 255
        if bad.any():
            values = present_values(arr[bad])[:10].tolist()
            raise PhaseError(
                f"values {values} are not in the phase mapping {list(phase_map.labels)}; "
                "add them to the mapping or relabel the image"
            )
        return out
    lut_keys = np.asarray(phase_map.labels)
    order = np.argsort(lut_keys)
    sorted_keys = lut_keys[order]
    pos = np.searchsorted(sorted_keys, arr)
    pos = np.clip(pos, 0, len(sorted_keys) - 1)
    ok = sorted_keys[pos] == arr
    if not np.all(ok):
        bad = np.unique(arr[~ok])[:10].tolist()
        raise PhaseError(
            f"values {bad} are not in the phase mapping {list(phase_map.labels)}; "
            "add them to the mapping or relabel the image"
        )
    return order[pos].astype(np.uint8)


def to_labels(indices: np.ndarray, phase_map: PhaseMap) -> np.ndarray:
    """Map phase indices ``0 .. k-1`` back to the user's label values (smallest fitting dtype)."""
    lut = np.asarray(phase_map.labels, dtype=phase_map.label_dtype())
    return lut[np.asarray(indices, dtype=np.intp)]


def one_hot(
    indices: np.ndarray | torch.Tensor,
    n_phases: int,
    *,
    batch: bool = False,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One-hot phase indicators from phase indices.

    Parameters
    ----------
    indices : ndarray or Tensor
        Phase indices ``0 .. k-1``; shape ``spatial`` (``batch=False``) or ``(B, *spatial)``.
    n_phases : int
        Number of phases ``k``.
    batch : bool
        Whether the first axis of ``indices`` is a batch axis.
    device, dtype
        Placement of the result (default: ``indices``' device, float32).

    Returns
    -------
    Tensor
        ``(k, *spatial)`` or ``(B, k, *spatial)``.
    """
    import torch

    t = torch.as_tensor(
        np.ascontiguousarray(indices) if isinstance(indices, np.ndarray) else indices
    )
    t = t.to(device=device if device is not None else t.device)
    if t.is_floating_point() or t.is_complex():
        t = t.to(torch.long)
    if t.numel():
        lo, hi = (int(v) for v in torch.aminmax(t))
        if lo < 0 or hi >= int(n_phases):
            raise PhaseError(
                f"phase indices must lie in 0..{int(n_phases) - 1}, got values in [{lo}, {hi}]; "
                "convert label values with to_indices(labels, phase_map) first"
            )
    ch = 1 if batch else 0
    shape = list(t.shape)
    shape.insert(ch, int(n_phases))
    oh = torch.empty(shape, dtype=dtype or torch.float32, device=t.device)
    # One comparison per phase straight into the output: F.one_hot builds an int64 array k times
    # the size with the class axis last, which was 5x slower on large volumes.
    for i in range(int(n_phases)):
        torch.eq(t, i, out=oh.select(ch, i))
    return oh


def as_sections(volume: np.ndarray, axis: int | str | None) -> np.ndarray:
    """View a 2D image or a 3D stack as a stack of 2D sections ``(N, H, W)``.

    Parameters
    ----------
    volume : ndarray
        2D ``(y, x)`` or 3D ``(z, y, x)``.
    axis : int or {"z", "y", "x"} or None
        For 3D input: the axis *normal* to the sections (``"z"``: the x–y planes). Ignored for 2D.
    """
    arr = np.asarray(volume)
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim != 3:
        raise PhaseError(f"expected a 2D image or a 3D stack, got an array of shape {arr.shape}")
    if axis is None:
        raise PhaseError("a 3D stack needs a slice axis (z, y or x) to be used as 2D sections")
    ax = {"z": 0, "y": 1, "x": 2}.get(axis, axis) if isinstance(axis, str) else int(axis)
    if ax not in (0, 1, 2):
        raise PhaseError(f"slice axis must be z, y, x or 0, 1, 2; got {axis!r}")
    return np.moveaxis(arr, ax, 0)
