"""Data-vs-model comparison: errors by hand, renderings, figures, report files, the CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_gencal.core.compare import (
    Comparison,
    chord_cdf_figure,
    compare,
    compare_images,
    slices_figure,
    tppf_figure,
    write_report,
)
from napari_gencal.core.io import LabelImage
from napari_gencal.core.phases import PhaseMap


def desc(vf, chord_z, tau=None, unit="voxel"):
    p = {
        "a": {"name": "A", "volume_fraction": vf, "mean_chord_length": {"z": chord_z}},
        "b": {"name": "B", "volume_fraction": 1 - vf, "mean_chord_length": {"z": 5.0}},
    }
    if tau is not None:
        p["a"]["geodesic_tortuosity"] = {"z": tau}
    return {"phases": p, "unit": unit, "voxel_size": None, "method": {}}


def test_errors_by_hand():
    c = compare(desc(0.4, 10.0, 1.2), desc(0.5, 8.0, None))
    rows = {(r["phase"], r["descriptor"], r["direction"]): r for r in c.rows}
    r = rows[("a", "volume fraction", None)]
    assert r["abs_error"] == pytest.approx(0.1) and r["rel_error"] == pytest.approx(0.25)
    r = rows[("a", "mean chord", "z")]
    assert r["abs_error"] == pytest.approx(2.0) and r["rel_error"] == pytest.approx(-0.2)
    # a descriptor only in the data (model not percolating → absent) produces no row
    assert ("a", "geodesic tortuosity", "z") not in rows
    assert len(c.rows) == 4


def test_not_percolating_row_has_no_error():
    d, m = desc(0.4, 10.0, 1.2), desc(0.4, 10.0, 1.0)
    m["phases"]["a"]["geodesic_tortuosity"]["z"] = None
    r = [r for r in compare(d, m).rows if r["descriptor"] == "geodesic tortuosity"][0]
    assert r["model"] is None and r["abs_error"] is None and r["rel_error"] is None


def test_renderings():
    c = compare(desc(0.4, 10.0), desc(0.5, 8.0))
    text = str(c)
    assert "volume fraction" in text and "25.0 %" in text
    md = c.to_markdown()
    # the verdict first, then the table: 0.4 vs 0.5 volume fraction is no fit
    assert md.startswith("**Verdict: does not fit: phase A VF +0.100")
    table = md.split("\n\n", 1)[1]
    assert table.startswith("| phase |") and table.count("\n") == len(c.rows) + 2
    assert "verdict: does not fit" in text and not c.verdict.fits
    rows = list(csv.DictReader(io.StringIO(c.to_csv())))
    assert len(rows) == len(c.rows) and float(rows[0]["data"]) == 0.4
    js = json.loads(c.to_json())
    assert js["rows"][0]["rel_error"] == pytest.approx(0.25)


def test_mismatch_refused():
    with pytest.raises(ValueError, match="lengths are in"):
        compare(desc(0.4, 10.0), desc(0.4, 10.0, unit="um"))
    other = {"phases": {"x": {"volume_fraction": 1.0}}, "unit": "voxel"}
    with pytest.raises(ValueError, match="no label in common"):
        compare(desc(0.4, 10.0), other)


def structure(shape, seed):
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    return np.digitize(f, np.quantile(f, [0.45, 0.85])).astype(np.uint8)


PM = PhaseMap((0, 1, 2))


def test_compare_volumes_and_report(tmp_path):
    d = LabelImage(structure((24, 26, 28), 0), PM)
    m = LabelImage(structure((24, 26, 28), 1), PM)
    c = compare_images(d, m)
    assert {"geodesic tortuosity", "constrictivity", "S_V"} <= {r["descriptor"] for r in c.rows}
    # the same volume on both sides: every error is zero
    same = compare_images(d, d, include=("volume_fraction", "mean_chord_length"), tppf=False)
    assert all(r["abs_error"] == 0 for r in same.rows if r["abs_error"] is not None)
    figs = c.figures()
    assert set(figs) == {"chord_length_cdf", "tppf", "slices"}
    out = write_report(c, tmp_path / "rep" / "report.md")
    names = {p.name for p in out.parent.iterdir()}
    assert names == {
        "report.md",
        "report.csv",
        "report_descriptors.json",
        "report_chord_length_cdf.png",
        "report_tppf.png",
        "report_slices.png",
    }
    assert "![tppf](report_tppf.png)" in out.read_text()
    with pytest.raises(FileExistsError):
        write_report(c, out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_2d_data_vs_volume_sections_and_brief_call_form(tmp_path):
    d = LabelImage(structure((1, 48, 48), 2)[0], PM)
    vol = structure((6, 48, 48), 3)
    c = compare_images(d, vol, tppf=False)
    # the model is described as its z-sections: 2D descriptors only, directions y and x
    assert {r["direction"] for r in c.rows} == {None, "y", "x"}
    out = write_report(tmp_path / "r2", d, vol, tppf=False)
    assert out.name == "report.md" and out.exists()


def test_figures_take_precomputed_curves():
    r = np.arange(5)
    cur = np.random.default_rng(0).random((2, 2, 5))
    assert tppf_figure(r, cur, cur * 0.9, ["A", "B"]).axes
    x = np.arange(1, 6)
    p = np.full(5, 0.2)
    f = chord_cdf_figure({("0", "z"): (x, p)}, {("0", "z"): (x, p[::-1])}, {"0": "A"})
    assert len(f.axes) == 1
    assert len(slices_figure(np.zeros((4, 4)), np.ones((4, 4))).axes) == 2
    assert isinstance(compare(desc(0.4, 1.0), desc(0.4, 1.0)), Comparison)


def test_model_is_generated():
    model_mod = pytest.importorskip("napari_gencal.core.model")
    model = model_mod.ExcursionModel.default(m=4, fractions=(0.4, 0.4, 0.2), phase_map=PM)
    d = LabelImage(structure((1, 40, 40), 4)[0], PM)
    c = compare_images(d, model, n=2, seed=1, tppf=False, include=("volume_fraction",))
    assert any("planar sections" in w for w in c.warnings)
    assert len(c.rows) == 3


def test_cli_compare(tmp_path, capsys):
    import tifffile

    from napari_gencal.cli import main

    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    tifffile.imwrite(a, structure((16, 20, 20), 5))
    tifffile.imwrite(b, structure((16, 20, 20), 6))
    rep = tmp_path / "out" / "report.md"
    assert (
        main(
            [
                "compare",
                str(a),
                str(b),
                "--include",
                "volume_fraction,mean_chord_length",
                "--report",
                str(rep),
                "--csv",
                str(tmp_path / "t.csv"),
            ]
        )
        == 0
    )
    assert "mean chord" in capsys.readouterr().out
    assert rep.exists() and (tmp_path / "t.csv").exists()
    assert main(["compare", str(a), str(b), "--report", str(rep)]) == 2  # no overwrite


def test_cli_compare_with_model_file(tmp_path, capsys):
    import tifffile

    from napari_gencal.cli import main

    model_mod = pytest.importorskip("napari_gencal.core.model")
    model = model_mod.ExcursionModel.default(m=4, fractions=(0.4, 0.4, 0.2), phase_map=PM)
    mpath = tmp_path / "m.gencal.json"
    model.save(mpath)
    a = tmp_path / "a.tif"
    tifffile.imwrite(a, structure((1, 40, 40), 7)[0])
    assert main(["compare", str(a), str(mpath), "--n", "2", "--include", "volume_fraction"]) == 0
    out = capsys.readouterr().out
    assert "volume fraction" in out and "planar sections" in out
