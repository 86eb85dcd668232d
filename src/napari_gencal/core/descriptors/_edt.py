"""Capped squared Euclidean distance transform (exact below the cap), numpy int16.

``scipy.ndimage.distance_transform_edt`` computes a full feature transform: on a 256³ volume it
takes ≈ 8 s and ≈ 800 MB on the team machine. Constrictivity only needs distances up to the
largest ball radius, so a separable transform with bounded min-plus passes (Saito & Toriwaki
1994) is exact below the cap, cheap for small caps, and needs three int16 volumes of memory.
"""

from __future__ import annotations

import numpy as np

MAX_CAP = 127  # g + k² <= 2·cap² must fit in int16 (k < cap)


def squared_edt(mask: np.ndarray, cap: int) -> np.ndarray:
    """Squared distance from each voxel to the nearest ``False`` voxel, capped at ``cap²``.

    Parameters
    ----------
    mask : ndarray of bool
        Foreground. Outside the array counts as foreground (no background beyond the window).
    cap : int
        Distances ``>= cap`` are returned as ``cap²`` (saturated); at most 127.

    Returns
    -------
    ndarray of uint8 (cap <= 11) or int16
        Exact squared Euclidean distances where they are ``< cap²``.
    """
    cap = int(min(max(1, cap), MAX_CAP))
    big = cap * cap
    # Small caps (dilations by small balls) fit in uint8: half the memory traffic of int16.
    dt = np.dtype(np.uint8) if 2 * big <= 255 else np.dtype(np.int16)
    m = np.asarray(mask, dtype=bool)
    # Pass 1, first axis: 1D distance to the nearest background voxel by two sweeps.
    g = m.astype(dt)
    g *= dt.type(cap)
    one = dt.type(1)
    for i in range(1, g.shape[0]):
        np.minimum(g[i], g[i - 1] + one, out=g[i])
    for i in range(g.shape[0] - 2, -1, -1):
        np.minimum(g[i], g[i + 1] + one, out=g[i])
    np.minimum(g, dt.type(cap), out=g)
    g *= g
    # Passes along the other axes: h(i) = min_k g(i + k) + k², k² < cap² (lower envelope). They
    # never mix slices of the first axis, so they run slab by slab in place (bounded scratch).
    slab = max(1, (1 << 22) // max(1, g[0].size))
    for z0 in range(0, g.shape[0], slab):
        block = g[z0 : z0 + slab]
        for axis in (1, 2)[: g.ndim - 1]:
            _envelope(block, axis, big)
    np.minimum(g, dt.type(big), out=g)
    return g


def _envelope(g: np.ndarray, axis: int, big: int) -> None:
    """In place: g(i) <- min_k g(i + k) + k² along ``axis`` for k² < min(max g, big)."""
    h = g.copy()
    n = g.shape[axis]
    top = int(g.max())
    tmp_shape = list(g.shape)
    k = 1
    while k < n and k * k < min(top, big):
        kk = g.dtype.type(k * k)
        tmp_shape[axis] = n - k
        tmp = np.empty(tmp_shape, g.dtype)
        lo = [slice(None)] * g.ndim
        hi = [slice(None)] * g.ndim
        lo[axis], hi[axis] = slice(k, n), slice(0, n - k)
        lo_t, hi_t = tuple(lo), tuple(hi)
        np.add(g[hi_t], kk, out=tmp)
        np.minimum(h[lo_t], tmp, out=h[lo_t])
        np.add(g[lo_t], kk, out=tmp)
        np.minimum(h[hi_t], tmp, out=h[hi_t])
        k += 1
    g[...] = h


def dilate_ball(seeds: np.ndarray, radius: float) -> np.ndarray:
    """Dilation of ``seeds`` by the digital ball ``{|o|² <= radius²}`` (exact)."""
    r2 = int(np.floor(radius * radius + 1e-9))
    cap = int(np.floor(np.sqrt(r2))) + 1
    return squared_edt(~np.asarray(seeds, dtype=bool), cap) <= r2
