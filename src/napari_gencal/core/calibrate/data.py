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
    axis : int
        For a stack: the axis normal to the sections (0 = z); the model's anisotropy axis.
    axis_note : str
        Why that axis, when it was chosen automatically (empty otherwise).
    b_fitted : bool
        b was fitted from the stack (False for 2D data, ``fit_b=False``, or a stack too thin
        along the axis to show a chord: then ``anisotropy_note`` says why).
    inplane_b : float
        Sections whose y and x chords differ (:func:`inplane_stretch`): the model's stretch along
        the sections' x, applied during the calibration and kept in the model (``axis_stretch``);
        1.0 otherwise.
    """

    sections: np.ndarray
    phase_map: PhaseMap
    voxel_size: tuple[float, ...] | None
    sha256: str
    anisotropy: float = 1.0
    anisotropy_note: str = ""
    volume: np.ndarray | None = None
    axis: int = 0
    axis_note: str = ""
    b_fitted: bool = False
    inplane_b: float = 1.0


#: Sections whose two in-plane directions' mean chords differ by at most this (relative, worst
#: phase) count as isotropic: the default z stays unless its x–y planes differ by more.
PLANE_ISOTROPY = 0.15
#: Chord statistics of a stack (axis choice, Eq. 40) are measured on a central crop of at most
#: this many voxels per side: on a 768³ stack the whole volume costs minutes and says no more.
ANALYSIS_SIDE = 320


def analysis_view(volume: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """The central ``side``³ crop of a large volume (the volume itself when it is smaller)."""
    sl = tuple(slice((n - min(n, side)) // 2, (n - min(n, side)) // 2 + min(n, side))
               for n in volume.shape)  # fmt: skip
    return volume[sl]


def plane_anisotropy(volume: np.ndarray, k: int) -> np.ndarray:
    """For each axis a: the worst phase's relative difference of the mean chords along the two
    axes of the planes normal to a (0 = isotropic sections)."""
    from ..descriptors import mean_chord_length

    ch = np.full((k, 3), np.nan)
    for i in range(k):
        for a in range(3):
            try:
                ch[i, a] = mean_chord_length(volume, i, axis=a, n_phases=k)
            except ValueError:
                pass
    out = np.zeros(3)
    for a in range(3):
        p, q = [b for b in range(3) if b != a]
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(ch[:, p] - ch[:, q]) / (0.5 * (ch[:, p] + ch[:, q]))
        out[a] = float(np.nanmax(rel)) if np.isfinite(rel).any() else np.inf
    return out


def section_frame_stretch(b: float) -> tuple[float, float, float]:
    """``axis_stretch`` in the sections' frame (normal, y, x) for x chords ``b`` times the y
    chords: the longer direction is stretched (by ``b`` along x, or ``1/b`` along y), so the
    kernels' unit scale is the shorter one and the kernel radius (chosen from the sections'
    direction-averaged TPPF) reaches along the longer one (m·b or m/b)."""
    b = float(b)
    return (1.0, 1.0, b) if b >= 1.0 else (1.0, 1.0 / b, 1.0)


def inplane_stretch(sections: np.ndarray, k: int) -> tuple[float, str]:
    """The stretch b along the sections' x that makes their x chords match their y chords.

    A model isotropic within its sections cannot show sections whose mean chords along y and x
    differ (composite_resized.npy: x chords 1.2–1.3× the y chords, and the twin missed a phase's
    x chords by 19 % while its y chords fitted). Where the worst phase's y/x difference exceeds
    :data:`PLANE_ISOTROPY` (the rule that chooses a stack's section axis), b is fitted as Eq. 40
    fits the z stretch of a stack — ``argmin_b Σ_i ∫ (F_i^x(ℓ) − F_i^y(ℓ / b))² dℓ`` — and the
    model's longer direction is stretched (:func:`section_frame_stretch`), during the
    calibration (its radial TPPFs and discriminator windows then see the same anisotropic
    sections as the data's) and in the model file (``axis_stretch``). For a stack the sections
    normal to its section axis are measured: a stack with three different chord lengths (the
    tortuosity benchmark volume) has no isotropic planes, and b along the normal cannot make up
    for that.

    Parameters
    ----------
    sections : ndarray
        Phase indices ``(N, H, W)`` (the image's y and x are H and W).
    k : int
        Number of phases.

    Returns
    -------
    (b, note)
        ``b`` = 1.0 and an empty note for sections whose directions agree.
    """
    from .anisotropy import chord_cdf, stretch_between

    sec = np.asarray(sections)
    aniso = plane_anisotropy(sec, k)[0]
    if not np.isfinite(aniso) or aniso <= PLANE_ISOTROPY:
        return 1.0, ""
    max_len = max(sec.shape[1:])
    fy = [chord_cdf(sec == i, 1, max_len) for i in range(k)]
    fx = [chord_cdf(sec == i, 2, max_len) for i in range(k)]
    if any(f[-1] == 0 for f in fy + fx):
        return 1.0, ""
    b = stretch_between(fx, fy)
    longer = f"x by {b:.3f}" if b >= 1.0 else f"y by {1.0 / b:.3f}"
    return b, (
        f"in-plane anisotropy: the mean chords along y and x differ by up to "
        f"{100 * aniso:.0f} %; the sections' x chords are {b:.3f}× their y chords (Eq. 40 "
        f"between x and y), so the model stretches the sections' longer direction ({longer})"
    )


def choose_axis(volume: np.ndarray, k: int) -> tuple[int, str]:
    """The stack axis whose normal sections are isotropic: z unless its x–y planes are clearly
    anisotropic (:data:`PLANE_ISOTROPY`) and another axis's planes are at most half as much.

    The model is isotropic within its sections and stretched along the axis normal to them, so
    sections whose y and x chords differ (a separator's elongated pores seen from above) cannot be
    fitted; the planes that contain the elongation can.
    """
    aniso = plane_anisotropy(volume, k)
    names = "zyx"
    best = int(np.argmin(aniso))
    if aniso[0] <= PLANE_ISOTROPY or not aniso[best] < 0.5 * aniso[0]:
        return 0, ""
    return best, (
        f"section axis: {names[best]} — sections normal to it have two directions whose mean "
        f"chords differ by "
        f"{100 * aniso[best]:.0f} % at most, the x–y planes' by {100 * aniso[0]:.0f} %; "
        f"the model is isotropic in its sections and stretched along {names[best]} "
        f"(--axis z to use the x–y planes anyway)"
    )


def _spacing_ratio(vs, axis: int, ndim: int) -> float:
    """Voxel size along ``axis`` over the in-plane one (1 without a voxel size)."""
    if vs is None or ndim != 3 or len(tuple(vs)) != 3:
        return 1.0
    v = [float(x) for x in vs]
    plane = [v[i] for i in range(3) if i != axis]
    return v[axis] / plane[0] if plane[0] > 0 else 1.0


def prepare_data(
    image: LabelImage | np.ndarray,
    phases: str | tuple[int, ...] | PhaseMap | None = None,
    axis: str | int = "auto",
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
    axis : {"auto", "z", "y", "x"} or int
        For a stack: the axis normal to the sections (``"z"``: the x–y planes; ``"auto"``: z
        unless the x–y planes are anisotropic and another axis's planes are not, see
        :func:`choose_axis`). The model is stretched along it.
    fit_b : bool
        For a stack: fit the anisotropy factor b along the section normal (Eq. 40). For a 2D
        image whose y and x chords differ: fit its in-plane stretch (:func:`inplane_stretch`).
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
    b, note, volume, ax, axis_note, fitted = 1.0, "", None, 0, "", False
    if idx.ndim == 3:
        volume = idx
        view = analysis_view(idx)
        if axis == "auto":
            ax, axis_note = choose_axis(view, pm.n_phases)
        else:
            ax = {"z": 0, "y": 1, "x": 2}.get(axis, axis) if isinstance(axis, str) else int(axis)
            if ax not in (0, 1, 2):
                raise ValueError(f"axis must be auto, z, y or x (or 0, 1, 2); got {axis!r}")
        if fit_b:
            from .anisotropy import fit_anisotropy

            try:
                b = fit_anisotropy(view, pm.n_phases, axis=ax)
                note = f"anisotropy along {'zyx'[ax]} from chord lengths (Eq. 40): b = {b:.3f}"
                ratio = _spacing_ratio(vs, ax, labels.ndim)
                if ratio != 1.0:
                    # The model lives on the data's voxels (lengths in voxels of voxel_size);
                    # its stretch in physical units is b times the spacing ratio.
                    note += (f" per voxel on this grid (voxels {ratio:g}× longer along "
                             f"{'zyx'[ax]}): {b * ratio:.3f} in physical units")  # fmt: skip
                fitted = True
            except ValueError as exc:  # e.g. a few sections: no chord along the stack axis
                note = f"b not fitted, the model stays isotropic: {exc}"
    if vs is not None and len(tuple(vs)) == idx.ndim:
        plane = [float(v) for i, v in enumerate(vs) if idx.ndim == 2 or i != ax]
        if abs(plane[0] - plane[1]) > 0.01 * max(plane):
            raise ValueError(
                f"the sections' pixels are not square (voxel size {tuple(vs)}, sections normal "
                f"to {'zyx'[ax] if idx.ndim == 3 else 'the image'}): the model is isotropic "
                "within its sections — choose the axis whose planes have square pixels "
                "(--axis), or resample the image to square pixels first"
            )
    sections = np.ascontiguousarray(as_sections(idx, ax if idx.ndim == 3 else axis))
    inplane_b = 1.0
    if fit_b:
        # Sections whose two directions differ even on the best axis (a stack with three
        # different chord lengths; an image elongated along x): a stretch along their x.
        view_sections = sections if idx.ndim == 2 else as_sections(analysis_view(idx), ax)
        inplane_b, inplane_note = inplane_stretch(view_sections, pm.n_phases)
        if inplane_note:
            note = f"{note}; {inplane_note}" if note else inplane_note
    model_vs: tuple[float, ...] | None = None
    if vs is not None:
        model_vs = tuple(float(v) for v in vs)
        if len(model_vs) == 2:  # a 2D image: isotropic pixels assumed for the 3D model
            model_vs = (model_vs[0], *model_vs)
    return PreparedData(
        sections, pm, model_vs, sha256_of_array(labels), b, note, volume, ax, axis_note, fitted,
        inplane_b,
    )


def refine_anisotropy(model, data: PreparedData, seed: int = 0, device: str = "cpu"):
    """Refine b with the calibrated model so its z-chords match the stack's (3D data only).

    Returns the model with the refined ``anisotropy`` and both estimates in
    ``metadata["anisotropy"]``; 2D data (or b not fitted) returns the model unchanged.
    """
    if data.volume is None or not data.b_fitted:
        return model
    from .anisotropy import fit_anisotropy_to_model

    vol = np.moveaxis(data.volume, data.axis, 0)
    b = fit_anisotropy_to_model(
        vol, model.copy(anisotropy=1.0, anisotropy_axis=0), b_start=data.anisotropy, seed=seed,
        device=device,
    )  # fmt: skip
    meta = dict(model.metadata)
    meta["anisotropy"] = {
        "eq40_data_only": data.anisotropy,
        "model_refined": b,
        "method": "b from Eq. 40 on the stack, refined so that realizations of the model show "
        "the same Eq. 40 anisotropy as the stack (docs/decisions/calibration.md)",
    }
    return model.copy(anisotropy=b, anisotropy_axis=data.axis, metadata=meta)
