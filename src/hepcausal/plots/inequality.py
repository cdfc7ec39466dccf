"""SII trajectories by ICS with HDI bands, the treatment period marked and LLR highlighted."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hepcausal.plots.labels import icb_label, sii_axis_label
from hepcausal.plots.style import (
    ACCENT_COLOUR,
    COMPARATOR_COLOUR,
    DOUBLE_COLUMN,
    LLR_COLOUR,
    POST_SHADE,
    SINGLE_COLUMN,
    hepcausal_style,
    mark_treatment,
    new_axes,
    set_fiscal_year_ticks,
)
from hepcausal.schema import HEP_START_YEAR, ICB, LLR_ICB, YEAR

BAYES_COLUMNS = ("mean", "hdi_low", "hdi_high")
CLASSICAL_COLUMNS = ("sii", "lower", "upper")


def _require(df: pd.DataFrame, cols: tuple[str, ...] | list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{what}: missing column(s) {missing}; has {list(df.columns)}")


def _draw_series(
    ax: Axes,
    d: pd.DataFrame,
    *,
    colour: str,
    lw: float,
    band_alpha: float,
    zorder: float,
    label: str | None,
    marker: str | None = None,
) -> None:
    d = d.sort_values(YEAR)
    x = d[YEAR].to_numpy(dtype=float)
    if band_alpha > 0:
        ax.fill_between(
            x,
            d["hdi_low"].to_numpy(dtype=float),
            d["hdi_high"].to_numpy(dtype=float),
            color=colour,
            alpha=band_alpha,
            lw=0,
            zorder=1.0 if zorder > 3 else zorder,  # highlighted band under the other lines
        )
    ax.plot(
        x,
        d["mean"].to_numpy(dtype=float),
        color=colour,
        lw=lw,
        zorder=zorder + 0.1,
        label=label,
        marker=marker,
        ms=3,
    )


def _draw_classical(ax: Axes, c: pd.DataFrame, *, offset: float, label: str | None) -> None:
    c = c.sort_values(YEAR)
    x = c[YEAR].to_numpy(dtype=float) + offset
    y = c["sii"].to_numpy(dtype=float)
    err = np.vstack([y - c["lower"].to_numpy(dtype=float), c["upper"].to_numpy(dtype=float) - y])
    ax.errorbar(
        x,
        y,
        yerr=err,
        fmt="o",
        ms=2.8,
        mfc="white",
        mec=ACCENT_COLOUR,
        ecolor=ACCENT_COLOUR,
        elinewidth=0.7,
        capsize=1.5,
        mew=0.8,
        zorder=5,
        label=label,
    )


def plot_sii_trajectories(
    table: pd.DataFrame,
    *,
    classical: pd.DataFrame | None = None,
    highlight: str = LLR_ICB,
    treatment_year: int | None = HEP_START_YEAR,
    layout: Literal["overlay", "grid"] = "overlay",
    outcome: str | None = None,
    units: str = "",
    icb_names: Mapping[str, str] | None = None,
    hdi_prob: float = 0.95,
    ncols: int = 4,
    comparator_bands: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """SII by ICS and fiscal year with HDI bands; LLR highlighted, comparators muted.

    ``table`` has columns ``icb_code, year, mean, hdi_low, hdi_high`` (e.g.
    ``GradientFit.sii_table()``).  ``classical`` (optional; ``icb_code, year, sii, lower, upper``
    from ``hepcausal.inequality.classical.sii_table``) adds classical point estimates with
    error bars.  ``layout='overlay'`` draws every ICS on one axes (``ax`` may be given);
    ``layout='grid'`` draws small multiples, one ICS per panel with LLR's mean repeated as a
    dashed reference line.  Comparator HDI bands are drawn in the overlay only when
    ``comparator_bands`` is true (they tend to hide each other).

    Parameters
    ----------
    table : pandas.DataFrame
        Bayesian SII per ICS and fiscal year (year end): ``icb_code, year, mean, hdi_low,
        hdi_high``.
    classical : pandas.DataFrame or None, default None
        Classical SII per ICS and year (``icb_code, year, sii, lower, upper``), drawn as
        points with error bars.
    highlight : str, default LLR_ICB
        ICB code drawn in the LLR colour (first in the grid).
    treatment_year : int or None, default HEP_START_YEAR
        First treated fiscal year, shaded from half a year before; None: no shading.
    layout : {"overlay", "grid"}, default "overlay"
        One axes for every ICS, or one panel per ICS.
    outcome : str or None, default None
        Outcome column or alias, for the y label.
    units : str, default ""
        Units for the y label; default the outcome's units.
    icb_names : mapping of str to str or None, default None
        ICB code -> display name.
    hdi_prob : float, default 0.95
        HDI probability of the table's intervals (legend label only).
    ncols : int, default 4
        Panels per row of the grid layout.
    comparator_bands : bool, default False
        Also draw the comparators' HDI bands in the overlay.
    title : str or None, default None
        Figure or axes title.
    ax : matplotlib.axes.Axes or None, default None
        Axes of the overlay layout; None creates a figure.  Not allowed with ``"grid"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    KeyError
        When a required column is missing.
    ValueError
        When ``table`` is empty, ``layout`` is unknown, or ``ax`` is given with ``"grid"``.
    """
    _require(table, [ICB, YEAR, *BAYES_COLUMNS], "SII table")
    if classical is not None:
        _require(classical, [ICB, YEAR, *CLASSICAL_COLUMNS], "classical SII table")
    if table.empty:
        raise ValueError("SII table is empty")
    codes = [str(c) for c in pd.unique(table[ICB])]
    codes = sorted(codes, key=lambda c: (c != highlight, c))
    years = sorted(int(y) for y in pd.unique(table[YEAR]))
    names = dict(icb_names or {})
    ylabel = sii_axis_label(outcome, units)
    pct = f"{hdi_prob:.0%}"

    with hepcausal_style():
        if layout == "overlay":
            fig, ax = new_axes(ax, (SINGLE_COLUMN * 1.25, SINGLE_COLUMN * 0.85))
            _overlay(ax, table, classical, codes, highlight, names, comparator_bands)
            ax.set_xlim(years[0] - 0.4, years[-1] + 0.4)
            if treatment_year is not None:
                mark_treatment(ax, treatment_year, label=None)
            ax.axhline(0, color="black", lw=0.5, zorder=0.6)
            set_fiscal_year_ticks(ax, years)
            ax.set_xlabel("Fiscal year")
            ax.set_ylabel(ylabel)
            if title:
                ax.set_title(title)
            n_comp = sum(c != highlight for c in codes)
            handles: list[object] = []
            if highlight in codes:
                handles.append(
                    Line2D([], [], color=LLR_COLOUR, lw=1.8, label=icb_label(highlight, names))
                )
            if n_comp:
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=COMPARATOR_COLOUR,
                        lw=0.9,
                        label=f"Comparator ICSs (n={n_comp})",
                    )
                )
            handles.append(Patch(color=LLR_COLOUR, alpha=0.3, lw=0, label=f"{pct} HDI"))
            if classical is not None:
                handles.append(
                    Line2D(
                        [],
                        [],
                        marker="o",
                        mfc="white",
                        mec=ACCENT_COLOUR,
                        color=ACCENT_COLOUR,
                        lw=0.7,
                        ms=3,
                        label="Classical SII (95% CI)",
                    )
                )
            if treatment_year is not None:
                handles.append(Patch(color=POST_SHADE, lw=0, label="HEP period"))
            ax.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.2),
                ncols=2,
                handlelength=1.6,
            )
            return fig

        if layout != "grid":
            raise ValueError(f"layout must be 'overlay' or 'grid', got {layout!r}")
        if ax is not None:
            raise ValueError("layout='grid' creates its own figure; pass ax only with 'overlay'")
        n = len(codes)
        ncols = max(1, min(ncols, n))
        nrows = math.ceil(n / ncols)
        fig, axes = plt.subplots(
            nrows,
            ncols,
            sharex=True,
            sharey=True,
            squeeze=False,
            figsize=(DOUBLE_COLUMN, 0.28 * DOUBLE_COLUMN * nrows + 0.35),
        )
        ref = table[table[ICB].astype(str) == highlight].sort_values(YEAR)
        for i, code in enumerate(codes):
            a = axes.flat[i]
            d = table[table[ICB].astype(str) == code]
            is_llr = code == highlight
            colour = LLR_COLOUR if is_llr else "#4D4D4D"
            _draw_series(
                a,
                d,
                colour=colour,
                lw=1.5 if is_llr else 1.1,
                band_alpha=0.25,
                zorder=2,
                label=None,
            )
            if not is_llr and not ref.empty:
                a.plot(
                    ref[YEAR].to_numpy(dtype=float),
                    ref["mean"].to_numpy(dtype=float),
                    color=LLR_COLOUR,
                    lw=0.8,
                    ls="--",
                    zorder=1.5,
                )
            if classical is not None:
                c = classical[classical[ICB].astype(str) == code]
                if not c.empty:
                    _draw_classical(a, c, offset=0.15, label=None)
            a.axhline(0, color="black", lw=0.5, zorder=0.6)
            a.set_title(
                icb_label(code, names), color=LLR_COLOUR if is_llr else "black", fontsize=7.5
            )
            a.set_xlim(years[0] - 0.4, years[-1] + 0.4)
            if treatment_year is not None:
                mark_treatment(a, treatment_year, label=None)
        for a in axes.flat[n:]:
            a.set_visible(False)
        if nrows == 1:
            axes[0, 0].set_ylabel(ylabel)
        for a in axes.flat[:n]:
            set_fiscal_year_ticks(a, years)
            a.tick_params(axis="x", labelrotation=90)
        if nrows > 1:
            fig.supylabel(ylabel, fontsize=8)
        fig.supxlabel("Fiscal year", fontsize=8)
        handles = [Patch(color="#B0B0B0", alpha=0.5, lw=0, label=f"{pct} HDI")]
        if highlight in codes:
            handles.insert(
                0,
                Line2D(
                    [],
                    [],
                    color=LLR_COLOUR,
                    lw=0.8,
                    ls="--",
                    label=f"{icb_label(highlight, names)} mean, for reference",
                ),
            )
        if classical is not None:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    mfc="white",
                    mec=ACCENT_COLOUR,
                    color=ACCENT_COLOUR,
                    lw=0.7,
                    ms=3,
                    label="Classical SII (95% CI)",
                )
            )
        if treatment_year is not None:
            handles.append(Patch(color=POST_SHADE, lw=0, label="HEP period"))
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
        if title:
            fig.suptitle(title)
        return fig


def _overlay(
    ax: Axes,
    table: pd.DataFrame,
    classical: pd.DataFrame | None,
    codes: list[str],
    highlight: str,
    names: dict[str, str],
    comparator_bands: bool,
) -> None:
    for code in codes:
        d = table[table[ICB].astype(str) == code]
        if code == highlight:
            _draw_series(
                ax, d, colour=LLR_COLOUR, lw=1.8, band_alpha=0.22, zorder=4, label=None, marker="o"
            )
        else:
            _draw_series(
                ax,
                d,
                colour=COMPARATOR_COLOUR,
                lw=0.8,
                band_alpha=0.07 if comparator_bands else 0.0,
                zorder=2,
                label=None,
            )
    if classical is not None:
        c = classical[classical[ICB].astype(str) == highlight]
        if c.empty:
            c = classical
        _draw_classical(ax, c, offset=0.12, label=None)
