"""Plugin test helpers: which tests need an OpenGL-capable display."""

from __future__ import annotations

import os

import pytest


def has_gl_display() -> bool:
    """True under a real/virtual X display (xvfb-run); False with Qt's offscreen platform.

    Qt's offscreen platform has no OpenGL, so vispy cannot create textures for Image layers or
    render a screenshot; Labels-only logic still works there.
    """
    if os.environ.get("QT_QPA_PLATFORM", "") == "offscreen":
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


needs_gl = pytest.mark.skipif(
    not has_gl_display(),
    reason="needs an OpenGL display: run under xvfb-run (Qt offscreen has no OpenGL)",
)
