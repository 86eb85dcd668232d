"""Time the GUI workflow: open the 1024² SOFC image → calibrate (widget defaults) → 128³ volume.

Drives the real widgets in a shown napari viewer, the way a user clicks through them, and records
when the progress bar in the activity dock moved. Run under a display, e.g.::

    xvfb-run -a .venv/bin/python benchmarks/bench_gui_workflow.py [--minutes 5] [--shape 128]

Not a test (no ``test_`` prefix): it takes minutes. Prints one JSON line with the timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data" / "SOFC_hr_input.tif").resolve()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--image", default=str(DATA))
    ap.add_argument("--minutes", type=float, default=None, help="budget (default: widget's)")
    ap.add_argument("--shape", default="128", help="edge, or z,y,x of the generated volume")
    ap.add_argument("--screenshot", default=None, help="save a window screenshot at the end")
    ap.add_argument("--save-model", default=None, help="write the calibrated model here")
    ap.add_argument("--model", default=None, help="skip calibration: load this model file")
    ap.add_argument("--compare", action="store_true", help="run the Compare widget at the end")
    args = ap.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_gencal._widgets import CalibrationWidget, GeneratorWidget
    from napari_gencal._widgets._session import session

    app = QApplication.instance() or QApplication([])
    t0 = time.perf_counter()
    viewer = napari.Viewer(show=True)
    (layer,) = viewer.open(args.image, plugin="napari-gencal")
    t_open = time.perf_counter() - t0
    cal = CalibrationWidget(viewer)
    cal_dock = viewer.window.add_dock_widget(cal, name="Calibrate")
    cal.layer_combo.set_layer(layer.name)
    if args.minutes is not None:
        cal.minutes.setValue(args.minutes)

    moves: list[float] = []

    def _watch_bar() -> None:
        pbar = cal._pbar
        if pbar is not None and not getattr(pbar, "_gencal_watched", False):
            pbar.events.value.connect(lambda e: moves.append(time.perf_counter()))
            pbar.events.total.connect(lambda e: moves.append(time.perf_counter()))
            pbar._gencal_watched = True

    t1 = time.perf_counter()
    gaps: list[float] = []
    if args.model is None:
        worker = cal.run()
        if worker is None:
            print(json.dumps({"error": cal.message.text()}))
            return 1
        moves.append(time.perf_counter())
        while cal.busy or cal.model is None:
            _watch_bar()
            app.processEvents()
            time.sleep(0.02)
            if not cal.busy and cal.model is None:
                print(json.dumps({"error": cal.message.text()}))
                return 1
        gaps = [b - a for a, b in zip(moves, moves[1:], strict=False)]
        if args.save_model:
            cal.save_model(args.save_model)
    t_cal = time.perf_counter() - t1

    gen = GeneratorWidget(viewer)
    gen_dock = viewer.window.add_dock_widget(gen, name="Generate")
    gen._timer.stop()
    if args.model is not None:
        gen.load_model(args.model)
        gen._timer.stop()
    shape = [int(v) for v in str(args.shape).split(",")]
    shape = shape * 3 if len(shape) == 1 else shape
    for s, n in zip(gen.shape, shape, strict=True):
        s.setValue(n)
    t2 = time.perf_counter()
    gen.generate()
    while gen.last_layer is None:
        app.processEvents()
        time.sleep(0.02)
        if not gen.busy and gen.last_layer is None:
            print(json.dumps({"error": gen.message.text()}))
            return 1
    t_gen = time.perf_counter() - t2
    result = {
        "image": Path(args.image).name,
        "open_s": round(t_open, 1),
        "calibration_s": round(t_cal, 1),
        "generate_s": round(t_gen, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        "stop_reason": (
            session.get(cal.model_name).info.get("stop_reason") if cal.model_name else None
        ),
        "progress_updates": len(moves),
        "longest_progress_gap_s": round(max(gaps), 1) if gaps else None,
        "volume": list(gen.last_layer.data.shape),
        "message": cal.message.text(),
    }
    if args.compare:
        from napari_gencal._widgets import CompareWidget

        cmp = CompareWidget(viewer)
        for dock in (cal_dock, gen_dock):  # leave the Compare widget alone in the dock area
            viewer.window.remove_dock_widget(dock)
        viewer.window.add_dock_widget(cmp, name="Compare")
        for ly in list(viewer.layers):
            if ly.name.endswith("preview"):
                viewer.layers.remove(ly)
        cmp.data_combo.set_layer(layer.name)
        cmp.model_combo.set_layer(gen.last_layer.name)
        t3 = time.perf_counter()
        cmp.run()
        while cmp.busy:
            app.processEvents()
            time.sleep(0.02)
        result["compare_s"] = round(time.perf_counter() - t3, 1)
        result["compare_message"] = cmp.message.text()
        cmp.grid_button.setChecked(True)
        viewer.dims.set_point(0, shape[0] // 2)
        for _ in range(10):
            app.processEvents()
            time.sleep(0.05)
        viewer.reset_view()
    if args.screenshot:
        viewer.window._qt_window.resize(1500, 900)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.05)
        viewer.reset_view()
        for _ in range(10):
            app.processEvents()
            time.sleep(0.05)
        viewer.screenshot(args.screenshot, canvas_only=False, flash=False)
    print(json.dumps(result))
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
