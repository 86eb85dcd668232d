"""The Cell panel: data and twin layers → discharge curves side by side, in a worker; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal._widgets._layers import labels_layer_tuple

TIMEOUT = 180_000  # ms; generous for a loaded 2-core machine, never a timing assertion
pytestmark = pytest.mark.gui


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _volume(seed: int) -> np.ndarray:
    from napari_gencal.core.generate import generate
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import PhaseMap

    m = ExcursionModel.default("high", m=6, fractions=(0.45, 0.40, 0.15), width=1.8,
                               phase_map=PhaseMap((0, 85, 170)))  # fmt: skip
    return generate(m, (32, 32, 32), seed=seed, device="cpu")


def test_cell_widget_draws_data_and_twin_side_by_side(viewer, qtbot):
    pytest.importorskip("pybamm")
    from napari_gencal._widgets import CellWidget

    for name, seed in (("data", 1), ("twin", 2)):
        data, kw, _ = labels_layer_tuple(_volume(seed), name, labels=[0, 85, 170])
        viewer.add_labels(data, **kw)
    w = CellWidget(viewer)
    w.data_combo.set_layer("data")
    w.twin_combo.set_layer("twin")
    w.voxel_size.setText("1.5um")
    w.rates.setText("1")
    assert w.run() is not None
    qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.result is not None, timeout=TIMEOUT)
    assert [r.name for r in w.result.runs] == ["data: data", "twin: twin"]
    assert all(len(ax.lines) == 1 for ax in w.canvas.axes)  # one curve per panel and rate
    assert w.table.rowCount() == 2 and w.table.item(1, 1).text() == "1C"
    assert "cells done" in w.message.text()
    # bad input: a label that is not there is refused with a message before anything starts
    w.active.setText("86")
    assert w.run() is None and "not phases of the layers" in w.message.text()
    w.active.setText("85")
    w.voxel_size.setText("0.4 parsecs")
    assert w.run() is None and "unknown unit" in w.message.text()
