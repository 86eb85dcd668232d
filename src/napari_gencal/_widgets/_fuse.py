"""Fuse widget: a session model + a low-resolution Labels layer → a high-resolution twin layer.

Inputs are collected here; the work is :func:`napari_gencal.api.fuse` (the CLI's and the
notebook's call) in a napari thread worker that streams the agreement with the scan per step.
The fused volume is added as a Labels layer whose voxel size is the scan's divided by the scale
factor, so it lies on the scan in world coordinates and the two slice together; with several
draws the probability of the chosen phase is added as an Image layer. Cancel stops after the
current step and keeps the draw so far.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QLineEdit, QPushButton, QSpinBox

from ._base import GencalWidget, LayerCombo, hbox, stream_from_thread
from ._layers import labels_layer_tuple, layer_label_image, unique_name
from ._session import session

__all__ = ["FuseWidget", "fuse_job"]


def fuse_job(
    model: Any, scan: np.ndarray, scale: tuple[int, int, int], mapping: str | None,
    seed: int, draws: int, steps: int, device: str, holder: dict[str, Any],
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Worker body: fuse, streaming each step's record; returns the FusionResult."""
    from .. import api

    return (yield from stream_from_thread(
        lambda report: api.fuse(
            model, scan, scale, mapping or None, seed=seed, draws=draws, steps=steps,
            device=device, progress=report, cancel=lambda: bool(holder.get("cancelled")),
        )
    ))  # fmt: skip


class FuseWidget(GencalWidget):
    """Fuse a calibrated model with a low-resolution 3D scan (napari front end of ``gencal fuse``).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any, parent=None):
        super().__init__(napari_viewer, parent)
        self.result: Any = None
        self._holder: dict[str, Any] = {}
        form = QFormLayout()
        self.model_combo = QComboBox()
        form.addRow("Model", self.model_combo)
        self.scan_combo = LayerCombo(napari_viewer, ("Labels",))
        form.addRow("Low-resolution scan", self.scan_combo)
        self.scale = [QSpinBox() for _ in range(3)]
        for s in self.scale:
            s.setRange(1, 32)
            s.setValue(4)
        form.addRow("Scale z, y, x", hbox(*self.scale))
        self.mapping = QLineEdit()
        self.mapping.setPlaceholderText("scan labels are model labels (or e.g. 0=0+170,1=85)")
        form.addRow("Label map", self.mapping)
        self.draws = QSpinBox()
        self.draws.setRange(1, 64)
        self.draws.setValue(1)
        form.addRow("Draws", self.draws)
        self.steps = QSpinBox()
        self.steps.setRange(0, 1000)
        self.steps.setValue(60)
        form.addRow("Steps", self.steps)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Seed", self.seed)
        self.device = QComboBox()
        from ..core.device import available_devices

        self.device.addItems(available_devices())
        form.addRow("Device", self.device)
        self.form_layout.addLayout(form)
        self.run_button = QPushButton("Fuse")
        self.run_button.clicked.connect(self._run_or_cancel)
        self.form_layout.addWidget(self.run_button)
        session.changed.connect(self.refresh_models)
        self.refresh_models()

    def refresh_models(self) -> None:
        """Offer the session's models."""
        current = self.model_combo.currentText()
        self.model_combo.clear()
        self.model_combo.addItems(session.names())
        if current in session.names():
            self.model_combo.setCurrentText(current)

    def model(self) -> Any | None:
        entry = session.get(self.model_combo.currentText())
        return None if entry is None else entry.model

    # -- run / cancel ---------------------------------------------------------------------------
    def _run_or_cancel(self) -> None:
        if self.busy:
            self.cancel()
        else:
            self.run()

    def cancel(self) -> None:
        """Stop after the current step; the draw so far is still added."""
        self._holder["cancelled"] = True
        self.show_message("cancelling… (the draw so far is kept)")

    def run(self) -> Any | None:
        """Start the fusion in a worker (returns it, or None after showing what is wrong)."""
        m, layer = self.model(), self.scan_combo.layer()
        if m is None:
            self.show_error("no model: calibrate one (Calibrate widget) or open a *.gencal.json")
            return None
        if layer is None:
            self.show_error("no low-resolution scan: open a 3D label volume as a Labels layer")
            return None
        try:
            img = layer_label_image(layer, None)
        except ValueError as exc:
            self.show_error(str(exc))
            return None
        if img.data.ndim != 3:
            self.show_error("the scan must be a 3D label volume; this layer is 2D")
            return None
        scale = tuple(int(s.value()) for s in self.scale)
        self._holder = {}
        self._scan_layer = layer
        w = self.make_worker(
            fuse_job, m, np.asarray(img.data), scale, self.mapping.text().strip(),
            int(self.seed.value()), int(self.draws.value()), int(self.steps.value()),
            self.device.currentText(), self._holder,
            _progress={"desc": "GenCal fusion", "total": 0},
        )  # fmt: skip
        w.yielded.connect(self._on_progress)
        w.returned.connect(self._on_result)
        w.finished.connect(lambda: self.run_button.setText("Fuse"))
        self.run_button.setText("Cancel")
        self.show_message("fusing…")
        return self.start(w, "fusion")

    def _on_progress(self, rec: dict[str, Any]) -> None:
        draw = f"draw {rec['draw']}, " if "draw" in rec else ""
        self.show_message(f"fusion: {draw}step {rec['step']}/{int(self.steps.value())}, "
                          f"agreement with the scan {100 * rec['agreement']:.1f} %")  # fmt: skip

    def _on_result(self, res: Any) -> None:
        self.result = res
        m = self.model()
        scan_scale = np.asarray(getattr(self._scan_layer, "scale", (1, 1, 1)), dtype=float)[-3:]
        vs = tuple(scan_scale / np.asarray(res.scale, dtype=float))
        pm = m.phase_map if m is not None else None
        name = unique_name([ly.name for ly in self.viewer.layers], f"fused (seed {res.seed})")
        data, kw, _ = labels_layer_tuple(
            res.labels, name, labels=None if pm is None else list(pm.labels), kind="fused",
            seed=int(res.seed), voxel_size=vs,
        )  # fmt: skip
        kw["scale"] = vs
        self.fused_layer = self.viewer.add_labels(data, **kw)
        if res.probability is not None:
            self.viewer.add_image(res.probability, name=f"{name} phase probability", scale=vs,
                                  channel_axis=0, visible=False)  # fmt: skip
        self.show_message(f"{name}: {res.summary()}")
