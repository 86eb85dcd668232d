"""napari writers for simulators (File → Save Layer): a Labels layer as it comes from this
plugin's reader — display codes, GenCal metadata, scale — saved as VTI/MetaImage and meshes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal._widgets._layers import labels_layer_tuple
from napari_gencal._writer import write_image_export, write_mesh_export

sitk = pytest.importorskip("SimpleITK")
trimesh = pytest.importorskip("trimesh")


def _layer():
    a = np.zeros((8, 10, 12), np.uint8)
    a[2:6, 3:8, 2:10] = 128
    a[0, 0, :] = 255
    data, kwargs, _ = labels_layer_tuple(a, "twin", voxel_size=(0.5, 0.25, 0.25), unit="um")
    return a, data, {**kwargs, "translate": (1.0, 0.0, 0.0)}


def test_layer_saves_as_metaimage_with_labels_spacing_and_origin(tmp_path):
    a, data, meta = _layer()
    paths = write_image_export(str(tmp_path / "t.mhd"), data, meta)
    img = sitk.ReadImage(paths[0])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), a)  # label values, not codes
    assert img.GetSpacing() == pytest.approx((0.25, 0.25, 0.5))
    assert img.GetOrigin() == pytest.approx((0.0, 0.0, 1.0))
    with pytest.raises(FileExistsError):
        write_image_export(str(tmp_path / "t.mhd"), data, meta)


def test_layer_saves_a_mesh_per_phase(tmp_path):
    a, data, meta = _layer()
    paths = write_mesh_export(str(tmp_path / "t.stl"), data, meta)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["t_0.stl", "t_128.stl", "t_255.stl"]
    mesh = trimesh.load(paths[1])
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(np.count_nonzero(a == 128) * 0.5 * 0.25 * 0.25)


def test_manifest_offers_the_writers():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-gencal")
    exts = {e for w in pm.contributions.writers for e in w.filename_extensions}
    assert {".vti", ".mhd", ".nrrd", ".stl", ".ply"} <= exts
