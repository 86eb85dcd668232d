"""napari-gencal: calibrated excursion-set models (digital twins) of three-phase microstructures.

Importing this package is cheap: torch, napari and Qt are imported only by the modules that need
them. The public Python API lives in :mod:`napari_gencal.api`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-gencal")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
