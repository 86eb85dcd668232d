"""Shared Qt pieces of the widgets: layer pickers, a message line, and worker bookkeeping.

Every widget derives from :class:`GencalWidget`: it starts core calls in napari thread workers,
shows their errors (napari notification + the widget's message line) instead of raising, disables
its Run button while a worker runs, and stops its workers when the viewer closes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ._layers import MAX_LABEL_VALUES, distinct_values, labels_layer_tuple, unique_name

__all__ = [
    "LayerCombo",
    "LayerList",
    "GencalWidget",
    "convert_image_layer",
    "error_text",
    "stream_from_thread",
]


def error_text(exc: BaseException) -> str:
    """A one-line message for a worker's exception (type name kept for unexpected errors)."""
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError | FileExistsError | FileNotFoundError):
        return msg
    return f"{type(exc).__name__}: {msg}"


def stream_from_thread(work: Callable[[Callable[[Any], None]], Any]) -> Any:
    """Run ``work(report)`` in a helper thread; yield what it reports, return what it returns.

    For core calls that report progress through a callback from their own threads (a Dask
    client, a fusion loop): a napari generator worker wraps this to stream the records to the GUI
    thread. An exception of ``work`` is raised here.
    """
    from queue import Empty, SimpleQueue
    from threading import Thread

    q: SimpleQueue = SimpleQueue()
    out: dict[str, Any] = {}
    done = object()

    def run() -> None:
        try:
            out["result"] = work(q.put)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            out["error"] = exc
        q.put(done)

    th = Thread(target=run, daemon=True)
    th.start()
    while True:
        try:
            item = q.get(timeout=0.5)
        except Empty:
            continue
        if item is done:
            break
        yield item
    th.join()
    if "error" in out:
        raise out["error"]
    return out["result"]


def _layer_kinds(layer_types: Sequence[str]) -> tuple[type, ...]:
    import napari.layers as nl

    return tuple(getattr(nl, t) for t in layer_types)


class _LayerWatcher:
    """Calls ``refresh`` whenever layers are added, removed, reordered or renamed."""

    def _watch(self, viewer: Any, refresh: Callable[[], None]) -> None:
        self._refresh_cb = refresh
        ev = viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            if hasattr(ev, name):
                getattr(ev, name).connect(self._on_layers_changed)
        for layer in viewer.layers:
            layer.events.name.connect(self._on_name)

    def _on_layers_changed(self, event: Any = None) -> None:
        if event is not None and getattr(event, "type", "") == "inserted":
            try:
                event.value.events.name.connect(self._on_name)
            except Exception:  # noqa: BLE001
                pass
        self._refresh_cb()

    def _on_name(self, event: Any = None) -> None:
        self._refresh_cb()


class LayerCombo(QComboBox, _LayerWatcher):
    """A combo box of the viewer's layers of the given types, kept up to date.

    Parameters
    ----------
    viewer : napari.Viewer
    layer_types : sequence of str
        napari layer class names, e.g. ``("Labels", "Image")``.
    """

    def __init__(self, viewer: Any, layer_types: Sequence[str] = ("Labels",), parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self._kinds = _layer_kinds(layer_types)
        self._watch(viewer, self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Re-list the layers, keeping the current choice when it still exists."""
        current = self.currentText()
        names = [ly.name for ly in self.viewer.layers if isinstance(ly, self._kinds)]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        self.blockSignals(False)
        if current not in names:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self) -> Any | None:
        """The chosen layer, or None."""
        name = self.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def set_layer(self, name: str) -> None:
        """Select a layer by name (no-op if absent)."""
        i = self.findText(name)
        if i >= 0:
            self.setCurrentIndex(i)


class LayerList(QListWidget, _LayerWatcher):
    """A checkable list of layers (several can be picked, e.g. to overlay their curves)."""

    def __init__(self, viewer: Any, layer_types: Sequence[str] = ("Labels",), parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self._kinds = _layer_kinds(layer_types)
        self.setMaximumHeight(90)
        self._watch(viewer, self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Re-list layers; new layers start checked only if nothing is checked yet."""
        checked = set(self.checked_names())
        names = [ly.name for ly in self.viewer.layers if isinstance(ly, self._kinds)]
        self.clear()
        for n in names:
            it = QListWidgetItem(n)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = n in checked or (not checked and n == names[-1])
            it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.addItem(it)

    def checked_names(self) -> list[str]:
        """Names of the checked layers, in list order."""
        return [
            self.item(i).text()
            for i in range(self.count())
            if self.item(i).checkState() == Qt.CheckState.Checked
        ]

    def set_checked(self, names: Sequence[str]) -> None:
        """Check exactly ``names``."""
        for i in range(self.count()):
            it = self.item(i)
            it.setCheckState(
                Qt.CheckState.Checked if it.text() in names else Qt.CheckState.Unchecked
            )

    def layers(self) -> list[Any]:
        """The checked layers."""
        return [self.viewer.layers[n] for n in self.checked_names() if n in self.viewer.layers]


def convert_image_layer(viewer: Any, layer: Any) -> Any:
    """Add a display-coded Labels copy of an Image layer with few distinct values.

    Returns the new layer. Raises ``ValueError`` (with the fix) when the image looks greyscale.
    """
    data = np.asarray(layer.data)
    vals = distinct_values(data, MAX_LABEL_VALUES)
    if vals is None or vals.size < 2:
        raise ValueError(
            f"layer {layer.name!r} is a greyscale image (non-integer values or more than "
            f"{MAX_LABEL_VALUES} distinct values), not a segmentation; segment it first "
            "(e.g. Layers ▸ Segment, or skimage.filters.threshold_multiotsu) and use the Labels "
            "layer"
        )
    scale = tuple(float(s) for s in np.asarray(layer.scale))
    vs = scale if any(abs(s - 1.0) > 1e-12 for s in scale) else None
    codes, kw, _ = labels_layer_tuple(
        data,
        unique_name([ly.name for ly in viewer.layers], f"{layer.name} labels"),
        voxel_size=vs,
        source=f"converted from image layer {layer.name!r}",
        kind="data",
    )
    return viewer.add_labels(codes, **kw)


class GencalWidget(QWidget):
    """Base class: message line, worker tracking, error display, stop-on-close.

    Subclasses build their form into ``self.form_layout`` (a QVBoxLayout) and call
    :meth:`start` with a napari worker.
    """

    def __init__(self, viewer: Any, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.workers: list[Any] = []
        self.closed = False  # set when the viewer/dock closes: results are then dropped
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.form_layout = QVBoxLayout()
        outer.addLayout(self.form_layout, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.message)
        self._install_close_hook()

    # -- messages -------------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        """Show an informational line (also in napari's status bar)."""
        self.message.setStyleSheet("")
        self.message.setText(text)
        try:
            self.viewer.status = text
        except Exception:  # noqa: BLE001
            pass

    def show_error(self, text: str) -> None:
        """Show a problem in the widget and as a napari notification (never raises)."""
        self.message.setStyleSheet("color: #e63946;")
        self.message.setText(text)
        try:
            from napari.utils.notifications import show_error

            show_error(text)
        except Exception:  # noqa: BLE001 - notifications are best effort
            pass

    def show_warning(self, text: str) -> None:
        """A warning about the data or the run: a napari notification that stays readable while
        the message line moves on (never raises)."""
        self.message.setText(text)
        try:
            from napari.utils.notifications import show_warning

            show_warning(text)
        except Exception:  # noqa: BLE001 - notifications are best effort
            pass

    # -- workers --------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether one of this widget's workers is queued or running (until ``finished``)."""
        return bool(self.workers)

    def start(self, worker: Any, description: str = "") -> Any:
        """Track, connect and start a worker; errors are shown, not raised."""
        self.workers.append(worker)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(lambda w=worker: self._forget(w))
        worker.start()
        return worker

    def _on_worker_error(self, exc: BaseException) -> None:
        self.show_error(error_text(exc))

    def _forget(self, worker: Any) -> None:
        if worker in self.workers:
            self.workers.remove(worker)

    @staticmethod
    def make_worker(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``napari.qt.threading.create_worker`` whose errors this widget shows itself.

        napari would re-raise a worker's exception in the GUI thread and pop up a traceback; a
        user error (bad input) deserves one clear line instead, so both are switched off here and
        :meth:`start` connects :meth:`show_error`. napari still registers the worker as a task
        (the window asks before closing and quits it).
        """
        from napari.qt.threading import create_worker

        worker = create_worker(func, *args, _ignore_errors=True, **kwargs)
        relay = getattr(worker, "_relay_error", None)
        if relay is not None:
            try:
                worker.errored.disconnect(relay)
            except (TypeError, RuntimeError, ValueError):
                pass
        return worker

    def stop_workers(self) -> None:
        """The viewer or dock is closing: add no more layers, ask every worker to quit."""
        self.closed = True
        for w in list(self.workers):
            try:
                w.quit()
            except RuntimeError:  # already deleted Qt object
                pass

    def _install_close_hook(self) -> None:
        # Closing the viewer must stop background work, whichever way the window goes away.
        import weakref

        workers = self.workers
        ref = weakref.ref(self)

        def _stop(*_: Any) -> None:
            me = ref()
            try:
                if me is not None:
                    me.stop_workers()  # subclasses also cancel their engines
                    return
            except RuntimeError:  # the Qt side is already deleted
                pass
            for w in list(workers):
                try:
                    w.quit()
                except RuntimeError:
                    pass

        self._close_hook = _stop
        try:
            qt_window = self.viewer.window._qt_window
            qt_window.destroyed.connect(_stop)
            from qtpy.QtCore import QObject

            class _Filter(QObject):
                def eventFilter(self, obj, ev):  # noqa: N802 - Qt API
                    from qtpy.QtCore import QEvent

                    if ev.type() == QEvent.Type.Close:
                        _stop()
                    return False

            self._close_filter = _Filter(self)
            qt_window.installEventFilter(self._close_filter)
        except Exception:  # noqa: BLE001 - headless viewer without a window
            pass
        try:
            from qtpy.QtWidgets import QApplication

            app = QApplication.instance()
            if app is not None:
                app.aboutToQuit.connect(_stop)
        except Exception:  # noqa: BLE001
            pass

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """Stop workers when the dock widget is closed."""
        self.stop_workers()
        super().closeEvent(event)


def hbox(*widgets: QWidget, stretch_last: bool = False) -> QHBoxLayout:
    """A horizontal layout of ``widgets``."""
    lay = QHBoxLayout()
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    if stretch_last:
        lay.addStretch(1)
    return lay


def button(text: str, slot: Callable[[], Any], tooltip: str = "") -> QPushButton:
    """A push button connected to ``slot``."""
    b = QPushButton(text)
    b.clicked.connect(lambda *_: slot())
    if tooltip:
        b.setToolTip(tooltip)
    return b
