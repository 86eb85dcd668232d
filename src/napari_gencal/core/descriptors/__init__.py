"""Structural descriptors of phase-index images (method.md §6–7).

All functions take phase indices ``0 .. k-1`` (2D image, 3D volume, or a stack of 2D sections with
``sections=True``) and return values in voxels, or in physical units when ``voxel_size`` is given.
"""

from __future__ import annotations

from ._common import DescriptorError
from .chords import ChordLengthDistribution, chord_length_distribution, mean_chord_length
from .surface import (
    SURFACE_METHODS,
    boundary_length_density,
    crofton_directions,
    face_count_surface,
    specific_surface_area,
)
from .volume import volume_fraction

__all__ = [
    "ChordLengthDistribution",
    "chord_length_distribution",
    "mean_chord_length",
    "DescriptorError",
    "SURFACE_METHODS",
    "boundary_length_density",
    "crofton_directions",
    "face_count_surface",
    "specific_surface_area",
    "volume_fraction",
]
