"""Compare widget: data layer vs generated layer — side by side, descriptor table, plots, report.

Side by side uses napari's grid mode (one cell per layer, every other layer hidden; the shared dims
slider slices both at the same world position). The numbers come from
:func:`napari_gencal.core.descriptors.describe` and :func:`napari_gencal.core.compare.compare`, run
in a worker; the table shows data, model and the relative error of every descriptor; the plots show
chord-length distributions and TPPFs of both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from ._base import GencalWidget, LayerCombo, button, error_text, hbox
from ._canvas import PAIR_COLORS, ThemedCanvas
from ._layers import PHASE_COLORS, layer_label_image

__all__ = ["CompareWidget", "compare_job", "comparison_rows"]


def compare_job(data_img: Any, model_img: Any, full_3d: bool = False) -> dict[str, Any]:
    """Describe both label images and compare them (worker thread; plain data out).

    Calls :func:`napari_gencal.core.compare.compare_images`: a 2D data image is compared with the
    z-sections of a 3D generated volume; lengths use the data's voxel size (voxels when it is
    unknown or anisotropic). ``full_3d`` adds geodesic tortuosity and constrictivity for two 3D
    volumes (slower).
    """
    from dataclasses import replace

    from ..core.compare import compare_images

    if sorted(data_img.phase_map.labels) == sorted(model_img.phase_map.labels):
        # Same labels in another order (a model's own phase order): compare by label value.
        model_img = replace(model_img, phase_map=data_img.phase_map)
    else:
        raise ValueError(
            f"the layers have different phase labels ({list(data_img.phase_map.labels)} vs "
            f"{list(model_img.phase_map.labels)}); compare a model with the data it was "
            "calibrated on"
        )
    vs = data_img.voxel_size
    if vs is not None and max(vs) > min(vs) * (1 + 1e-6):
        data_img = replace(data_img, voxel_size=None)  # descriptors need cubic voxels
    include = ("volume_fraction", "specific_surface_area", "mean_chord_length")
    include += ("chord_length_distribution", "interfaces")
    if full_3d and data_img.ndim == 3 and model_img.ndim == 3:
        include += ("geodesic_tortuosity", "constrictivity")
    comp = compare_images(data_img, model_img, include=include, device="cpu")
    return {"comparison": comp, "rows": comparison_rows(comp)}


def comparison_rows(comp: Any) -> list[tuple[str, Any, Any, float | None]]:
    """``(descriptor, data, model, relative error)`` rows of a core ``Comparison``."""
    out = []
    for row in comp.rows:
        if "phase_name" in row:  # "name" is already the full row label ("SE: mean chord z")
            label = str(row["name"])
        else:
            label = f"{row.get('name', row.get('phase'))}: {row['descriptor']}"
            if row.get("direction"):
                label += f" {row['direction']}"
        if row.get("unit"):
            label += f" [{row['unit']}]"
        out.append((label, row.get("data"), row.get("model"), row.get("rel_error")))
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return "–"
    return f"{f:.4g}"


class CompareWidget(GencalWidget):
    """Put a data layer and a generated layer side by side and compare their descriptors.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any, parent=None):
        super().__init__(napari_viewer, parent)
        self.result: dict[str, Any] | None = None
        self._hidden: list[Any] = []
        form = QFormLayout()
        self.data_combo = LayerCombo(napari_viewer, ("Labels",))
        self.model_combo = LayerCombo(napari_viewer, ("Labels",))
        form.addRow("Data layer", self.data_combo)
        form.addRow("Generated layer", self.model_combo)
        self._preselect()
        self.full_3d = QCheckBox("tortuosity and constrictivity (3D data, slower)")
        form.addRow(self.full_3d)
        self.form_layout.addLayout(form)
        self.grid_button = QPushButton("Side by side")
        self.grid_button.setCheckable(True)
        self.grid_button.toggled.connect(self.side_by_side)
        self.run_button = QPushButton("Compare")
        self.run_button.clicked.connect(self.run)
        self.report_button = button("Export report…", self.export_report)
        self.report_button.setEnabled(False)
        self.form_layout.addLayout(hbox(self.grid_button, self.run_button, self.report_button))
        from qtpy.QtWidgets import QLabel

        # The verdict of the comparison (core.fit_check.judge): fits, or which phase misses.
        self.verdict_label = QLabel("")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setVisible(False)
        self.form_layout.addWidget(self.verdict_label)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["descriptor", "data", "model", "rel. error"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(300)
        self.form_layout.addWidget(self.table, 1)
        self.canvas = ThemedCanvas(napari_viewer, nrows=1, ncols=2, height=2.4)
        self.form_layout.addWidget(self.canvas)

    def _preselect(self) -> None:
        """Data: the first non-generated layer; generated: the newest generated one."""
        kinds = {
            ly.name: (ly.metadata.get("gencal") or {}).get("kind")
            for ly in self.viewer.layers
            if ly.name in [self.data_combo.itemText(i) for i in range(self.data_combo.count())]
        }
        data = [n for n, k in kinds.items() if k not in ("generated", "preview")]
        gen = [n for n, k in kinds.items() if k == "generated"]
        if data:
            self.data_combo.set_layer(data[0])
        if gen:
            self.model_combo.set_layer(gen[-1])

    # -- grid view ------------------------------------------------------------------------------
    def side_by_side(self, on: bool = True) -> None:
        """Grid view with only the two chosen layers visible (toggle off restores visibility)."""
        canvas = getattr(self.viewer, "canvas", None)
        grid = getattr(canvas, "grid", None) or self.viewer.grid  # napari ≥ 0.9: viewer.canvas.grid
        if on:
            a, b = self.data_combo.layer(), self.model_combo.layer()
            if a is None or b is None:
                self.show_error("choose a data layer and a generated layer first")
                self.grid_button.setChecked(False)
                return
            self._hidden = [ly for ly in self.viewer.layers if ly.visible and ly not in (a, b)]
            for ly in self._hidden:
                ly.visible = False
            a.visible = b.visible = True
            grid.enabled = True
            try:
                grid.stride = 1
                grid.shape = (
                    (1, 2) if len([ly for ly in self.viewer.layers if ly.visible]) else (-1, -1)
                )
            except Exception:  # noqa: BLE001 - grid API details vary across napari versions
                pass
        else:
            grid.enabled = False
            for ly in self._hidden:
                if ly in self.viewer.layers:
                    ly.visible = True
            self._hidden = []

    # -- compare --------------------------------------------------------------------------------
    def run(self) -> Any | None:
        """Describe and compare in a worker (returns the worker, or None after a message)."""
        if self.busy:
            return None
        a, b = self.data_combo.layer(), self.model_combo.layer()
        if a is None or b is None:
            self.show_error(
                "need two Labels layers: the data, and a volume from the Generate widget"
            )
            return None
        if a is b:
            self.show_error("data and generated layer are the same layer; pick two different ones")
            return None
        try:
            da, db = layer_label_image(a), layer_label_image(b)
        except ValueError as exc:
            self.show_error(error_text(exc))
            return None
        if self.full_3d.isChecked() and (da.ndim != 3 or db.ndim != 3):
            flat = a.name if da.ndim != 3 else b.name
            self.show_error(
                f"tortuosity and constrictivity need 3D volumes, but {flat!r} is 2D; untick "
                "'tortuosity and constrictivity' or pick two 3D layers"
            )
            return None
        w = self.make_worker(
            compare_job, da, db, self.full_3d.isChecked(), _progress={"desc": "GenCal: comparing"}
        )
        w.returned.connect(self._on_result)
        w.started.connect(lambda: self.run_button.setEnabled(False))
        w.finished.connect(lambda: self.run_button.setEnabled(True))
        self.run_button.setEnabled(False)
        self.show_message("computing descriptors…")
        return self.start(w, "comparing data and model")

    def _on_result(self, result: dict[str, Any]) -> None:
        self.result = result
        verdict = result["comparison"].verdict
        if verdict is not None:
            self.verdict_label.setText(("✔ " if verdict.fits else "✘ ") + verdict.line)
            color = "#2a9d8f" if verdict.fits else "#e63946"
            self.verdict_label.setStyleSheet(f"color: {color}; font-weight: bold;")
            self.verdict_label.setToolTip(verdict.table())
            self.verdict_label.setVisible(True)
        self._fill_table(result["rows"])
        self._plot(result)
        self.report_button.setEnabled(True)
        self.show_message("comparison done")

    def _fill_table(self, rows: list[tuple]) -> None:
        self.table.setRowCount(len(rows))
        for i, (name, d, m, rel) in enumerate(rows):
            cells = [name, _fmt(d), _fmt(m), "–" if rel is None else f"{100 * float(rel):+.1f} %"]
            for j, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if j == 3 and rel is not None and np.isfinite(float(rel)):
                    a = abs(float(rel))
                    it.setForeground(
                        QColor("#2a9d8f" if a < 0.1 else "#f2c14e" if a < 0.25 else "#e63946")
                    )
                self.table.setItem(i, j, it)
        self.table.resizeColumnsToContents()

    def _plot(self, result: dict[str, Any]) -> None:
        """Chord-length distributions along x (per phase) and TPPFs; data solid, model dashed."""
        c = self.canvas
        c.clear()
        ax_cld, ax_tppf = c.axes
        ex = result["comparison"].extras
        names = ex.get("phase_names") or {}
        for key, style in (("cld_data", "-"), ("cld_model", "--")):
            cld = ex.get(key) or {}
            labels = sorted({lab for lab, _ in cld}, key=str)
            for p, lab in enumerate(labels):
                direc = "x" if (lab, "x") in cld else next(d for (lb, d) in cld if lb == lab)
                x, y = cld[(lab, direc)]
                name = names.get(lab, lab) if style == "-" else None
                ax_cld.plot(x, y, style, color=PHASE_COLORS[p % 8], lw=1.0, label=name)
        r = ex.get("tppf_r")
        for key, style in (("tppf_data", "-"), ("tppf_model", "--")):
            curves = ex.get(key)
            if curves is None or np.ndim(curves) != 3:
                continue
            rr = np.arange(curves.shape[-1]) if r is None else np.asarray(r)[: curves.shape[-1]]
            p = 0
            for i in range(curves.shape[0]):
                for j in range(i, curves.shape[0]):
                    lab = f"C{i + 1}{j + 1}" if style == "-" else None
                    ax_tppf.plot(
                        rr, curves[i, j], style, color=PAIR_COLORS[p % 7], lw=1.0, label=lab
                    )
                    p += 1
        for tag, style in (("data", "-"), ("model", "--")):
            ax_tppf.plot([], [], style, color="0.6", label=tag)
        unit = result["comparison"].data.get("unit", "voxel")
        ax_cld.set_xlabel(f"chord length ({unit})")
        ax_cld.set_ylabel("probability")
        ax_cld.set_xlim(left=0)
        ax_tppf.set_xlabel(f"r ({unit})")
        ax_tppf.set_ylabel("C_ij(r)")
        c.legend(ax_cld)
        c.legend(ax_tppf, ncol=2)
        c.redraw()

    def export_report(self, path: str | None = None) -> str | None:
        """Write the comparison report (core ``write_report``); never overwrites."""
        if self.result is None:
            self.show_error("nothing to report yet: press Compare first")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export report", "comparison.md", "Markdown (*.md);;All files (*)"
            )
            if not path:
                return None
        if Path(path).exists():
            self.show_error(f"{path} exists; choose another name (nothing overwritten)")
            return None
        try:
            from ..core.compare import write_report

            out = write_report(self.result["comparison"], path)
        except Exception as exc:  # noqa: BLE001 - show, don't raise
            self.show_error(f"could not write the report: {error_text(exc)}")
            return None
        self.show_message(f"wrote {out or path}")
        return str(out or path)
