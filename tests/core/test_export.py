"""Exports read back by the libraries a user would open them with (VTK, SimpleITK, trimesh,
meshio), meshes against voxel counts and analytic volumes, chunked writing, and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from napari_gencal import api
from napari_gencal.cli import main
from napari_gencal.core.export import ExportError, export, make_grid
from napari_gencal.core.export import images as images_mod
from napari_gencal.core.export.meshes import mesh_targets, write_meshes

sitk = pytest.importorskip("SimpleITK")
vtk = pytest.importorskip("vtk")
trimesh = pytest.importorskip("trimesh")
meshio = pytest.importorskip("meshio")

SPACING = (0.3, 0.1, 0.2)  # z, y, x: every axis different, so a swapped axis shows
ORIGIN = (1.0, 2.0, 3.0)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.choice(np.array([0, 85, 170], np.uint8), size=(7, 9, 11))


def _vtk_read(reader_cls, path):
    from vtk.util import numpy_support

    r = reader_cls()
    r.SetFileName(str(path))
    r.Update()
    out = r.GetOutput()
    return out, numpy_support


@pytest.mark.parametrize("fmt", ["mhd", "mha", "nrrd"])
def test_itk_formats_round_trip_through_simpleitk_and_vtk(tmp_path, labels, fmt):
    res = export(labels, tmp_path / f"t.{fmt}", labels=[0, 85, 170], voxel_size=SPACING,
                 unit="um", origin=ORIGIN)  # fmt: skip
    img = sitk.ReadImage(str(res.paths[0]))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), labels)
    assert img.GetSpacing() == pytest.approx(SPACING[::-1])
    assert img.GetOrigin() == pytest.approx(ORIGIN[::-1])
    if fmt in ("mhd", "nrrd"):  # ParaView's readers
        cls = vtk.vtkMetaImageReader if fmt == "mhd" else vtk.vtkNrrdReader
        out, ns = _vtk_read(cls, res.paths[0])
        arr = ns.vtk_to_numpy(out.GetPointData().GetScalars()).reshape(labels.shape)
        np.testing.assert_array_equal(arr, labels)
        assert out.GetSpacing() == pytest.approx(SPACING[::-1])
        assert out.GetOrigin() == pytest.approx(ORIGIN[::-1])


def test_vti_holds_voxels_as_cells_centred_on_the_grid(tmp_path, labels):
    res = export(labels, tmp_path / "t.vti", labels=[0, 85, 170], voxel_size=SPACING,
                 unit="um", origin=ORIGIN)  # fmt: skip
    out, ns = _vtk_read(vtk.vtkXMLImageDataReader, res.paths[0])
    arr = ns.vtk_to_numpy(out.GetCellData().GetArray("labels")).reshape(labels.shape)
    np.testing.assert_array_equal(arr, labels)
    assert out.GetSpacing() == pytest.approx(SPACING[::-1])
    # cell (0, 0, 0)'s centre is the origin; the bounds are the voxels' outer faces
    c = [0.0, 0.0, 0.0]
    cell = out.GetCell(0)
    bounds = cell.GetBounds()
    c = [(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)]
    assert c == pytest.approx(ORIGIN[::-1])
    lo_hi = np.array(out.GetBounds()).reshape(3, 2)
    np.testing.assert_allclose(lo_hi[::-1], res.grid.bounds)
    assert out.GetFieldData().GetAbstractArray("unit").GetValue(0) == "um"


class _CountingArray:
    """A zarr-like array that records every read, so a test can see nothing big was loaded."""

    def __init__(self, a: np.ndarray) -> None:
        self.a, self.shape, self.dtype, self.reads = a, a.shape, a.dtype, []

    def __getitem__(self, key):
        out = self.a[key]
        self.reads.append(out.size)
        return out


@pytest.mark.parametrize("fmt", ["vti", "mhd"])
def test_large_twins_are_written_piece_by_piece(tmp_path, monkeypatch, fmt):
    import zarr

    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, size=(24, 20, 16)).astype(np.uint8)
    monkeypatch.setattr(images_mod, "PIECE_BYTES", 1000)
    monkeypatch.setattr("napari_gencal.core.export.images.slab_depth", lambda *_: 3)
    src = _CountingArray(a)
    export(src, tmp_path / f"c.{fmt}", labels=[0, 1, 2], voxel_size=0.5, unit="um")
    assert max(src.reads) <= a.size // 4, src.reads  # never the whole volume at once
    path = tmp_path / f"c.{fmt}"
    if fmt == "mhd":
        back = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    else:
        out, ns = _vtk_read(vtk.vtkXMLImageDataReader, path)
        back = ns.vtk_to_numpy(out.GetCellData().GetArray("labels")).reshape(a.shape)
    np.testing.assert_array_equal(back, a)
    # a zarr twin through the API: labels and voxel size from the store's attributes
    z = zarr.open_array(str(tmp_path / "t.zarr"), mode="w", shape=a.shape, chunks=(8, 8, 8),
                        dtype=a.dtype)  # fmt: skip
    z[:] = a
    z.attrs.update({"napari_gencal": "twin", "phase_labels": [0, 1, 2],
                    "voxel_size": [0.25, 0.25, 0.25], "model": {"unit": "um"}})  # fmt: skip
    res = api.export(tmp_path / "t.zarr", tmp_path / f"z.{fmt}")
    img = sitk.ReadImage(str(res.paths[0])) if fmt == "mhd" else None
    if img is not None:
        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), a)
        assert img.GetSpacing() == pytest.approx((0.25,) * 3)
    assert res.grid.unit == "um" and res.grid.spacing == pytest.approx((0.25,) * 3)


def _scene() -> np.ndarray:
    z, y, x = np.mgrid[:40, :30, :34]
    a = np.zeros((40, 30, 34), np.uint8)
    a[((z - 18) ** 2 + (y - 15) ** 2 + (x - 17) ** 2) < 9.5**2] = 2  # a ball
    a[5:9, 3:25, 2:30] = 1  # a thin plate
    a[31:, :, :] = 3  # a slab touching five faces of the volume
    return a


@pytest.mark.parametrize("volume_match", [True, False])
def test_meshes_are_watertight_and_enclose_the_voxel_volume(tmp_path, monkeypatch, volume_match):
    # slabs of 3 planes: the seams between slabs are crossed many times
    monkeypatch.setattr("napari_gencal.core.export.meshes.SLAB_VOXELS", 3 * 32 * 36)
    a = _scene()
    grid = make_grid(a.shape, SPACING, "um", ORIGIN)
    labels = [0, 1, 2, 3]
    targets = {f: mesh_targets(tmp_path / f"m.{f}", f, labels) for f in ("stl", "ply")}
    infos = write_meshes(a, targets, labels, grid, volume_match=volume_match)
    voxel = float(np.prod(SPACING))
    for info, lab in zip(infos, labels, strict=True):
        truth = np.count_nonzero(a == lab) * voxel
        for path in info.paths:
            # STL is a triangle soup (trimesh merges equal vertices); PLY shares vertices by
            # index, so it is checked as written (seam vertices must be merged by the writer)
            mesh = trimesh.load(path, process=path.suffix == ".stl")
            assert mesh.is_watertight and mesh.is_winding_consistent, path
            tol = 1e-6 if volume_match else 0.02
            assert mesh.volume == pytest.approx(truth, rel=tol), (path, mesh.volume, truth)
            m = meshio.read(path)
            assert len(m.cells_dict["triangle"]) == info.n_triangles
            lo, hi = mesh.bounds
            # physical units, (x, y, z): inside the volume's box
            box = np.array(grid.bounds)[::-1]
            assert np.all(lo >= box[:, 0] - 1e-6) and np.all(hi <= box[:, 1] + 1e-6)
        if lab == 3:  # touches every face but z-low: its box is the volume's there
            mesh = trimesh.load(info.paths[0])
            box = np.array(grid.bounds)[::-1]
            np.testing.assert_allclose(mesh.bounds[:, :2].T, box[:2], atol=1e-5)
            assert mesh.bounds[1, 2] == pytest.approx(box[2, 1], abs=1e-5)
    ball = infos[2]
    analytic = 4 / 3 * np.pi * 9.5**3 * voxel
    assert ball.mesh_volume == pytest.approx(analytic, rel=0.03)


def test_meshes_without_vtk_use_scikit_image(tmp_path, monkeypatch):
    import sys

    from napari_gencal.core.export import meshes

    a = _scene()
    grid = make_grid(a.shape, 0.5, "um")
    ref = meshes.phase_mesh(a, 1, grid)
    monkeypatch.setitem(sys.modules, "vtk", None)  # `import vtk` now fails
    meshes._inward.cache_clear()
    try:
        v, f, info = meshes.phase_mesh(a, 1, grid)
    finally:
        meshes._inward.cache_clear()
    assert len(f) == len(ref[1]) and info.s == pytest.approx(ref[2].s)
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.is_watertight and mesh.volume == pytest.approx(ref[2].voxel_volume, rel=1e-6)


def test_smoothing_and_decimation_keep_a_closed_mesh(tmp_path):
    a = _scene()
    res = export(a, tmp_path / "s.stl", labels=[0, 1, 2, 3], phases=[2], voxel_size=0.5,
                 unit="um", smooth=10, decimate=0.5)  # fmt: skip
    info = res.meshes[0]
    mesh = trimesh.load(res.paths[0])
    assert mesh.is_watertight
    assert len(mesh.faces) == pytest.approx(info.n_triangles, rel=0.01)
    assert info.mesh_volume == pytest.approx(np.count_nonzero(a == 2) * 0.125, rel=0.02)


def test_pore_network_for_openpnm(tmp_path):
    pytest.importorskip("porespy")
    a = np.zeros((12, 14, 30), np.uint8)  # two pores along x joined by a throat
    a[3:9, 3:11, 2:12] = 1
    a[3:9, 3:11, 18:28] = 1
    a[5:7, 6:8, 12:18] = 1
    res = export(a, tmp_path / "n.pnm", labels=[0, 1], phase=1, voxel_size=0.5, unit="um",
                 origin=(10.0, 20.0, 30.0))  # fmt: skip
    with open(res.paths[0], "rb") as fh:
        net = pickle.load(fh)
    xyz = net["pore.coords"]
    assert xyz.shape[1] == 3 and res.network["pores"] == len(xyz) >= 2
    # (x, y, z) columns in µm, inside the phase's box
    assert np.all(xyz[:, 0] >= 30 + 2 * 0.5) and np.all(xyz[:, 0] <= 30 + 27 * 0.5)
    assert np.all((xyz[:, 2] >= 10 + 3 * 0.5) & (xyz[:, 2] <= 10 + 8 * 0.5))
    assert len(net["throat.conns"]) >= 1


def test_bad_input_gets_clear_errors(tmp_path, labels):
    kw = {"labels": [0, 85, 170]}
    with pytest.raises(ExportError, match="unknown export format 'xyz'"):
        export(labels, tmp_path / "a.xyz", **kw)
    with pytest.raises(ExportError, match="no voxel size"):
        export(labels, tmp_path / "a.vti", out_unit="m", **kw)
    for bad in ((0.1, 0.0, 0.1), (0.1, -1.0, 0.1)):
        with pytest.raises(ExportError, match="positive"):
            export(labels, tmp_path / "a.vti", voxel_size=bad, **kw)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        export(labels, blocker / "sub" / "a.vti", **kw)
    with pytest.raises(ExportError, match="--phase"):
        export(labels, tmp_path / "a.pnm", **kw)
    with pytest.raises(ExportError, match="3D"):
        export(labels[0], tmp_path / "a.stl", **kw)
    # nothing is overwritten without asking; with overwrite the new content is there
    first = export(labels, tmp_path / "o.mhd", voxel_size=1.0, **kw).paths
    before = [p.read_bytes() for p in first]
    with pytest.raises(FileExistsError, match="overwrite"):
        export(labels, tmp_path / "o.mhd", voxel_size=2.0, **kw)
    assert [p.read_bytes() for p in first] == before
    export(labels, tmp_path / "o.mhd", voxel_size=2.0, overwrite=True, **kw)
    assert sitk.ReadImage(str(first[0])).GetSpacing() == (2.0, 2.0, 2.0)
    assert not list(tmp_path.glob(".gencal-export-*"))  # no temporary folders left


def test_cli_export_writes_every_format_and_reports(tmp_path, labels, capsys):
    from napari_gencal.core.io import write_tiff

    src = write_tiff(tmp_path / "v.tif", labels, voxel_size=(0.3, 0.1, 0.2), unit="um")
    assert main(["export", str(src), "--to", "vti,nrrd,stl", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "0.3, 0.1, 0.2 um" in out and "phase 85" in out
    for name in ("o.vti", "o.nrrd", "o_0.stl", "o_85.stl", "o_170.stl"):
        assert (tmp_path / name).exists(), name
    img = sitk.ReadImage(str(tmp_path / "o.nrrd"))
    assert img.GetSpacing() == pytest.approx((0.2, 0.1, 0.3))
    # in metres for COMSOL
    assert main(["export", str(src), "--to", "stl", "--mesh-phases", "85", "--out-unit", "m",
                 "--out", str(tmp_path / "m.stl")]) == 0  # fmt: skip
    mesh = trimesh.load(tmp_path / "m_85.stl")
    assert mesh.bounds[1, 2] <= 7 * 0.3e-6 + 1e-12
    assert main(["export", str(src), "--to", "vtk", "--out", str(tmp_path / "x")]) == 2
    assert "unknown export format" in capsys.readouterr().err
    assert main(["export", str(src), "--out", str(tmp_path / "o.vti")]) == 2
    assert "already exists" in capsys.readouterr().err
