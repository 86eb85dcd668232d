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

    Lengths are compared in voxels (the generated voxel is the data's pixel by construction). A 2D
    data image is compared with the z-sections of a 3D generated volume. ``full_3d`` adds geodesic
    tortuosity and constrictivity when both are 3D (slower).
    """
    from ..core.descriptors import describe
    from ..core.phases import to_indices
    from ..core.tppf import tppf_of_labels

    pd, pm = data_img.phase_map, model_img.phase_map
    if tuple(pd.labels) != tuple(pm.labels):
        raise ValueError(
            f"the layers have different phase labels ({list(pd.labels)} vs {list(pm.labels)}); "
            "compare a model with the data it was calibrated on"
        )
    di, mi = to_indices(data_img.data, pd), to_indices(model_img.data, pm)
    base = ("volume_fraction", "specific_surface_area", "mean_chord_length")
    base = base + ("chord_length_distribution",)
    both_3d = di.ndim == 3 and mi.ndim == 3
    include = base + (("geodesic_tortuosity", "constrictivity") if (full_3d and both_3d) else ())
    dd = describe(di, pd, include=include)
    if di.ndim == 2 and mi.ndim == 3:
        md = describe(mi, pm, include=base, sections=True)  # planar sections vs 2D data
    else:
        md = describe(mi, pm, include=include)
    axis_d = None if di.ndim == 2 else "z"
    axis_m = None if mi.ndim == 2 else "z"
    td = tppf_of_labels(di, pd, axis=axis_d, device="cpu", directional=False)
    r_max = int(np.asarray(td.r)[-1])
    tm = tppf_of_labels(mi, pm, axis=axis_m, r_max=r_max, device="cpu", directional=False)
    comp = None
    try:
        from ..core.compare import compare
    except ImportError:  # core.compare not installed yet: the table is built from the dicts
        compare = None
    if compare is not None:
        comp = compare(dd, md)
    rows = comparison_rows(comp) if comp is not None else []
    if not rows:
        rows = descriptor_rows(dd, md)
    return {
        "comparison": comp,
        "data": dd,
        "model": md,
        "rows": rows,
        "tppf_data": np.asarray(td.curves),
        "tppf_model": np.asarray(tm.curves),
    }


def descriptor_rows(dd: dict[str, Any], md: dict[str, Any]) -> list[tuple]:
    """Table rows ``(name, data, model, relative error)`` from two ``describe`` dicts."""
    rows: list[tuple] = []
    for label, dp in dd.get("phases", {}).items():
        mp = md.get("phases", {}).get(label)
        if mp is None:
            continue
        name = dp.get("name", label)
        for key, short in (
            ("volume_fraction", "V_V"),
            ("specific_surface_area", "S_V"),
            ("mean_chord_length", "mean chord"),
            ("geodesic_tortuosity", "tortuosity"),
            ("constrictivity", "constrictivity"),
        ):
            dv, mv = dp.get(key), mp.get(key)
            if dv is None or mv is None:
                continue
            if isinstance(dv, dict):
                for ax, d_ax in dv.items():
                    if isinstance(mv, dict) and ax in mv:
                        rows.append((f"{name}: {short} {ax}", d_ax, mv[ax], _rel(d_ax, mv[ax])))
            else:
                rows.append((f"{name}: {short}", dv, mv, _rel(dv, mv)))
    return rows


def _rel(d: Any, m: Any) -> float | None:
    try:
        d, m = float(d), float(m)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(d) and np.isfinite(m)) or d == 0:
        return None
    return (m - d) / abs(d)


def comparison_rows(comp: Any) -> list[tuple[str, float | None, float | None, float | None]]:
    """``(descriptor, data, model, relative error)`` rows of a Comparison (any of its shapes)."""
    rows = getattr(comp, "rows", None)
    if callable(rows):
        rows = rows()
    out = []
    for row in rows or []:
        if isinstance(row, dict):
            name = row.get("name") or row.get("descriptor") or row.get("key")
            out.append((str(name), row.get("data"), row.get("model"), row.get("rel_error")))
        else:
            name, d, m, *rest = row
            out.append((str(name), d, m, rest[0] if rest else None))
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
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["descriptor", "data", "model", "rel. error"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(160)
        self.form_layout.addWidget(self.table)
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
        grid = self.viewer.grid
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
        for desc, style, tag in ((result["data"], "-", "data"), (result["model"], "--", "model")):
            for p, (label, ph) in enumerate(desc.get("phases", {}).items()):
                cld = (ph.get("chord_length_distribution") or {}).get("x")
                x, y = _xy(cld) if cld is not None else (None, None)
                if x is not None:
                    lab = str(ph.get("name", label)) if tag == "data" else None
                    ax_cld.plot(x, y, style, color=PHASE_COLORS[p % 8], lw=1.0, label=lab)
        for curves, style in ((result.get("tppf_data"), "-"), (result.get("tppf_model"), "--")):
            if curves is None or np.ndim(curves) != 3:
                continue
            p = 0
            for i in range(curves.shape[0]):
                for j in range(i, curves.shape[0]):
                    lab = f"C{i + 1}{j + 1}" if style == "-" else None
                    ax_tppf.plot(curves[i, j], style, color=PAIR_COLORS[p % 7], lw=1.0, label=lab)
                    p += 1
        for tag, style in (("data", "-"), ("model", "--")):
            ax_tppf.plot([], [], style, color="0.6", label=tag)
        ax_cld.set_xlabel("chord length along x (voxels)")
        ax_cld.set_ylabel("probability")
        ax_cld.set_xlim(left=0)
        ax_tppf.set_xlabel("r (voxels)")
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


def _xy(val: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(x, y) arrays from a distribution given as dict/tuple/array."""
    if isinstance(val, dict):
        for kx, ky in (
            ("length", "probability"),
            ("x", "y"),
            ("length", "density"),
            ("r", "value"),
        ):
            if kx in val and ky in val:
                return np.asarray(val[kx]), np.asarray(val[ky])
        return None, None
    arr = np.asarray(val, dtype=float)
    if arr.ndim == 1:
        return np.arange(arr.size), arr
    if arr.ndim == 2 and 2 in arr.shape:
        return (arr[0], arr[1]) if arr.shape[0] == 2 else (arr[:, 0], arr[:, 1])
    return None, None
