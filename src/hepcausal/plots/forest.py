"""Forest plot of an estimand across sensitivity runs (or ICSs), with ROPE and P(direction)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hepcausal.plots.style import (
    ACCENT_COLOUR,
    DEFAULT_FORMATS,
    LLR_COLOUR,
    ROPE_SHADE,
    SINGLE_COLUMN,
    WARN_COLOUR,
    hepcausal_style,
    new_axes,
    save_figure,
)

FOREST_COLUMNS = ("name", "mean", "hdi_low", "hdi_high")


def _rope_from_table(table: pd.DataFrame) -> tuple[float, float] | None:
    if {"rope_low", "rope_high"} <= set(table.columns):
        lo = pd.to_numeric(table["rope_low"], errors="coerce").dropna().unique()
        hi = pd.to_numeric(table["rope_high"], errors="coerce").dropna().unique()
        if len(lo) == 1 and len(hi) == 1:
            return float(lo[0]), float(hi[0])
    return None


def plot_forest(
    table: pd.DataFrame,
    path: str | Path | None = None,
    *,
    rope: tuple[float, float] | float | None = None,
    highlight: Sequence[str] = (),
    xlabel: str = "Effect on SII",
    hdi_prob: float = 0.95,
    title: str | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
    ax: Axes | None = None,
) -> Figure:
    """Forest plot: one row per run (``name, mean, hdi_low, hdi_high``), top to bottom in order.

    ``p_direction`` and ``p_rope`` columns, when present, are printed in a right-hand column.
    Rows with ``ok == False`` (failed convergence) are drawn hollow in orange with a warning mark.
    ``rope`` (interval or half-width; default: ``rope_low``/``rope_high`` columns if constant)
    is shaded.  ``highlight`` names rows to draw in the LLR colour (e.g. the primary analysis).
    With ``path`` the figure is also saved (PDF, SVG, PNG).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per run: ``name, mean, hdi_low, hdi_high``; optional ``p_direction``,
        ``p_rope``, ``ok``, ``rope_low``, ``rope_high``.
    path : str or Path or None, default None
        Where to save the figure (see :func:`save_figure`); None: not saved.
    rope : tuple of float or float or None, default None
        Region of practical equivalence to shade, ``(low, high)`` or a half-width; None: from
        constant ``rope_low``/``rope_high`` columns, if any.
    highlight : sequence of str, default ()
        Row names drawn in the LLR colour and bold.
    xlabel : str, default "Effect on SII"
        X-axis label (the HDI probability is appended).
    hdi_prob : float, default 0.95
        HDI probability of the table's intervals (labels only).
    title : str or None, default None
        Axes title.
    formats : sequence of str, default DEFAULT_FORMATS
        File formats written when ``path`` is given.
    ax : matplotlib.axes.Axes or None, default None
        Axes to draw on; None creates a figure sized to the number of rows (with a legend).

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
    missing = [c for c in FOREST_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"forest table: missing column(s) {missing}; has {list(table.columns)}")
    if table.empty:
        raise ValueError("forest table is empty")
    t = table.reset_index(drop=True)
    if rope is not None and np.isscalar(rope):
        r = abs(float(rope))  # type: ignore[arg-type]
        rope = (-r, r)
    rope = rope if rope is not None else _rope_from_table(t)
    n = len(t)
    ok = (
        t["ok"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if "ok" in t.columns
        else np.ones(n, dtype=bool)
    )
    has_pd = "p_direction" in t.columns
    has_rope = "p_rope" in t.columns and pd.to_numeric(t["p_rope"], errors="coerce").notna().any()
    own_figure = ax is None
    with hepcausal_style():
        fig, ax = new_axes(ax, (SINGLE_COLUMN * 1.45, 0.22 * n + 0.9))
        y = np.arange(n)[::-1].astype(float)
        m = t["mean"].to_numpy(dtype=float)
        lo = t["hdi_low"].to_numpy(dtype=float)
        hi = t["hdi_high"].to_numpy(dtype=float)
        if rope is not None:
            ax.axvspan(rope[0], rope[1], color=ROPE_SHADE, lw=0, zorder=0)  # type: ignore[index]
        ax.axvline(0, color="black", lw=0.6, zorder=1)
        names = t["name"].astype(str).tolist()
        for i in range(n):
            colour = LLR_COLOUR if names[i] in highlight else ACCENT_COLOUR
            if not ok[i]:
                colour = WARN_COLOUR
            ax.plot(
                [lo[i], hi[i]],
                [y[i], y[i]],
                color=colour,
                lw=1.3,
                zorder=2,
                ls="-" if ok[i] else (0, (2, 1)),
            )
            ax.plot(
                m[i],
                y[i],
                "o" if ok[i] else "D",
                ms=4 if ok[i] else 3.8,
                zorder=3,
                color=colour,
                mfc=colour if ok[i] else "white",
                mew=1.0,
            )
        ax.set_yticks(y)
        ax.set_yticklabels([nm if ok[i] else f"{nm} (!)" for i, nm in enumerate(names)])
        for i, lab in enumerate(ax.get_yticklabels()):
            if not ok[i]:
                lab.set_color(WARN_COLOUR)
            elif names[i] in highlight:
                lab.set_fontweight("bold")
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlabel(f"{xlabel} (mean, {hdi_prob:.0%} HDI)")
        ax.grid(axis="x")
        ax.set_axisbelow(True)
        if has_pd or has_rope:
            trans = ax.get_yaxis_transform()
            header = []
            if has_pd:
                header.append("P(dir)")
            if has_rope:
                header.append("P(ROPE)")
            ax.text(
                1.03,
                n - 0.35,
                "  ".join(f"{h:>7}" for h in header),
                transform=trans,
                ha="left",
                va="bottom",
                fontsize=6.5,
                fontweight="bold",
                family="monospace",
                clip_on=False,
            )
            for i in range(n):
                cells = []
                if has_pd:
                    cells.append(_fmt_p(t["p_direction"].iloc[i]))
                if has_rope:
                    cells.append(_fmt_p(t["p_rope"].iloc[i]))
                ax.text(
                    1.03,
                    y[i],
                    "  ".join(f"{c:>7}" for c in cells),
                    transform=trans,
                    ha="left",
                    va="center",
                    fontsize=6.5,
                    family="monospace",
                    clip_on=False,
                )
        handles: list[object] = [
            Line2D(
                [],
                [],
                color=ACCENT_COLOUR,
                marker="o",
                ms=4,
                lw=1.3,
                label=f"Mean, {hdi_prob:.0%} HDI",
            )
        ]
        if rope is not None:
            rlo, rhi = rope  # type: ignore[misc]
            handles.append(Patch(color=ROPE_SHADE, lw=0, label=f"ROPE [{rlo:.3g}, {rhi:.3g}]"))
        if not ok.all():
            handles.append(
                Line2D(
                    [],
                    [],
                    color=WARN_COLOUR,
                    marker="D",
                    mfc="white",
                    ms=3.8,
                    lw=1.3,
                    ls=(0, (2, 1)),
                    label="(!) failed convergence",
                )
            )
        if own_figure:
            fig.legend(
                handles=handles,
                loc="outside lower center",
                ncols=len(handles),
                handlelength=1.5,
                columnspacing=1.0,
            )
        else:
            ax.legend(handles=handles, loc="best")
        if title:
            ax.set_title(title)
    if path is not None:
        save_figure(fig, path, formats, caption=title or "Forest plot across runs.")
    return fig


def _fmt_p(v: object) -> str:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    if not np.isfinite(x):
        return "-"
    return f"{x:.3f}" if x < 0.999 else ">0.999"
