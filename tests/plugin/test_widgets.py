"""The dock widgets with a (hidden) napari viewer: workers complete, cancel, and show errors.

Sizes are tiny so the whole file runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_gencal._widgets._layers import labels_layer_tuple
from napari_gencal._widgets._session import session
from tests.plugin.conftest import needs_gl

TIMEOUT = 120_000  # ms; generous for a loaded 2-core CI machine, never a timing assertion


@pytest.fixture(autouse=True)
def _fresh_session(monkeypatch):
    from napari_gencal._widgets import _calibration_job

    monkeypatch.setattr(_calibration_job, "PREVIEW_MIN", 32)  # tiny previews keep the tests fast
    session.clear()
    yield
    session.clear()


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _add_three_phase(viewer, shape=(64, 64), name="data", seed=0, values=(0, 85, 170)):
    # smooth-ish blobs (not white noise) so statistics are meaningful but tiny
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), 2.0)
    q = np.quantile(f, [0.35, 0.7])
    labels = np.asarray(values, np.uint8)[np.digitize(f, q)]
    data, kw, _ = labels_layer_tuple(labels, name, kind="data")
    return viewer.add_labels(data, **kw)


def _wait_done(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT)


def _tiny_calibration(w, algorithm=1, epochs=2):
    w.algorithm.setCurrentIndex(w.algorithm.findData(algorithm))
    w.epochs.setValue(epochs)
    w.minutes.setValue(0)
    w.window.setCurrentIndex(w.window.findData(32))
    w.batch.setValue(1)
    w.steps_per_epoch.setValue(1)
    w.m.setValue(4)
    w.pretrain.setValue(1)
    w.preview_every.setValue(1)
    w.device.setCurrentText("cpu")
    w._quick = w._quick.replace(
        init_scale_search=False, eval_sections=1, pretrain_disc_steps=1, early_stop_start=1,
        trial_steps=20,
    )


# -- readers in a viewer ---------------------------------------------------------------------------


@needs_gl
def test_viewer_opens_labels_with_plugin_and_greyscale_with_napari(viewer, tmp_path):
    vol = np.array([0, 128, 255], np.uint8)[np.random.default_rng(0).integers(0, 3, (3, 8, 8))]
    tifffile.imwrite(tmp_path / "seg.tif", vol, photometric="minisblack")
    tifffile.imwrite(tmp_path / "grey.tif", np.random.default_rng(1).random((8, 8), np.float32))
    (seg,) = viewer.open(tmp_path / "seg.tif", plugin="napari-gencal")
    assert seg._type_string == "labels"
    assert seg.metadata["gencal"]["phase_map"] == [0, 128, 255]
    (grey,) = viewer.open(tmp_path / "grey.tif")
    assert grey._type_string == "image"


def test_sample_data_opens(viewer):
    (layer,) = viewer.open_sample("napari-gencal", "sample_3d")
    assert layer.data.shape == (128, 128, 128)
    assert layer.metadata["gencal"]["phase_map"] == [0, 85, 170]


# -- TPPF ------------------------------------------------------------------------------------------


def test_tppf_widget_computes_overlays_and_exports(viewer, qtbot, tmp_path):
    tppf = pytest.importorskip("napari_gencal.core.tppf")
    if not hasattr(tppf, "tppf_of_labels"):
        pytest.skip("core.tppf.tppf_of_labels has not landed yet")
    from napari_gencal._widgets import TPPFWidget

    _add_three_phase(viewer, (48, 48), "a")
    _add_three_phase(viewer, (48, 48), "b", seed=1)
    w = TPPFWidget(viewer)
    w.layers.set_checked(["a", "b"])
    w.r_max.setValue(8)
    assert w.run() is not None
    _wait_done(qtbot, w)
    assert set(w.results) == {"a", "b"}, w.message.text()
    assert len(w.canvas.ax.lines) >= 12  # 6 pair curves per layer
    written = w.export_csv(str(tmp_path / "t.csv"))
    assert len(written) == 2 and all(open(p).read() for p in written)


def test_tppf_widget_3d_volume_and_slices(viewer, qtbot):
    from napari_gencal._widgets import TPPFWidget

    _add_three_phase(viewer, (16, 20, 20), "vol")
    w = TPPFWidget(viewer)
    w.r_max.setValue(4)
    for axis in ("3D", "z"):
        w.axis.setCurrentText(axis)
        assert w.run() is not None
        _wait_done(qtbot, w)
        res, (r, curves, names) = w.results["vol"]
        assert curves.shape == (3, 3, 5) and len(names) == 3


def test_no_layers_gives_a_message(viewer):
    from napari_gencal._widgets import CalibrationWidget, CompareWidget, TPPFWidget

    for cls in (TPPFWidget, CalibrationWidget, CompareWidget):
        w = cls(viewer)
        assert w.run() is None
        assert w.message.text(), cls.__name__


@needs_gl
def test_image_layer_conversion_offered_or_refused(viewer):
    from napari_gencal._widgets import CalibrationWidget

    few = np.array([0, 1, 2], np.uint8)[np.random.default_rng(0).integers(0, 3, (40, 40))]
    viewer.add_image(few, name="segmented as image")
    w = CalibrationWidget(viewer)
    w.layer_combo.set_layer("segmented as image")
    assert not w.convert_button.isHidden()
    assert w.run() is None and "Convert" in w.message.text()
    w._convert()
    assert "segmented as image labels" in viewer.layers
    assert viewer.layers["segmented as image labels"].metadata["gencal"]["phase_map"] == [0, 1, 2]

    viewer.add_image(np.random.default_rng(0).random((40, 40)), name="grey")
    w.layer_combo.set_layer("grey")
    w._convert()
    assert "greyscale" in w.message.text()
    assert "grey labels" not in viewer.layers


# -- calibration -----------------------------------------------------------------------------------


def test_calibration_runs_to_a_model(viewer, qtbot, tmp_path):
    from napari_gencal._widgets import CalibrationWidget

    _add_three_phase(viewer, (64, 64), "sofc")
    w = CalibrationWidget(viewer)
    _tiny_calibration(w, algorithm=1, epochs=2)
    worker = w.run()
    assert worker is not None
    assert w.run_button.text() == "Cancel"
    assert w.run() is None  # a second run is refused while one runs
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.run_button.text() == "Run", timeout=TIMEOUT)
    assert w.model is not None and w.model_name in session
    # every finished run is checked against the data, and the widget says how it went
    assert w.model.metadata["verdict"]["line"].startswith(("fits", "does not fit"))
    assert not w.verdict_label.isHidden() and w.verdict_label.text()[2:].startswith(
        w.model.metadata["verdict"]["line"]
    )
    assert w.preview_layer is not None and w.preview_layer.name == "calibration preview"
    assert w.preview_layer.metadata["gencal"]["phase_map"] == [0, 85, 170]
    assert any(w._losses.values())
    out = w.save_model(str(tmp_path / "m.gencal.json"))
    assert out and (tmp_path / "m.gencal.json").is_file()
    assert w.save_model(str(tmp_path / "m.gencal.json")) is None  # never overwrites silently
    assert "exists" in w.message.text()
    # Improve continues from the last model with its verdict's remedy; the better one is kept
    first = w.model
    assert w.improve_button.isEnabled() and w.improve() is not None
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.run_button.text() == "Run", timeout=TIMEOUT)
    rec = w.model.metadata["continued"]
    assert rec["kind"] in ("longer", "other_order", "plurigaussian", "connectivity")
    if "previous" in rec["kept"]:  # the continued run did not improve: the first model stays
        assert rec["badness_new"] > rec["badness_previous"]
        assert w.model.kernels == first.kernels and w.model.lambda1 == first.lambda1
    else:
        assert rec["badness_new"] <= rec["badness_previous"]


def test_calibration_on_a_3d_stack_fits_b(viewer, qtbot):
    from napari_gencal._widgets import CalibrationWidget

    _add_three_phase(viewer, (12, 40, 40), "stack")
    w = CalibrationWidget(viewer)
    _tiny_calibration(w, algorithm=1, epochs=1)
    w.axis.setCurrentText("z")
    w.fit_b.setChecked(True)
    assert w.run() is not None
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.run_button.text() == "Run", timeout=TIMEOUT)
    assert w.model is not None, w.message.text()
    assert w.model.anisotropy > 0


def test_calibration_job_refines_b_like_the_cli(monkeypatch):
    # The widget's worker must do what the CLI and the API do after a run on a z-stack: refine b
    # with the calibrated model. A spy stands in for the (slow) refinement.
    import napari_gencal.core.calibrate.anisotropy as aniso
    from napari_gencal._widgets._calibration import calibration_job
    from napari_gencal.core.calibrate import CalibrationConfig

    calls = []

    def spy(volume, model, *, b_start=None, seed=0, device="cpu", tolerance=0.03):
        calls.append(seed)
        return 1.2345, {}, {"per_field": False}

    monkeypatch.setattr(aniso, "fit_field_anisotropy", spy)
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal((34, 34, 34)), 2.0)
    stack = np.digitize(f, np.quantile(f, [0.35, 0.7])).astype(np.uint8)
    cfg = CalibrationConfig.preset("quick").replace(
        algorithm=1, max_epochs=1, window=32, batch=1, steps_per_epoch=1, m=4,
        pretrain_model_steps=1, pretrain_disc_steps=1, init_scale_search=False,
        eval_sections=1, early_stop_start=1, device="cpu", seed=7, time_limit=None,
        trial_steps=20,
    )  # fmt: skip
    job = calibration_job(stack, "0,1,2", "z", True, cfg, 1, {})
    texts = []
    try:
        while True:
            rec = next(job)
            texts.append(rec.get("text", ""))
    except StopIteration as stop:
        result = stop.value
    assert calls == [7] and any("anisotropy" in t for t in texts)
    assert result["model"].anisotropy == 1.2345
    assert result["model"].metadata["anisotropy"]["model_refined"] == 1.2345
    # x-sections (axis "x"): b along x, the model stretched there
    calls.clear()
    job = calibration_job(stack, "0,1,2", "x", True, cfg, 1, {})
    try:
        while True:
            next(job)
    except StopIteration as stop:
        assert stop.value["model"].anisotropy_axis == 2
    assert calls == [7]
    # b not asked for: no refinement
    calls.clear()
    for _ in calibration_job(stack, "0,1,2", "z", False, cfg, 1, {}):
        pass
    assert calls == []


def test_calibration_job_shows_the_phase_order_it_chose(viewer):
    # What the pipeline chose (here: the phase order) reaches the user in napari, not stderr.
    from napari_gencal._widgets import CalibrationWidget
    from napari_gencal._widgets._calibration import calibration_job
    from napari_gencal.core.calibrate import CalibrationConfig

    stripes = np.tile(np.repeat([0, 2, 1, 2] * 4, 4), (64, 1)).astype(np.uint8)
    cfg = CalibrationConfig.preset("quick").replace(
        algorithm=1, max_epochs=1, window=32, batch=1, steps_per_epoch=1, m=3, r_max=5,
        pretrain_model_steps=1, pretrain_disc_steps=1, init_scale_search=False,
        eval_sections=1, early_stop_start=1, device="cpu", time_limit=None,
    )  # fmt: skip
    recs = list(calibration_job(stripes, "0,1,2", "z", False, cfg, 1, {}))
    notes = [r["text"] for r in recs if r.get("kind") == "note" and "phase order" in r["text"]]
    assert len(notes) == 1 and ", 2, " in notes[0].split(" as the model")[0]
    w = CalibrationWidget(viewer)
    w._on_yield({"kind": "note", "text": notes[0]})
    assert "phase order" in w.message.text()


def test_calibration_cancel_keeps_best_model(viewer, qtbot):
    from napari_gencal._widgets import CalibrationWidget

    _add_three_phase(viewer, (64, 64), "sofc")
    w = CalibrationWidget(viewer)
    _tiny_calibration(w, algorithm=1, epochs=10_000)
    w.run()
    qtbot.waitUntil(lambda: "cal" in w._holder and len(w._losses) > 0, timeout=TIMEOUT)
    w.cancel()
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.model is not None, timeout=TIMEOUT)
    assert session.get(w.model_name).info["stop_reason"] == "cancelled"
    assert w.run_button.text() == "Run" and w.run_button.isEnabled()


def test_calibration_errors_are_shown_not_raised(viewer, qtbot):
    from napari_gencal._widgets import CalibrationWidget

    _add_three_phase(viewer, (16, 16), "too small")  # below the engine's 32×32 minimum
    w = CalibrationWidget(viewer)
    _tiny_calibration(w)
    w.run()
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.run_button.text() == "Run", timeout=TIMEOUT)
    assert w.message.text() and w.model is None
    # bad phase mapping: refused with a message, before any worker starts
    _add_three_phase(viewer, (64, 64), "ok")
    w.layer_combo.set_layer("ok")
    w.phases.setText("0,85,171")
    w.run()
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.run_button.text() == "Run", timeout=TIMEOUT)
    assert "171" in w.message.text()


def test_closing_the_viewer_stops_the_calibration(make_napari_viewer, qtbot):
    from napari_gencal._widgets import CalibrationWidget

    viewer = make_napari_viewer()
    _add_three_phase(viewer, (64, 64), "sofc")
    w = CalibrationWidget(viewer)
    viewer.window.add_dock_widget(w)
    _tiny_calibration(w, algorithm=1, epochs=10_000)
    worker = w.run()
    qtbot.waitUntil(lambda: "cal" in w._holder, timeout=TIMEOUT)
    done = []
    worker.finished.connect(lambda: done.append(True))
    viewer.close()
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT)


# -- generator -------------------------------------------------------------------------------------


def test_generator_never_replaces_a_layer_and_checks_size(viewer, qtbot, monkeypatch):
    from napari_gencal._widgets import GeneratorWidget
    from napari_gencal._widgets import _generator as gmod
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import PhaseMap

    model = ExcursionModel.default(kind="low", m=4, phase_map=PhaseMap((0, 85, 170)))
    session.add("tiny", model, source="test")
    user = viewer.add_labels(np.ones((4, 4), np.uint8), name="generated (seed 3)")
    w = GeneratorWidget(viewer)
    w._timer.stop()
    assert w.model_combo.currentText() == "tiny"
    for s, n in zip(w.shape, (8, 16, 16), strict=True):
        s.setValue(n)
    w.seed.setValue(3)
    w.device.setCurrentText("cpu")
    w.sliders["sigma1"].setValue(2.0)
    for expected in ("generated (seed 3) [2]", "generated (seed 3) [3]"):
        assert w.generate() is not None
        _wait_done(qtbot, w)
        qtbot.waitUntil(lambda e=expected: e in viewer.layers, timeout=TIMEOUT)
    assert viewer.layers["generated (seed 3)"] is user and user.data.shape == (4, 4)
    gen = viewer.layers["generated (seed 3) [2]"]
    assert gen.data.shape == (8, 16, 16)
    meta = gen.metadata["gencal"]
    assert meta["seed"] == 3 and meta["phase_map"] == [0, 85, 170]
    assert meta["model"]["sigma1"] == pytest.approx(2.0, rel=1e-3)
    assert np.array_equal(gen.data, viewer.layers["generated (seed 3) [3]"].data)  # same seed

    from napari_gencal._widgets._prefs import Prefs

    monkeypatch.setattr(gmod, "get_prefs", lambda: Prefs(max_voxels=1000))
    assert w.generate() is None
    assert "limit" in w.message.text()


def test_generator_preview_updates_one_layer(viewer, qtbot, monkeypatch):
    from napari_gencal._widgets import GeneratorWidget
    from napari_gencal._widgets import _generator as gmod
    from napari_gencal.core.model import ExcursionModel

    monkeypatch.setattr(gmod, "PREVIEW_SIZE", 24)
    session.add("tiny", ExcursionModel.default(kind="low", m=4), source="test")
    w = GeneratorWidget(viewer)
    w.device.setCurrentText("cpu")
    w._timer.stop()
    w.preview()
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.preview_layer is not None, timeout=TIMEOUT)
    first = w.preview_layer
    w.sliders["a"].setValue(0.9)
    w._timer.stop()
    w.preview()
    _wait_done(qtbot, w)
    assert w.preview_layer is first
    assert [ly.name for ly in viewer.layers].count("generator preview") == 1
    assert first.data.shape == (24, 24)


# -- compare ---------------------------------------------------------------------------------------


def test_compare_side_by_side_and_table(viewer, qtbot, tmp_path):
    from napari_gencal._widgets import CompareWidget

    _add_three_phase(viewer, (24, 24, 24), "data")
    gen = _add_three_phase(viewer, (24, 24, 24), "generated (seed 1)", seed=1)
    gen.metadata["gencal"]["kind"] = "generated"
    viewer.add_points(name="other")
    w = CompareWidget(viewer)
    w.data_combo.set_layer("data")
    w.model_combo.set_layer("generated (seed 1)")
    w.grid_button.setChecked(True)
    grid = viewer.canvas.grid
    assert grid.enabled and not viewer.layers["other"].visible
    w.grid_button.setChecked(False)
    assert not grid.enabled and viewer.layers["other"].visible
    _add_three_phase(viewer, (24, 24), "flat")
    w.data_combo.set_layer("flat")
    w.full_3d.setChecked(True)
    assert w.run() is None and "need 3D" in w.message.text()  # 2D layer for a 3D-only step
    w.full_3d.setChecked(False)
    w.data_combo.set_layer("data")
    assert w.run() is not None
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.result is not None or "could" in w.message.text(), timeout=TIMEOUT)
    assert w.result is not None, w.message.text()
    assert w.table.rowCount() >= 3 * 5  # V_V, S_V, 3 mean chords per phase
    assert len(w.canvas.axes[1].lines) >= 12  # 6 pair curves, data and model
    n_rows = w.table.rowCount()
    w.full_3d.setChecked(True)  # two 3D layers: tortuosity and constrictivity rows too
    w.result = None
    assert w.run() is not None
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.result is not None or "could" in w.message.text(), timeout=TIMEOUT)
    assert w.table.rowCount() > n_rows, w.message.text()
    out = w.export_report(str(tmp_path / "report" / "report.md"))
    assert out is not None, w.message.text()
    assert (tmp_path / "report" / "report.md").read_text().count("|") > 10
    assert w.export_report(out) is None and "exists" in w.message.text()


# -- a shown viewer really renders ----------------------------------------------------------------


@needs_gl
def test_generated_layer_renders_in_a_shown_viewer(make_napari_viewer, qtbot):
    from napari_gencal._widgets import GeneratorWidget
    from napari_gencal.core.model import ExcursionModel

    viewer = make_napari_viewer(show=True)
    session.add("tiny", ExcursionModel.default(kind="low", m=4), source="test")
    w = GeneratorWidget(viewer)
    w._timer.stop()
    w.device.setCurrentText("cpu")
    for s, n in zip(w.shape, (4, 48, 48), strict=True):
        s.setValue(n)
    w.generate()
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.last_layer is not None, timeout=TIMEOUT)
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    rgb = shot[..., :3].astype(int)
    coloured = (rgb.max(axis=-1) > 40).mean()  # dark theme canvas is black; phases are bright
    assert coloured > 0.2, f"only {coloured:.0%} of the canvas shows the generated layer"
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) >= 3  # at least the phase colours


# -- sweep -------------------------------------------------------------------------------------


def test_sweep_widget_runs_plots_and_opens_a_realization(viewer, qtbot):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from napari_gencal._widgets import SweepWidget
    from napari_gencal._widgets._sweep import realization_of
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import PhaseMap

    model = ExcursionModel.default(
        "high", m=3, fractions=[0.45, 0.35, 0.20], width=1.2, phase_map=PhaseMap((0, 85, 170))
    )
    session.add("sweepable", model, source="test")
    w = SweepWidget(viewer)
    w.model_combo.setCurrentText("sweepable")
    w.knob.setCurrentText("vf:0")
    w.lo.setValue(0.3)
    w.hi.setValue(0.5)
    w.points.setValue(2)
    w.realizations.setValue(1)
    w.size.setValue(20)
    w.transport.setChecked(False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cl, Client(cl) as c:  # fmt: skip
        w.client = c
        assert w.run() is not None
        _wait_done(qtbot, w)
        qtbot.waitUntil(lambda: w.table is not None, timeout=TIMEOUT)
    assert len(w.table) == 2 and (w.table["error"] == "").all()
    assert w.y_combo.count() > 0 and w.canvas.ax.get_xlabel() == "vf:0"
    layer = w.open_realization(1)
    point, _, seed, value = w._picks[1]
    codes = np.asarray(layer.data)
    labels = np.asarray(layer.metadata["gencal"]["phase_map"])[codes - 1]
    np.testing.assert_array_equal(labels, realization_of(model, "vf:0", value, seed, 20))
    # bad input: a range outside the knob's domain is refused with a message, nothing starts
    w.hi.setValue(1.5)
    assert w.run() is None and "outside its domain" in w.message.text()


def test_fuse_widget_adds_a_fused_layer_on_the_scan(viewer, qtbot):
    from napari_gencal._widgets import FuseWidget
    from napari_gencal._widgets._layers import labels_layer_tuple
    from napari_gencal.core.fuse import downsample_majority
    from napari_gencal.core.generate import generate
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import PhaseMap

    model = ExcursionModel.default(
        "high", m=6, fractions=[0.45, 0.35, 0.20], width=2.0, phase_map=PhaseMap((0, 85, 170))
    )
    session.add("fusable", model, source="test")
    truth = generate(model, (24, 24, 24), seed=4)
    idx = np.searchsorted([0, 85, 170], truth)
    scan = np.array([0, 85, 170])[downsample_majority(idx, (4, 4, 4), 3)]
    data, kw, _ = labels_layer_tuple(scan, "scan", labels=[0, 85, 170], voxel_size=(4.0,) * 3)
    viewer.add_labels(data, **kw)
    w = FuseWidget(viewer)
    w.model_combo.setCurrentText("fusable")
    w.scan_combo.set_layer("scan")
    w.steps.setValue(8)
    w.draws.setValue(2)
    assert w.run() is not None
    _wait_done(qtbot, w)
    qtbot.waitUntil(lambda: w.result is not None, timeout=TIMEOUT)
    layer = w.fused_layer
    assert layer.data.shape == (24, 24, 24)
    np.testing.assert_allclose(layer.scale, (1.0, 1.0, 1.0))  # scan voxel 4 / scale 4
    assert w.result.probability.shape == (3, 24, 24, 24)
    assert "agreement with the scan" in w.message.text()
    # bad input: a 2D layer is refused with a message, nothing starts
    viewer.add_labels(np.zeros((8, 8), dtype=np.uint8), name="flat")
    w.scan_combo.set_layer("flat")
    assert w.run() is None
