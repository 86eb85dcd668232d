"""Label volumes as VTK image data (``.vti``), MetaImage (``.mhd`` + ``.raw``, ``.mha``) and NRRD.

Every format carries the spacing and the origin, in the same convention: ``origin`` is the centre
of voxel ``(0, 0, 0)`` (ITK, MetaImage and NRRD store exactly that). In ``.vti`` the labels are
*cell* data — one cell per voxel, so ParaView draws voxels as boxes and a threshold keeps their
faces — which puts VTK's grid points on the voxel corners: the file's VTK origin is
``origin − spacing / 2``. Meshes and pore networks from :mod:`.meshes` and :mod:`.network` use the
same physical frame, so they line up with the image in ParaView.

Writers:

* ``.vti`` — VTK's ``vtkXMLImageDataWriter`` fed by a streaming source that reads the requested
  piece of the array when VTK asks for it: a zarr twin larger than memory is written piece by
  piece into one file (appended raw data, optionally zlib-compressed).
* ``.mhd``/``.mha``/``.nrrd`` — SimpleITK from an in-memory array. A ``.mhd`` of an array that
  is not in memory (zarr, dask) is streamed: the ``.raw`` file is written slab by slab (MetaImage's
  raw layout is the array's C order) and the 13-line MetaImage header is composed here, because
  neither SimpleITK nor VTK's MetaImage writer streams; the tests read it back with SimpleITK and
  VTK's MetaImage reader.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._common import ExportError, Grid, iter_slabs, require, slab_depth, write_files

__all__ = ["write_image", "write_vti", "write_itk", "write_mhd_streamed", "image_targets"]

#: Arrays not in memory that are at most this large are loaded for NRRD/MHA (which SimpleITK
#: writes whole); larger ones are refused with the streaming formats named.
LOAD_LIMIT = 2 << 30
#: Bytes per VTK piece when streaming.
PIECE_BYTES = 32 << 20
_MET_TYPES = {
    np.dtype(np.uint8): "MET_UCHAR", np.dtype(np.int8): "MET_CHAR",
    np.dtype(np.uint16): "MET_USHORT", np.dtype(np.int16): "MET_SHORT",
    np.dtype(np.uint32): "MET_UINT", np.dtype(np.int32): "MET_INT",
}  # fmt: skip


def image_targets(path: str | os.PathLike, fmt: str) -> list[Path]:
    """The files an image export writes (a ``.mhd`` has its ``.raw`` beside it)."""
    p = Path(path)
    if p.suffix.lower() != f".{fmt}":
        p = p.with_name(p.name + f".{fmt}")
    return [p, p.with_suffix(".raw")] if fmt == "mhd" else [p]


def _check_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return np.dtype(np.uint8)
    if dt not in _MET_TYPES:
        raise ExportError(
            f"labels of dtype {dt} cannot be exported; use 8-, 16- or 32-bit integer labels"
        )
    return dt


def write_image(
    array: Any,
    path: str | os.PathLike,
    fmt: str,
    grid: Grid,
    *,
    compress: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write a 2D or 3D label array in an image format; returns the files written."""
    if len(array.shape) not in (2, 3):
        raise ExportError(f"expected a 2D image or a 3D volume, got shape {tuple(array.shape)}")
    if fmt == "vti":
        return write_vti(array, path, grid, compress=compress, overwrite=overwrite)
    if fmt == "mhd" and not isinstance(array, np.ndarray) and len(array.shape) == 3:
        return write_mhd_streamed(array, path, grid, overwrite=overwrite)
    if not isinstance(array, np.ndarray):
        nbytes = math.prod(array.shape) * np.dtype(array.dtype).itemsize
        if nbytes > LOAD_LIMIT:
            raise ExportError(
                f"a {fmt.upper()} file is written whole, and this volume ({nbytes / 2**30:.1f} "
                "GiB) is larger than it should hold in memory; export it as vti or mhd, which "
                "are written chunk by chunk"
            )
        array = np.asarray(array)
    return write_itk(array, path, fmt, grid, compress=compress, overwrite=overwrite)


def write_itk(
    array: np.ndarray,
    path: str | os.PathLike,
    fmt: str,
    grid: Grid,
    *,
    compress: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """MetaImage (``mhd``/``mha``) or NRRD through SimpleITK, with spacing and origin."""
    sitk = require("SimpleITK")
    dt = _check_dtype(array.dtype)
    targets = image_targets(path, fmt)
    img = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=dt))
    img.SetSpacing([float(s) for s in grid.xyz_spacing])
    img.SetOrigin([float(o) for o in grid.xyz_origin])

    def _w(tmp: Path) -> None:
        sitk.WriteImage(img, str(tmp / targets[0].name), bool(compress))

    return write_files(targets, _w, overwrite)


def write_mhd_streamed(
    array: Any, path: str | os.PathLike, grid: Grid, *, overwrite: bool = False
) -> list[Path]:
    """MetaImage header + ``.raw`` written slab by slab: memory of one slab, any volume size."""
    dt = _check_dtype(array.dtype)
    targets = image_targets(path, "mhd")
    nd = len(array.shape)
    header = "\n".join([
        "ObjectType = Image", f"NDims = {nd}", "BinaryData = True",
        "BinaryDataByteOrderMSB = False", "CompressedData = False",
        "TransformMatrix = " + " ".join("1" if i == j else "0" for i in range(nd)
                                         for j in range(nd)),
        "Offset = " + " ".join(repr(float(o)) for o in grid.xyz_origin),
        "CenterOfRotation = " + " ".join("0" for _ in range(nd)),
        "AnatomicalOrientation = " + "RAI"[:nd],
        "ElementSpacing = " + " ".join(repr(float(s)) for s in grid.xyz_spacing),
        "DimSize = " + " ".join(str(int(n)) for n in reversed(array.shape)),
        f"ElementType = {_MET_TYPES[dt]}", f"ElementDataFile = {targets[1].name}",
    ]) + "\n"  # fmt: skip
    depth = slab_depth(array.shape, dt.itemsize)

    def _w(tmp: Path) -> None:
        (tmp / targets[0].name).write_text(header)
        with open(tmp / targets[1].name, "wb") as fh:
            for _, slab in iter_slabs(array, depth):
                fh.write(np.ascontiguousarray(slab, dtype=dt.newbyteorder("<")).tobytes())

    return write_files(targets, _w, overwrite)


def _vtk_source(array: Any, grid: Grid, dtype: np.dtype):
    """A VTK algorithm that hands out the piece of ``array`` the writer asks for."""
    vtk = require("vtk")
    from vtk.util import numpy_support
    from vtk.util.vtkAlgorithm import VTKPythonAlgorithmBase

    nd = len(array.shape)
    shape3 = (1,) * (3 - nd) + tuple(int(n) for n in array.shape)
    sp = tuple(grid.xyz_spacing) + (1.0,) * (3 - nd)
    org = tuple(o - s / 2 for o, s in zip(grid.xyz_origin, grid.xyz_spacing, strict=True))
    org = org + (0.0,) * (3 - nd)
    whole = (0, shape3[2], 0, shape3[1], 0, shape3[0])  # point extent: cells are the voxels
    sdp = vtk.vtkStreamingDemandDrivenPipeline

    class _Source(VTKPythonAlgorithmBase):
        def __init__(self) -> None:
            super().__init__(nInputPorts=0, nOutputPorts=1, outputType="vtkImageData")

        def RequestInformation(self, request, in_info, out_info):  # noqa: N802 - VTK API
            info = out_info.GetInformationObject(0)
            info.Set(sdp.WHOLE_EXTENT(), whole, 6)
            info.Set(vtk.vtkDataObject.SPACING(), sp, 3)
            info.Set(vtk.vtkDataObject.ORIGIN(), org, 3)
            info.Set(vtk.vtkAlgorithm.CAN_PRODUCE_SUB_EXTENT(), 1)
            return 1

        def RequestData(self, request, in_info, out_info):  # noqa: N802 - VTK API
            info = out_info.GetInformationObject(0)
            x0, x1, y0, y1, z0, z1 = info.Get(sdp.UPDATE_EXTENT())
            block = np.asarray(
                array[(slice(z0, z1),) * (nd == 3) + (slice(y0, y1), slice(x0, x1))]
            )
            out = vtk.vtkImageData.GetData(out_info)
            out.SetExtent(x0, x1, y0, y1, z0, z1)
            values = numpy_support.numpy_to_vtk(
                np.ascontiguousarray(block, dtype=dtype).ravel(), deep=1
            )
            values.SetName("labels")
            out.GetCellData().SetScalars(values)
            if grid.unit is not None:
                unit = vtk.vtkStringArray()
                unit.SetName("unit")
                unit.InsertNextValue(grid.unit)
                out.GetFieldData().AddArray(unit)
            return 1

    return _Source()


def write_vti(
    array: Any,
    path: str | os.PathLike,
    grid: Grid,
    *,
    compress: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """VTK XML image data, streamed piece by piece from ``array`` (ndarray, zarr or dask).

    Memory: one piece (about 32 MB of labels) plus VTK's copy of it, whatever the volume size.
    """
    vtk = require("vtk")
    dt = _check_dtype(array.dtype)
    targets = image_targets(path, "vti")
    nbytes = math.prod(array.shape) * dt.itemsize
    pieces = max(1, math.ceil(nbytes / PIECE_BYTES))

    def _w(tmp: Path) -> None:
        source = _vtk_source(array, grid, dt)  # kept referenced: VTK calls back into it
        writer = vtk.vtkXMLImageDataWriter()
        writer.SetInputConnection(source.GetOutputPort())
        writer.SetFileName(str(tmp / targets[0].name))
        writer.SetNumberOfPieces(pieces)
        writer.SetDataModeToAppended()
        writer.EncodeAppendedDataOff()
        if compress:
            writer.SetCompressorTypeToZLib()
        else:
            writer.SetCompressorTypeToNone()
        ok = writer.Write()
        del writer, source
        if ok != 1:
            raise ExportError(f"VTK could not write {targets[0]}")

    return write_files(targets, _w, overwrite)
