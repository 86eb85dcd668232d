"""One matplotlib canvas for every plot of the plugin, following napari's theme colours.

Like napari-matplotlib: a ``FigureCanvasQTAgg`` whose figure and axes take the background, text and
line colours of the viewer's current theme, and re-style themselves when the theme changes.
"""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QSizePolicy

__all__ = ["ThemedCanvas", "theme_colors", "PAIR_COLORS"]

#: Colours of the phase-pair curves (i, j) with i ≤ j, in order (11), (12), (13), (22), (23), (33).
PAIR_COLORS = ("#f2c14e", "#ff7f0e", "#2ca02c", "#3a86ff", "#9467bd", "#8d99ae", "#e63946")


def theme_colors(viewer: Any | None) -> dict[str, str]:
    """Background, foreground (text/axes) and highlight colours of the viewer's theme."""
    bg, fg, hl = "#262930", "#f0f1f2", "#6a6a6a"
    try:
        from napari.utils.theme import get_theme

        name = viewer.theme if viewer is not None else "dark"
        th = get_theme(name)
        bg = th.background.as_hex()
        fg = th.text.as_hex()
        hl = th.highlight.as_hex()
    except Exception:  # noqa: BLE001 - theming is cosmetic; fall back to napari's dark theme
        pass
    return {"background": bg, "foreground": fg, "highlight": hl}


class ThemedCanvas(FigureCanvasQTAgg):
    """A figure canvas that follows the napari theme.

    Parameters
    ----------
    viewer : napari.Viewer, optional
        Source of the theme; the canvas re-styles on ``viewer.events.theme``.
    nrows, ncols : int
        Subplot grid.
    height : float
        Figure height in inches (the width follows the dock).
    """

    def __init__(self, viewer: Any | None = None, nrows: int = 1, ncols: int = 1, height=2.6):
        self.figure = Figure(figsize=(4.0, height), layout="constrained")
        super().__init__(self.figure)
        self.viewer = viewer
        self.axes = [self.figure.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(int(height * 60))
        self.apply_theme()
        if viewer is not None:
            try:
                viewer.events.theme.connect(self._on_theme)
            except Exception:  # noqa: BLE001
                pass

    @property
    def ax(self):
        """The first axes."""
        return self.axes[0]

    def _on_theme(self, event: Any = None) -> None:
        self.apply_theme()
        self.draw_idle()

    def apply_theme(self) -> None:
        """Colour figure, axes, ticks, labels and legends from the theme."""
        c = theme_colors(self.viewer)
        self.figure.set_facecolor(c["background"])
        for ax in self.axes:
            ax.set_facecolor(c["background"])
            for spine in ax.spines.values():
                spine.set_color(c["foreground"])
            ax.tick_params(colors=c["foreground"], which="both", labelsize=8)
            ax.xaxis.label.set_color(c["foreground"])
            ax.yaxis.label.set_color(c["foreground"])
            ax.title.set_color(c["foreground"])
            leg = ax.get_legend()
            if leg is not None:
                self._style_legend(leg, c)

    def _style_legend(self, leg: Any, c: dict[str, str] | None = None) -> None:
        c = c or theme_colors(self.viewer)
        leg.get_frame().set_facecolor(c["background"])
        leg.get_frame().set_edgecolor(c["highlight"])
        for t in leg.get_texts():
            t.set_color(c["foreground"])

    def legend(self, ax: Any = None, **kw: Any) -> None:
        """Add a themed legend to ``ax`` (default: the first axes), if it has labelled artists."""
        ax = ax or self.ax
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            kw.setdefault("fontsize", 7)
            kw.setdefault("frameon", True)
            self._style_legend(ax.legend(**kw))

    def clear(self) -> None:
        """Clear every axes and re-apply the theme."""
        for ax in self.axes:
            ax.clear()
        self.apply_theme()

    def redraw(self) -> None:
        """Re-theme and schedule a redraw."""
        self.apply_theme()
        self.draw_idle()
