"""Watertight surface meshes of each phase, in physical units (STL, PLY).

Method (docs/simulators.md, "Meshes"): marching cubes (VTK's flying edges, else scikit-image's
Lorensen marching cubes; both give every edge exactly two triangles on binary data) on the phase
indicator, padded by one voxel so that a phase touching the volume's faces is closed there. On
binary data every vertex lies on a lattice edge between a voxel of the phase and one outside it,
at a distance ``s`` from the phase voxel's centre (``s = 1 − level``); the topology is the same
for every level in (0, 1).

*Volume.* At ``s = 1/2`` the surface passes through the voxel faces but cuts the corners and
edges of the voxel boxes, so it encloses less than the voxel count of a convex phase (−9 % for
the 2.5-voxel-thick binder of ``electrode.tiff``) and more of a concave one. The enclosed volume
is a cubic polynomial in ``s`` (vertices move linearly in ``s``; volume is a sum of triple
products), so one pass of marching cubes gives it, and the ``s`` at which the mesh encloses
exactly the phase's voxel count × voxel volume is a root of that cubic; a second pass writes the
mesh there. Vertices on the padding (the volume's outer faces) stay on the faces (``s = 1/2``,
by padding with ``1 − 2s`` instead of 0), so every mesh lies inside the volume's box.
``volume_match=False`` keeps ``s = 1/2``: then the meshes of two phases coincide on their common
interface.

*Memory.* Marching cubes runs on slabs of z planes that share one plane, so the triangles of a
slab are exactly those of the whole volume between its planes and the seam vertices are
bit-identical; without smoothing or decimation the triangles are streamed to the file (binary
STL; binary PLY with the seam vertices merged), so memory is that of one slab whatever the
volume's size. Smoothing (Taubin, trimesh) and decimation (quadric, fast-simplification) need the
whole mesh in memory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ._common import ExportError, Grid, require, write_files

__all__ = ["MeshInfo", "mesh_targets", "phase_mesh", "write_meshes", "mesh_level", "slab_planes"]

#: Voxels per marching-cubes slab: scikit-image's marching cubes needs ~40 bytes per voxel of
#: its input on a fine three-phase structure, so a slab costs ~10 MB whatever the volume.
SLAB_VOXELS = 1 << 18
#: Triangles handled at once when summing volumes and writing records (bounds temporaries).
FACE_BLOCK = 1 << 16


def slab_planes(shape: Sequence[int]) -> int:
    """z planes per slab for a volume of ``shape`` (at least 2)."""
    return max(2, SLAB_VOXELS // max(1, (int(shape[1]) + 2) * (int(shape[2]) + 2)))


@dataclass
class MeshInfo:
    """What one phase's mesh is.

    Attributes
    ----------
    label : int
        The phase's label value.
    s : float
        Vertex distance from the phase voxel centres, in voxels (0.5: plain marching cubes).
    voxel_volume : float
        Voxel count × voxel volume of the phase (physical units³).
    mesh_volume : float
        Volume the mesh encloses (same units), before smoothing or decimation.
    n_triangles, n_vertices : int
    paths : list of Path
    notes : list of str
    """

    label: int
    s: float
    voxel_volume: float
    mesh_volume: float
    n_triangles: int = 0
    n_vertices: int = 0
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def volume_error(self) -> float:
        """Relative difference of the mesh volume from the voxel volume."""
        return self.mesh_volume / self.voxel_volume - 1.0 if self.voxel_volume else 0.0


def mesh_targets(path: str | os.PathLike, fmt: str, labels: Sequence[int]) -> list[Path]:
    """One file per phase: ``twin.stl`` → ``twin_0.stl``, ``twin_85.stl``, …"""
    p = Path(path)
    stem = p.name[: -len(p.suffix)] if p.suffix.lower() == f".{fmt}" else p.name
    return [p.with_name(f"{stem}_{int(v)}.{fmt}") for v in labels]


def _contour(block: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of a float32 block: vertices ``(z, y, x)`` (float64) and int32 triangles.

    VTK's flying edges (the marching-cubes case table, multi-threaded; 4-6× faster than
    scikit-image here, the same triangles) when VTK is installed, else scikit-image's
    Lorensen marching cubes. Both give every edge exactly two triangles on binary data.
    """
    try:
        import vtk
        from vtk.util import numpy_support
    except ImportError:
        from skimage.measure import marching_cubes

        verts, faces, _, _ = marching_cubes(block, level, method="lorensen")
        return verts.astype(np.float64), faces.astype(np.int32, copy=False)
    image = vtk.vtkImageData()
    image.SetDimensions(block.shape[2], block.shape[1], block.shape[0])
    values = numpy_support.numpy_to_vtk(block.ravel(), deep=0)  # a view; block outlives it
    image.GetPointData().SetScalars(values)
    fe = vtk.vtkFlyingEdges3D()
    fe.SetInputData(image)
    fe.SetValue(0, float(level))
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    fe.InterpolateAttributesOff()
    fe.Update()
    out = fe.GetOutput()
    if out.GetNumberOfPoints() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int32)
    verts = numpy_support.vtk_to_numpy(out.GetPoints().GetData())[:, ::-1].astype(np.float64)
    conn = numpy_support.vtk_to_numpy(out.GetPolys().GetConnectivityArray())
    return verts, conn.reshape(-1, 3).astype(np.int32)


def _slab(array: Any, label: int, s: float, a: int, planes: int) -> tuple | None:
    """Marching cubes on padded planes ``a .. a + planes`` of the indicator of ``label``.

    Returns ``(verts, faces, block)`` — vertices in padded global ``(z, y, x)`` index
    coordinates, int32 triangles, the slab's padded float block — or None when the slab holds
    no voxel of the phase.
    """
    nz, ny, nx = (int(n) for n in array.shape)
    b = min(a + planes, nz + 1)  # padded planes a..b inclusive
    lo, hi = max(0, a - 1), min(nz, b)  # the data planes they hold
    block = np.full((b - a + 1, ny + 2, nx + 2), 1.0 - 2.0 * s, dtype=np.float32)
    if hi > lo:
        block[lo + 1 - a : hi + 1 - a, 1:-1, 1:-1] = np.asarray(array[lo:hi]) == label
    if not (block == 1.0).any():
        return None
    verts, faces = _contour(block, 1.0 - s)
    verts[:, 0] += a
    return verts, faces.astype(np.int32, copy=False), block


def _pipeline(fn: Any, items: Sequence[Any], workers: int = 2) -> Iterator[Any]:
    """``map(fn, items)`` in order on ``workers`` threads, at most ``workers`` results ahead:
    marching cubes and NumPy release the GIL for much of a slab, and memory stays bounded."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        queue = [pool.submit(fn, it) for it in items[:workers]]
        for i in range(len(items)):
            result = queue.pop(0).result()
            if i + workers < len(items):
                queue.append(pool.submit(fn, items[i + workers]))
            yield result


def _edge_ids(verts: np.ndarray, shape: Sequence[int], b: int) -> tuple[np.ndarray, np.ndarray]:
    """The lattice edge of each vertex (a global id) and which vertices lie on the seam plane
    ``b`` that the next slab shares."""
    fl = np.floor(verts)
    frac = verts != fl
    axis = np.argmax(frac, axis=1)
    low = fl.astype(np.int64)
    ny, nx = int(shape[1]) + 2, int(shape[2]) + 2
    ids = ((low[:, 0] * ny + low[:, 1]) * nx + low[:, 2]) * 3 + axis
    return ids, (axis != 0) & (low[:, 0] == b)


def _signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    """Signed volume under the triangles by the divergence theorem with the field ``(0, 0, z)``:
    ``Σ z̄ · (area vector)_z`` (z the last column). Sums over pieces of a closed surface add up
    to its volume, so slabs can be summed."""
    x, y, z = (np.ascontiguousarray(v[:, i]) for i in range(3))
    f0, f1, f2 = (np.ascontiguousarray(f[:, i]) for i in range(3))
    x0, y0 = x[f0], y[f0]
    nz = (x[f1] - x0) * (y[f2] - y0) - (y[f1] - y0) * (x[f2] - x0)
    return float(np.einsum("i,i->", z[f0] + z[f1] + z[f2], nz)) / 6.0  # no BLAS: see below


def _volume_cubic(c: np.ndarray, d: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Coefficients ``(c0, c1, c2, c3)`` of the signed volume of the triangles ``f`` with
    vertices ``c + s·d`` as a polynomial in ``s`` (:func:`_signed_volume`'s formula with z the
    first column, expanded: ``Σ (U0 + s U1)(N0 + s N1 + s² N2) / 6``)."""
    # float32 is exact here (integers and halves below 2**24, differences of at most a few
    # voxels) and halves the memory traffic of the gathers; the sums are taken in float64.
    cz, cy, cx = (np.ascontiguousarray(c[:, i], dtype=np.float32) for i in range(3))
    dz, dy, dx = (np.ascontiguousarray(d[:, i], dtype=np.float32) for i in range(3))
    f0, f1, f2 = (np.ascontiguousarray(f[:, i]) for i in range(3))
    u0 = (cz[f0] + cz[f1] + cz[f2]).astype(np.float64)
    u1 = (dz[f0] + dz[f1] + dz[f2]).astype(np.float64)
    y0, x0, ey, ex = cy[f0], cx[f0], dy[f0], dx[f0]
    a2, a3 = cy[f1] - y0, cy[f2] - y0
    g2, g3 = cx[f1] - x0, cx[f2] - x0
    b2, b3 = dy[f1] - ey, dy[f2] - ey
    h2, h3 = dx[f1] - ex, dx[f2] - ex
    n0 = (a2 * g3 - g2 * a3).astype(np.float64)
    n1 = (a2 * h3 + b2 * g3 - g2 * b3 - h2 * a3).astype(np.float64)
    n2 = (b2 * h3 - h2 * b3).astype(np.float64)
    def dot(x: np.ndarray, y: np.ndarray) -> float:
        # einsum, not np.dot/@: those call OpenBLAS, whose spinning threads cost 10× the CPU
        # of the product itself on these 64k-element vectors
        return float(np.einsum("i,i->", x, y))

    return np.array([dot(u0, n0), dot(u0, n1) + dot(u1, n0), dot(u0, n2) + dot(u1, n1),
                     dot(u1, n2)]) / 6.0  # fmt: skip


def _pass1(array: Any, label: int, a: int, planes: int, cache: Path) -> tuple[np.ndarray, int]:
    """Marching cubes of one slab at ``s = 1/2``: its share of the volume cubic (voxels³) and of
    the voxel count; the vertices as ``c + s·d`` and the triangles go to ``cache`` so that the
    second pass moves vertices instead of running marching cubes again."""
    out = _slab(array, label, 0.5, a, planes)
    if out is None:
        return np.zeros(4), 0
    verts, faces, block = out
    # c: the phase voxel's centre; d = ±e_axis towards the other voxel; on the padding d = 0
    # (the volume's outer faces stay put).
    rows = np.arange(len(verts))
    c = np.floor(verts)
    axis = np.argmax(verts != c, axis=1)
    lo = c.astype(np.intp)
    lo[:, 0] -= a
    inside_lo = block[lo[:, 0], lo[:, 1], lo[:, 2]] == 1.0
    other = lo.copy()
    other[rows, axis] += inside_lo  # the end that is not the phase's
    other[:, 0] += a
    last = np.array([array.shape[0] + 1, array.shape[1] + 1, array.shape[2] + 1])
    boundary = ((other == 0) | (other == last)).any(axis=1)
    c[rows[~inside_lo], axis[~inside_lo]] += 1.0
    d = np.zeros(verts.shape, np.int8)
    d[rows, axis] = np.where(inside_lo, 1, -1)
    c[boundary] = verts[boundary]
    d[boundary] = 0
    # Coordinates are integers or halves below 2**24: exact in float32.
    np.save(cache / f"{a}.c.npy", c.astype(np.float32))
    np.save(cache / f"{a}.d.npy", d)
    np.save(cache / f"{a}.f.npy", faces)
    coef = sum(_volume_cubic(c, d, faces[i : i + FACE_BLOCK])
               for i in range(0, len(faces), FACE_BLOCK))  # fmt: skip
    return coef, int(np.count_nonzero(block[:-1] == 1.0))


def _surface_level(
    array: Any, label: int, cache: Path, volume_match: bool, planes: int
) -> tuple[float, float, int, list[int]]:
    """Pass 1 over all slabs: ``(s, volume at s = 1/2, voxel count, slabs with triangles)``;
    ``s`` encloses the voxel count (the cubic's root nearest 1/2) or is 1/2."""
    coef = np.zeros(4)
    count = 0
    starts = list(range(0, int(array.shape[0]) + 1, planes))
    used = []
    for a, (part, n) in zip(starts, _pipeline(
            lambda a: _pass1(array, label, a, planes, cache), starts), strict=True):  # fmt: skip
        coef += part
        count += n  # each slab counts its planes a..b-1: plane b is the next slab's
        if (cache / f"{a}.f.npy").exists():
            used.append(a)
    if count == 0:
        raise ExportError(f"phase {label} does not occur in the volume: it has no surface")
    coef *= 1.0 if np.polyval(coef[::-1], 0.5) > 0 else -1.0
    v_half = float(np.polyval(coef[::-1], 0.5))
    if not volume_match:
        return 0.5, v_half, count, used
    roots = np.roots((coef - np.array([count, 0, 0, 0]))[::-1])
    real = [float(r.real) for r in roots if abs(r.imag) < 1e-9 and 0.02 < r.real < 0.98]
    if not real:  # pragma: no cover - not met on any volume tried; the best s in range then
        grid = np.linspace(0.05, 0.95, 91)
        best = grid[np.argmin(np.abs(np.polyval(coef[::-1], grid) - count))]
        return float(best), v_half, count, used
    return min(real, key=lambda r: abs(r - 0.5)), v_half, count, used


def mesh_level(array: Any, label: int, planes: int | None = None) -> tuple[float, float, int]:
    """The vertex offset ``s`` at which the mesh of ``label`` encloses its voxel count.

    Returns
    -------
    s : float
        In (0, 1); the root of the volume cubic nearest 1/2.
    volume_half : float
        Volume (in voxels) enclosed at ``s = 1/2``, positive.
    count : int
        Voxels of the phase.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gencal-mesh-") as tmp:
        planes = planes or slab_planes(array.shape)
        s, vh, count, _ = _surface_level(array, label, Path(tmp), True, planes)
    return s, vh, count


def _cached_slabs(cache: Path, used: Sequence[int], s: float) -> Iterator[tuple]:
    """Pass 2: ``(verts, faces, a)`` per slab, vertices at offset ``s`` (padded index coords)."""
    for a in used:
        c = np.load(cache / f"{a}.c.npy").astype(np.float64)
        c += s * np.load(cache / f"{a}.d.npy")
        faces = np.load(cache / f"{a}.f.npy")
        for part in ("c", "d", "f"):
            os.unlink(cache / f"{a}.{part}.npy")
        yield c, faces, a


@cache
def _inward() -> bool:
    """Whether the contour's triangles, mapped to ``(x, y, z)``, face inwards (then they are
    flipped): learnt once from one voxel, as the convention is the same for every triangle."""
    block = np.zeros((3, 3, 3), np.float32)
    block[1, 1, 1] = 1.0
    v, f = _contour(block, 0.5)
    return _signed_volume(np.ascontiguousarray(v[:, ::-1], dtype=np.float64), f) < 0


def _to_physical(verts: np.ndarray, grid: Grid) -> np.ndarray:
    """Padded ``(z, y, x)`` index coordinates → physical ``(x, y, z)``."""
    sp = np.asarray(grid.xyz_spacing)
    org = np.asarray(grid.xyz_origin)
    return (verts[:, ::-1] - 1.0) * sp + org


def phase_mesh(
    array: Any, label: int, grid: Grid, *, volume_match: bool = True
) -> tuple[np.ndarray, np.ndarray, MeshInfo]:
    """The whole mesh of one phase in memory: vertices ``(n, 3)`` in physical ``(x, y, z)``,
    triangles ``(m, 3)`` oriented outwards, and its :class:`MeshInfo`."""
    import tempfile

    vs, fs, offset = [], [], 0
    seam_ids = np.zeros(0, np.int64)
    seam_idx = np.zeros(0, np.int64)
    with tempfile.TemporaryDirectory(prefix="gencal-mesh-") as tmp:
        planes = slab_planes(array.shape)
        s, _, count, used = _surface_level(array, label, Path(tmp), volume_match, planes)
        for verts, faces, a in _cached_slabs(Path(tmp), used, s):
            b = min(a + planes, int(array.shape[0]) + 1)
            ids, top = _edge_ids(verts, array.shape, b)
            gidx, new = _merge_seam(ids, seam_ids, seam_idx, offset)
            vs.append(verts[new])
            fs.append(gidx[faces])
            offset += int(new.sum())
            seam_ids, seam_idx = _seam(ids, top, gidx)
    v = _to_physical(np.concatenate(vs), grid)
    f = np.concatenate(fs)
    if _inward():
        f = f[:, [0, 2, 1]]
    info = MeshInfo(int(label), float(s), count * float(np.prod(grid.spacing)),
                    _signed_volume(v, f), len(f), len(v))  # fmt: skip
    return v, f, info


def _merge_seam(
    ids: np.ndarray, seam_ids: np.ndarray, seam_idx: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Global vertex numbers of a slab's vertices: the previous slab's for seam vertices."""
    gidx = np.empty(len(ids), np.int64)
    pos = np.searchsorted(seam_ids, ids)
    pos = np.clip(pos, 0, max(0, len(seam_ids) - 1))
    old = (seam_ids[pos] == ids) if len(seam_ids) else np.zeros(len(ids), bool)
    gidx[old] = seam_idx[pos[old]]
    new = ~old
    gidx[new] = offset + np.arange(int(new.sum()))
    return gidx, new


def _seam(ids: np.ndarray, top: np.ndarray, gidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(ids[top])
    return ids[top][order], gidx[top][order]


class _PlyStream:
    """Binary PLY written in two temporary parts (vertices, faces) and joined at the end."""

    def __init__(self, path: Path, comment: str) -> None:
        self.path, self.comment = path, comment
        self.vfile = open(path.with_name(path.name + ".v"), "wb")  # noqa: SIM115
        self.ffile = open(path.with_name(path.name + ".f"), "wb")  # noqa: SIM115
        self.nv = self.nf = 0

    def add(self, verts: np.ndarray, faces: np.ndarray) -> None:
        self.vfile.write(np.ascontiguousarray(verts, dtype="<f4").tobytes())
        rec = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<i4", (3,))])
        rec["n"] = 3
        rec["i"] = faces
        self.ffile.write(rec.tobytes())
        self.nv += len(verts)
        self.nf += len(faces)

    def close(self) -> None:
        self.vfile.close()
        self.ffile.close()
        header = (
            "ply\nformat binary_little_endian 1.0\n"
            f"comment {self.comment}\n"
            f"element vertex {self.nv}\nproperty float x\nproperty float y\nproperty float z\n"
            f"element face {self.nf}\nproperty list uchar int vertex_indices\nend_header\n"
        )
        with open(self.path, "wb") as out:
            out.write(header.encode("ascii"))
            for part in (self.vfile.name, self.ffile.name):
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 16 << 20)
                os.unlink(part)


class _StlStream:
    """Binary STL: 80-byte header, triangle count (patched at the end), 50 bytes per triangle."""

    def __init__(self, path: Path, comment: str) -> None:
        self.fh = open(path, "wb")  # noqa: SIM115
        self.fh.write(comment.encode("ascii", "replace")[:80].ljust(80, b" "))
        self.fh.write(np.uint32(0).tobytes())
        self.n = 0

    def add(self, tri: np.ndarray) -> None:
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.maximum(np.sqrt(np.einsum("ij,ij->i", n, n)), 1e-30)[:, None]
        rec = np.empty(len(tri), dtype=[("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("a", "<u2")])
        rec["n"] = n
        rec["v"] = tri
        rec["a"] = 0
        self.fh.write(rec.tobytes())
        self.n += len(tri)

    def close(self) -> None:
        self.fh.seek(80)
        self.fh.write(np.uint32(self.n).tobytes())
        self.fh.close()


def write_meshes(
    array: Any,
    targets: dict[str, Sequence[Path]],
    labels: Sequence[int],
    grid: Grid,
    *,
    volume_match: bool = True,
    smooth: int = 0,
    decimate: float | None = None,
    overwrite: bool = False,
) -> list[MeshInfo]:
    """Write the mesh of each phase in ``labels`` to every format in ``targets``.

    Parameters
    ----------
    array : ndarray, zarr or dask array
        3D labels.
    targets : dict
        Format (``"stl"``, ``"ply"``) → one path per label (:func:`mesh_targets`).
    labels : sequence of int
        The phases to mesh.
    grid : Grid
        Spacing, origin and unit of the output coordinates.
    volume_match : bool
        Place the surface so that it encloses the voxel volume (see the module docstring).
    smooth : int
        Taubin smoothing iterations (0: none; the mesh is then held in memory).
    decimate : float, optional
        Keep this fraction of the triangles (quadric decimation; in memory).
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of MeshInfo
    """
    if len(array.shape) != 3:
        raise ExportError(f"a surface mesh needs a 3D volume, got shape {tuple(array.shape)}")
    if smooth < 0:
        raise ExportError(f"smooth must be a number of iterations >= 0, got {smooth}")
    if decimate is not None and not 0 < float(decimate) <= 1:
        raise ExportError(f"decimate is the fraction of triangles kept, in (0, 1]; got {decimate}")
    infos = []
    in_memory = bool(smooth) or (decimate is not None and float(decimate) < 1)
    for i, label in enumerate(labels):
        paths = {fmt: Path(t[i]) for fmt, t in targets.items()}
        comment = f"napari-gencal phase {int(label)}, lengths in {grid.unit or 'voxels'}"
        box: dict[str, Any] = {}

        def _w(tmp: Path, label=label, paths=paths, comment=comment, box=box) -> None:
            if in_memory:
                box["info"] = _write_processed(array, label, grid, paths, tmp, comment,
                                               volume_match, smooth, decimate)  # fmt: skip
            else:
                box["info"] = _write_streamed(array, label, grid, paths, tmp, comment,
                                              volume_match)  # fmt: skip

        written = write_files(list(paths.values()), _w, overwrite)
        info = box["info"]
        info.paths = written
        infos.append(info)
    return infos


def _write_streamed(array, label, grid, paths, tmp, comment, volume_match) -> MeshInfo:
    cache = tmp / ".slabs"
    cache.mkdir()
    planes = slab_planes(array.shape)
    s, _, count, used = _surface_level(array, label, cache, volume_match, planes)
    stl = _StlStream(tmp / paths["stl"].name, comment) if "stl" in paths else None
    ply = _PlyStream(tmp / paths["ply"].name, comment) if "ply" in paths else None
    offset, vol = 0, 0.0
    seam_ids = np.zeros(0, np.int64)
    seam_idx = np.zeros(0, np.int64)
    flip = _inward()
    for verts, faces, a in _cached_slabs(cache, used, s):
        v = _to_physical(verts, grid)
        if flip:
            faces = faces[:, [0, 2, 1]]
        v32 = v.astype(np.float32)
        for i in range(0, len(faces), FACE_BLOCK):
            block = faces[i : i + FACE_BLOCK]
            vol += _signed_volume(v, block)
            if stl is not None:
                stl.add(v32[block])
        if ply is not None:
            b = min(a + planes, int(array.shape[0]) + 1)
            ids, top = _edge_ids(verts, array.shape, b)
            gidx, new = _merge_seam(ids, seam_ids, seam_idx, offset)
            ply.add(v[new], gidx[faces])
            offset += int(new.sum())
            seam_ids, seam_idx = _seam(ids, top, gidx)
    for w in (stl, ply):
        if w is not None:
            w.close()
    cache.rmdir()
    n_tri = stl.n if stl is not None else ply.nf  # type: ignore[union-attr]
    return MeshInfo(int(label), float(s), count * float(np.prod(grid.spacing)), vol, n_tri,
                    ply.nv if ply is not None else 0)  # fmt: skip


def _write_processed(array, label, grid, paths, tmp, comment, volume_match, smooth, decimate):
    trimesh = require("trimesh")
    v, f, info = phase_mesh(array, label, grid, volume_match=volume_match)
    mesh = trimesh.Trimesh(v, f, process=False)
    if decimate is not None and float(decimate) < 1:
        fs = require("fast_simplification")
        # fast-simplification directly: through trimesh's wrapper (float64 input) some
        # reductions left open edges in the tests, the direct float32 call did not.
        vd, fd = fs.simplify(v.astype(np.float32), f.astype(np.int32),
                             target_reduction=1.0 - float(decimate))  # fmt: skip
        mesh = trimesh.Trimesh(vd.astype(np.float64), fd, process=False)
        info.notes.append(f"decimated to {len(mesh.faces)} of {info.n_triangles} triangles")
    if smooth:
        trimesh.smoothing.filter_taubin(mesh, iterations=int(smooth))
        info.notes.append(f"Taubin smoothing, {int(smooth)} iterations")
    if not mesh.is_watertight:
        info.notes.append("not watertight after decimation; use a smaller reduction")
    info.mesh_volume = float(abs(mesh.volume))
    info.n_triangles, info.n_vertices = len(mesh.faces), len(mesh.vertices)
    for fmt, p in paths.items():
        mesh.export(str(tmp / p.name), file_type=fmt)
    return info
