"""describe(): stable keys, agreement with the single descriptors, units, bad input; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_gencal.core.descriptors import (
    DescriptorError,
    constrictivity,
    describe,
    geodesic_tortuosity,
    mean_chord_length,
    specific_surface_area,
    volume_fraction,
)
from napari_gencal.core.io import LabelImage
from napari_gencal.core.phases import PhaseMap, to_labels


def three_phase(shape=(28, 30, 32), seed=0):
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    q1, q2 = np.quantile(f, [0.4, 0.8])
    return np.digitize(f, [q1, q2]).astype(np.uint8)


@pytest.fixture(scope="module")
def vol():
    return three_phase()


@pytest.fixture(scope="module")
def desc(vol):
    pm = PhaseMap((0, 85, 170), ("pore", "NMC", "binder"))
    img = LabelImage(to_labels(vol, pm), pm, voxel_size=(0.5, 0.5, 0.5), unit="um")
    return describe(img)


def test_stable_keys_and_json(desc):
    assert set(desc) >= {"phases", "voxel_size", "unit", "method", "dimension", "directions"}
    assert list(desc["phases"]) == ["0", "85", "170"]
    p = desc["phases"]["85"]
    assert p["name"] == "NMC"
    for key in (
        "volume_fraction",
        "specific_surface_area",
        "mean_chord_length",
        "geodesic_tortuosity",
        "constrictivity",
        "percolates",
    ):
        assert key in p
    assert set(p["mean_chord_length"]) == {"z", "y", "x"}
    assert set(p["geodesic_tortuosity"]) == {"z", "y", "x"}
    assert desc["unit"] == "um" and desc["voxel_size"] == 0.5
    json.dumps(desc, allow_nan=False)  # no NaN/inf leaks into the JSON


def test_values_equal_the_single_functions(desc, vol):
    h = 0.5
    vf = volume_fraction(vol, 3)
    sv = specific_surface_area(vol, 3)
    for i, lab in enumerate(("0", "85", "170")):
        p = desc["phases"][lab]
        assert p["volume_fraction"] == pytest.approx(vf[i])
        assert p["specific_surface_area"] == pytest.approx(sv[i] / h)
        assert p["mean_chord_length"]["x"] == pytest.approx(h * mean_chord_length(vol, i, "x"))
        t = geodesic_tortuosity(vol, i, "z")
        assert p["percolates"]["z"] == t.percolates
        if t.percolates:
            assert p["geodesic_tortuosity"]["z"] == pytest.approx(t.mean)
        else:
            assert p["geodesic_tortuosity"]["z"] is None
        assert p["constrictivity"]["y"] == pytest.approx(constrictivity(vol, i, "y").beta)


def test_two_phase_and_2d_sections():
    img2 = (three_phase((1, 64, 64), seed=3)[0] > 0).astype(np.uint8)
    d = describe(img2)
    assert d["dimension"] == 2 and d["directions"] == ["y", "x"]
    assert set(d["phases"]) == {"0", "1"}
    stack = three_phase((6, 40, 40), seed=5)
    ds = describe(stack, sections=True)
    assert ds["dimension"] == 2 and ds["sections"]
    assert ds["phases"]["1"]["specific_surface_area"] == pytest.approx(
        specific_surface_area(stack, 3, sections=True)[1]
    )


def test_bad_input_messages():
    img2 = three_phase((1, 40, 40))[0]
    with pytest.raises(DescriptorError, match="need a 3D volume"):
        describe(img2, include=("volume_fraction", "geodesic_tortuosity"))
    vol = three_phase((10, 12, 14))
    with pytest.raises(DescriptorError, match="positive"):
        describe(vol, voxel_size=(1.0, 0.0, 0.5))
    # non-cubic voxels (issue 18): measured in physical units, path estimators skipped, said so
    d = describe(vol, voxel_size=(1.0, 0.5, 0.5))
    assert d["voxel_size"] == [1.0, 0.5, 0.5] and any("cubic" in w for w in d["warnings"])
    with pytest.raises(DescriptorError, match="absent"):
        describe(vol, PhaseMap((0, 1, 2, 3)), include=("volume_fraction",))
    d = describe(
        vol,
        PhaseMap((0, 1, 2, 3)),
        include=("volume_fraction", "mean_chord_length"),
        allow_absent=True,
    )
    assert d["phases"]["3"]["volume_fraction"] == 0 and d["warnings"]
    with pytest.raises(DescriptorError, match="unknown descriptor"):
        describe(vol, include=("porosity",))
    with pytest.raises(DescriptorError, match="not axes"):
        describe(img2, directions=("q",))


def test_cli_describe(tmp_path, capsys):
    import tifffile

    from napari_gencal.cli import main

    vol = three_phase((20, 22, 24)) * 85
    src = tmp_path / "v.tif"
    tifffile.imwrite(src, vol.astype(np.uint8))
    out = tmp_path / "d.json"
    assert main(["describe", str(src), "--voxel-size", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "volume_fraction" in text and "geodesic_tortuosity" in text
    d = json.loads(out.read_text())
    assert set(d["phases"]) == {"0", "85", "170"} and d["voxel_size"] == 2.0
    # an existing JSON is not replaced without --overwrite (exit status 2, one-line error)
    assert main(["describe", str(src), "--json", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (
        main(
            [
                "describe",
                str(src),
                "--json",
                str(out),
                "--overwrite",
                "--quiet",
                "--include",
                "volume_fraction",
            ]
        )
        == 0
    )
    assert list(json.loads(out.read_text())["phases"]["0"]) == ["name", "index", "volume_fraction"]
