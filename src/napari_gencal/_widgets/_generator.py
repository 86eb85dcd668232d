"""Generator widget: 3D label volumes from a model, with live 2D previews while parameters move.

The model comes from the session (a calibration, or an opened ``*.gencal.json``) or from a file.
The interpretable parameters (σ1, σ2, a, λ1, λ2, anisotropy b and, for low-parametric models, the
covariance-family parameters of each kernel) are sliders/spin boxes; every change schedules a
debounced 2D preview section in a worker. Generate runs :func:`napari_gencal.core.generate.generate`
in a worker (after a size check against the preferences) and adds a new Labels layer
``generated (seed S)`` — always under a fresh name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ._base import GencalWidget, button, error_text, hbox
from ._layers import labels_layer_tuple, unique_name
from ._prefs import get_prefs
from ._session import session

__all__ = ["GeneratorWidget", "generate_job", "preview_job", "edited_model", "SCALARS"]

#: (attribute, label, lower, upper, log-scale slider)
SCALARS = (
    ("sigma1", "σ1 (Gaussian weight, phase 1)", 0.01, 20.0, True),
    ("sigma2", "σ2 (Gaussian weight, phase 2)", 0.01, 20.0, True),
    ("a", "a (χ² correlation)", 0.0, 1.0, False),
    ("lambda1", "λ1 (threshold, phase 1)", -20.0, 60.0, False),
    ("lambda2", "λ2 (threshold, phase 2)", -20.0, 60.0, False),
    ("anisotropy", "b (stretch along z)", 0.1, 10.0, True),
)
PREVIEW_SIZE = 128
DEBOUNCE_MS = 300
DEFAULT_ENTRY = "default model (uncalibrated)"


def edited_model(model: Any, scalars: dict[str, float], kernels: dict[str, dict] | None) -> Any:
    """A copy of ``model`` with the widget's parameter values (validated by the core)."""
    changes: dict[str, Any] = {k: float(v) for k, v in scalars.items()}
    if kernels is not None and getattr(model, "kind", "high") == "low":
        changes["kernels"] = {n: dict(p) for n, p in kernels.items()}
    m = model.copy(**changes)
    m.validate()
    return m


def preview_job(model: Any, size: int, seed: int, device: str) -> np.ndarray:
    """One planar section ``(size, size)`` in label values (worker thread)."""
    from ..core.generate import generate_sections

    return np.asarray(generate_sections(model, 1, size, seed=seed, device=device))[0]


def generate_job(model: Any, shape: tuple[int, ...], seed: int, device: str) -> np.ndarray:
    """A hard-threshold label volume (worker thread; returns numpy)."""
    from ..core.generate import generate

    return np.asarray(generate(model, shape, seed=seed, device=device))


class _Slider(QWidget):
    """A float slider (superqt) with a value label, log-scaled when asked; ``valueChanged``."""

    def __init__(self, lo: float, hi: float, log: bool, parent=None):
        from superqt import QDoubleSlider

        super().__init__(parent)
        self.log = log
        self.lo, self.hi = lo, hi
        self.slider = QDoubleSlider(Qt.Orientation.Horizontal)
        if log:
            self.slider.setRange(math.log10(lo), math.log10(hi))
        else:
            self.slider.setRange(lo, hi)
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(52)
        self.setLayout(hbox(self.slider, self.value_label))
        self.valueChanged = self.slider.valueChanged
        self.slider.valueChanged.connect(self._show)
        self._show()

    def _show(self, *_: Any) -> None:
        self.value_label.setText(f"{self.value():.4g}")

    def value(self) -> float:
        v = float(self.slider.value())
        return 10**v if self.log else v

    def setValue(self, v: float) -> None:  # noqa: N802 - Qt naming
        v = min(max(float(v), self.lo), self.hi)
        self.slider.setValue(math.log10(v) if self.log else v)
        self._show()


class GeneratorWidget(GencalWidget):
    """Generate label volumes from a model; preview parameter changes live.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any, parent=None):
        super().__init__(napari_viewer, parent)
        prefs = get_prefs()
        self.base_model: Any = None
        self.preview_layer = None
        self.last_layer = None
        self._file_models: dict[str, Any] = {}
        self._preview_worker = None
        self._preview_pending = False
        self._loading = False

        form = QFormLayout()
        self.model_combo = QComboBox()
        self.model_combo.currentIndexChanged.connect(lambda *_: self._on_model())
        self.load_button = button("Load…", self.load_model_dialog, "Open a *.gencal.json file")
        form.addRow("Model", hbox(self.model_combo, self.load_button))
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        form.addRow(self.model_info)
        self.shape = [QSpinBox() for _ in range(3)]
        for s in self.shape:
            s.setRange(1, 4096)
            s.setValue(128)
        form.addRow("Shape z, y, x", hbox(*self.shape))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(prefs.default_seed)
        self.seed.valueChanged.connect(lambda *_: self.schedule_preview())
        form.addRow("Seed", self.seed)
        self.device = QComboBox()
        from ..core.device import available_devices

        devices = available_devices()
        self.device.addItems(devices)
        if prefs.default_device in devices:
            self.device.setCurrentText(prefs.default_device)
        form.addRow("Device", self.device)
        self.sliders: dict[str, _Slider] = {}
        for key, text, lo, hi, log in SCALARS:
            sl = _Slider(lo, hi, log)
            sl.valueChanged.connect(lambda *_: self.schedule_preview())
            self.sliders[key] = sl
            form.addRow(text, sl)
        self.form_layout.addLayout(form)
        self.form_layout.addWidget(self._family_box())
        self.reset_button = button("Reset parameters", self._on_model)
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.generate)
        self.form_layout.addLayout(hbox(self.reset_button, self.generate_button))

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.preview)
        session.changed.connect(self.refresh_models)
        self.refresh_models()

    # -- low-parametric family parameters ----------------------------------------------------------
    def _family_box(self) -> QWidget:
        from superqt import QCollapsible

        box = QCollapsible("Covariance-family parameters (low-parametric models)")
        inner = QWidget()
        self.family_form = QFormLayout(inner)
        self.kernel_combo = QComboBox()
        self.kernel_combo.currentIndexChanged.connect(lambda *_: self._show_kernel())
        self.family_form.addRow("Kernel", self.kernel_combo)
        box.addWidget(inner)
        self.family_box = box
        self._kernel_values: dict[str, dict[str, float]] = {}
        self._family_spins: dict[str, QDoubleSpinBox] = {}
        return box

    def _setup_family(self, model: Any) -> None:
        for spin in self._family_spins.values():
            self.family_form.removeRow(spin)
        self._family_spins = {}
        self.kernel_combo.blockSignals(True)
        self.kernel_combo.clear()
        self._kernel_values = {}
        if model is None or getattr(model, "kind", "high") != "low":
            self.family_box.setEnabled(False)
            self.kernel_combo.blockSignals(False)
            return
        from ..core.covariance import get_family

        fam = get_family(model.family)
        self._kernel_values = {n: dict(p) for n, p in model.kernels.items()}
        self.kernel_combo.addItems(list(self._kernel_values))
        self.kernel_combo.blockSignals(False)
        for nm, lo, hi in zip(fam.param_names, fam.lower, fam.upper, strict=True):
            spin = QDoubleSpinBox()
            spin.setDecimals(4)
            spin.setRange(
                float(lo) if math.isfinite(lo) else -1e6, float(hi) if math.isfinite(hi) else 1e6
            )
            spin.setSingleStep(0.05)
            spin.valueChanged.connect(lambda v, nm=nm: self._on_family_value(nm, v))
            self._family_spins[nm] = spin
            self.family_form.addRow(nm, spin)
        self.family_box.setEnabled(True)
        self._show_kernel()

    def _show_kernel(self) -> None:
        name = self.kernel_combo.currentText()
        vals = self._kernel_values.get(name, {})
        self._loading = True
        for nm, spin in self._family_spins.items():
            if nm in vals:
                spin.setValue(float(vals[nm]))
        self._loading = False

    def _on_family_value(self, nm: str, v: float) -> None:
        if self._loading:
            return
        name = self.kernel_combo.currentText()
        if name in self._kernel_values:
            self._kernel_values[name][nm] = float(v)
            self.schedule_preview()

    # -- model choice ---------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Re-list session models (newest selected when it just arrived)."""
        if self.closed:
            return
        current = self.model_combo.currentText()
        names = session.names()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(names + [DEFAULT_ENTRY])
        self.model_combo.blockSignals(False)
        if current in names and current != (names[-1] if names else None):
            self.model_combo.setCurrentText(current)
        elif names:
            self.model_combo.setCurrentText(names[-1])
        else:
            self.model_combo.setCurrentText(DEFAULT_ENTRY)
        self._on_model()

    def _on_model(self) -> None:
        name = self.model_combo.currentText()
        entry = session.get(name)
        if entry is not None:
            model = entry.model
            src = entry.source
        elif name == DEFAULT_ENTRY:
            from ..core.model import ExcursionModel

            model = ExcursionModel.default(kind="low", m=12)
            src = "built-in default, not calibrated"
        else:
            model, src = None, ""
        self.base_model = model
        if model is None:
            self.model_info.setText("no model")
            return
        self._loading = True
        for key, *_ in SCALARS:
            self.sliders[key].setValue(float(getattr(model, key)))
        self._loading = False
        self._setup_family(model)
        k = getattr(model, "n_phases", 3)
        self.model_info.setText(f"{model.kind}-parametric, {k} phases, m = {model.m}; {src}")
        self.schedule_preview()

    def load_model_dialog(self) -> None:
        """Ask for a ``*.gencal.json`` file and add it to the session."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model", "", "GenCal model (*.gencal.json);;JSON (*.json)"
        )
        if path:
            self.load_model(path)

    def load_model(self, path: str) -> str | None:
        """Load a model file into the session and select it; returns its session name."""
        from pathlib import Path

        from ..core.model import ExcursionModel

        try:
            model = ExcursionModel.load(path)
        except (OSError, ValueError) as exc:
            self.show_error(error_text(exc))
            return None
        name = Path(path).name.removesuffix(".gencal.json").removesuffix(".json")
        used = session.add(name, model, source=str(path), path=str(path))
        self.model_combo.setCurrentText(used)
        return used

    def current_model(self) -> Any:
        """The chosen model with the widget's parameter values (raises ValueError when invalid)."""
        if self.base_model is None:
            raise ValueError("no model chosen: calibrate one, or Load… a *.gencal.json file")
        scalars = {key: self.sliders[key].value() for key, *_ in SCALARS}
        kernels = self._kernel_values if self._kernel_values else None
        return edited_model(self.base_model, scalars, kernels)

    # -- preview --------------------------------------------------------------------------------
    def schedule_preview(self) -> None:
        """(Re)start the debounce timer; the preview runs when the user pauses."""
        if not self._loading and not self.closed:
            self._timer.start()

    def preview(self) -> Any | None:
        """Generate a small section in a worker and show it (one at a time; coalesced)."""
        if self.closed:
            return None
        if self._preview_worker is not None:
            self._preview_pending = True
            return None
        try:
            model = self.current_model()
        except ValueError as exc:
            self.show_error(error_text(exc))
            return None
        w = self.make_worker(
            preview_job, model, PREVIEW_SIZE, int(self.seed.value()), self.device.currentText()
        )
        pm = model.user_phase_map
        labels = None if pm is None else list(pm.labels)
        w.returned.connect(lambda sec, labels=labels: self._show_preview(sec, labels))
        w.finished.connect(self._preview_done)
        self._preview_worker = w
        return self.start(w, "generator preview")

    def _preview_done(self) -> None:
        self._preview_worker = None
        if self._preview_pending:
            self._preview_pending = False
            self.preview()

    def _show_preview(self, section: np.ndarray, labels: list[int] | None) -> None:
        if self.closed:
            return
        codes, kw, _ = labels_layer_tuple(
            section, "generator preview", labels=labels, kind="preview"
        )
        layer = self.preview_layer
        if layer is not None and layer in self.viewer.layers:
            layer.data = codes
        else:
            kw["name"] = unique_name([ly.name for ly in self.viewer.layers], "generator preview")
            self.preview_layer = self.viewer.add_labels(codes, **kw)

    def stop_workers(self) -> None:
        """Closing: no more previews, no more session updates."""
        self._timer.stop()
        try:
            session.changed.disconnect(self.refresh_models)
        except (ValueError, RuntimeError, TypeError):
            pass
        super().stop_workers()

    # -- generate -------------------------------------------------------------------------------
    def generate(self) -> Any | None:
        """Check the size, then generate the volume in a worker (returns the worker or None)."""
        if any(w is not self._preview_worker for w in self.workers):
            self.show_error("a volume is being generated already; wait for it to finish")
            return None
        try:
            model = self.current_model()
        except ValueError as exc:
            self.show_error(error_text(exc))
            return None
        shape = tuple(int(s.value()) for s in self.shape)
        if shape[0] == 1:
            shape = shape[1:]
        n = int(np.prod(shape))
        limit = get_prefs().max_voxels
        if n > limit:
            self.show_error(
                f"{' × '.join(map(str, shape))} = {n:,} voxels is above the limit of {limit:,} "
                "(File ▸ Preferences ▸ GenCal defaults ▸ maximum voxels); choose a smaller shape "
                "or raise the limit"
            )
            return None
        seed = int(self.seed.value())
        device = self.device.currentText()
        w = self.make_worker(
            generate_job,
            model,
            shape,
            seed,
            device,
            _progress={"desc": f"GenCal: generating {' × '.join(map(str, shape))}"},
        )
        w.returned.connect(lambda vol: self._add_volume(vol, model, seed, device))
        w.started.connect(lambda: self.generate_button.setEnabled(False))
        w.finished.connect(lambda: self.generate_button.setEnabled(True))
        self.generate_button.setEnabled(False)
        self.show_message(f"generating {' × '.join(map(str, shape))} voxels…")
        return self.start(w, "generating a volume")

    def _add_volume(self, vol: np.ndarray, model: Any, seed: int, device: str) -> None:
        if self.closed:
            return
        pm = model.user_phase_map  # the user's order: same colours as the data layer
        labels = None if pm is None else list(pm.labels)
        names = None if pm is None else pm.names
        vs = model.voxel_size
        if vs is not None and len(vs) != vol.ndim:
            vs = tuple(vs)[-vol.ndim :]
        name = unique_name([ly.name for ly in self.viewer.layers], f"generated (seed {seed})")
        codes, kw, _ = labels_layer_tuple(
            vol,
            name,
            labels=labels,
            phase_names=names,
            voxel_size=vs,
            unit=model.unit,
            kind="generated",
            model=model.to_dict(),
            seed=seed,
            device=device,
            source=self.model_combo.currentText(),
        )
        self.last_layer = self.viewer.add_labels(codes, **kw)
        self.show_message(f"added {name!r} ({vol.shape})")
