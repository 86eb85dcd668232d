"""The low-resolution scan side of fusion: label mapping, scale factor, block statistics.

A low-resolution 3D scan assigns one label to each block of ``s0 × s1 × s2`` high-resolution
voxels. Its labels name one model phase each, or a *group* of model phases it cannot tell apart
(e.g. a lab XCT that sees solid vs pore only: binder and pore merged). Everything here is plain
NumPy on label arrays; the optimisation lives in :mod:`.conditional`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..phases import PhaseMap, _check_numeric

__all__ = [
    "ScanMapping",
    "prepare_scan",
    "parse_mapping",
    "resolve_scale",
    "block_fractions",
    "downsample_majority",
    "upsample_nearest",
    "scan_agreement",
]


@dataclass(frozen=True)
class ScanMapping:
    """Which model phases each scan label stands for.

    Parameters
    ----------
    scan_labels : tuple of int
        The scan's label values, one per group.
    groups : tuple of tuple of int
        ``groups[g]``: the model's phase indices (0-based) that scan label ``scan_labels[g]``
        covers. Every model phase is in exactly one group.
    """

    scan_labels: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def matrix(self, n_phases: int) -> np.ndarray:
        """``(n_groups, n_phases)`` 0/1 matrix: group fraction = matrix @ phase fractions."""
        M = np.zeros((self.n_groups, n_phases), dtype=np.float32)
        for g, members in enumerate(self.groups):
            M[g, list(members)] = 1.0
        return M

    def group_of_phase(self, n_phases: int) -> np.ndarray:
        """Group index of each model phase index."""
        out = np.empty(n_phases, dtype=np.int64)
        for g, members in enumerate(self.groups):
            out[list(members)] = g
        return out

    def to_indices(self, scan: np.ndarray) -> np.ndarray:
        """Scan labels → group indices ``0 .. n_groups − 1`` (uint8)."""
        lut = {int(v): g for g, v in enumerate(self.scan_labels)}
        out = np.full(scan.shape, 255, dtype=np.uint8)
        for v, g in lut.items():
            out[scan == v] = g
        return out

    def describe(self, model_labels: Sequence[int]) -> str:
        """``"scan 0 → model 0 + 170; scan 1 → model 85"``."""
        parts = []
        for v, members in zip(self.scan_labels, self.groups, strict=True):
            parts.append(f"scan {v} → model " + " + ".join(str(model_labels[i]) for i in members))
        return "; ".join(parts)

    def to_dict(self, model_labels: Sequence[int]) -> dict[str, list[int]]:
        """JSON form: scan label → the model's label values."""
        return {
            str(v): [int(model_labels[i]) for i in members]
            for v, members in zip(self.scan_labels, self.groups, strict=True)
        }


def _parse_spec(spec: str | Mapping[Any, Any]) -> dict[int, list[int]]:
    """``"0=0+170,255=85"`` or ``{0: [0, 170], 255: 85}`` → ``{scan label: [model labels]}``."""
    out: dict[int, list[int]] = {}
    if isinstance(spec, str):
        items = [p for chunk in spec.replace(";", ",").split(",") for p in [chunk.strip()] if p]
        for item in items:
            if "=" not in item:
                raise ValueError(
                    f"mapping entry {item!r} has no '='; write SCAN=MODEL or SCAN=MODEL+MODEL, "
                    "e.g. '0=0+170,1=85'"
                )
            left, right = item.split("=", 1)
            try:
                out[int(left)] = [int(v) for v in right.split("+") if v.strip()]
            except ValueError:
                raise ValueError(
                    f"mapping entry {item!r} is not integers; write e.g. '0=0+170,1=85'"
                ) from None
        return out
    for k, v in spec.items():
        vals = [v] if np.isscalar(v) else list(v)
        out[int(k)] = [int(x) for x in vals]
    return out


def parse_mapping(
    spec: str | Mapping[Any, Any] | None,
    scan: np.ndarray,
    model_labels: Sequence[int] | PhaseMap | None,
    n_phases: int,
) -> ScanMapping:
    """Check and build the scan → model phase mapping.

    Parameters
    ----------
    spec : str, dict or None
        ``"SCAN=MODEL[+MODEL],…"`` or ``{scan label: model label(s)}`` in the user's label values.
        None: the scan's labels are the model's own labels (each scan label one phase).
    scan : ndarray
        The low-resolution label volume (only its label values are used).
    model_labels : sequence of int, PhaseMap or None
        The model's label value per phase index (None: phase numbers ``1..k``).
    n_phases : int
        Number of model phases.

    Raises
    ------
    ValueError
        A scan label that maps to no phase, a model phase covered by no scan label or by two,
        a model label that does not exist.
    """
    if isinstance(model_labels, PhaseMap):
        model_labels = model_labels.labels
    labels = list(model_labels) if model_labels is not None else list(range(1, n_phases + 1))
    present = sorted(int(v) for v in np.unique(scan))
    if spec is None:
        unknown = [v for v in present if v not in labels]
        if unknown:
            raise ValueError(
                f"the scan has label(s) {unknown} that are not model labels {labels}; say which "
                f"model phases each scan label stands for with --map / mapping=, e.g. "
                f"'{present[0]}={labels[0]}+{labels[-1]}'"
            )
        groups = {v: [v] for v in labels}
    else:
        groups = _parse_spec(spec)
    index = {v: i for i, v in enumerate(labels)}
    seen: dict[int, int] = {}
    for s, members in groups.items():
        if not members:
            raise ValueError(f"scan label {s} maps to no model phase")
        for v in members:
            if v not in index:
                raise ValueError(f"scan label {s} maps to {v}, which is not a model label {labels}")
            if v in seen:
                raise ValueError(
                    f"model label {v} is mapped from scan labels {seen[v]} and {s}; each model "
                    "phase belongs to one scan label"
                )
            seen[v] = s
    missing = [v for v in labels if v not in seen]
    if missing:
        raise ValueError(
            f"model label(s) {missing} are covered by no scan label; merge them into one, e.g. "
            f"'{next(iter(groups))}={'+'.join(map(str, groups[next(iter(groups))] + missing))}'"
        )
    unmapped = [v for v in present if v not in groups]
    if unmapped:
        raise ValueError(
            f"the scan has label(s) {unmapped} that map to no phase (mapping covers "
            f"{sorted(groups)}); add them to the mapping or relabel the scan"
        )
    keys = sorted(groups)
    return ScanMapping(
        scan_labels=tuple(keys),
        groups=tuple(tuple(sorted(index[v] for v in groups[k])) for k in keys),
    )


def prepare_scan(
    scan: Any, model_labels: Sequence[int] | None, n_phases: int,
    mapping: str | Mapping[Any, Any] | ScanMapping | None = None,
) -> tuple[np.ndarray, ScanMapping]:  # fmt: skip
    """Check a scan (3D, integer labels: greyscale is refused) and build its mapping."""
    scan = _check_numeric(np.asarray(scan))
    if scan.ndim != 3:
        raise ValueError(f"the scan must be a 3D label volume (Z, Y, X), got shape {scan.shape}")
    if not isinstance(mapping, ScanMapping):
        mapping = parse_mapping(mapping, scan, model_labels, n_phases)
    return scan, mapping


def resolve_scale(
    scale: int | Sequence[int] | None,
    scan_voxel_size: Sequence[float] | None = None,
    model_voxel_size: Sequence[float] | None = None,
    tolerance: float = 0.02,
) -> tuple[int, int, int]:
    """The integer up-sampling factor per axis ``(z, y, x)``.

    Given ``scale``, it is checked against the voxel sizes when both are known (their ratio must
    agree within ``tolerance``); without it, the ratio of the voxel sizes is used when it is a
    whole number per axis.
    """
    ratio = None
    if scan_voxel_size is not None and model_voxel_size is not None:
        sv = tuple(float(v) for v in scan_voxel_size)[-3:]
        mv = tuple(float(v) for v in model_voxel_size)[-3:]
        if len(mv) == 2:
            mv = (mv[0], *mv)
        if len(sv) == 3 and len(mv) == 3:
            ratio = tuple(a / b for a, b in zip(sv, mv, strict=True))
    if scale is None:
        if ratio is None:
            raise ValueError(
                "the scale factor is unknown (the scan or the model has no voxel size); give it "
                "with --scale / scale=, e.g. 4"
            )
        rounded = tuple(round(r) for r in ratio)
        if any(r < 1 or abs(r - q) > tolerance * q for r, q in zip(ratio, rounded, strict=True)):
            raise ValueError(
                f"the scan's voxel size over the model's is {tuple(round(r, 3) for r in ratio)}, "
                "not a whole number per axis; resample the scan or give --scale"
            )
        return rounded  # type: ignore[return-value]
    s = (int(scale),) * 3 if np.isscalar(scale) else tuple(int(v) for v in scale)  # type: ignore[arg-type]
    if len(s) != 3 or any(v < 1 for v in s):
        raise ValueError(f"scale must be one positive integer or three (z, y, x), got {scale!r}")
    if ratio is not None and any(abs(r - q) > tolerance * q for r, q in zip(ratio, s, strict=True)):
        raise ValueError(
            f"scale {s} does not match the voxel sizes: the scan's voxel is "
            f"{tuple(round(r, 3) for r in ratio)} model voxels; give --scale "
            f"{' '.join(str(max(1, round(r))) for r in ratio)} or fix the voxel sizes"
        )
    return s  # type: ignore[return-value]


def block_fractions(indices: np.ndarray, scale: Sequence[int], n: int) -> np.ndarray:
    """Fraction of each index ``0..n−1`` per block: ``(n, Z/s0, Y/s1, X/s2)`` float32.

    The volume is cropped to whole blocks.
    """
    s = tuple(int(v) for v in scale)
    nb = tuple(d // f for d, f in zip(indices.shape, s, strict=True))
    v = indices[tuple(slice(0, b * f) for b, f in zip(nb, s, strict=True))]
    v = v.reshape(nb[0], s[0], nb[1], s[1], nb[2], s[2])
    out = np.empty((n, *nb), dtype=np.float32)
    inv = 1.0 / math.prod(s)
    for i in range(n):
        out[i] = (v == i).sum(axis=(1, 3, 5), dtype=np.int32) * inv
    return out


def downsample_majority(
    indices: np.ndarray,
    scale: Sequence[int],
    n: int,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """The block-majority label of a high-resolution index volume (how our test scans are made).

    ``groups`` (the group of each index, :meth:`ScanMapping.group_of_phase`) merges indices
    first. Ties go to the lowest group index.
    """
    frac = block_fractions(indices, scale, n)
    if groups is not None:
        g = int(groups.max()) + 1
        merged = np.zeros((g, *frac.shape[1:]), dtype=np.float32)
        for i, gi in enumerate(groups):
            merged[gi] += frac[i]
        frac = merged
    return np.argmax(frac, axis=0).astype(np.uint8)


def upsample_nearest(scan: np.ndarray, scale: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour up-sampling: each scan voxel becomes a block (the blocky baseline)."""
    out = scan
    for ax, f in enumerate(scale):
        out = np.repeat(out, int(f), axis=ax)
    return out


def scan_agreement(
    indices: np.ndarray,
    scan_groups: np.ndarray,
    scale: Sequence[int],
    mapping: ScanMapping,
    n_phases: int,
) -> float:
    """Fraction of scan voxels whose block majority in ``indices`` is the scan's label."""
    down = downsample_majority(indices, scale, n_phases, mapping.group_of_phase(n_phases))
    return float(np.mean(down == scan_groups))
