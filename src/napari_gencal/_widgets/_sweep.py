"""Sweep widget: vary one knob of a session model, measure every realization, plot, pick a point.

Inputs are collected here; the work is :func:`napari_gencal.core.sweep.run_sweep` (the CLI's and
the API's runner, on a Dask LocalCluster of worker processes) in a napari thread worker, which
sends the progress and the table back. The plot shows a descriptor (chosen from the table's
columns) against the knob, one dot per realization; clicking a dot generates that realization
(same knobs, same seed) and adds it as a Labels layer beside the data.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QPushButton,
    QSpinBox,
)

from ._base import GencalWidget, hbox, stream_from_thread
from ._canvas import ThemedCanvas
from ._layers import labels_layer_tuple, unique_name
from ._session import session

__all__ = ["SweepWidget", "sweep_job", "realization_of"]


def sweep_job(
    model: Any, knob: str, values: list[float], realizations: int, size: int,
    transport: bool, out: str, n_workers: int | None, client: Any = None,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Worker body: run the sweep, stream progress, return the table."""
    from ..core.sweep import SweepSpec, grid, run_sweep
    from ..core.sweep.run import MEASURES

    measures = tuple(m for m in MEASURES if transport or m != "transport")
    spec = SweepSpec(model.to_dict(), grid({knob: values}), realizations, (size,) * 3, 0, measures)
    yield {"done": 0, "total": len(spec.tasks)}
    table = yield from stream_from_thread(
        lambda report: run_sweep(spec, out, n_workers=n_workers, client=client,
                                 progress=lambda d, t, r: report({"done": d, "total": t}))
    )  # fmt: skip
    return {"table": table, "spec": spec}


def realization_of(model: Any, knob: str, value: float, seed: int, size: int) -> np.ndarray:
    """The labels of one realization of a sweep point (same knobs, same seed)."""
    from ..core.generate import generate
    from ..core.sweep import apply_knobs

    return generate(apply_knobs(model, {knob: value}), (size,) * 3, seed=int(seed), device="cpu")


class SweepWidget(GencalWidget):
    """Virtual materials testing in napari: one knob, a range, N realizations, plots.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any, parent=None):
        super().__init__(napari_viewer, parent)
        self.table = None
        self.spec = None
        #: An existing ``dask.distributed`` client to run on (None: a new LocalCluster per sweep).
        self.client: Any = None
        form = QFormLayout()
        self.model_combo = QComboBox()
        self.model_combo.currentIndexChanged.connect(lambda *_: self._on_model())
        form.addRow("Model", self.model_combo)
        self.knob = QComboBox()
        self.knob.currentIndexChanged.connect(lambda *_: self._on_knob())
        form.addRow("Knob", self.knob)
        self.lo, self.hi = QDoubleSpinBox(), QDoubleSpinBox()
        for s in (self.lo, self.hi):
            s.setDecimals(4)
            s.setRange(-1e6, 1e6)
        self.points = QSpinBox()
        self.points.setRange(1, 100)
        self.points.setValue(5)
        form.addRow("From, to, points", hbox(self.lo, self.hi, self.points))
        self.realizations = QSpinBox()
        self.realizations.setRange(1, 100)
        self.realizations.setValue(3)
        form.addRow("Realizations per point", self.realizations)
        self.size = QSpinBox()
        self.size.setRange(16, 1024)
        self.size.setValue(96)
        form.addRow("Volume edge (voxels)", self.size)
        self.n_workers = QSpinBox()
        self.n_workers.setRange(0, 256)
        self.n_workers.setSpecialValueText("all cores")
        form.addRow("Dask workers", self.n_workers)
        self.transport = QCheckBox("effective transport (TauFactor; slower)")
        self.transport.setChecked(True)
        form.addRow(self.transport)
        self.form_layout.addLayout(form)
        self.run_button = QPushButton("Run sweep")
        self.run_button.clicked.connect(self.run)
        self.form_layout.addWidget(self.run_button)
        self.y_combo = QComboBox()
        self.y_combo.currentIndexChanged.connect(lambda *_: self.plot())
        self.form_layout.addLayout(hbox(self.y_combo))
        self.canvas = ThemedCanvas(napari_viewer, height=2.8)
        self.canvas.mpl_connect("pick_event", self._on_pick)
        self.form_layout.addWidget(self.canvas)
        session.changed.connect(self.refresh_models)
        self.refresh_models()

    # -- form ---------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Offer the session's models."""
        current = self.model_combo.currentText()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(session.names())
        if current in session.names():
            self.model_combo.setCurrentText(current)
        self.model_combo.blockSignals(False)
        self._on_model()

    def model(self) -> Any | None:
        """The chosen session model."""
        entry = session.get(self.model_combo.currentText())
        return None if entry is None else entry.model

    def _on_model(self) -> None:
        from ..core.sweep import knobs_of

        m = self.model()
        self.knob.blockSignals(True)
        self.knob.clear()
        if m is not None:
            self._knobs = knobs_of(m)
            self.knob.addItems(list(self._knobs))
        self.knob.blockSignals(False)
        self._on_knob()

    def _on_knob(self) -> None:
        m, name = self.model(), self.knob.currentText()
        if m is None or not name:
            return
        kn = self._knobs[name]
        now = float(kn.current(m))
        lo, hi = kn.domain
        self.lo.setValue(max(lo, 0.8 * now if now else lo))
        self.hi.setValue(min(hi, 1.2 * now if now else hi))
        self.knob.setToolTip(kn.doc)

    # -- run ----------------------------------------------------------------------------------
    def values(self) -> list[float]:
        """The knob values of the sweep."""
        n = int(self.points.value())
        return np.linspace(self.lo.value(), self.hi.value(), n).tolist() if n > 1 else [
            float(self.lo.value())
        ]  # fmt: skip

    def run(self) -> Any | None:
        """Start the sweep in a worker (returns it, or None after showing what is wrong)."""
        m = self.model()
        if m is None:
            self.show_error("no model: calibrate one (Calibrate widget) or open a *.gencal.json")
            return None
        if self.busy:
            self.show_error("a sweep is already running")
            return None
        try:
            from ..core.sweep import get_knob

            kn = get_knob(m, self.knob.currentText())
            vals = [kn.check(v) for v in self.values()]
        except ValueError as exc:
            self.show_error(str(exc))
            return None
        out = tempfile.mkdtemp(prefix="gencal-sweep-")
        w = self.make_worker(
            sweep_job, m, self.knob.currentText(), vals, int(self.realizations.value()),
            int(self.size.value()), self.transport.isChecked(), out,
            int(self.n_workers.value()) or None, self.client,
            _progress={"desc": "GenCal sweep", "total": 0},
        )  # fmt: skip
        w.yielded.connect(self._on_progress)
        w.returned.connect(self._on_result)
        w.finished.connect(lambda: self.run_button.setEnabled(True))
        self.run_button.setEnabled(False)
        self.show_message(f"sweep of {self.knob.currentText()} running; results in {out}")
        return self.start(w, "parameter sweep")

    def _on_progress(self, rec: dict[str, Any]) -> None:
        self.show_message(f"sweep: {rec['done']}/{rec['total']} realizations")

    def _on_result(self, result: dict[str, Any]) -> None:
        self.table, self.spec = result["table"], result["spec"]
        cols = [c for c in self.table.columns
                if ("[" in c or c == "tpb_length")
                and np.issubdtype(self.table[c].dtype, np.number)]  # fmt: skip
        self.y_combo.blockSignals(True)
        self.y_combo.clear()
        self.y_combo.addItems(cols)
        pref = next((c for c in cols if c.startswith("effective_diffusivity")), None)
        if pref:
            self.y_combo.setCurrentText(pref)
        self.y_combo.blockSignals(False)
        self.plot()
        errs = int((self.table["error"].fillna("") != "").sum())
        self.show_message(f"sweep done: {len(self.table)} realizations"
                          + (f", {errs} with errors" if errs else "")
                          + "; click a dot to open that realization")  # fmt: skip

    # -- plot and pick ------------------------------------------------------------------------
    def plot(self) -> None:
        """Descriptor against the knob; one pickable dot per realization."""
        c = self.canvas
        c.clear()
        if self.table is None or not self.y_combo.currentText():
            c.redraw()
            return
        knob, y = self.spec.design.knobs[0], self.y_combo.currentText()
        ok = self.table[self.table["error"].fillna("") == ""]
        self._picks = ok[["point", "realization", "seed", knob]].to_numpy()
        c.ax.plot(ok[knob], ok[y], "o", ms=4, picker=5)
        means = ok.groupby(knob)[y].mean()
        c.ax.plot(means.index, means.to_numpy(), "-", lw=1, color="0.5")
        c.ax.set_xlabel(knob)
        c.ax.set_ylabel(y)
        c.redraw()

    def _on_pick(self, event: Any) -> None:
        if getattr(event, "ind", None) is None or len(event.ind) == 0 or self.table is None:
            return
        self.open_realization(int(event.ind[0]))

    def open_realization(self, i: int) -> Any:
        """Generate realization ``i`` of the plotted table and add it as a Labels layer."""
        point, realization, seed, value = self._picks[i]
        knob = self.spec.design.knobs[0]
        m = self.model()
        vol = realization_of(m, knob, float(value), int(seed), int(self.spec.shape[0]))
        pm = m.user_phase_map
        title = f"sweep {knob}={value:.4g} (point {int(point)}, r {int(realization)})"
        name = unique_name([ly.name for ly in self.viewer.layers], title)
        data, kw, _ = labels_layer_tuple(
            vol, name, labels=None if pm is None else list(pm.labels), kind="generated",
            seed=int(seed),
        )  # fmt: skip
        return self.viewer.add_labels(data, **kw)
