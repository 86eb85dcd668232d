"""Reading segmented images and stacks, and writing label volumes, without losing anything.

Supported inputs: multi-page TIFF (``.tif``, ``.tiff``), PNG, ``.npy``, a folder of PNG/TIFF slices
(sorted by name, stacked along z), and ``.zip`` archives holding one TIFF. Voxel size is read from
ImageJ metadata (``spacing`` for z, ``XResolution``/``YResolution`` for y/x) when present.

Writes are atomic (temporary file + ``os.replace``) and refuse to overwrite unless asked.
"""

from __future__ import annotations

import hashlib
import io as _io
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .phases import PhaseMap, infer_phase_map

__all__ = [
    "LabelImage",
    "read_array",
    "read_labels",
    "atomic_write",
    "write_tiff",
    "sha256_of_array",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".npy")


@dataclass
class LabelImage:
    """A segmented image as read from disk.

    Attributes
    ----------
    data : ndarray
        The label values as stored (2D ``(y, x)`` or 3D ``(z, y, x)``).
    phase_map : PhaseMap
        Which label is which phase.
    voxel_size : tuple of float or None
        Physical size per axis (same order as ``data.shape``), unit ``unit``.
    unit : str or None
        Physical unit of ``voxel_size`` (e.g. ``"um"``).
    source : str
        Where it came from.
    metadata : dict
        Anything else worth keeping (e.g. a model sidecar).
    """

    data: np.ndarray
    phase_map: PhaseMap
    voxel_size: tuple[float, ...] | None = None
    unit: str | None = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        """Spatial dimension (2 or 3)."""
        return self.data.ndim

    def sha256(self) -> str:
        """Content hash of the label array (shape and dtype included)."""
        return sha256_of_array(self.data)


def sha256_of_array(a: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes: identifies the exact data a model was calibrated on."""
    h = hashlib.sha256()
    a = np.ascontiguousarray(a)
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _squeeze_to_spatial(a: np.ndarray, source: str) -> np.ndarray:
    a = np.squeeze(a) if a.ndim > 3 or (a.ndim == 3 and 1 in a.shape[:1]) else a
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] > 4:
        # An RGB(A) picture: accept it only when the channels are identical (a saved label image).
        if np.all(a[..., 0:1] == a[..., : min(3, a.shape[-1])]):
            a = a[..., 0]
        else:
            raise ValueError(
                f"{source}: looks like a colour (RGB) image, not a label image; export the "
                "segmentation as a single-channel integer image"
            )
    if a.ndim not in (2, 3):
        raise ValueError(f"{source}: expected a 2D image or a 3D stack, got shape {a.shape}")
    return a


def _tiff_voxel_size(tif: Any) -> tuple[tuple[float, ...] | None, str | None]:
    """Voxel size from ImageJ metadata / resolution tags; None when absent."""
    try:
        page = tif.pages[0]
        ij = tif.imagej_metadata or {}
        unit = ij.get("unit")
        xres = page.tags.get("XResolution")
        yres = page.tags.get("YResolution")
        sx = sy = None
        if xres is not None:
            num, den = xres.value
            sx = den / num if num else None
        if yres is not None:
            num, den = yres.value
            sy = den / num if num else None
        sz = ij.get("spacing")
        if sx is None or sy is None or (sx == 1.0 and sy == 1.0 and sz is None and unit is None):
            return None, None
        if unit in ("micron", "\\u00B5m", "µm"):
            unit = "um"
        if sz is not None:
            return (float(sz), float(sy), float(sx)), unit
        return (float(sy), float(sx)), unit
    except Exception:  # noqa: BLE001 - metadata is best effort; the labels matter
        return None, None


def read_array(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an image file or a folder of slices as a plain array plus metadata.

    Returns
    -------
    data : ndarray
        2D or 3D array as stored.
    meta : dict
        ``voxel_size`` and ``unit`` when known, ``source``.
    """
    import tifffile

    p = Path(path)
    meta: dict[str, Any] = {"source": str(p), "voxel_size": None, "unit": None}
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff", ".png"))
        if not files:
            raise ValueError(f"{p}: the folder holds no .tif/.tiff/.png slices")
        slices = [read_array(f)[0] for f in files]
        shapes = {s.shape for s in slices}
        if len(shapes) != 1 or slices[0].ndim != 2:
            raise ValueError(f"{p}: slices must all be 2D and of one shape, got {sorted(shapes)}")
        return np.stack(slices), meta
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() == ".zip" else p.suffix.lower()
    if p.suffix.lower() == ".npy":
        data = np.load(p, allow_pickle=False)
    elif p.suffix.lower() in (".tif", ".tiff"):
        with tifffile.TiffFile(p) as tif:
            data = tif.asarray()
            vs, unit = _tiff_voxel_size(tif)
            meta.update(voxel_size=vs, unit=unit)
    elif p.suffix.lower() == ".png":
        from skimage.io import imread

        data = imread(p)
    elif p.suffix.lower() == ".zip":
        with zipfile.ZipFile(p) as zf:
            # Skip macOS resource forks (__MACOSX/._name), which zips made on a Mac carry.
            names = [
                n
                for n in zf.namelist()
                if n.lower().endswith((".tif", ".tiff"))
                and not n.startswith("__MACOSX/")
                and not Path(n).name.startswith("._")
            ]
            if len(names) != 1:
                raise ValueError(f"{p}: expected one TIFF inside the zip, found {names}")
            with tifffile.TiffFile(_io.BytesIO(zf.read(names[0]))) as tif:
                data = tif.asarray()
    else:
        raise ValueError(
            f"{p}: unsupported file type {suffix!r}; use TIFF, PNG, NPY or a folder of slices"
        )
    data = _squeeze_to_spatial(np.asarray(data), str(p))
    if meta["voxel_size"] is not None and len(meta["voxel_size"]) != data.ndim:
        vs = meta["voxel_size"]
        meta["voxel_size"] = tuple(vs[-data.ndim :]) if len(vs) > data.ndim else None
    return data, meta


def read_labels(
    path: str | os.PathLike,
    phases: str | Sequence[int] | PhaseMap | None = None,
    max_phases: int = 3,
    voxel_size: str | float | Sequence[float] | None = None,
    unit: str | None = None,
) -> LabelImage:
    """Read a segmented image or stack and check that it is a usable label image.

    Parameters
    ----------
    path : path-like
        TIFF, PNG, NPY, zipped TIFF, or a folder of slices.
    phases : str or sequence of int or PhaseMap, optional
        Label value of each phase, in phase order (``"0,85,170"``). Required when the image holds
        more than ``max_phases`` values.
    max_phases : int
        Largest number of distinct values accepted without a mapping.
    voxel_size : str, float or sequence of float, optional
        Overrides the voxel size read from the file (one value: isotropic; ``"0.1,0.02,0.02"``
        or ``"0.4um"`` as on the command line: :func:`.units.parse_voxel_size`).
    unit : str, optional
        Unit of ``voxel_size`` when it names none (default: the file's unit).

    Returns
    -------
    LabelImage
    """
    data, meta = read_array(path)
    pm = infer_phase_map(data, phases, max_phases=max_phases)
    from .units import UnitError, normalize_unit, parse_voxel_size

    vs = meta.get("voxel_size")
    try:
        file_unit = normalize_unit(meta.get("unit"))
    except UnitError:  # a unit name we do not know: keep the numbers, say nothing false
        file_unit = None
    if voxel_size is not None:
        vs, given = parse_voxel_size(voxel_size, data.ndim, unit)
        file_unit = given if given is not None else file_unit
    elif unit is not None:
        file_unit = normalize_unit(unit)
    return LabelImage(data, pm, vs, file_unit if vs is not None else None, str(path))


def atomic_write(
    path: str | os.PathLike, writer: Callable[[str], None], overwrite: bool = False
) -> Path:
    """Write a file atomically: ``writer(tmp_path)`` then rename over ``path``.

    Refuses to replace an existing file unless ``overwrite`` is true, so nothing the user owns is
    lost by accident; a crash mid-write leaves the old file intact.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists; choose another name or pass overwrite=True")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        writer(tmp)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def write_tiff(
    path: str | os.PathLike,
    data: np.ndarray,
    voxel_size: Sequence[float] | None = None,
    unit: str = "um",
    description: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a label image/volume as an ImageJ-compatible TIFF (atomic; no silent overwrite)."""
    import tifffile

    arr = np.ascontiguousarray(data)
    if arr.dtype not in (np.uint8, np.uint16, np.int16, np.float32):
        arr = arr.astype(np.uint16 if arr.min() >= 0 else np.int16)

    def _w(tmp: str) -> None:
        kw: dict[str, Any] = {}
        md: dict[str, Any] = {"axes": "ZYX" if arr.ndim == 3 else "YX"}
        if voxel_size is not None:
            vs = tuple(float(v) for v in voxel_size)
            kw["resolution"] = (1.0 / vs[-1], 1.0 / vs[-2])
            md["unit"] = unit
            if arr.ndim == 3:
                md["spacing"] = vs[0]
        imagej = arr.dtype in (np.uint8, np.uint16, np.float32)
        tifffile.imwrite(
            tmp,
            arr,
            imagej=imagej,
            metadata=md if imagej else None,
            description=None if imagej else description,
            **kw,
        )

    return atomic_write(path, _w, overwrite=overwrite)
