"""TPPF widget: two-point coverage probability functions of one or several label layers.

Pick Labels layers (2D images, or 3D stacks read as sections along a slice axis, or as volumes),
compute their TPPFs in a thread worker (core: :func:`napari_gencal.core.tppf.tppf_of_labels`), see
all pair curves C_ij(r), i ≤ j, overlaid on one themed plot, and export them as CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QPushButton, QSpinBox

from ._base import GencalWidget, LayerList, button, convert_image_layer, hbox
from ._canvas import PAIR_COLORS, ThemedCanvas
from ._layers import layer_label_image

__all__ = ["TPPFWidget", "compute_tppf"]

AXES = ("z", "y", "x", "3D")
LINESTYLES = ("-", "--", ":", "-.")


def compute_tppf(image: Any, axis: str | None, r_max: int | None) -> Any:
    """Core call run in the worker: the TPPF result of one LabelImage (numpy inside)."""
    from ..core.tppf import tppf_of_labels

    return tppf_of_labels(image, image.phase_map, axis=axis, r_max=r_max)


def _curves(result: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    r = np.asarray(result.r)
    curves = result.curves
    curves = np.asarray(curves.detach().cpu() if hasattr(curves, "detach") else curves)
    names = list(getattr(result, "names", None) or getattr(result, "phase_names", None) or [])
    if not names:
        names = [f"phase {i + 1}" for i in range(curves.shape[0])]
    return r, curves, names


class TPPFWidget(GencalWidget):
    """Compute and overlay TPPFs of label layers; export CSV.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any, parent=None):
        super().__init__(napari_viewer, parent)
        self.results: dict[str, Any] = {}
        form = QFormLayout()
        self.layers = LayerList(napari_viewer, ("Labels", "Image"))
        self.layers.itemChanged.connect(lambda *_: self._update_convert())
        form.addRow("Layers", self.layers)
        self.convert_button = button(
            "Convert image to labels", self._convert, "Make a Labels copy of an Image layer"
        )
        self.convert_button.setVisible(False)
        form.addRow(self.convert_button)
        self.axis = QComboBox()
        self.axis.addItems(AXES)
        self.axis.setToolTip(
            "3D stacks: the axis normal to the 2D sections (z: the x–y planes), or 3D for the "
            "full 3D estimator. Ignored for 2D images."
        )
        form.addRow("Slice axis", self.axis)
        self.r_max = QSpinBox()
        self.r_max.setRange(0, 1000)
        self.r_max.setSpecialValueText("auto")
        form.addRow("r max (voxels)", self.r_max)
        self.run_button = QPushButton("Compute")
        self.run_button.clicked.connect(self.run)
        self.export_button = button("Export CSV…", self.export_csv)
        self.export_button.setEnabled(False)
        form.addRow(hbox(self.run_button, self.export_button))
        self.form_layout.addLayout(form)
        self.canvas = ThemedCanvas(napari_viewer, height=3.0)
        self.form_layout.addWidget(self.canvas)
        self._update_convert()

    # -- inputs ---------------------------------------------------------------------------------
    def _image_layers(self) -> list[Any]:
        from napari.layers import Image

        return [ly for ly in self.layers.layers() if isinstance(ly, Image)]

    def _update_convert(self) -> None:
        self.convert_button.setVisible(bool(self._image_layers()))

    def _convert(self) -> None:
        for ly in self._image_layers():
            try:
                new = convert_image_layer(self.viewer, ly)
            except ValueError as exc:
                self.show_error(str(exc))
                continue
            checked = [n for n in self.layers.checked_names() if n != ly.name] + [new.name]
            self.layers.set_checked(checked)
            self.show_message(f"converted {ly.name!r} to Labels layer {new.name!r}")
        self._update_convert()

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> Any | None:
        """Start the worker over the checked layers; returns the worker (or None)."""
        if self.busy:
            return None
        chosen = self.layers.layers()
        if not chosen:
            self.show_error(
                "no layer chosen: open a label image (File ▸ Open, or File ▸ Open Sample ▸ "
                "napari-gencal) and tick it in the list"
            )
            return None
        if self._image_layers():
            self.show_error(
                "Image layers are not segmentations; press 'Convert image to labels' (few "
                "distinct values) or segment the image first"
            )
            return None
        jobs = []
        axis_txt = self.axis.currentText()
        for ly in chosen:
            try:
                img = layer_label_image(ly)
            except ValueError as exc:
                self.show_error(str(exc))
                return None
            axis = None if (img.ndim == 2 or axis_txt == "3D") else axis_txt
            jobs.append((ly.name, img, axis))
        r_max = self.r_max.value() or None

        def _gen():
            for name, img, axis in jobs:
                res = compute_tppf(img, axis, r_max)
                yield name, res, _curves(res)

        worker = self.make_worker(_gen, _progress={"total": len(jobs), "desc": "TPPF"})
        worker.yielded.connect(self._on_result)
        worker.started.connect(lambda: self.run_button.setEnabled(False))
        worker.finished.connect(lambda: self.run_button.setEnabled(True))
        worker.returned.connect(lambda *_: self.show_message("TPPF done"))
        self.results = {}
        self.show_message("computing TPPF…")
        self.run_button.setEnabled(False)
        return self.start(worker, "TPPF")

    def _on_result(self, item: tuple[str, Any, tuple]) -> None:
        name, res, curves = item
        self.results[name] = (res, curves)
        self.export_button.setEnabled(True)
        self.plot()

    def plot(self) -> None:
        """Overlay every computed layer's pair curves (colour: pair, line style: layer)."""
        self.canvas.clear()
        ax = self.canvas.ax
        for li, (name, (_, (r, curves, _names))) in enumerate(self.results.items()):
            k = curves.shape[0]
            pair = 0
            for i in range(k):
                for j in range(i, k):
                    lab = f"C{i + 1}{j + 1}" if li == 0 else None
                    ax.plot(
                        r,
                        curves[i, j],
                        LINESTYLES[li % len(LINESTYLES)],
                        color=PAIR_COLORS[pair % len(PAIR_COLORS)],
                        lw=1.2,
                        label=lab,
                    )
                    pair += 1
            ax.plot([], [], LINESTYLES[li % len(LINESTYLES)], color="0.6", label=name)
        ax.set_xlabel("r (voxels)")
        ax.set_ylabel("C_ij(r)")
        self.canvas.legend(ax, ncol=2)
        self.canvas.redraw()

    # -- export ---------------------------------------------------------------------------------
    def export_csv(self, path: str | None = None) -> list[str]:
        """Write one CSV per computed layer (``<path>`` or ``<stem>_<layer>.csv``)."""
        if not self.results:
            self.show_error("nothing to export yet: press Compute first")
            return []
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export TPPF CSV", "tppf.csv", "CSV (*.csv)"
            )
            if not path:
                return []
        p = Path(path)
        written = []
        for name, (res, _curves) in self.results.items():
            target = p if len(self.results) == 1 else p.with_name(f"{p.stem}_{_safe(name)}.csv")
            if target.exists():
                self.show_error(f"{target} exists; choose another name (nothing overwritten)")
                return written
            try:
                res.to_csv(target)
            except Exception as exc:  # noqa: BLE001 - show, don't raise
                self.show_error(f"could not write {target}: {exc}")
                return written
            written.append(str(target))
        self.show_message("wrote " + ", ".join(written))
        return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "layer"
