"""npe2 sample data: the bundled three-phase samples as display-coded Labels layers."""

from __future__ import annotations

from typing import Any

from ._widgets._layers import labels_layer_tuple
from .samples import load_sample

__all__ = ["sample_2d", "sample_3d", "sample_layer"]


def sample_layer(name: str, layer_name: str) -> list[tuple[Any, dict[str, Any], str]]:
    """One bundled sample as a napari layer-data list."""
    img = load_sample(name)
    return [
        labels_layer_tuple(
            img.data,
            layer_name,
            labels=img.phase_map.labels,
            phase_names=img.phase_map.names,
            voxel_size=img.voxel_size,
            unit=img.unit,
            source=img.source,
            kind="data",
        )
    ]


def sample_2d() -> list[tuple[Any, dict[str, Any], str]]:
    """Three-phase SOFC anode section, 256×256 (labels 0/1/2)."""
    return sample_layer("sofc_2d", "SOFC anode 2D")


def sample_3d() -> list[tuple[Any, dict[str, Any], str]]:
    """Three-phase Li-ion cathode volume, 128³ (labels 0/85/170)."""
    return sample_layer("cathode_3d", "cathode 3D")
