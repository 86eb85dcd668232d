"""The session's models: calibrated or loaded models that every widget can pick.

A module-level store (one per Python process) rather than widget attributes, so the calibration
widget, the model-file reader and the generator/compare widgets share results without knowing each
other. Qt-free; widgets listen to :attr:`SessionStore.changed` (a psygnal signal, emitted in the
thread that changed the store — the GUI thread, because only widgets and the reader write here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

__all__ = ["SessionModel", "SessionStore", "session"]


@dataclass
class SessionModel:
    """A model known to this session.

    Attributes
    ----------
    name : str
        Unique display name (e.g. ``"calibrated from sofc (seed 0)"``).
    model : Any
        The :class:`napari_gencal.core.model.ExcursionModel` (plain parameters, no tensors on GPU).
    source : str
        Where it came from (a layer name or a file path).
    info : dict
        Anything worth showing (losses, epochs, file path).
    """

    name: str
    model: Any
    source: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class SessionStore:
    """Ordered name → :class:`SessionModel` mapping with a change signal."""

    changed = Signal()

    def __init__(self) -> None:
        self._models: dict[str, SessionModel] = {}

    def add(self, name: str, model: Any, source: str = "", **info: Any) -> str:
        """Store a model under a unique name (``name``, ``name [2]`` …); return the name used."""
        from ._layers import unique_name

        used = unique_name(self._models, name)
        self._models[used] = SessionModel(used, model, source, dict(info))
        self.changed.emit()
        return used

    def get(self, name: str) -> SessionModel | None:
        """The entry called ``name``, or None."""
        return self._models.get(name)

    def names(self) -> list[str]:
        """Names, newest last."""
        return list(self._models)

    def latest(self) -> SessionModel | None:
        """The most recently added entry, or None."""
        return next(reversed(self._models.values()), None) if self._models else None

    def remove(self, name: str) -> None:
        """Forget a model (no error if absent)."""
        if self._models.pop(name, None) is not None:
            self.changed.emit()

    def clear(self) -> None:
        """Forget every model (used by tests)."""
        self._models.clear()
        self.changed.emit()

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models


#: The one store of this Python session.
session = SessionStore()
