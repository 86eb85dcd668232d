"""Calibration widget: fit the excursion-set model to a label layer, live.

Inputs are collected here; the work is :func:`napari_gencal.core.calibrate.prepare_data` and
:class:`napari_gencal.core.calibrate.CalibrationPipeline` (the CLI's and the API's pipeline) in a
napari thread worker. The worker sends plain numbers and numpy arrays only (never tensors):
throttled progress records, a preview section of the current best model every few epochs, and the
final model with its verdict at the end. Cancel sets the engine's cancel flag, so the run ends
cleanly and the best model so far is kept (unchecked).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ._base import GencalWidget, LayerCombo, button, convert_image_layer, error_text, hbox
from ._calibration_job import calibration_job
from ._canvas import PAIR_COLORS, ThemedCanvas
from ._layers import labels_layer_tuple, layer_label_image, unique_name
from ._prefs import get_prefs
from ._session import session

__all__ = ["CalibrationWidget", "calibration_job"]

ALGORITHMS = (
    (3, "3 · combined: TPPF + adversarial (the method)"),
    (1, "1 · TPPF only (fast, rougher boundaries)"),
    (2, "2 · adversarial only (slow)"),
)
MODELS = (
    ("high", "high-parametric (free radial kernels)"),
    ("low", "low-parametric (interpretable covariance family)"),
    ("both", "high, then reduce and refine low-parametric"),
)
def _spin(lo: int, hi: int, value: int, special: str | None = None) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    if special:
        s.setSpecialValueText(special)
    return s


def _dspin(lo: float, hi: float, value: float, step: float, decimals: int = 4, special=None):
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(value)
    if special:
        s.setSpecialValueText(special)
    return s


class CalibrationWidget(GencalWidget):
    """Calibrate an excursion-set model on a Labels layer (2D image or 3D stack).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any, parent=None):
        super().__init__(napari_viewer, parent)
        from ..core.calibrate import CalibrationConfig

        self._quick = CalibrationConfig.preset("minutes")
        prefs = get_prefs()
        self.model = None  # the last result (ExcursionModel)
        self.model_name: str | None = None
        self.preview_layer = None
        self._holder: dict[str, Any] = {}
        self._pbar = None
        self._losses: dict[str, list[tuple[int, float]]] = {}
        self._data_curves: np.ndarray | None = None
        self._model_curves: np.ndarray | None = None
        self._names: list[str] = []
        self._last_draw = 0.0

        form = QFormLayout()
        self.layer_combo = LayerCombo(napari_viewer, ("Labels", "Image"))
        self.layer_combo.currentIndexChanged.connect(lambda *_: self._on_layer())
        form.addRow("Data layer", self.layer_combo)
        self.convert_button = button("Convert image to labels", self._convert)
        self.convert_button.setVisible(False)
        form.addRow(self.convert_button)
        self.axis = QComboBox()
        self.axis.addItems(["auto", "z", "y", "x"])
        self.axis.setToolTip("3D stacks: the axis normal to the 2D sections used for calibration")
        form.addRow("Slice axis (3D)", self.axis)
        self.phases = QLineEdit()
        self.phases.setPlaceholderText("automatic (sorted label values)")
        self.phases.setToolTip(
            "Label value of each phase in phase order, e.g. 0,85,170 (two or three phases)"
        )
        form.addRow("Phase labels", self.phases)
        self.model_kind = QComboBox()
        for key, text in MODELS:
            self.model_kind.addItem(text, key)
        form.addRow("Model", self.model_kind)
        self.algorithm = QComboBox()
        for key, text in ALGORITHMS:
            self.algorithm.addItem(text, key)
        form.addRow("Algorithm", self.algorithm)
        self.epochs = _spin(1, 100000, self._quick.max_epochs)
        self.minutes = _dspin(0.0, 10000.0, (self._quick.time_limit or 0) / 60, 0.5, 1, "none")
        form.addRow("Budget", hbox(self.epochs, _label("epochs or"), self.minutes, _label("min")))
        self.seed = _spin(0, 2**31 - 1, prefs.default_seed)
        form.addRow("Seed", self.seed)
        self.device = QComboBox()
        form.addRow("Device", self.device)
        self._fill_devices(prefs.default_device)
        self.fit_b = QCheckBox("fit anisotropy b along z from a 3D stack")
        self.fit_b.setChecked(True)
        form.addRow(self.fit_b)
        self.form_layout.addLayout(form)
        self.form_layout.addWidget(self._advanced())

        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self._run_or_cancel)
        self.save_button = button("Save model…", self.save_model)
        self.save_button.setEnabled(False)
        # Improve: apply the remedy the verdict names (longer run, other order, per-field b,
        # plurigaussian rule) from where the last run stopped; the better model is kept.
        self.improve_button = button("Improve", self.improve)
        self.improve_button.setEnabled(False)
        self.improve_button.setToolTip(
            "continue from the last model with the remedy its verdict names; the better of the "
            "two models is kept"
        )
        self.form_layout.addLayout(hbox(self.run_button, self.improve_button, self.save_button))
        # The verdict of the last run: does the twin reproduce the data? (issue 10: a twin that
        # does not fit is never presented as if it did)
        from qtpy.QtWidgets import QLabel

        self.verdict_label = QLabel("")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setVisible(False)
        self.form_layout.addWidget(self.verdict_label)
        self.loss_canvas = ThemedCanvas(napari_viewer, height=2.0)
        self.tppf_canvas = ThemedCanvas(napari_viewer, height=2.4)
        self.form_layout.addWidget(self.loss_canvas)
        self.form_layout.addWidget(self.tppf_canvas)
        self._on_layer()

    # -- form pieces ----------------------------------------------------------------------------
    def _advanced(self) -> QWidget:
        from superqt import QCollapsible

        q = self._quick
        box = QCollapsible("Advanced settings")
        inner = QWidget()
        f = QFormLayout(inner)
        self.window = QComboBox()
        self.window.addItem("auto", None)
        for w in (32, 64, 128, 256):
            self.window.addItem(str(w), w)
        self.window.setCurrentIndex(self.window.findData(q.window))
        f.addRow("Window w", self.window)
        self.batch = _spin(1, 256, q.batch)
        f.addRow("Batch B", self.batch)
        self.steps_per_epoch = _spin(1, 10000, q.steps_per_epoch)
        f.addRow("Steps per epoch", self.steps_per_epoch)
        self.m = _spin(0, 200, q.m or 0, "auto")
        self.m.setToolTip("auto: = r_max at the working resolution (from the data)")
        f.addRow("Kernel radius m", self.m)
        self.factor = _spin(0, 16, q.working_factor or 0, "auto")
        self.factor.setToolTip(
            "calibrate on one pixel in f×f (model length scale f); auto: from the data"
        )
        f.addRow("Working factor f", self.factor)
        self.r_max = _spin(0, 100, q.r_max or 0, "auto")
        f.addRow("TPPF r max", self.r_max)
        self.n_chi2 = _spin(1, 6, q.n_chi2)
        f.addRow("χ² degrees n", self.n_chi2)
        self.gamma = _dspin(0.0, 1e6, q.gamma or 0.0, 0.1, 3, "auto")
        f.addRow("TPPF weight γ", self.gamma)
        self.patience = _spin(0, 100000, q.patience or 0, "auto")
        f.addRow("Patience (epochs)", self.patience)
        self.pretrain = _spin(0, 100000, q.pretrain_model_steps)
        f.addRow("Pre-training steps", self.pretrain)
        self.preview_every = _spin(1, 1000, 2)
        f.addRow("Preview every (epochs)", self.preview_every)
        box.addWidget(inner)
        self.advanced_box = box
        return box

    def _fill_devices(self, preferred: str) -> None:
        from ..core.device import available_devices

        self.device.clear()
        devices = available_devices()
        self.device.addItems(devices)
        if preferred in devices:
            self.device.setCurrentText(preferred)

    def _on_layer(self) -> None:
        from napari.layers import Image

        layer = self.layer_combo.layer()
        self.convert_button.setVisible(isinstance(layer, Image))
        if layer is not None and not isinstance(layer, Image):
            info = layer.metadata.get("gencal") or {}
            pm = info.get("phase_map")
            self.phases.setPlaceholderText(
                ",".join(str(v) for v in pm) + " (from the layer)" if pm else "automatic"
            )

    def _convert(self) -> None:
        layer = self.layer_combo.layer()
        try:
            new = convert_image_layer(self.viewer, layer)
        except (ValueError, TypeError) as exc:
            self.show_error(str(exc))
            return
        self.layer_combo.set_layer(new.name)
        self.show_message(f"converted {layer.name!r} to Labels layer {new.name!r}")

    def config(self) -> Any:
        """The :class:`CalibrationConfig` described by the form."""
        minutes = self.minutes.value()
        return self._quick.replace(
            algorithm=int(self.algorithm.currentData()),
            model=str(self.model_kind.currentData()),
            max_epochs=int(self.epochs.value()),
            time_limit=minutes * 60.0 if minutes > 0 else None,
            seed=int(self.seed.value()),
            device=self.device.currentText(),
            window=self.window.currentData(),
            batch=int(self.batch.value()),
            steps_per_epoch=int(self.steps_per_epoch.value()),
            m=int(self.m.value()) or None,
            working_factor=int(self.factor.value()) or None,
            r_max=int(self.r_max.value()) or None,
            n_chi2=int(self.n_chi2.value()),
            gamma=float(self.gamma.value()) or None,
            patience=int(self.patience.value()) or None,
            pretrain_model_steps=int(self.pretrain.value()),
        )

    # -- run / cancel ---------------------------------------------------------------------------
    def _run_or_cancel(self) -> None:
        if self.busy:
            self.cancel()
        else:
            self.run()

    def improve(self) -> Any | None:
        """Continue from the last model with the remedy its verdict names (the worker, or None)."""
        if self.model is None:
            self.show_error("no model to improve yet: press Run first")
            return None
        return self.run(continue_from=self.model)

    def run(self, continue_from: Any = None) -> Any | None:
        """Start a calibration (returns the worker, or None after showing what is wrong).

        ``continue_from``: improve this model of the same data instead of starting afresh.
        """
        from napari.layers import Image

        if self.busy:
            self.show_error("a calibration is already running; cancel it first")
            return None
        layer = self.layer_combo.layer()
        if layer is None:
            self.show_error(
                "no layer to calibrate on: open a segmented image (File ▸ Open) or a sample "
                "(File ▸ Open Sample ▸ napari-gencal) first"
            )
            return None
        if isinstance(layer, Image):
            self.show_error(
                f"{layer.name!r} is an Image layer; press 'Convert image to labels' (few distinct "
                "values) or segment it first"
            )
            return None
        try:
            image = layer_label_image(layer)
            config = self.config()
        except (ValueError, TypeError) as exc:
            self.show_error(error_text(exc))
            return None
        if image.ndim == 2 and self.fit_b.isChecked():
            fit_b = False  # b needs a 3D stack; a 2D image gives an isotropic model
        else:
            fit_b = self.fit_b.isChecked()
        phases = self.phases.text().strip() or None
        self._holder = {}
        self._layer_name = layer.name
        self._losses = {}
        self._data_curves = self._model_curves = None
        worker = self.make_worker(
            calibration_job,
            image,
            phases,
            self.axis.currentText(),
            fit_b,
            config,
            int(self.preview_every.value()),
            self._holder,
            continue_from,
        )
        worker.yielded.connect(self._on_yield)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(lambda *_: self._set_running(False))
        worker.aborted.connect(self._on_aborted)
        worker.finished.connect(self._on_finished)
        self._set_running(True)
        self._open_progress()
        note = ""
        if image.ndim == 2 and self.fit_b.isChecked():
            note = " (b needs a 3D stack: a 2D image gives an isotropic model, b = 1)"
        if continue_from is not None:
            note += " (improving the last model)"
        self.show_message("starting calibration…" + note)
        return self.start(worker, f"calibrating on {layer.name}")

    def cancel(self) -> None:
        """Stop the run after the current step; the best model so far is kept."""
        self._holder["cancelled"] = True
        cal = self._holder.get("cal")
        if cal is not None:
            cal.cancel()  # thread-safe flag: the loop finishes its step and returns the best model
        else:
            for w in list(self.workers):
                w.quit()
        self.run_button.setEnabled(False)
        self.show_message("cancelling… (the best model so far is kept)")

    def stop_workers(self) -> None:
        """Viewer/dock closing: cancel the engine and quit the worker."""
        self._holder["cancelled"] = True
        cal = self._holder.get("cal")
        if cal is not None:
            cal.cancel()
        super().stop_workers()

    def _set_running(self, running: bool) -> None:
        self.run_button.setText("Cancel" if running else "Run")
        self.run_button.setEnabled(True)
        self.save_button.setEnabled(not running and self.model is not None)
        self.improve_button.setEnabled(not running and self.model is not None)

    # -- progress -------------------------------------------------------------------------------
    def _open_progress(self) -> None:
        from napari.utils import progress

        self._close_progress()
        # indeterminate while the data statistics are prepared, then 0..1000 of the budget
        self._pbar = progress(total=0, desc="GenCal calibration: preparing")

    def _close_progress(self) -> None:
        if self._pbar is not None:
            try:
                self._pbar.close()
            except Exception:  # noqa: BLE001
                pass
            self._pbar = None

    def _set_progress(self, rec: dict[str, Any]) -> None:
        # a local reference: updating the bar can process queued events (the worker's finished
        # signal closes the bar) before this method returns
        pbar = self._pbar
        if pbar is None:
            return
        frac = rec["fraction"]
        cfg_limit = self.minutes.value() * 60.0
        if cfg_limit > 0:
            frac = max(frac, min(1.0, rec["elapsed"] / cfg_limit))
        try:
            if pbar.total != 1000:
                pbar.total = 1000
            target = int(1000 * frac)
            if target > pbar.n:
                pbar.update(target - pbar.n)
            pbar.set_description(f"GenCal {rec['stage']} {rec['phase']} epoch {rec['epoch']}")
        except Exception:  # noqa: BLE001 - a closed bar: progress display is cosmetic
            pass

    def _on_yield(self, rec: dict[str, Any]) -> None:
        kind = rec.get("kind")
        if kind == "status":
            self.show_message(rec["text"])
        elif kind == "warning":
            self.show_warning(rec["text"])
        elif kind == "note":
            self.show_message(rec["text"])
        elif kind == "data":
            self._data_curves = rec["curves"]
            self._names = rec["names"]
            note = f"  {rec['note']}" if rec.get("note") else ""
            unit = " working px" if rec.get("factor", 1) > 1 else ""
            self.show_message(f"r max {rec['r_max']}, window {rec['window']}{unit}.{note}")
            self._plot_tppf()
        elif kind == "progress":
            for step, losses in rec["losses"]:
                for key, v in losses.items():
                    if math.isfinite(v):
                        self._losses.setdefault(key, []).append((step, v))
            self._set_progress(rec)
            self.show_message(rec["summary"])
            now = time.perf_counter()
            if now - self._last_draw > 1.0 or rec.get("new_best"):
                self._last_draw = now
                self._plot_losses()
        elif kind == "preview":
            self._model_curves = rec["curves"]
            self._show_preview(rec)
            self._plot_tppf()

    def _show_preview(self, rec: dict[str, Any]) -> None:
        if self.closed:
            return
        codes, kw, _ = labels_layer_tuple(
            rec["section"], "calibration preview", labels=rec["labels"], kind="preview"
        )
        layer = self.preview_layer
        if layer is not None and layer in self.viewer.layers:
            layer.data = codes
            layer.metadata = kw["metadata"]
        else:
            kw["name"] = unique_name([ly.name for ly in self.viewer.layers], "calibration preview")
            self.preview_layer = self.viewer.add_labels(codes, **kw)

    def _plot_losses(self) -> None:
        c = self.loss_canvas
        c.clear()
        colors = {"tppf": "#3a86ff", "adv": "#f2c14e", "disc": "#e63946", "total": "#8d99ae"}
        for key, pts in self._losses.items():
            if key == "total" and len(self._losses) > 2:
                continue
            x, y = zip(*pts, strict=True)
            c.ax.plot(x, y, lw=1.0, label=key, color=colors.get(key))
        if any(v for pts in self._losses.values() for _, v in pts if v > 0):
            c.ax.set_yscale("log")
        c.ax.set_xlabel("step")
        c.ax.set_ylabel("loss")
        c.legend(c.ax, ncol=4)
        c.redraw()

    def _plot_tppf(self) -> None:
        c = self.tppf_canvas
        c.clear()
        for curves, style, tag in (
            (self._data_curves, "-", "data"),
            (self._model_curves, "--", "model"),
        ):
            if curves is None:
                continue
            k = curves.shape[0]
            r = np.arange(curves.shape[-1])
            p = 0
            for i in range(k):
                for j in range(i, k):
                    lab = f"C{i + 1}{j + 1}" if tag == "data" else None
                    c.ax.plot(r, curves[i, j], style, color=PAIR_COLORS[p], lw=1.1, label=lab)
                    p += 1
            c.ax.plot([], [], style, color="0.6", label=tag)
        c.ax.set_xlabel("r (pixels)")
        c.ax.set_ylabel("C_ij(r)")
        c.legend(c.ax, ncol=3)
        c.redraw()

    # -- end of run -----------------------------------------------------------------------------
    def _on_returned(self, result: dict[str, Any]) -> None:
        self._plot_losses()
        model = result.get("model") if result else None
        if model is None:
            self.show_message("cancelled before the first step; no model")
            return
        self.model = model
        self.show_verdict(result.get("verdict"), result.get("stop_reason"))
        seed = self.seed.value()
        self.model_name = session.add(
            f"{self._layer_name} model (seed {seed})",
            model,
            source=self._layer_name,
            stop_reason=result.get("stop_reason"),
            best_score=result.get("best_score"),
        )
        why = result.get("stop_reason") or "done"
        self.show_message(
            f"calibration ended ({why}); model {self.model_name!r} is in the session "
            "(Generate / Compare widgets) — Save model… writes it to a file"
        )

    def show_verdict(self, verdict: dict[str, Any] | None, stop_reason: str | None = None) -> None:
        """Show the check of the last model: green when it fits, red with the misses if not."""
        from ..core.fit_check import Verdict

        if verdict is None:
            text = f"Not checked against the data (the run ended: {stop_reason or 'cancelled'})."
            color, tip = "#c9a227", ""
        else:
            v = Verdict.from_dict(verdict)
            text = ("✔ " if v.fits else "✘ ") + v.line
            if not v.fits and v.remedies:
                r = v.remedies[0]
                text += f" — likely cause: {r['cause']}; " + (
                    f"Improve applies: {r['remedy']}" if r["applicable"] else r["remedy"]
                )
            color, tip = ("#2a9d8f" if v.fits else "#e63946"), v.table()
        self.verdict_label.setText(text)
        self.verdict_label.setStyleSheet(f"color: {color}; font-weight: bold;")
        self.verdict_label.setToolTip(tip)
        self.verdict_label.setVisible(True)
        if verdict is not None and not verdict["fits"]:
            self.show_warning("the calibrated model " + text[2:])

    def _on_aborted(self) -> None:
        self.show_message("calibration stopped before it started; no model")

    def _on_finished(self) -> None:
        self._close_progress()
        self._set_running(False)

    def save_model(self, path: str | None = None) -> str | None:
        """Write the last calibrated model as ``*.gencal.json`` (no silent overwrite)."""
        if self.model is None:
            self.show_error("no calibrated model yet: press Run first")
            return None
        overwrite = False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save model", "model.gencal.json", "GenCal model (*.gencal.json)"
            )
            if not path:
                return None
            overwrite = True  # the file dialog has asked the user already
        if not str(path).endswith(".gencal.json"):
            path = str(Path(path).with_suffix("")) + ".gencal.json"
        try:
            written = self.model.save(path, overwrite=overwrite)
        except (OSError, ValueError) as exc:
            self.show_error(error_text(exc))
            return None
        self.show_message(f"saved {written}")
        return str(written)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self._close_progress()
        super().closeEvent(event)


def _label(text: str):
    from qtpy.QtWidgets import QLabel

    return QLabel(text)
