"""One plotting style for every figure: the ``agg`` backend and a seaborn theme, set once."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_applied = False

#: The house palette: Okabe & Ito's eight colours, told apart with every common colour-vision
#: deficiency (black last). Every figure draws its series from it, in this order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore


#: Colours of the overlay classes (RGB in [0, 1]), from :data:`PALETTE`: true positive
#: yellow, false positive vermillion, false negative blue (no red-green pair).
OVERLAY_COLOURS = {
    "tp": _rgb("#F0E442"),
    "fp": _rgb("#D55E00"),
    "fn": _rgb("#0072B2"),
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

    sns.set_theme(context="paper", style="white", font_scale=1.1, palette=list(PALETTE))
    matplotlib.rcParams["savefig.dpi"] = 200
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
