"""Images → comparison: describe a data image and a model (generated first) or a label volume,
and keep what the figures need (chord length distributions, TPPF curves, a slice of each)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

from .table import Comparison, compare

# --- images → comparison ---------------------------------------------------------------------


def _cld_dict(desc: dict[str, Any]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    out = {}
    for lab, p in desc.get("phases", {}).items():
        for direc, v in (p.get("chord_length_distribution") or {}).items():
            if v:
                out[(lab, direc)] = (np.asarray(v["length"]), np.asarray(v["probability"]))
    return out


def compare_images(
    data: Any,
    model_or_volume: Any,
    *,
    n: int = 10,
    seed: int = 0,
    shape: Sequence[int] | None = None,
    include: Sequence[str] | None = None,
    directions: Sequence[str] = ("z", "y", "x"),
    tppf: bool = True,
    device: str = "cpu",
    voxel_size: float | None = None,
) -> Comparison:
    """Describe a data image and a model realization (or a label volume) and compare them.

    Parameters
    ----------
    data : LabelImage
        Segmented data (2D image or 3D volume).
    model_or_volume : ExcursionModel or LabelImage or ndarray
        A model (realizations are generated with the data's shape: ``n`` planar sections for 2D
        data, one volume for 3D data) or a label image/volume with the data's label values. A 3D
        volume compared with 2D data is read as its z-sections.
    n : int
        Number of generated sections for 2D data.
    seed : int
        Seed of the realizations.
    shape : sequence of int, optional
        Shape of the generated volume (3D data; default the data's shape).
    include : sequence of str, optional
        Descriptors (default: volume fraction, S_V, mean chords and chord length distributions;
        for two 3D volumes also geodesic tortuosity and constrictivity).
    directions : sequence of str
        Directions for the directional descriptors.
    tppf : bool
        Also compute TPPF curves for the figure (``core.tppf.tppf_of_labels``).
    device : str
        Device for generation and TPPFs.
    voxel_size : float, optional
        Overrides the data's voxel size (the model is described with the same one).

    Returns
    -------
    Comparison
    """
    from ..descriptors import describe
    from ..io import LabelImage
    from ..phases import to_indices

    pm = data.phase_map
    vs = voxel_size if voxel_size is not None else data.voxel_size
    if vs is not None and not np.isscalar(vs):
        vs = tuple(vs)
    unit = getattr(data, "unit", None)
    warnings: list[str] = []
    di = to_indices(data.data, pm)
    if hasattr(model_or_volume, "phase_map") and not hasattr(model_or_volume, "data"):
        model = model_or_volume  # an ExcursionModel
        if di.ndim == 2:
            from ..generate import generate_sections

            size = int(min(di.shape))
            lab = generate_sections(model, int(n), size, seed=seed, device=device)
            warnings.append(f"model: {n} planar sections of {size}x{size}, seed {seed}")
        else:
            from ..generate import generate

            shp = tuple(shape) if shape is not None else di.shape
            lab = generate(model, shp, seed=seed, device=device)
            warnings.append(f"model: one realization of shape {shp}, seed {seed}")
        mpm = model.phase_map or pm
        mi = to_indices(lab, mpm)
    else:
        mdata = model_or_volume.data if isinstance(model_or_volume, LabelImage) else model_or_volume
        mpm = model_or_volume.phase_map if isinstance(model_or_volume, LabelImage) else pm
        if tuple(mpm.labels) != tuple(pm.labels):
            raise ValueError(
                f"data labels {list(pm.labels)} and model labels {list(mpm.labels)} differ; "
                "generate with the phase map of the data"
            )
        mi = to_indices(np.asarray(mdata), mpm)
    base = (
        "volume_fraction",
        "specific_surface_area",
        "mean_chord_length",
        "chord_length_distribution",
        "interfaces",
    )
    model_sections = di.ndim == 2 and mi.ndim == 3
    if include is None:
        include = base
        if di.ndim == 3 and mi.ndim == 3:
            include = base + ("geodesic_tortuosity", "constrictivity")
    kw = dict(voxel_size=vs, unit=unit, allow_absent=True)
    if di.ndim == 2:
        dirs2 = tuple(d for d in directions if d != "z") or ("y", "x")
        dd = describe(di, pm, directions=dirs2, include=include, **kw)
        md = describe(mi, pm, directions=dirs2, include=include, sections=model_sections, **kw)
    else:
        if mi.ndim != 3:
            raise ValueError(
                "the data is a 3D volume but the model input is 2D; compare 3D data with a "
                "generated volume (or compare 2D data with 2D sections)"
            )
        dd = describe(di, pm, directions=directions, include=include, **kw)
        md = describe(mi, pm, directions=directions, include=include, **kw)
    comp = compare(dd, md)
    comp.warnings = warnings + dd.get("warnings", []) + md.get("warnings", []) + comp.warnings
    names = {str(lab): nm for lab, nm in zip(pm.labels, pm.display_names, strict=True)}
    comp.extras.update(
        phase_names=names,
        cld_data=_cld_dict(dd),
        cld_model=_cld_dict(md),
        slice_data=di if di.ndim == 2 else di[di.shape[0] // 2],
        slice_model=mi[mi.shape[0] // 2] if mi.ndim == 3 else mi,
    )
    if tppf:
        try:
            from ..phases import to_labels
            from ..tppf import tppf_of_labels

            td = tppf_of_labels(
                to_labels(di, pm),
                pm,
                axis="z" if di.ndim == 3 else None,
                device=device,
                directional=False,
            )
            r_max = int(np.asarray(td.r)[-1])
            tm = tppf_of_labels(
                to_labels(mi, pm),
                pm,
                axis="z" if mi.ndim == 3 else None,
                r_max=r_max,
                device=device,
                directional=False,
            )
            comp.extras.update(
                tppf_r=np.asarray(td.r),
                tppf_data=np.asarray(td.curves),
                tppf_model=np.asarray(tm.curves),
            )
        except Exception as exc:  # noqa: BLE001 - the table is still useful without the curves
            comp.warnings.append(f"TPPF curves skipped: {exc}")
    return comp
