"""From a user's label image to calibration input: sections, phase map, voxel size, hash, b."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io import LabelImage, sha256_of_array
from ..phases import PhaseMap, as_sections, infer_phase_map, to_indices

__all__ = ["PreparedData", "prepare_data", "refine_anisotropy"]


@dataclass
class PreparedData:
    """Calibration input made from a label image.

    Attributes
    ----------
    sections : ndarray
        Phase indices ``(N, H, W)`` uint8.
    phase_map : PhaseMap
    voxel_size : tuple of float or None
        ``(z, y, x)`` voxel size of the model (the in-plane pixel size for 2D data).
    sha256 : str
        Hash of the user's label array (as read, before mapping).
    anisotropy : float
        b fitted from a 3D stack (1.0 for 2D data or when not fitted).
    anisotropy_note : str
        A line for the user about b (empty when nothing was fitted).
    volume : ndarray or None
        The 3D phase-index volume (``None`` for 2D data).
    """

    sections: np.ndarray
    phase_map: PhaseMap
    voxel_size: tuple[float, ...] | None
    sha256: str
    anisotropy: float = 1.0
    anisotropy_note: str = ""
    volume: np.ndarray | None = None


def prepare_data(
    image: LabelImage | np.ndarray,
    phases: str | tuple[int, ...] | PhaseMap | None = None,
    axis: str | int = "z",
    fit_b: bool = True,
    voxel_size: float | tuple[float, ...] | None = None,
) -> PreparedData:
    """Turn a label image or stack into calibration input.

    Parameters
    ----------
    image : LabelImage or ndarray
        2D image or 3D stack of label values.
    phases : str or sequence or PhaseMap, optional
        Label of each phase (needed for more than three values; overrides the image's map).
    axis : {"z", "y", "x"} or int
        For a stack: the axis normal to the sections (``"z"``: the x–y planes).
    fit_b : bool
        For a stack sliced normal to z: fit the anisotropy factor b along z (Eq. 40).
    voxel_size : float or tuple, optional
        Overrides the image's voxel size.

    Returns
    -------
    PreparedData
    """
    if isinstance(image, LabelImage):
        labels = image.data
        pm = image.phase_map if phases is None else infer_phase_map(labels, phases)
        vs = image.voxel_size
    else:
        labels = np.asarray(image)
        pm = infer_phase_map(labels, phases)
        vs = None
    if voxel_size is not None:
        vs = (float(voxel_size),) * labels.ndim if np.isscalar(voxel_size) else tuple(voxel_size)
    if pm.n_phases not in (2, 3):
        raise ValueError(
            f"the model has two or three phases, the data has {pm.n_phases}; map labels to two or "
            "three phases (phases='a,b,c' with merged labels relabelled first)"
        )
    idx = to_indices(labels, pm)
    sections = np.ascontiguousarray(as_sections(idx, axis))
    b, note, volume = 1.0, "", None
    if idx.ndim == 3:
        volume = idx
        ax = {"z": 0, "y": 1, "x": 2}.get(axis, axis) if isinstance(axis, str) else int(axis)
        if fit_b and ax == 0:
            from .anisotropy import fit_anisotropy

            b = fit_anisotropy(idx, pm.n_phases, axis=0)
            note = f"anisotropy along z from chord lengths (Eq. 40): b = {b:.3f}"
    model_vs: tuple[float, ...] | None = None
    if vs is not None:
        model_vs = tuple(float(v) for v in vs)
        if len(model_vs) == 2:  # a 2D image: isotropic pixels assumed for the 3D model
            model_vs = (model_vs[0], *model_vs)
    return PreparedData(sections, pm, model_vs, sha256_of_array(labels), b, note, volume)


def refine_anisotropy(model, data: PreparedData, seed: int = 0, device: str = "cpu"):
    """Refine b with the calibrated model so its z-chords match the stack's (3D data only).

    Returns the model with the refined ``anisotropy`` and both estimates in
    ``metadata["anisotropy"]``; 2D data (or b not fitted) returns the model unchanged.
    """
    if data.volume is None or not data.anisotropy_note:
        return model
    from .anisotropy import fit_anisotropy_to_model

    b = fit_anisotropy_to_model(
        data.volume, model.copy(anisotropy=1.0), b_start=data.anisotropy, seed=seed, device=device
    )
    meta = dict(model.metadata)
    meta["anisotropy"] = {
        "eq40_data_only": data.anisotropy,
        "model_refined": b,
        "method": "b from Eq. 40 on the stack, refined so that realizations of the model show "
        "the same Eq. 40 anisotropy as the stack (docs/decisions/calibration.md)",
    }
    return model.copy(anisotropy=b, metadata=meta)
