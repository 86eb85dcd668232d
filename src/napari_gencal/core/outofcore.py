"""Twins larger than memory: generation into zarr block by block, and chunked descriptors.

A realization is a function of (model, seed, global voxel position) only
(:func:`~napari_gencal.core.generate.generate_block`), so a volume can be cut into chunks that are
generated independently — in parallel through ``dask.array`` (threads, or the workers of a
``dask.distributed`` client) — and stitched in a zarr store that equals the in-memory result voxel
for voxel. The descriptors that matter for a twin's size, volume fractions and the Crofton S_V,
are computed chunk by chunk with a one-voxel halo, so they equal the in-memory values exactly.

* :func:`generate_dask` — the realization as a lazy ``dask.array`` of label values.
* :func:`generate_to_zarr` — written to a zarr store (atomically: a temporary store renamed).
* :func:`volume_fractions_chunked`, :func:`surface_area_chunked` — on any chunked array (zarr,
  dask) or ndarray.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .generate import generate_block
from .model import ExcursionModel
from .phases import to_labels

__all__ = [
    "generate_dask",
    "generate_to_zarr",
    "open_zarr_twin",
    "volume_fractions_chunked",
    "surface_area_chunked",
    "DEFAULT_CHUNK",
]

#: Chunk edge of generated zarr twins: 128³ float64 FFT work is ~0.3 GB per task.
DEFAULT_CHUNK = 128


def _chunks(shape: Sequence[int], chunks: int | Sequence[int]) -> tuple[int, ...]:
    ch = (int(chunks),) * len(shape) if np.isscalar(chunks) else tuple(int(c) for c in chunks)
    if len(ch) != len(shape) or min(ch) < 1:
        raise ValueError(
            f"chunks must be one positive size or one per axis of {shape}, got {chunks}"
        )
    return tuple(min(c, s) for c, s in zip(ch, shape, strict=True))


def generate_dask(
    model: ExcursionModel,
    shape: Sequence[int],
    seed: int = 0,
    chunks: int | Sequence[int] = DEFAULT_CHUNK,
    device: str = "cpu",
    precision: str = "double",
):
    """The realization ``generate(model, shape, seed)`` as a lazy dask array of label values.

    Each chunk is one :func:`~napari_gencal.core.generate.generate_block` call (noise keyed by
    global position, a halo of the kernel radius), so any chunking gives the same voxels.
    """
    import dask.array as da

    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive sizes (z, y, x), got {shape}")
    ch = _chunks(shape, chunks)
    pm = model.phase_map
    dtype = pm.label_dtype() if pm is not None else np.dtype(np.uint8)
    text = json.dumps(model.to_dict())  # a small, picklable form for the workers

    def block(block_info=None):
        info = block_info[None]
        origin = tuple(lo for lo, _ in info["array-location"])
        size = tuple(hi - lo for lo, hi in info["array-location"])
        m = ExcursionModel.from_dict(json.loads(text))
        idx = generate_block(m, origin, size, seed=seed, device=device, precision=precision)
        return to_labels(idx, m.phase_map) if m.phase_map is not None else (idx + 1).astype(dtype)

    return da.map_blocks(block, chunks=da.core.normalize_chunks(ch, shape), dtype=dtype,
                         meta=np.empty((0, 0, 0), dtype))  # fmt: skip


def generate_to_zarr(
    model: ExcursionModel,
    shape: Sequence[int],
    path: str | os.PathLike,
    seed: int = 0,
    chunks: int | Sequence[int] = DEFAULT_CHUNK,
    *,
    overwrite: bool = False,
    device: str = "cpu",
    client: Any = None,
    num_workers: int | None = None,
) -> Path:
    """Write the realization to a zarr store, chunk by chunk in parallel (bounded memory).

    Parameters
    ----------
    model, shape, seed
        What :func:`~napari_gencal.core.generate.generate` takes; the store holds the same
        voxels.
    path : path
        The ``.zarr`` folder (refused when it exists, unless ``overwrite``).
    chunks : int or (int, int, int)
        Chunk (and zarr chunk) edge; peak memory ≈ workers × the working memory of one chunk.
    client : distributed.Client, optional
        Compute on this cluster; default: dask's threads (``num_workers`` of them).

    Returns
    -------
    Path
        The store. Its attributes hold the model, seed, chunks, phase labels and voxel size.
    """
    import dask
    import dask.array as da
    import zarr

    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists; choose another name or pass overwrite=True")
    arr = generate_dask(model, shape, seed, chunks, device)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent if p.parent.exists() else None))
    store = tmp / "store.zarr"
    try:
        z = zarr.open_array(str(store), mode="w", shape=arr.shape, chunks=arr.chunksize,
                            dtype=arr.dtype)  # fmt: skip
        z.attrs.update({
            "napari_gencal": "twin", "model": model.to_dict(), "seed": int(seed),
            "phase_labels": None if model.phase_map is None else list(model.phase_map.labels),
            "voxel_size": None if model.voxel_size is None else list(model.voxel_size),
        })  # fmt: skip
        # Each dask chunk is one zarr chunk: stored in place, no lock, no rechunking.
        if client is not None:
            da.store(arr, z, lock=False, compute=True)
        else:
            with dask.config.set(scheduler="threads", num_workers=num_workers):
                da.store(arr, z, lock=False, compute=True)
        if p.exists():
            shutil.rmtree(p)
        os.replace(store, p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return p


def open_zarr_twin(path: str | os.PathLike):
    """A zarr twin as ``(dask array, attrs)`` (lazy: nothing is read until needed)."""
    import dask.array as da
    import zarr

    z = zarr.open_array(str(path), mode="r")
    return da.from_zarr(z), dict(z.attrs)


def _blocks(shape: Sequence[int], chunks: Sequence[int]):
    ranges = [range(0, s, c) for s, c in zip(shape, chunks, strict=True)]
    import itertools

    for o in itertools.product(*ranges):
        yield o, tuple(min(c, s - oo) for oo, c, s in zip(o, chunks, shape, strict=True))


def _chunk_of(array: Any) -> tuple[int, ...]:
    if hasattr(array, "chunksize"):
        return tuple(array.chunksize)
    if hasattr(array, "chunks") and all(isinstance(c, int) for c in array.chunks):
        return tuple(array.chunks)
    return tuple(array.shape)


def volume_fractions_chunked(array: Any, labels: Sequence[int]) -> np.ndarray:
    """Volume fraction of each label, counted chunk by chunk (zarr, dask or ndarray)."""
    shape = tuple(array.shape)
    counts = np.zeros(len(labels))
    for o, s in _blocks(shape, _chunk_of(array)):
        blk = np.asarray(array[tuple(slice(a, a + b) for a, b in zip(o, s, strict=True))])
        for i, v in enumerate(labels):
            counts[i] += np.count_nonzero(blk == v)
    return counts / math.prod(shape)


def surface_area_chunked(array: Any, labels: Sequence[int]) -> np.ndarray:
    """Crofton S_V (13 directions, 1/voxel) of each label, chunk by chunk with a 1-voxel halo.

    Every voxel pair (x, x + v) of the volume is counted exactly once — by the chunk holding x,
    reading its neighbour from the halo — so the result equals
    :func:`~napari_gencal.core.descriptors.specific_surface_area` of the whole array.
    """
    from .descriptors.surface import crofton_directions

    shape = tuple(array.shape)
    dirs, w = crofton_directions(3)
    cross = np.zeros((len(labels), len(dirs)))
    for o, s in _blocks(shape, _chunk_of(array)):
        lo = [max(0, a - 1) for a in o]
        hi = [min(n, a + b + 1) for a, b, n in zip(o, s, shape, strict=True)]
        blk = np.asarray(array[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))])
        first = [a - b for a, b in zip(o, lo, strict=True)]  # the chunk's start inside blk
        for j, v in enumerate(dirs):
            sa, sb = [], []
            for ax in range(3):
                start = max(first[ax], -v[ax])
                stop = min(first[ax] + s[ax], blk.shape[ax] - v[ax])
                sa.append(slice(start, max(start, stop)))
                sb.append(slice(start + v[ax], max(start, stop) + v[ax]))
            a, b = blk[tuple(sa)], blk[tuple(sb)]
            for i, lab in enumerate(labels):
                cross[i, j] += np.count_nonzero((a == lab) != (b == lab))
    n_pairs = np.array([math.prod(max(0, n - abs(d)) for n, d in zip(shape, v, strict=True))
                        for v in dirs], dtype=float)  # fmt: skip
    lengths = np.array([np.linalg.norm(v) for v in dirs])
    p_l = cross / (n_pairs * lengths)
    return 2.0 * (p_l @ np.asarray(w))
