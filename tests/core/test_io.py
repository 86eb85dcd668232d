"""Label I/O: reading what scientists have, writing without losing anything."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from napari_gencal.core.io import atomic_write, read_labels, write_tiff
from napari_gencal.core.phases import PhaseError
from tests.conftest import shared_data


def test_tiff_round_trip_keeps_labels_and_voxel_size(tmp_path):
    vol = np.random.default_rng(0).choice(np.array([0, 85, 170], np.uint8), size=(4, 16, 16))
    p = write_tiff(tmp_path / "v.tif", vol, voxel_size=(0.5, 0.25, 0.25))
    img = read_labels(p)
    assert np.array_equal(img.data, vol)
    assert img.phase_map.labels == (0, 85, 170)
    assert img.voxel_size == pytest.approx((0.5, 0.25, 0.25))


def test_written_files_are_readable_like_plain_files(tmp_path):
    """Temporary files are 0600; a model or volume must not stay unreadable to colleagues."""
    umask = os.umask(0o022)
    try:
        p = atomic_write(tmp_path / "m.json", lambda t: open(t, "w").write("{}"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


def test_no_silent_overwrite_and_old_file_survives_a_failed_write(tmp_path):
    p = tmp_path / "keep.txt"
    p.write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        atomic_write(p, lambda t: open(t, "w").write("new"))

    def broken(t):
        open(t, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(p, broken, overwrite=True)
    assert p.read_text() == "mine"
    assert [f.name for f in tmp_path.iterdir()] == ["keep.txt"]  # no temporary left behind


def test_greyscale_and_too_many_labels_are_refused_with_the_fix(tmp_path):
    grey = tmp_path / "grey.npy"
    np.save(grey, np.random.default_rng(1).random((8, 8)))
    with pytest.raises(PhaseError, match="greyscale"):
        read_labels(grey)
    many = tmp_path / "many.npy"
    np.save(many, np.arange(64, dtype=np.uint8).reshape(8, 8))
    with pytest.raises(PhaseError, match="--phases"):
        read_labels(many)
    nan = tmp_path / "nan.npy"
    a = np.zeros((8, 8))
    a[0, 0] = np.nan
    np.save(nan, a)
    with pytest.raises(PhaseError, match="NaN"):
        read_labels(nan)


def test_folder_of_slices_and_zipped_tiff(tmp_path):
    from skimage.io import imsave

    vol = np.random.default_rng(2).choice(np.array([0, 255], np.uint8), size=(3, 10, 12))
    for i, sl in enumerate(vol):
        imsave(tmp_path / f"s{i:02d}.png", sl, check_contrast=False)
    img = read_labels(tmp_path)
    assert np.array_equal(img.data, vol)
    z = read_labels(shared_data("TF-500x500x500-1x2x6-v3.tiff.zip"))
    assert z.data.shape == (500, 500, 500) and z.phase_map.labels == (0, 255)


def test_real_data_phase_maps():
    """The shared files load with the phases their README lists."""
    assert read_labels(shared_data("electrode.tiff")).phase_map.labels == (0, 85, 170)
    sofc = read_labels(shared_data("SOFC_hr_input.tif"))
    assert sofc.data.shape == (1024, 1024) and sofc.phase_map.labels == (0, 1, 2)
    comp = read_labels(shared_data("composite_resized.npy"))
    assert comp.phase_map.n_phases == 3


@pytest.mark.parametrize(
    "dtype, labels",
    [(np.uint8, (0, 85, 170)), (np.int8, (-1, 0, 5)), (np.uint16, (7, 300, 65535)),
     (np.int16, (-300, 0, 2)), (np.int32, (1, 2, 3)), (np.int64, (-5, 10, 99)), (bool, (0, 1))],
)  # fmt: skip
def test_to_indices_and_present_values_agree_with_a_loop(dtype, labels):
    from napari_gencal.core.phases import PhaseMap, present_values, to_indices

    rng = np.random.default_rng(0)
    img = np.array(labels, dtype=dtype)[rng.integers(0, len(labels), (13, 17))]
    ref = np.array([labels.index(v) for v in img.ravel().tolist()]).reshape(img.shape)
    assert np.array_equal(to_indices(img, PhaseMap(labels)), ref)
    assert present_values(img).tolist() == sorted(set(img.ravel().tolist()))
    if dtype is not bool:
        bad = img.copy()
        bad[2, 3] = 4  # in none of the label sets
        with pytest.raises(PhaseError, match=r"values \[4\] are not in the phase mapping"):
            to_indices(bad, PhaseMap(labels))
