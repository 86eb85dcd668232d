"""Physical units: reading voxel sizes, converting units, twins at a requested spacing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_gencal import api
from napari_gencal.core.io import read_labels, write_tiff
from napari_gencal.core.model import ExcursionModel
from napari_gencal.core.units import (
    UnitError,
    convert,
    length_unit_label,
    model_at_voxel_size,
    normalize_unit,
    parse_voxel_size,
)


@pytest.mark.parametrize(
    "text, sizes, unit",
    [
        ("0.1,0.02,0.02", (0.1, 0.02, 0.02), None),
        ("0.4um", (0.4, 0.4, 0.4), "um"),
        ("100 nm", (100.0, 100.0, 100.0), "nm"),
        ("0.1um,0.02um,0.02um", (0.1, 0.02, 0.02), "um"),
        ("2e-3 mm", (0.002,) * 3, "mm"),
        ("0.5 µm", (0.5,) * 3, "um"),
        (0.25, (0.25,) * 3, None),
        ((1, 2, 3), (1.0, 2.0, 3.0), None),
    ],
)
def test_parse_voxel_size(text, sizes, unit):
    vs, u = parse_voxel_size(text, 3)
    assert vs == pytest.approx(sizes) and u == unit


@pytest.mark.parametrize(
    "text, match",
    [
        ("0,1,1", "positive"),
        ("-0.1", "positive"),
        ("nan", "could not read"),
        ("0.1um,2nm,2nm", "mixes units"),
        ("1,2", "2 values for a 3D image"),
        ("abc", "could not read"),
        ("3 furlongs", "unknown length unit"),
    ],
)
def test_bad_voxel_sizes_say_what_to_write(text, match):
    with pytest.raises(UnitError, match=match):
        parse_voxel_size(text, 3)


def test_units_convert_and_label():
    assert normalize_unit("micron") == "um" and normalize_unit("pixel") is None
    assert convert(0.4, "um", "m") == pytest.approx(4e-7)
    assert convert((1.0, 2.0), "mm", "um") == pytest.approx((1000.0, 2000.0))
    with pytest.raises(UnitError, match="no physical length"):
        convert(1.0, None, "um")
    assert length_unit_label("um", (0.4,) * 3) == "µm"
    assert length_unit_label("um", None) == "voxel"


def test_read_labels_takes_cli_voxel_sizes(tmp_path):
    a = np.zeros((4, 5, 6), np.uint8)
    a[1:3] = 1
    p = write_tiff(tmp_path / "a.tif", a, voxel_size=(0.2, 0.1, 0.1), unit="micron")
    img = read_labels(p)
    assert img.voxel_size == pytest.approx((0.2, 0.1, 0.1)) and img.unit == "um"
    img = read_labels(p, voxel_size="0.1,0.02,0.02", unit="nm")
    assert img.voxel_size == pytest.approx((0.1, 0.02, 0.02)) and img.unit == "nm"
    img = api._as_label_image(a, voxel_size="0.4um")
    assert img.voxel_size == pytest.approx((0.4,) * 3) and img.unit == "um"


@pytest.fixture(scope="module")
def model():
    return ExcursionModel.default(m=6, fractions=(0.4, 0.45, 0.15), width=2.5).copy(
        voxel_size=(0.4, 0.4, 0.4), unit="um"
    )


def test_model_at_voxel_size_scales_lengths_exactly(model):
    assert model_at_voxel_size(model, 0.4) is model  # same spacing: the identical model
    half = model_at_voxel_size(model, 0.2)
    assert half.length_scale == pytest.approx(2 * model.length_scale)
    assert half.voxel_size == pytest.approx((0.2,) * 3) and half.unit == "um"
    # the same spacing in nanometres
    assert model_at_voxel_size(model, 200, "nm").length_scale == pytest.approx(half.length_scale)
    # FIB-SEM-like voxels: z twice as coarse → the z stretch b halves, x/y keep the scale
    fib = model_at_voxel_size(model, (0.8, 0.4, 0.4))
    assert fib.length_scale == pytest.approx(model.length_scale)
    assert fib.anisotropy == pytest.approx(model.anisotropy / 2)
    with pytest.raises(UnitError, match="differently"):
        model_at_voxel_size(model, (0.4, 0.2, 0.4))
    with pytest.raises(UnitError, match="no voxel size"):
        model_at_voxel_size(model.copy(voxel_size=None), 0.2)
    with pytest.raises(UnitError, match="positive"):
        model_at_voxel_size(model, (0.4, 0, 0.4))


def _mean_chord(ind: np.ndarray, axis: int) -> float:
    x = np.moveaxis(ind, axis, -1).astype(np.int8)
    entries = np.sum((x[..., :-1] == 0) & (x[..., 1:] == 1))
    return float(x.mean() / (entries / x[..., :-1].size))


def test_twin_at_half_spacing_has_the_same_physical_chords(model):
    """Independent truth: physical mean chords (voxels × spacing) of twins generated at 0.4 µm
    and 0.2 µm agree (and the half-spacing twin's chords in voxels are twice as long)."""
    coarse = [api.generate(model, (32, 32, 32), seed=s, device="cpu") for s in range(2)]
    fine = [api.generate(model, (64, 64, 64), seed=s, device="cpu", voxel_size="0.2um")
            for s in range(2)]  # fmt: skip
    labels = model.phase_map.labels if model.phase_map is not None else (1, 2, 3)
    for lab in labels[:2]:
        c = np.mean([_mean_chord(v == lab, ax) for v in coarse for ax in range(3)]) * 0.4
        f = np.mean([_mean_chord(v == lab, ax) for v in fine for ax in range(3)]) * 0.2
        assert math.isclose(c, f, rel_tol=0.15), (lab, c, f)
    # exactness: the API's twin is the rescaled model's realization, voxel for voxel
    again = api.generate(model_at_voxel_size(model, 0.2), (64, 64, 64), seed=0, device="cpu")
    np.testing.assert_array_equal(fine[0], again)


def test_sweep_rows_carry_the_models_unit(model):
    from napari_gencal.core.sweep.run import evaluate

    measures = ("volume_fraction", "specific_surface_area", "mean_chord_length")
    d = model.to_dict()
    row = evaluate(d, {}, 0, (24, 24, 24), measures)
    bare = evaluate({**d, "voxel_size": None, "unit": None}, {}, 0, (24, 24, 24), measures)
    assert row["length_unit"] == "um" and bare["length_unit"] == "voxel"
    key = next(k for k in row if k.startswith("mean_chord_length["))
    assert row[key] == pytest.approx(bare[key] * 0.4)  # the same realization, in µm


def test_voxel_size_reaches_the_calibration_entry_point(monkeypatch):
    """api.calibration hands the LabelImage with the user's voxel size to prepare_data."""
    import napari_gencal.core.calibrate as cal

    seen = {}

    def fake_prepare(img, phases, axis):
        seen["vs"], seen["unit"] = img.voxel_size, img.unit
        raise RuntimeError("stop here")

    monkeypatch.setattr(cal, "prepare_data", fake_prepare)
    a = np.zeros((6, 8, 8), np.uint8)
    a[:, :4] = 1
    with pytest.raises(RuntimeError, match="stop here"):
        api.calibration(a, voxel_size="0.04,0.02,0.02um")
    assert seen == {"vs": (0.04, 0.02, 0.02), "unit": "um"}


def test_cli_generate_at_a_voxel_size_writes_it(tmp_path, model):
    from napari_gencal.cli import main

    path = tmp_path / "m.gencal.json"
    model.save(path)
    out = tmp_path / "twin.tif"
    assert main(["generate", str(path), "--shape", "12", "12", "12", "--voxel-size", "200nm",
                 "--device", "cpu", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    img = read_labels(out)
    assert img.voxel_size == pytest.approx((0.2,) * 3) and img.unit == "um"
    expect = api.generate(model, (12, 12, 12), device="cpu", voxel_size="0.2um")
    np.testing.assert_array_equal(img.data, expect)
    assert main(["generate", str(path), "--shape", "4", "4", "4", "--voxel-size", "0,1,1",
                 "--out", str(tmp_path / "bad.tif")]) == 2  # fmt: skip
