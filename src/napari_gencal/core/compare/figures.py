"""Figures of a comparison (matplotlib :class:`~matplotlib.figure.Figure` objects, no pyplot):
chord-length CDFs, TPPF curves and slices side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# --- figures ---------------------------------------------------------------------------------


def _label_name(names: dict[str, str] | Sequence[str] | None, lab: str) -> str:
    if isinstance(names, dict):
        return names.get(lab, f"label {lab}")
    return f"label {lab}"


def chord_cdf_figure(
    data_clds: dict[tuple[str, str], Any],
    model_clds: dict[tuple[str, str], Any],
    names: dict[str, str] | None = None,
    unit: str = "voxel",
) -> Figure:
    """Chord-length CDFs, data (solid) vs model (dashed), one panel per phase, colour per axis.

    Parameters
    ----------
    data_clds, model_clds : dict
        ``{(label, direction): (lengths, probabilities)}`` or ``ChordLengthDistribution`` values.
    names : dict, optional
        Phase names by label.
    unit : str
        Length unit for the axis label.
    """
    from matplotlib.figure import Figure

    def xy(v: Any) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(v, "length"):
            return np.asarray(v.length), np.asarray(v.cdf)
        x, p = v
        return np.asarray(x), np.cumsum(p)

    labels = sorted({k[0] for k in data_clds}, key=lambda s: (len(s), s))
    dirs = sorted({k[1] for k in data_clds}, key="zyx".index)
    fig = Figure(figsize=(4.0 * max(1, len(labels)), 3.4), layout="constrained")
    axes = fig.subplots(1, max(1, len(labels)), squeeze=False)[0]
    for ax, lab in zip(axes, labels, strict=False):
        for c, d in enumerate(dirs):
            if (lab, d) in data_clds:
                x, y = xy(data_clds[(lab, d)])
                ax.step(x, y, where="post", color=f"C{c}", label=f"data {d}")
            if (lab, d) in model_clds:
                x, y = xy(model_clds[(lab, d)])
                ax.step(x, y, where="post", color=f"C{c}", ls="--", label=f"model {d}")
        ax.set_title(_label_name(names, lab))
        ax.set_xlabel(f"chord length ({unit})")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
    axes[0].set_ylabel("CDF")
    axes[0].legend(fontsize="small")
    return fig


def tppf_figure(
    r: np.ndarray | None,
    data_curves: np.ndarray,
    model_curves: np.ndarray,
    names: dict[str, str] | Sequence[str] | None = None,
    unit: str = "voxel",
    voxel_size: float | None = None,
) -> Figure:
    """TPPF curves C_ij(r), data (solid) vs model (dashed), for every pair i <= j.

    Parameters
    ----------
    r : ndarray, optional
        Distances in voxels (default ``0 .. R-1``).
    data_curves, model_curves : ndarray, shape (k, k, R) (model may have a different R)
    names : dict or sequence, optional
        Phase names (by label, or in phase order).
    """
    from matplotlib.figure import Figure

    dc, mc = np.asarray(data_curves), np.asarray(model_curves)
    k = dc.shape[0]
    rr = np.arange(dc.shape[-1]) if r is None else np.asarray(r)
    scale = float(voxel_size) if voxel_size is not None else 1.0
    if isinstance(names, dict):
        nm = list(names.values())
    elif names is not None:
        nm = list(names)
    else:
        nm = [f"phase {i}" for i in range(k)]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    p = 0
    for i in range(k):
        for j in range(i, k):
            n = min(dc.shape[-1], mc.shape[-1], rr.size)
            ax.plot(rr[:n] * scale, dc[i, j, :n], color=f"C{p}", label=f"{nm[i]}–{nm[j]} data")
            ax.plot(rr[:n] * scale, mc[i, j, :n], color=f"C{p}", ls="--", label="model")
            p += 1
    ax.set_xlabel(f"r ({unit})")
    ax.set_ylabel("C_ij(r)")
    ax.legend(fontsize="x-small", ncol=2)
    return fig


def slices_figure(
    data_slice: np.ndarray, model_slice: np.ndarray, titles: tuple[str, str] = ("data", "model")
) -> Figure:
    """Two phase-index slices side by side with the same colour map."""
    from matplotlib.figure import Figure

    a, b = np.asarray(data_slice), np.asarray(model_slice)
    vmax = max(int(a.max()), int(b.max()), 1)
    fig = Figure(figsize=(8, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, img, t in zip(axes, (a, b), titles, strict=True):
        ax.imshow(img, cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(t)
        ax.set_axis_off()
    return fig
