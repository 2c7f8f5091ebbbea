"""One plotting style for every figure: the ``agg`` backend and a seaborn theme, set once."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_applied = False

#: Colours of the overlay classes (RGB in [0, 1]): true positive, false positive, false negative.
OVERLAY_COLOURS = {
    "tp": (0.10, 0.80, 0.25),
    "fp": (0.95, 0.20, 0.15),
    "fn": (0.15, 0.55, 1.00),
}


def use_style() -> None:
    """Select the non-interactive ``agg`` backend and the seaborn theme (idempotent).

    Figures are built with :class:`matplotlib.figure.Figure` rather than pyplot, so no
    global figure state is kept. Inside an IPython kernel (papermill), PNG display of
    ``Figure`` objects is switched on, which the inline backend would otherwise do.
    """
    global _applied
    if _applied:
        return
    import matplotlib

    matplotlib.use("agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="white", font_scale=1.1)
    _enable_png_display()
    _applied = True
    log.debug("plot style applied (agg backend, seaborn paper theme)")


def _enable_png_display() -> None:
    """Register PNG display of matplotlib figures when running inside an IPython shell."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # IPython absent: nothing to display to
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"}, dpi=110, bbox_inches="tight")
