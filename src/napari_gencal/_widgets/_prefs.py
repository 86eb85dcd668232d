"""Plugin preferences: default device, default seed, maximum voxels of a generated volume.

Declared in ``napari.yaml`` under ``contributions.configurations.defaults`` (napari ≥ 0.9 shows them
in File ▸ Preferences and saves them to ``<napari config dir>/napari-gencal.yaml``). Outside napari,
or if napari's plugin settings are unavailable, the built-in defaults below are used.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Prefs", "DEFAULTS", "get_prefs"]

PLUGIN = "napari-gencal"
SECTION = "defaults"


@dataclass(frozen=True)
class Prefs:
    """A snapshot of the preferences."""

    default_device: str = "auto"
    default_seed: int = 0
    max_voxels: int = 512**3


DEFAULTS = Prefs()


def get_prefs() -> Prefs:
    """Current preferences (falls back to :data:`DEFAULTS` field by field)."""
    try:
        from napari.settings import get_plugin_settings

        section = getattr(get_plugin_settings(PLUGIN), SECTION)
    except Exception:  # noqa: BLE001 - no napari settings (plain Python, old napari): defaults
        return DEFAULTS
    return Prefs(
        default_device=str(getattr(section, "default_device", DEFAULTS.default_device)),
        default_seed=int(getattr(section, "default_seed", DEFAULTS.default_seed)),
        max_voxels=int(getattr(section, "max_voxels", DEFAULTS.max_voxels)),
    )
