"""napari dock widgets of napari-gencal.

The widget classes are imported lazily (PEP 562 ``__getattr__``) so that importing this package, or
its Qt-free helpers (:mod:`._layers`, :mod:`._session`, :mod:`._prefs`), costs nothing and never
imports torch; torch is imported only inside the thread workers that call the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "TPPFWidget",
    "CalibrationWidget",
    "GeneratorWidget",
    "CompareWidget",
    "SweepWidget",
    "FuseWidget",
    "CellWidget",
]

_WHERE = {
    "TPPFWidget": "._tppf",
    "CalibrationWidget": "._calibration",
    "GeneratorWidget": "._generator",
    "CompareWidget": "._compare",
    "SweepWidget": "._sweep",
    "FuseWidget": "._fuse",
    "CellWidget": "._cell",
}

if TYPE_CHECKING:  # pragma: no cover
    from ._calibration import CalibrationWidget
    from ._cell import CellWidget
    from ._compare import CompareWidget
    from ._fuse import FuseWidget
    from ._generator import GeneratorWidget
    from ._sweep import SweepWidget
    from ._tppf import TPPFWidget


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
