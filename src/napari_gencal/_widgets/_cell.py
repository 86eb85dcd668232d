"""Cell widget: data and twin Labels layers → battery cells side by side (PyBaMM discharges).

Inputs are collected here; the work is :func:`napari_gencal.core.cell.cell_runs` (what
``gencal cell`` and ``api.cell`` run) in a napari thread worker that streams which volume and
stage it is at. The discharge curves of data and twin are drawn side by side (one panel each,
one curve per C-rate) with a table of delivered capacity, utilisation and energy per rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from ._base import GencalWidget, LayerCombo, hbox, stream_from_thread
from ._canvas import ThemedCanvas
from ._layers import layer_label_image

__all__ = ["CellWidget", "cell_job", "draw_discharges"]


def cell_job(volumes: list[tuple[str, np.ndarray]], labels: tuple[Any, ...],
             settings: Any) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Worker body: the cells of the named volumes, streaming progress; returns the result."""
    from ..core.cell import cell_runs

    return (yield from stream_from_thread(
        lambda report: cell_runs(volumes, labels, settings, progress=report)
    ))  # fmt: skip


def draw_discharges(canvas: ThemedCanvas, result: Any) -> None:
    """Voltage against capacity: one panel per run (data, twin), one curve per rate."""
    canvas.clear()
    rates = sorted({d.rate for r in result.runs for d in r.discharges})
    colours = {rate: f"C{i}" for i, rate in enumerate(rates)}
    for ax, run in zip(canvas.axes, result.runs, strict=False):
        for d in run.discharges:
            if d.capacity_curve:
                ax.plot(d.capacity_curve, d.voltage_curve, color=colours[d.rate],
                        label=f"{d.rate:g}C")  # fmt: skip
        ax.set_title(run.name, fontsize=8)
        ax.set_xlabel("capacity [A.h]", fontsize=8)
        if run.error:
            ax.text(0.5, 0.5, "no cell", transform=ax.transAxes, ha="center", va="center")
    canvas.axes[0].set_ylabel("voltage [V]", fontsize=8)
    canvas.legend(canvas.axes[0], fontsize=7)
    canvas.apply_theme()
    canvas.redraw()


class CellWidget(GencalWidget):
    """Discharge curves of a data volume and its twin as cell cathodes (PyBaMM).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any, parent=None):
        super().__init__(napari_viewer, parent)
        self.result: Any = None
        form = QFormLayout()
        self.data_combo = LayerCombo(napari_viewer, ("Labels",))
        self.twin_combo = LayerCombo(napari_viewer, ("Labels",))
        form.addRow("Data layer", self.data_combo)
        form.addRow("Twin layer", self.twin_combo)
        self.active, self.electrolyte, self.conductors = QLineEdit("85"), QLineEdit("0"), \
            QLineEdit("170")  # fmt: skip
        self.conductors.setPlaceholderText("labels, comma separated (may be empty)")
        form.addRow("Active, electrolyte", hbox(self.active, self.electrolyte))
        form.addRow("Conductors", self.conductors)
        self.voxel_size = QLineEdit("0.39um")
        self.thickness = QLineEdit("")
        self.thickness.setPlaceholderText("the base set's")
        form.addRow("Voxel size, thickness", hbox(self.voxel_size, self.thickness))
        self.rates = QLineEdit("0.2,1,2,3")
        form.addRow("C-rates", self.rates)
        from ..core.cell.settings import BASES

        self.base, self.model = QComboBox(), QComboBox()
        self.base.addItems(BASES)
        self.model.addItems(["DFN", "SPMe"])
        form.addRow("Base set, model", hbox(self.base, self.model))
        self.form_layout.addLayout(form)
        self.run_button = QPushButton("Simulate cells")
        self.run_button.clicked.connect(self.run)
        self.form_layout.addWidget(self.run_button)
        self.canvas = ThemedCanvas(napari_viewer, 1, 2, height=2.8)
        self.form_layout.addWidget(self.canvas)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["volume", "rate", "capacity [A.h]",
                                              "utilisation", "energy [W.h]"])  # fmt: skip
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.form_layout.addWidget(self.table)

    def settings(self) -> Any:
        """The :class:`~napari_gencal.core.cell.CellSettings` of the form (raises CellError)."""
        from ..core.cell import CellSettings, parse_length

        conductors = tuple(c.strip() for c in self.conductors.text().split(",") if c.strip())
        thick = self.thickness.text().strip()
        return CellSettings(
            self.active.text().strip(), self.electrolyte.text().strip(), conductors,
            parse_length(self.voxel_size.text(), "voxel size", "um"),
            parse_length(thick, "thickness", "um") if thick else None,
            self.base.currentText(), self.rates.text(), self.model.currentText(),
        ).validate()  # fmt: skip

    def run(self) -> Any | None:
        """Start the cells in a worker (returns it, or None after showing what is wrong)."""
        from ..core.cell import pybamm_available
        from ..core.phases import to_indices

        if not pybamm_available():
            self.show_error("the Cell panel needs PyBaMM: pip install 'napari-gencal[cell]'")
            return None
        layers = [(n, c.layer()) for n, c in (("data", self.data_combo),
                                               ("twin", self.twin_combo))]  # fmt: skip
        layers = [(n, ly) for n, ly in layers if ly is not None]
        if not layers:
            self.show_error("no Labels layer: open the data or generate a twin first")
            return None
        try:
            st = self.settings()
            imgs = [(f"{n}: {ly.name}", layer_label_image(ly)) for n, ly in layers]
            pm = imgs[0][1].phase_map
            missing = [v for v in (st.active, st.electrolyte, *st.conductors)
                       if str(v) not in map(str, pm.labels)]  # fmt: skip
            if missing:
                raise ValueError(f"label(s) {missing} are not phases of the layers "
                                 f"(labels {list(pm.labels)})")  # fmt: skip
            volumes = []
            for name, img in imgs:
                if img.data.ndim != 3:
                    raise ValueError(f"{name} is 2D; a cell needs a 3D volume")
                if set(map(str, img.phase_map.labels)) != set(map(str, pm.labels)):
                    raise ValueError("the data and twin layers have different labels")
                volumes.append((name, to_indices(img.data, pm)))
        except ValueError as exc:
            self.show_error(str(exc))
            return None
        w = self.make_worker(cell_job, volumes, tuple(pm.labels), st,
                             _progress={"desc": "GenCal cells", "total": 0})  # fmt: skip
        w.yielded.connect(self._on_progress)
        w.returned.connect(self._on_result)
        w.finished.connect(lambda: self.run_button.setEnabled(True))
        self.run_button.setEnabled(False)
        self.show_message("measuring the volumes…")
        return self.start(w, "cells")

    def _on_progress(self, rec: dict[str, Any]) -> None:
        if rec.get("stage") in ("figures", "discharges"):
            what = "measuring" if rec["stage"] == "figures" else "discharging"
            self.show_message(f"{rec['run']}: {what}…")

    def _on_result(self, result: Any) -> None:
        if self.closed:
            return
        self.result = result
        draw_discharges(self.canvas, result)
        rows = result.rows()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = [r["name"], "" if r["rate"] is None else f"{r['rate']:g}C",
                     _fmt(r.get("capacity_Ah")), _fmt(r.get("utilisation")),
                     _fmt(r.get("energy_Wh"))]  # fmt: skip
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if r.get("error"):
                    item.setToolTip(r["error"])
                self.table.setItem(i, j, item)
        errors = [f"{run.name}: {run.error}" for run in result.runs if run.error]
        if errors:
            self.show_warning("; ".join(errors))
        else:
            self.show_message("cells done: " + "; ".join(
                f"{run.name} {run.discharges[-1].rate:g}C {_fmt(run.discharges[-1].capacity)} A.h"
                for run in result.runs if run.discharges))  # fmt: skip


def _fmt(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return f"{f:.4g}" if np.isfinite(f) else "–"
