"""All descriptors of a label image in one JSON-ready dictionary with stable keys.

::

    {
      "phases": {
        "<label>": {
          "name": str, "index": int,
          "volume_fraction": float,
          "specific_surface_area": float,
          "mean_chord_length": {"z": float, "y": float, "x": float},
          "geodesic_tortuosity": {"z": float | None, ...},   # None: not percolating
          "percolates": {"z": bool, ...},
          "constrictivity": {"z": float, ...},
          "r_min": {"z": float, ...}, "r_max": float,
          "tortuosity_factor": {"z": float | None, ...},     # include "transport"
          "effective_diffusivity": {"z": float, ...},
          "chord_length_distribution": {"z": {"length": [...], "probability": [...]}, ...}
        }, ...
      },
      "interfaces": {"<label>|<label>": float, ...},          # include "interfaces"
      "triple_phase_boundary": float | None,                 # three phases; None otherwise
      "voxel_size": float | None, "unit": str, "dimension": 2 | 3, "shape": [...],
      "sections": bool, "directions": [...], "include": [...], "method": {...}, "warnings": [...]
    }

Keys of descriptors that were not requested are absent. Lengths are in voxels, or in ``unit`` when a
voxel size is given (S_V and interface areas in 1/unit, TPB length in 1/unit²; ``voxel_size`` is one
number, or the per-axis list for non-cubic voxels); tortuosity,
constrictivity and diffusivity are dimensionless. Interface keys join the two labels sorted
numerically (``"0|85"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..phases import PhaseMap, to_indices
from ._common import AXIS_NAMES_2D, AXIS_NAMES_3D, DescriptorError, as_index_array
from .chords import chord_length_distribution, mean_chord_length
from .constrictivity import constrictivity
from .interfaces import interface_key, interfacial_areas, triple_phase_boundary_density
from .surface import specific_surface_area
from .tortuosity import geodesic_tortuosity
from .transport import effective_transport, taufactor_available
from .volume import volume_fraction

__all__ = ["describe", "DESCRIPTORS", "DEFAULT_INCLUDE_3D", "DEFAULT_INCLUDE_2D", "THREE_D_ONLY"]

DESCRIPTORS = (
    "volume_fraction",
    "specific_surface_area",
    "mean_chord_length",
    "chord_length_distribution",
    "geodesic_tortuosity",
    "constrictivity",
    "transport",
    "interfaces",
)
DEFAULT_INCLUDE_2D = ("volume_fraction", "specific_surface_area", "mean_chord_length", "interfaces")
DEFAULT_INCLUDE_3D = DEFAULT_INCLUDE_2D + ("geodesic_tortuosity", "constrictivity")
THREE_D_ONLY = ("geodesic_tortuosity", "constrictivity", "transport")

METHODS = {
    "volume_fraction": "share of voxels",
    "specific_surface_area": (
        "Crofton: 2D (4/pi)*L_A from 4 directions; 3D Ohser-Schladitz 13 directions"
    ),
    "mean_chord_length": "V_V / N_L (unbiased ratio estimator)",
    "chord_length_distribution": "minus sampling with Horvitz-Thompson weights",
    "geodesic_tortuosity": "exact shortest paths, 26-neighbours (1, sqrt2, sqrt3)",
    "constrictivity": "(r_min/r_max)^2: CPSD median by ball opening, MIP median from the inlet",
    "transport": "TauFactor steady-state diffusion (tortuosity factor, D_eff/D_0)",
    "interfaces": (
        "pair areas: Crofton pair crossings (same directions as S_V); TPB: L_V = 2 P_A from "
        "junction clusters per lattice plane"
    ),
}


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def describe(
    image: Any,
    phase_map: PhaseMap | None = None,
    voxel_size: float | Sequence[float] | None = None,
    directions: Sequence[str] = ("z", "y", "x"),
    include: Sequence[str] | None = None,
    *,
    sections: bool = False,
    unit: str | None = None,
    allow_absent: bool = False,
    transport_options: dict[str, Any] | None = None,
    constrictivity_step: float = 0.5,
) -> dict[str, Any]:
    """Structural descriptors of every phase (method.md §6–7) as a JSON-ready dictionary.

    Parameters
    ----------
    image : LabelImage or ndarray
        A :class:`~napari_gencal.core.io.LabelImage` (labels, phase map and voxel size are taken
        from it), or phase indices ``0 .. k-1`` (2D, 3D, or sections ``(N, H, W)`` with
        ``sections=True``).
    phase_map : PhaseMap, optional
        Label values and names of the phases (keys of the result); for an index array it gives
        ``k``; default keys are the indices.
    voxel_size : float or sequence of float, optional
        Voxel size (overrides the LabelImage's); lengths are then in ``unit``. Non-cubic voxels
        (one size per axis, a FIB-SEM stack): fractions, S_V (Crofton with the physical
        directions), chords per axis and TauFactor transport (its anisotropic solver) use the
        spacing; geodesic tortuosity, constrictivity and interfaces assume cubic voxels and are
        skipped with a warning.
    directions : sequence of {"z", "y", "x"}
        Directions for chords, tortuosity, constrictivity and transport (2D: "y", "x").
    include : sequence of str, optional
        Subset of :data:`DESCRIPTORS`. Default: volume fraction, S_V and mean chords, plus
        geodesic tortuosity and constrictivity for 3D volumes (transport only on request: slow).
    sections : bool
        The index array is a stack of 2D sections.
    unit : str, optional
        Physical unit name (default: the LabelImage's, else "unit" when a voxel size is given).
    allow_absent : bool
        Report an absent phase (fraction 0, other descriptors ``None``) instead of raising.
    transport_options : dict, optional
        Passed to :func:`effective_transport` (``iter_limit``, ``conv_crit``, ``device``).
    constrictivity_step : float
        Radius grid step of the constrictivity search (voxels).

    Returns
    -------
    dict
        See the module docstring for the stable keys.
    """
    if hasattr(image, "data") and hasattr(image, "phase_map"):
        pm = phase_map or image.phase_map
        arr = to_indices(image.data, pm)
        if voxel_size is None:
            voxel_size = image.voxel_size
        unit = unit or getattr(image, "unit", None)
    else:
        pm = phase_map
        arr = image
    arr, k = as_index_array(arr, pm.n_phases if pm is not None else None)
    if sections and arr.ndim != 3:
        raise DescriptorError(f"sections=True expects (N, H, W), got shape {arr.shape}")
    dim = 2 if (sections or arr.ndim == 2) else 3
    if arr.ndim not in (2, 3):
        raise DescriptorError(f"expected a 2D image or 3D volume, got shape {arr.shape}")
    names_ok = AXIS_NAMES_2D if dim == 2 else AXIS_NAMES_3D
    directions = tuple(directions)
    if dim == 2:
        directions = tuple(d for d in directions if d != "z") or AXIS_NAMES_2D
    bad = [d for d in directions if d not in names_ok]
    if bad:
        raise DescriptorError(f"directions {bad} are not axes of a {dim}D image; use {names_ok}")
    if include is None:
        include = DEFAULT_INCLUDE_2D if dim == 2 else DEFAULT_INCLUDE_3D
    include = tuple(include)
    unknown = [d for d in include if d not in DESCRIPTORS]
    if unknown:
        raise DescriptorError(f"unknown descriptor(s) {unknown}; choose from {DESCRIPTORS}")
    if dim == 2 and any(d in THREE_D_ONLY for d in include):
        asked = [d for d in include if d in THREE_D_ONLY]
        raise DescriptorError(
            f"{asked} need a 3D volume, but the input is 2D (shape {arr.shape}); compute them on "
            "a 3D volume (e.g. a generated realization) or leave them out of include"
        )
    h = None
    spacing: tuple[float, ...] | None = None  # per axis, for non-cubic voxels only
    warnings: list[str] = []
    if voxel_size is not None:
        vs = (
            [float(voxel_size)]  # type: ignore[arg-type]
            if np.isscalar(voxel_size)
            else [float(v) for v in voxel_size]  # type: ignore[union-attr]
        )
        if any(not v > 0 for v in vs):
            raise DescriptorError(f"voxel_size must be positive, got {tuple(vs)}")
        if max(vs) > min(vs) * (1 + 1e-6):
            # Non-cubic voxels (a FIB-SEM stack): fractions, Crofton S_V, chords and TauFactor
            # take the spacing per axis; the path and ball estimators assume cubic voxels.
            need = 2 if sections else arr.ndim
            if len(vs) < need:
                raise DescriptorError(f"voxel_size has {len(vs)} values for a {need}D image")
            spacing = tuple(vs[-need:])
            cubic_only = [d for d in include if d in ("geodesic_tortuosity", "constrictivity",
                                                       "interfaces")]  # fmt: skip
            if cubic_only:
                include = tuple(d for d in include if d not in cubic_only)
                warnings.append(
                    f"{', '.join(cubic_only)} skipped: they assume cubic voxels and the voxel "
                    f"size is {tuple(vs)}; resample to cubic voxels (or generate the twin at a "
                    "cubic spacing) for them"
                )
        else:
            h = vs[0]
    unit_name = (unit or "unit") if voxel_size is not None else "voxel"
    lengths = spacing if spacing is not None else h
    vf = volume_fraction(arr, k, sections=sections)
    labels = pm.labels if pm is not None else tuple(range(k))
    names = pm.display_names if pm is not None else tuple(f"phase {i}" for i in range(k))
    absent = [labels[i] for i in range(k) if vf[i] == 0]
    if absent and not allow_absent:
        raise DescriptorError(
            f"phase label(s) {absent} are absent from the image; check the phase mapping, or pass "
            "allow_absent=True to report them with fraction 0"
        )
    for lab in absent:
        warnings.append(f"phase {lab} is absent: only its volume fraction (0) is reported")
    sv = (
        specific_surface_area(arr, k, lengths, sections=sections)
        if "specific_surface_area" in include
        else None
    )
    ax_of = {n: i for i, n in enumerate(names_ok)}
    want_transport = "transport" in include
    if want_transport and not taufactor_available():
        warnings.append("transport skipped: TauFactor is not installed (pip install taufactor)")
        want_transport = False
    phases: dict[str, Any] = {}
    for i in range(k):
        entry: dict[str, Any] = {"name": names[i], "index": i, "volume_fraction": float(vf[i])}
        present = vf[i] > 0
        if sv is not None:
            entry["specific_surface_area"] = float(sv[i]) if present else None
        if "mean_chord_length" in include:
            entry["mean_chord_length"] = {
                d: _none_if_nan(
                    mean_chord_length(arr, i, ax_of[d], lengths, sections=sections, n_phases=k)
                )
                if present
                else None
                for d in directions
            }
        if "chord_length_distribution" in include:
            cl: dict[str, Any] = {}
            for d in directions:
                try:
                    c = chord_length_distribution(
                        arr, i, ax_of[d], lengths, sections=sections, n_phases=k, unit=unit_name
                    )
                    cl[d] = {"length": c.length.tolist(), "probability": c.probability.tolist()}
                except DescriptorError as exc:
                    cl[d] = None
                    warnings.append(f"phase {labels[i]} chords along {d}: {exc}")
            entry["chord_length_distribution"] = cl
        if "geodesic_tortuosity" in include:
            tort = {
                d: geodesic_tortuosity(arr, i, ax_of[d], n_phases=k) if present else None
                for d in directions
            }
            entry["geodesic_tortuosity"] = {
                d: (_none_if_nan(t.mean) if t else None) for d, t in tort.items()
            }
            entry["percolates"] = {d: bool(t.percolates) if t else False for d, t in tort.items()}
            entry["connected_fraction"] = {
                d: (t.connected_fraction if t else 0.0) for d, t in tort.items()
            }
        if "constrictivity" in include:
            if present:
                cs = constrictivity(
                    arr,
                    i,
                    [ax_of[d] for d in directions],
                    h,
                    n_phases=k,
                    radius_step=constrictivity_step,
                    unit=unit_name,
                )
                entry["constrictivity"] = {d: c.beta for d, c in zip(directions, cs, strict=True)}
                entry["r_min"] = {d: c.r_min for d, c in zip(directions, cs, strict=True)}
                entry["r_max"] = cs[0].r_max
            else:
                entry["constrictivity"] = {d: None for d in directions}
        if want_transport:
            opts = dict(transport_options or {})
            if spacing is not None:
                opts.setdefault("spacing", spacing)
            res = {
                d: effective_transport(arr, i, ax_of[d], n_phases=k, **opts) if present else None
                for d in directions
            }
            entry["tortuosity_factor"] = {
                d: (_none_if_nan(r.tau_factor) if r else None) for d, r in res.items()
            }
            entry["effective_diffusivity"] = {
                d: (r.effective_diffusivity if r else 0.0) for d, r in res.items()
            }
            for d, r in res.items():
                if r is not None and r.percolates and not r.converged:
                    warnings.append(
                        f"TauFactor did not converge for phase {labels[i]} along {d} within "
                        f"{r.iterations} iterations; raise transport_options['iter_limit']"
                    )
        phases[str(labels[i])] = entry
    extra: dict[str, Any] = {}
    if "interfaces" in include:
        pairs = interfacial_areas(arr, k, h, sections=sections)
        extra["interfaces"] = {
            interface_key(labels[i], labels[j]): v for (i, j), v in pairs.items()
        }
        extra["triple_phase_boundary"] = (
            triple_phase_boundary_density(arr, voxel_size=h, n_phases=k, sections=sections)
            if k == 3 and not absent
            else None
        )
    return {
        "phases": phases,
        **extra,
        "voxel_size": h if spacing is None else list(spacing),
        "unit": unit_name,
        "dimension": dim,
        "shape": list(arr.shape),
        "sections": bool(sections),
        "directions": list(directions),
        "include": [d for d in include if d != "transport" or want_transport],
        "method": {d: METHODS[d] for d in include},
        "warnings": warnings,
    }
