"""Event-study plot: effect on the SII by year relative to HEP start, with HDIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hepcausal.plots.inequality import _require
from hepcausal.plots.labels import sii_axis_label
from hepcausal.plots.style import (
    LLR_COLOUR,
    POST_SHADE,
    SINGLE_COLUMN,
    fiscal_year_label,
    hepcausal_style,
    new_axes,
)

EVENT_COLUMNS = ("relative_time", "mean", "hdi_low", "hdi_high")


def pretrend_text(table: pd.DataFrame, reference: int = -1) -> str:
    """'Pre-period: k of n HDIs exclude 0' over the non-reference pre-treatment coefficients."""
    pre = table[(table["relative_time"] < 0) & (table["relative_time"] != reference)]
    if pre.empty:
        return "No pre-period coefficients"
    excl = int(((pre["hdi_low"] > 0) | (pre["hdi_high"] < 0)).sum())
    return f"Pre-period: {excl} of {len(pre)} HDIs exclude 0"


def plot_event_study(
    table: pd.DataFrame,
    *,
    reference: int = -1,
    outcome: str | None = None,
    units: str = "",
    hdi_prob: float = 0.95,
    pretrend: str | None = "auto",
    colour: str = LLR_COLOUR,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Event-study coefficients (posterior mean and HDI) against years relative to HEP start.

    ``table`` has ``relative_time, mean, hdi_low, hdi_high`` (and optionally ``year``), e.g.
    ``EventStudyFit.event_table()``.  The reference period (normalised to 0) is drawn as an open
    marker; the post period is shaded; ``pretrend='auto'`` annotates how many pre-period HDIs
    exclude zero (pass your own text, e.g. a joint test, or ``None`` to omit).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``relative_time, mean, hdi_low, hdi_high`` (optionally ``year``, fiscal-year
        end, for tick labels); one row per period.
    reference : int, default -1
        Relative time of the reference period (coefficient 0), drawn as an open marker.
    outcome : str or None, default None
        Outcome column or alias, for the y-axis label.
    units : str, default ""
        Units for the y-axis label; default the outcome's units.
    hdi_prob : float, default 0.95
        HDI probability of the table's intervals (legend label only).
    pretrend : str or None, default "auto"
        Annotation: ``"auto"`` counts pre-period HDIs excluding 0; any other text is printed
        as given; None omits it.
    colour : str, default LLR_COLOUR
        Colour of the coefficients.
    title : str or None, default None
        Axes title.
    ax : matplotlib.axes.Axes or None, default None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    KeyError
        When a required column is missing.
    ValueError
        When ``table`` is empty.
    """
    _require(table, list(EVENT_COLUMNS), "event-study table")
    if table.empty:
        raise ValueError("event-study table is empty")
    t = table.sort_values("relative_time").reset_index(drop=True)
    rel = t["relative_time"].to_numpy(dtype=int)
    is_ref = rel == reference
    est = t[~is_ref]
    with hepcausal_style():
        fig, ax = new_axes(ax, (SINGLE_COLUMN * 1.25, SINGLE_COLUMN * 0.8))
        x = est["relative_time"].to_numpy(dtype=float)
        m = est["mean"].to_numpy(dtype=float)
        lo = est["hdi_low"].to_numpy(dtype=float)
        hi = est["hdi_high"].to_numpy(dtype=float)
        ax.axhline(0, color="black", lw=0.6, zorder=1)
        ax.errorbar(
            x,
            m,
            yerr=np.vstack([m - lo, hi - m]),
            fmt="o",
            color=colour,
            ms=4,
            elinewidth=1.2,
            capsize=0,
            zorder=3,
        )
        ax.plot(x, m, color=colour, lw=0.6, alpha=0.5, zorder=2)
        ax.plot(
            [reference], [0.0], marker="o", mfc="white", mec="black", ms=4.5, ls="none", zorder=4
        )
        xmin, xmax = float(rel.min()) - 0.5, float(max(rel.max(), reference)) + 0.5
        xmin = min(xmin, reference - 0.5)
        ax.axvspan(-0.5, xmax, color=POST_SHADE, lw=0, zorder=0)
        ax.axvline(-0.5, color="#6E6E6E", lw=0.7, ls="--", zorder=0.5)
        ax.set_xlim(xmin, xmax)
        ticks = sorted({*rel.tolist(), reference})
        ax.set_xticks(ticks)
        if "year" in t.columns:
            ymap = dict(zip(t["relative_time"].astype(int), t["year"].astype(int), strict=True))
            start = next((ymap[r] - r for r in ymap), None)
            labels = [
                f"{r:+d}\n{fiscal_year_label(ymap.get(r, (start or 0) + r))}"
                if start is not None
                else f"{r:+d}"
                for r in ticks
            ]
            labels = [lab.replace("+0", "0") for lab in labels]
            ax.set_xticklabels(labels)
            ax.set_xlabel("Years relative to HEP start (fiscal year)")
        else:
            ax.set_xlabel("Years relative to HEP start")
        ax.set_ylabel(sii_axis_label(outcome, units, prefix="Effect on SII"))
        if title:
            ax.set_title(title)
        if pretrend:
            lo_y, hi_y = ax.get_ylim()
            n_lines = 1 + str(pretrend).count("\n")
            ax.set_ylim(lo_y, hi_y + (0.12 + 0.07 * n_lines) * (hi_y - lo_y))  # room for the box
            text = pretrend_text(t, reference) if pretrend == "auto" else pretrend
            ax.text(
                0.02,
                0.97,
                text,
                transform=ax.transAxes,
                va="top",
                ha="left",
                fontsize=6.5,
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#BDBDBD", "lw": 0.5},
            )
        handles = [
            Line2D(
                [], [], color=colour, marker="o", ms=4, lw=1.2, label=f"Mean, {hdi_prob:.0%} HDI"
            ),
            Line2D(
                [],
                [],
                marker="o",
                mfc="white",
                mec="black",
                ms=4.5,
                ls="none",
                label="Reference year",
            ),
            Patch(color=POST_SHADE, lw=0, label="HEP period"),
        ]
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.3),
            ncols=3,
            handlelength=1.4,
            columnspacing=1.0,
        )
    return fig
