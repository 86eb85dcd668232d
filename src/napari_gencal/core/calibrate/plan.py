"""Calibration settings derived from the data's own structure scale.

A user's images come at their own resolution: particles of 5 px or of 60 px, a binder of 3 px
chords or none. Fixed window, kernel radius and r_max that suit one data set cut the kernels of
another (rough, too fine twins) or waste minutes on a third. This module measures the structure
scale of the data and derives every length of a calibration from it:

* :func:`measure_structure` — volume fractions, mean chord lengths per phase and direction, and the
  correlation range ``r0`` of the TPPFs (the first distance at which every curve is within 0.01 of
  ``φ_iφ_j``, unless a curve later leaves twice that band).
* :func:`working_factor` — an integer f ≥ 1: calibrate on every f-th pixel (point sampling, which
  keeps the law of a stationary set: the TPPF of the sampled image at lag h is the data's at f·h)
  and give the model ``length_scale = f`` (exact: kernels at scaled coordinates). f > 1 when the
  images are made of f×f blocks (nearest-neighbour up-sampled: nothing is lost), or when the
  structure is so large that a native-resolution calibration would not fit the time budget — but
  never so far that the thinnest phase's mean chord drops below :data:`THIN_PIXELS`.
* :func:`plan_calibration` — the working factor, then at the working resolution r_max, the kernel
  radius m, the discriminator window and the section size; each with the reason, for the model file
  and the user.

Every rule is a ratio of lengths, so data up-sampled by s gets the same working data (when the
blocks are exact) or settings scaled by s. See docs/decisions/calibration.md ("Settings from the
data").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Structure",
    "Plan",
    "measure_structure",
    "correlation_range",
    "lossless_factor",
    "working_factor",
    "coarsen",
    "plan_calibration",
    "THIN_PIXELS",
    "R_WORK",
]

#: The thinnest phase keeps at least this mean chord length (pixels) when the working resolution is
#: coarsened for speed: thinner phases turn into single-pixel noise on the lattice.
THIN_PIXELS = 3.0
#: Largest r_max (pixels) calibrated at native resolution when a coarser one is allowed: beyond it a
#: step costs ~m³ (kernel spectra) and the budget buys too few steps. Measured step times (2 cores):
#: m = 23 0.06 s, m = 40 0.25 s before the octant spectra.
R_WORK = 40
#: Band around φ_iφ_j (probability units) within which a TPPF counts as settled (method.md §4).
SETTLE_TOL = 0.01
#: r_max = ceil(R_FACTOR · r0) (method.md §4's safety factor).
R_FACTOR = 1.5
#: Images smaller than this many largest-phase mean chords per side cannot show their structure
#: repeating: refused. Below :data:`SIZE_WARN` chords a warning.
SIZE_MIN = 4.0
SIZE_WARN = 8.0
#: Share of pixels that may differ from an f×f block image for the images to count as made of
#: blocks (lossless coarsening): tolerates a few edited pixels, not real sub-block detail.
LOSSLESS_TOL = 0.002
#: Largest working factor considered.
MAX_FACTOR = 8
#: Working images keep at least this side (pixels): coarser ones leave too little for the
#: discriminator window and the TPPF range.
MIN_WORK_SIDE = 64
#: Smallest and largest discriminator windows chosen automatically (powers of two).
WINDOW_RANGE = (64, 128)
#: The window is the largest power of two ≤ this many r_max (r_max = 1.5 r0: three correlation
#: ranges, enough to judge the shape of single features; the TPPF loss sees 4·r_max).
WINDOW_RMAX = 2.0
#: Sections used to measure the structure (a seeded random subset beyond).
MAX_SECTIONS = 64


@dataclass
class Structure:
    """Structure scale of phase-index sections ``(N, H, W)``.

    Attributes
    ----------
    section_shape : (int, int)
    n_sections : int
    fractions : ndarray, shape (k,)
    chords : ndarray, shape (k, 2)
        Mean chord length of each phase along y and x (pixels; NaN where a phase has no chord).
    deviation : ndarray
        ``max_ij |C_ij(r) − φ_iφ_j|`` for r = 0 … a quarter of the smaller side.
    r0 : int or None
        Correlation range (pixels): see :func:`correlation_range`; None when the curves do not
        settle within a quarter of the image side.
    """

    section_shape: tuple[int, int]
    n_sections: int
    fractions: np.ndarray
    chords: np.ndarray
    deviation: np.ndarray
    r0: int | None

    @property
    def mean_chords(self) -> np.ndarray:
        """Mean chord per phase, averaged over y and x."""
        return np.nanmean(self.chords, axis=1)

    @property
    def thinnest(self) -> float:
        """Smallest mean chord of any phase (pixels; NaN when no phase has a chord)."""
        c = self.mean_chords
        return float(np.nanmin(c)) if np.isfinite(c).any() else float("nan")

    @property
    def largest(self) -> float:
        """Largest mean chord of any phase (pixels; NaN when no phase has a chord)."""
        c = self.mean_chords
        return float(np.nanmax(c)) if np.isfinite(c).any() else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for model files)."""
        return {
            "section_shape": list(self.section_shape),
            "n_sections": self.n_sections,
            "fractions": [round(float(v), 5) for v in self.fractions],
            "mean_chords_yx": [[_round(v) for v in row] for row in self.chords],
            "correlation_range": self.r0,
        }


def _round(v: float) -> float | None:
    return None if not math.isfinite(float(v)) else round(float(v), 3)


def _subset(sections: np.ndarray, max_sections: int, seed: int) -> np.ndarray:
    n = sections.shape[0]
    if n <= max_sections:
        return sections
    rng = np.random.default_rng(seed)
    return sections[np.sort(rng.choice(n, max_sections, replace=False))]


def correlation_range(deviation: np.ndarray, tol: float = SETTLE_TOL) -> int | None:
    """The distance at which the TPPFs have settled, from ``max_ij |C_ij(r) − φ_iφ_j|``.

    The first r at which every curve is within ``tol``; when some curve later leaves ``2·tol``
    and comes back (a damped oscillation, as in packings), the smallest r from which all stay
    within ``2·tol``. A weak long-range offset within ``2·tol`` — tiling artefacts, slow
    gradients — does not push r0 out to the image size (SEM_hr_input.tif: within 0.01 at r = 22,
    a plateau of 0.012–0.014 beyond, which the "stays within" rule of method.md §4 turns into
    r_max = 100), and neither does a departure that has not come back by the end of the range:
    a drift across the image (a 256² crop of the same SEM image: within 0.01 at r = 20, then a
    slow rise to 0.026 at r = 64, four to five times the curves' sampling error there), which no
    kernel of a stationary model can carry. The old rule put r_max at the quarter-side cap, 64,
    and the calibration missed S_V by 17 % and chords by 27 %.

    Returns
    -------
    int or None
        None when the curves never come within ``tol`` in the range given.
    """
    dev = np.asarray(deviation, dtype=float)
    inside = np.flatnonzero(dev <= tol)
    if inside.size == 0:
        return None
    first = int(inside[0])
    above = dev[first:] > 2 * tol
    if above.size and above[-1]:
        # The last departure runs to the end of the range: a drift, not a correlation.
        back = np.flatnonzero(~above)
        above = above[: int(back[-1]) + 1]
    later = np.flatnonzero(above)
    if later.size == 0:
        return first
    return first + int(later[-1]) + 1


def measure_structure(
    sections: np.ndarray, k: int, *, max_sections: int = MAX_SECTIONS, seed: int = 0
) -> Structure:
    """Fractions, mean chords (y, x) and the TPPF correlation range of phase-index sections.

    Parameters
    ----------
    sections : ndarray
        Phase indices ``(N, H, W)`` (values ``0 .. k-1``).
    k : int
        Number of phases.
    max_sections : int
        At most this many sections are measured (a seeded random subset).
    seed : int
        Seed of that subset.
    """
    import torch

    from ..descriptors import mean_chord_length
    from . import _backend as be

    sec = _subset(np.asarray(sections), max_sections, seed)
    n, h, w = sec.shape
    fractions = be.volume_fractions(sec, k)
    chords = np.full((k, 2), np.nan)
    for i in range(k):
        for j, ax in enumerate(("y", "x")):
            try:
                c = float(mean_chord_length(sec, i, axis=ax, sections=True))
            except ValueError:  # no chord of this phase along this axis
                continue
            # inf: the phase spans every line along this axis (stripes); no length to learn
            chords[i, j] = c if math.isfinite(c) else np.nan
    r_lim = max(2, min(h, w) // 4)
    curves = be.tppf_of_sections(sec, k, r_lim, torch.device("cpu")).double().numpy()
    dev = np.abs(curves - np.outer(fractions, fractions)[:, :, None]).max(axis=(0, 1))
    return Structure((h, w), int(np.asarray(sections).shape[0]), fractions, chords, dev,
                     correlation_range(dev))  # fmt: skip


def lossless_factor(
    sections: np.ndarray, max_factor: int = MAX_FACTOR, tol: float = LOSSLESS_TOL
) -> tuple[int, tuple[int, int]]:
    """Largest f for which the sections are made of f×f blocks (up to ``tol`` of the pixels).

    Nearest-neighbour up-sampled images are; real images are not (a boundary crosses blocks).
    Every block offset is tried, so crops that do not start on a block edge are found too.

    Returns
    -------
    (f, (oy, ox))
        The factor (1 when no f ≥ 2 fits) and the block offset.
    """
    sec = np.asarray(sections)
    _, h, w = sec.shape
    best = (1, (0, 0))
    for f in range(2, max_factor + 1):
        if min(h, w) < 8 * f:
            break
        found = None
        for oy in range(f):
            for ox in range(f):
                ny, nx = (h - oy) // f, (w - ox) // f
                core = sec[:, oy : oy + ny * f, ox : ox + nx * f]
                coarse = core[:, ::f, ::f]
                up = np.repeat(np.repeat(coarse, f, axis=1), f, axis=2)
                if np.mean(up != core) <= tol:
                    found = (oy, ox)
                    break
            if found is not None:
                break
        if found is not None:
            best = (f, found)
    return best


def coarsen(array: np.ndarray, factor: int, offset: tuple[int, ...] | None = None,
            axes: tuple[int, ...] | None = None) -> np.ndarray:  # fmt: skip
    """Every ``factor``-th pixel along ``axes`` (default: all) from ``offset`` (point sampling).

    Point sampling keeps the law of a stationary random set: the TPPF of the result at lag h is
    that of the input at lag ``factor·h``, volume fractions are unchanged.
    """
    arr = np.asarray(array)
    axes = tuple(range(arr.ndim)) if axes is None else tuple(axes)
    offset = (0,) * len(axes) if offset is None else tuple(offset)
    sl = [slice(None)] * arr.ndim
    for ax, o in zip(axes, offset, strict=True):
        sl[ax] = slice(int(o), None, int(factor))
    return np.ascontiguousarray(arr[tuple(sl)])


def _r_max(struct: Structure) -> int:
    h, w = struct.section_shape
    limit = max(4, min(100, min(h, w) // 4))
    if struct.r0 is None:
        return limit
    return int(max(4, min(limit, math.ceil(R_FACTOR * struct.r0))))


def working_factor(
    sections: np.ndarray, struct: Structure, *, max_factor: int = MAX_FACTOR
) -> tuple[int, tuple[int, int], str]:
    """The working factor f, its block offset and the reason, for :func:`plan_calibration`.

    ``f = max(f_blocks, f_cost)``: ``f_blocks`` from :func:`lossless_factor`; ``f_cost`` the
    smallest f that brings r_max to at most :data:`R_WORK` pixels, reduced until the thinnest
    phase keeps a mean chord of at least :data:`THIN_PIXELS` pixels.
    """
    max_factor = max(1, min(max_factor, min(struct.section_shape) // MIN_WORK_SIDE))
    f_blocks, offset = lossless_factor(sections, max_factor)
    r_native = _r_max(struct)
    f_cost = 1
    if r_native > R_WORK and math.isfinite(struct.thinnest):
        f_cost = min(max_factor, math.ceil(r_native / R_WORK))
        while f_cost > 1 and struct.thinnest / f_cost < THIN_PIXELS:
            f_cost -= 1
    if f_blocks >= f_cost and f_blocks > 1:
        return (
            f_blocks,
            offset,
            (
                f"the images are made of {f_blocks}×{f_blocks} blocks (up-sampled): calibrating on "
                f"one pixel per block loses nothing"
            ),
        )
    if f_cost > 1:
        return (
            f_cost,
            (0, 0),
            (
                f"r_max {r_native} px is beyond {R_WORK} px: calibrating on one pixel in "
                f"{f_cost}×{f_cost} (thinnest phase {struct.thinnest:.1f} → "
                f"{struct.thinnest / f_cost:.1f} px mean chord, kept ≥ {THIN_PIXELS:g} px)"
            ),
        )
    reason = "native resolution"
    if r_native > R_WORK:
        reason += (
            f" (r_max {r_native} px is large, but the thinnest phase has {struct.thinnest:.1f} px "
            f"mean chords; coarsening would lose it)"
        )
    return 1, (0, 0), reason


@dataclass
class Plan:
    """Settings of a calibration derived from the data (all lengths in working pixels).

    Attributes
    ----------
    factor : int
        Working factor f (calibrate on every f-th pixel; model ``length_scale = f``).
    offset : (int, int)
        Block offset of the point sampling.
    native, work : Structure
        Structure at the native and at the working resolution.
    r_max, m, window, section_size : int
    reasons : dict
        Why each value, in words.
    warnings : list of str
        What the user should know about the data (too small, not settled…).
    blocks : bool
        The images are made of ``factor``×``factor`` blocks (nearest-neighbour up-sampled): they
        hold no detail below that, and their staircase boundaries are the blocks'.
    """

    factor: int
    offset: tuple[int, int]
    native: Structure
    work: Structure
    r_max: int
    m: int
    window: int
    section_size: int
    reasons: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    blocks: bool = False

    def summary(self) -> str:
        """One line for logs."""
        return (
            f"settings from the data: working factor {self.factor} ({self.reasons['factor']}); "
            f"r_max {self.r_max}, kernel radius m {self.m}, window {self.window}, sections "
            f"{self.section_size}² (working pixels)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record for the model file."""
        return {
            "working_factor": self.factor,
            "offset": list(self.offset),
            "r_max": self.r_max,
            "m": self.m,
            "window": self.window,
            "section_size": self.section_size,
            "blocks": self.blocks,
            "native": self.native.to_dict(),
            "working": self.work.to_dict(),
            "reasons": dict(self.reasons),
            "warnings": list(self.warnings),
        }


def _pow2_floor(x: float) -> int:
    return 1 << max(0, math.floor(math.log2(max(1.0, x))))


def check_size(struct: Structure) -> list[str]:
    """Refuse images too small for their own structure; return warnings for marginal ones.

    Raises
    ------
    ValueError
        When the smaller image side is below :data:`SIZE_MIN` largest-phase mean chords; the
        message names the size needed (:data:`SIZE_WARN` chords).
    """
    h, w = struct.section_shape
    side = min(h, w)
    big = struct.largest
    if not math.isfinite(big):
        raise ValueError(
            f"no phase of the {h}×{w} images has a chord that begins and ends inside them: every "
            "phase spans the image (or is absent); the structure is larger than the images — give "
            "larger images"
        )
    need = int(math.ceil(SIZE_WARN * big))
    if side < SIZE_MIN * big:
        raise ValueError(
            f"the images are {h}×{w} pixels, but the coarsest phase has mean chords of "
            f"{big:.0f} px: a {side}-pixel side shows it only {side / big:.1f} times, too few to "
            f"measure how it repeats; give images of at least {need}×{need} pixels "
            f"({SIZE_WARN:g} mean chords), or down-sample less when segmenting"
        )
    notes = []
    if side < SIZE_WARN * big:
        notes.append(
            f"the images are small for their structure ({h}×{w} px, coarsest phase mean chord "
            f"{big:.0f} px): statistics will be noisy; {need}×{need} px or more is advised"
        )
    if struct.r0 is None:
        notes.append(
            "the two-point functions do not settle within a quarter of the image side: the "
            "structure (or a trend) is larger than the model can learn from these images — "
            "use larger images or check that the sample is homogeneous"
        )
    return notes


def plan_calibration(sections: np.ndarray, k: int, config: Any) -> tuple[Plan, np.ndarray]:
    """Derive the working resolution and the lengths of a calibration from the data.

    Parameters
    ----------
    sections : ndarray
        Phase indices ``(N, H, W)``.
    k : int
        Number of phases.
    config : CalibrationConfig
        Values the user set (``working_factor``, ``window``, ``r_max``, ``m``) are kept; the rest
        is derived.

    Returns
    -------
    (Plan, ndarray)
        The plan and the sections at the working resolution.

    Raises
    ------
    ValueError
        Images too small for their structure (:func:`check_size`).
    """
    from .config import MIN_WINDOW, largest_window

    native = measure_structure(sections, k, seed=config.seed)
    warnings_ = check_size(native)
    reasons: dict[str, str] = {}
    if config.working_factor is None:
        f, offset, reasons["factor"] = working_factor(sections, native)
    else:
        f, offset = int(config.working_factor), (0, 0)
        reasons["factor"] = "set by the user"
    work_sections = coarsen(sections, f, offset, axes=(1, 2)) if f > 1 else sections
    work = measure_structure(work_sections, k, seed=config.seed) if f > 1 else native
    h, w = work.section_shape
    if config.r_max is not None:
        r_max = int(config.r_max)
        reasons["r_max"] = "set by the user"
    else:
        r_max = _r_max(work)
        reasons["r_max"] = (
            f"{R_FACTOR:g} × the correlation range {work.r0} px"
            if work.r0 is not None
            else "a quarter of the image side (the curves do not settle)"
        )
    if config.m is not None:
        m = int(config.m)
        reasons["m"] = "set by the user"
    else:
        m = max(4, r_max)
        reasons["m"] = "= r_max: the kernels fade out before they are cut"
    fit = largest_window(h, w, cap=4096)
    if fit < MIN_WINDOW:
        raise ValueError(
            f"at the working resolution the images are {h}×{w} pixels; calibration needs at "
            f"least {MIN_WINDOW}×{MIN_WINDOW} — use larger images"
        )
    if config.window is not None:
        window = min(int(config.window), fit)
        reasons["window"] = "set by the user" + ("" if window == config.window else " (reduced)")
    else:
        lo, hi = WINDOW_RANGE
        window = min(fit, max(lo, min(hi, _pow2_floor(WINDOW_RMAX * r_max))))
        reasons["window"] = (
            f"the largest power of two ≤ {WINDOW_RMAX:g}·r_max = {WINDOW_RMAX * r_max:g} px (three "
            f"correlation ranges), in {list(WINDOW_RANGE)}, within the images"
        )
    section_size = max(window, 8 * math.ceil(4 * r_max / 8))
    blocks = f > 1 and "blocks" in reasons["factor"]
    plan = Plan(f, offset, native, work, r_max, m, window, section_size, reasons, warnings_,
                blocks)  # fmt: skip
    return plan, work_sections
