"""Structural descriptors of phase-index images (method.md §6–7).

All functions take phase indices ``0 .. k-1`` (2D image, 3D volume, or a stack of 2D sections with
``sections=True``) and return values in voxels, or in physical units when ``voxel_size`` is given.
See ``docs/descriptors.md`` for the estimators and their caveats.
"""

from __future__ import annotations

from ._common import DescriptorError
from .chords import ChordLengthDistribution, chord_length_distribution, mean_chord_length
from .composite import accessible_active_material, composite_conductivity, electrode_tortuosity
from .constrictivity import (
    Constrictivity,
    constrictivity,
    intrusion_distribution,
    pore_size_distribution,
)
from .describe import DESCRIPTORS, describe
from .interfaces import interfacial_areas, triple_phase_boundary_density
from .surface import (
    SURFACE_METHODS,
    boundary_length_density,
    crofton_directions,
    face_count_surface,
    specific_surface_area,
)
from .tortuosity import GeodesicTortuosity, geodesic_distance_to_outlet, geodesic_tortuosity
from .transport import TransportResult, effective_transport, taufactor_available
from .volume import volume_fraction

__all__ = [
    "accessible_active_material",
    "composite_conductivity",
    "electrode_tortuosity",
    "DESCRIPTORS",
    "ChordLengthDistribution",
    "Constrictivity",
    "DescriptorError",
    "GeodesicTortuosity",
    "SURFACE_METHODS",
    "TransportResult",
    "boundary_length_density",
    "chord_length_distribution",
    "constrictivity",
    "crofton_directions",
    "describe",
    "effective_transport",
    "face_count_surface",
    "geodesic_distance_to_outlet",
    "geodesic_tortuosity",
    "interfacial_areas",
    "intrusion_distribution",
    "mean_chord_length",
    "pore_size_distribution",
    "specific_surface_area",
    "taufactor_available",
    "triple_phase_boundary_density",
    "volume_fraction",
]
