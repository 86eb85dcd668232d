"""Readers, writer and sample data of the napari plugin (no viewer needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_gencal._reader import get_model_reader, get_reader
from napari_gencal._sample_data import sample_2d, sample_3d
from napari_gencal._widgets._layers import decode_labels, encode_labels, unique_name
from napari_gencal._writer import sidecar_path, write_labels
from napari_gencal.samples import load_sample, sample_names
from tests.conftest import shared_data


def _three_phase(shape=(4, 16, 16), values=(0, 128, 255), seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(values, dtype=np.uint8)[rng.integers(0, 3, size=shape)]


def _read(path):
    reader = get_reader(str(path))
    assert reader is not None, f"no reader for {path}"
    layers = reader(str(path))
    assert len(layers) == 1
    return layers[0]


def test_tiff_stack_opens_as_display_coded_labels(tmp_path):
    vol = _three_phase()
    p = tmp_path / "stack.tif"
    tifffile.imwrite(
        p,
        vol,
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.5),
        metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"},
    )
    data, kw, kind = _read(p)
    assert kind == "labels"
    assert data.shape == vol.shape and data.dtype == np.uint8
    assert set(np.unique(data)) == {1, 2, 3}  # 0 would be transparent in napari
    assert kw["metadata"]["gencal"]["phase_map"] == [0, 128, 255]
    assert kw["scale"] == pytest.approx((2.0, 0.5, 0.5))
    assert np.array_equal(decode_labels(data, [0, 128, 255]), vol)


def test_npy_and_png_folder(tmp_path):
    img = _three_phase((12, 10), values=(3, 7, 9))
    np.save(tmp_path / "img.npy", img)
    data, kw, _ = _read(tmp_path / "img.npy")
    assert kw["metadata"]["gencal"]["phase_map"] == [3, 7, 9]
    assert np.array_equal(decode_labels(data, [3, 7, 9]), img)

    from skimage.io import imsave

    folder = tmp_path / "slices"
    folder.mkdir()
    vol = _three_phase((3, 8, 8))
    for i, sl in enumerate(vol):
        imsave(folder / f"s{i:03d}.png", sl, check_contrast=False)
    data, kw, _ = _read(folder)
    assert data.shape == (3, 8, 8)
    assert np.array_equal(decode_labels(data, kw["metadata"]["gencal"]["phase_map"]), vol)


def test_greyscale_and_unrelated_files_get_no_reader(tmp_path):
    rng = np.random.default_rng(1)
    tifffile.imwrite(tmp_path / "grey.tif", rng.random((16, 16)).astype(np.float32))
    tifffile.imwrite(tmp_path / "photo.tif", rng.integers(0, 255, (32, 32), dtype=np.uint8))
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((8, 8), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    for name in ("grey.tif", "photo.tif", "flat.tif", "notes.txt", "missing.tif"):
        assert get_reader(str(tmp_path / name)) is None, name
    assert get_reader([str(tmp_path / "grey.tif"), str(tmp_path / "photo.tif")]) is None
    assert get_model_reader(str(tmp_path / "grey.tif")) is None


def test_writer_round_trip_with_sidecar(tmp_path):
    vol = _three_phase((3, 8, 8), values=(0, 85, 170))
    codes, labels = encode_labels(vol)
    meta = {
        "name": "generated (seed 7)",
        "scale": (2.0, 0.5, 0.5),
        "metadata": {
            "gencal": {
                "phase_map": list(labels),
                "seed": 7,
                "kind": "generated",
                "model": {"sigma1": 1.0},
            }
        },
    }
    out = tmp_path / "gen.tif"
    written = write_labels(str(out), codes, meta)
    assert written == [str(out), str(sidecar_path(out))]
    assert np.array_equal(tifffile.imread(out), vol)  # original label values restored
    side = json.loads(sidecar_path(out).read_text())
    assert side["seed"] == 7 and side["model"] == {"sigma1": 1.0}
    assert side["voxel_size"] == [2.0, 0.5, 0.5]
    # and back through the reader: same codes, seed and model in metadata, same scale
    data, kw, _ = _read(out)
    assert np.array_equal(data, codes)
    assert kw["metadata"]["gencal"]["seed"] == 7
    assert kw["scale"] == pytest.approx((2.0, 0.5, 0.5))
    # never overwrites
    with pytest.raises(FileExistsError, match="never overwrites"):
        write_labels(str(out), codes, meta)


def test_writer_refuses_unpainted_voxels(tmp_path):
    codes = np.array([[1, 2], [0, 3]], np.uint8)
    meta = {"metadata": {"gencal": {"phase_map": [0, 1, 2]}}, "scale": (1, 1)}
    with pytest.raises(ValueError, match="unpainted"):
        write_labels(str(tmp_path / "x.tif"), codes, meta)
    assert not (tmp_path / "x.tif").exists()


def test_samples_load():
    assert set(sample_names()) == {"sofc_2d", "cathode_3d"}
    s2 = load_sample("sofc_2d")
    assert s2.data.shape == (256, 256) and s2.phase_map.labels == (0, 1, 2)
    s3 = load_sample("cathode_3d")
    assert s3.data.shape == (128, 128, 128) and s3.phase_map.labels == (0, 85, 170)
    for fn, nd in ((sample_2d, 2), (sample_3d, 3)):
        ((data, kw, kind),) = fn()
        assert kind == "labels" and data.ndim == nd and set(np.unique(data)) == {1, 2, 3}
    with pytest.raises(ValueError, match="choose one of"):
        load_sample("nope")


def test_real_sofc_image_opens():
    data, kw, _ = _read(shared_data("SOFC_hr_input.tif"))
    assert data.shape == (1024, 1024)
    assert kw["metadata"]["gencal"]["phase_map"] == [0, 1, 2]


def test_unique_name():
    assert unique_name(["a"], "b") == "b"
    assert unique_name(["a", "a [2]"], "a") == "a [3]"


def test_model_file_opens_as_generator_preset(tmp_path, monkeypatch):
    from napari_gencal import _reader
    from napari_gencal._widgets._session import session
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import PhaseMap

    monkeypatch.setattr(_reader, "PREVIEW_SIZE", 24)
    session.clear()
    model = ExcursionModel.default(kind="low", m=4, phase_map=PhaseMap((0, 85, 170)))
    path = tmp_path / "cathode.gencal.json"
    model.save(path)
    assert get_reader(str(path)) is None  # not a label image
    reader = get_model_reader(str(path))
    assert reader is not None
    ((data, kw, kind),) = reader(str(path))
    assert kind == "labels" and data.shape == (24, 24)
    assert kw["name"] == "cathode preview"
    assert kw["metadata"]["gencal"]["phase_map"] == [0, 85, 170]
    assert "cathode" in session and session.get("cathode").info["path"] == str(path)
    session.clear()


def test_preferences_are_declared_and_have_defaults():
    from npe2 import PluginManifest

    from napari_gencal._widgets._prefs import DEFAULTS, get_prefs

    mf = PluginManifest.from_distribution("napari-gencal")
    props = mf.contributions.configurations["defaults"].properties
    assert set(props) == {"default_device", "default_seed", "max_voxels"}
    assert props["max_voxels"].default == DEFAULTS.max_voxels
    p = get_prefs()
    assert p.default_device in ("auto", "cpu", "cuda") and p.max_voxels > 0


def test_edited_model_applies_sliders_and_family_parameters():
    from napari_gencal._widgets._generator import edited_model
    from napari_gencal.core.model import ExcursionModel

    base = ExcursionModel.default(kind="low", m=4)
    kernels = {n: dict(p) for n, p in base.kernels.items()}
    first = next(iter(kernels["X1"]))
    kernels["X1"][first] = float(kernels["X1"][first]) * 1.1
    m = edited_model(base, {"sigma1": 2.5, "a": 0.2, "anisotropy": 1.5}, kernels)
    assert (m.sigma1, m.a, m.anisotropy) == (2.5, 0.2, 1.5)
    assert m.kernels["X1"][first] == pytest.approx(kernels["X1"][first])
    assert base.sigma1 != 2.5  # the session's model is untouched
    with pytest.raises(ValueError):
        edited_model(base, {"a": 1.5}, None)
