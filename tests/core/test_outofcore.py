"""Twins larger than memory: zarr generation and chunked descriptors (core/outofcore.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.descriptors import specific_surface_area, volume_fraction
from napari_gencal.core.generate import generate
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.phases import PhaseMap, to_indices

zarr = pytest.importorskip("zarr")
PM = PhaseMap((0, 85, 170))


@pytest.fixture(scope="module")
def model() -> ExcursionModel:
    return ExcursionModel.default(
        "high", m=3, fractions=[0.45, 0.40, 0.15], width=1.3, phase_map=PM
    ).copy(anisotropy=1.4)


def test_a_zarr_twin_equals_the_in_memory_twin(model, tmp_path):
    from napari_gencal.core.outofcore import generate_to_zarr, open_zarr_twin

    shape = (20, 27, 33)
    whole = generate(model, shape, seed=9, device="cpu", chunks=None)
    p = generate_to_zarr(model, shape, tmp_path / "twin.zarr", seed=9, chunks=(8, 16, 11))
    arr, attrs = open_zarr_twin(p)
    assert arr.chunksize == (8, 16, 11)
    np.testing.assert_array_equal(arr.compute(), whole)  # voxel for voxel, chunked in parallel
    assert attrs["seed"] == 9 and attrs["phase_labels"] == [0, 85, 170]
    assert attrs["model"]["anisotropy"] == pytest.approx(1.4)
    with pytest.raises(FileExistsError, match="already exists"):
        generate_to_zarr(model, shape, p, seed=1)
    assert np.array_equal(open_zarr_twin(p)[0].compute(), whole)  # untouched


def test_chunked_fractions_and_surface_equal_the_whole_volume(model, tmp_path):
    from napari_gencal.core.outofcore import (
        generate_to_zarr,
        open_zarr_twin,
        surface_area_chunked,
        volume_fractions_chunked,
    )

    shape = (24, 30, 28)
    p = generate_to_zarr(model, shape, tmp_path / "t.zarr", seed=2, chunks=(7, 9, 10))
    arr, _ = open_zarr_twin(p)
    whole = to_indices(arr.compute(), PM)
    z = zarr.open_array(str(p), mode="r")
    np.testing.assert_allclose(volume_fractions_chunked(z, PM.labels),
                               volume_fraction(whole, 3), rtol=0, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(surface_area_chunked(z, PM.labels),
                               specific_surface_area(whole, 3), rtol=1e-12, atol=0)  # fmt: skip
    # a plain array, one chunk: the same numbers
    np.testing.assert_allclose(surface_area_chunked(arr.compute(), PM.labels),
                               specific_surface_area(whole, 3), rtol=1e-12)  # fmt: skip


def test_napari_reader_opens_a_zarr_twin_lazily(model, tmp_path):
    from napari_gencal._reader import get_reader, get_zarr_reader
    from napari_gencal.core.outofcore import generate_to_zarr

    p = generate_to_zarr(model, (16, 16, 16), tmp_path / "lazy.zarr", seed=1, chunks=8)
    reader = get_zarr_reader(str(p))
    assert reader is not None and get_reader(str(p)) is None
    (data, kwargs, kind), = reader(str(p))
    assert kind == "labels" and type(data).__name__ == "Array"  # dask: nothing read yet
    codes = np.asarray(data)
    assert set(np.unique(codes)) <= {1, 2, 3}
    labels = np.asarray(kwargs["metadata"]["gencal"]["phase_map"])[codes - 1]
    np.testing.assert_array_equal(labels, generate(model, (16, 16, 16), seed=1, device="cpu"))
    assert get_zarr_reader(str(tmp_path)) is None  # not a .zarr folder
