"""Shared test fixtures: where the real data lives, and reproducible torch settings."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# CI and developers have shared/ beside the checkout; the data are never copied into the repository.
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def shared_data(name: str) -> Path:
    """Path of a file in ``../shared/data``; skips the calling test when it is not there."""
    p = SHARED_DATA / name
    if not p.exists():
        pytest.skip(f"{p} is not available (shared/ must sit beside the checkout)")
    return p


@pytest.fixture
def shared_data_dir() -> Path:
    """The ``../shared/data`` folder (skips when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not available")
    return SHARED_DATA


@pytest.fixture
def one_torch_thread():
    """One torch thread for modules of many tiny ops: on an oversubscribed machine OpenMP
    spinning makes them 10–100× slower with two threads; results do not depend on the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    """Keep torch to the machine's cores; tests must not depend on thread count for results."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    yield


@pytest.fixture(autouse=True)
def _quick_transport_verdict(request, monkeypatch):
    """Verdicts in tests judge percolation but solve no τ (TauFactor takes seconds per phase and
    axis); tests marked ``transport`` keep the real budget."""
    if request.node.get_closest_marker("transport") is None:
        from napari_gencal.core import fit_connectivity

        monkeypatch.setattr(fit_connectivity, "TRANSPORT_SECONDS", 0.0)
