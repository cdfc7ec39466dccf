"""Figures for reading a null result: parallel-trends sensitivity, design power, replication."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hepcausal.plots.labels import outcome_short
from hepcausal.plots.style import (
    ACCENT_COLOUR,
    COMPARATOR_COLOUR,
    LLR_COLOUR,
    SINGLE_COLUMN,
    hepcausal_style,
)

__all__ = ["plot_power_curve", "plot_replication", "plot_sensitivity"]


def plot_sensitivity(result: Any) -> Figure:
    """Robust credible interval of the post-period effect against the violation bound.

    Parameters
    ----------
    result : SensitivityResult
        From :func:`hepcausal.causal.sensitivity.trend_sensitivity`.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (relative magnitudes ``Mbar``, smoothness ``M``), with the parallel-trends
        interval and the breakdown value marked.
    """
    import matplotlib.pyplot as plt

    tab = result.table
    with hepcausal_style():
        fig, axes = plt.subplots(1, 2, figsize=(2 * SINGLE_COLUMN, 2.6), sharey=True)
        titles = {
            "relative_magnitude": "Relative magnitudes ($\\bar M$)",
            "smoothness": "Smoothness ($M$, per year$^2$)",
        }
        for ax, (restriction, title) in zip(axes, titles.items(), strict=True):
            sub = tab[tab["restriction"] == restriction]
            x = sub["bound"].to_numpy()
            ax.vlines(x, sub["robust_low"], sub["robust_high"], colors=LLR_COLOUR, lw=2)
            ax.plot(x, sub["lower_mean"], "_", color="k", ms=8)
            ax.plot(x, sub["upper_mean"], "_", color="k", ms=8)
            ax.axhline(0, color="k", lw=0.6)
            bd = result.breakdown.get(restriction)
            if bd is not None and np.isfinite(bd) and bd > 0:
                ax.axvline(bd, color=ACCENT_COLOUR, ls="--", lw=1)
                ax.annotate(
                    f"breakdown {bd:.3g}",
                    (bd, 1),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    ha="left",
                    va="top",
                    color=ACCENT_COLOUR,
                )
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("bound on post-period violations")
        o = result.original
        axes[0].errorbar(
            [-0.08 * max(tab["bound"].max(), 1e-9)],
            [o["mean"]],
            yerr=[[o["mean"] - o["low"]], [o["high"] - o["mean"]]],
            fmt="o",
            color="k",
            ms=3,
            label="parallel trends",
        )
        axes[0].legend(fontsize=7, frameon=False)
        axes[0].set_ylabel(f"post-period effect\n(robust {100 * result.prob:g}% interval)")
        fig.suptitle(result.estimand, fontsize=8)
    return fig


def plot_power_curve(table: pd.DataFrame, *, target: float = 0.8) -> Figure:
    """Power (95% HDI excludes 0) and P(direction) > 0.95 against the injected change.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`hepcausal.causal.power.PowerResult.table` (``effect, power_hdi, power_pd,
        n_sims`` and Monte Carlo SEs).
    target : float
        Power level whose minimum detectable change is marked.

    Returns
    -------
    matplotlib.figure.Figure
        The power curve.
    """
    import matplotlib.pyplot as plt

    with hepcausal_style():
        fig, ax = plt.subplots(figsize=(SINGLE_COLUMN, 2.6))
        for col, colour, label in (
            ("power_hdi", LLR_COLOUR, "95% HDI excludes 0"),
            ("power_pd", ACCENT_COLOUR, "P(direction) > 0.95"),
        ):
            se = np.sqrt(table[col] * (1 - table[col]) / table["n_sims"].clip(lower=1))
            ax.errorbar(
                table["effect"],
                table[col],
                yerr=se,
                marker="o",
                ms=3,
                color=colour,
                label=label,
                capsize=2,
            )
        ax.axhline(target, color="k", ls=":", lw=0.8)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("injected post-period change in the treated ICS's SII")
        ax.set_ylabel("power")
        ax.legend(fontsize=7, frameon=False)
    return fig


def plot_replication(table: pd.DataFrame, *, start_year: int = 2022) -> Figure:
    """The published study's figure: SII by year per outcome.

    LLR and England with intervals, the comparators in grey with their average, and a marker at
    the July 2021 start (a quarter into fiscal year ``start_year``, drawn at
    ``start_year - 0.75`` on the fiscal-year-end axis).

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`hepcausal.inequality.replication.Replication.table`.
    start_year : int
        Panel year of the start (2022 = FY2021/22).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per outcome.
    """
    import matplotlib.pyplot as plt

    outcomes = list(dict.fromkeys(table["outcome"]))
    with hepcausal_style():
        fig, axes = plt.subplots(
            1, len(outcomes), figsize=(SINGLE_COLUMN * len(outcomes), 2.8), squeeze=False
        )
        for ax, outcome in zip(axes[0], outcomes, strict=True):
            sub = table[table["outcome"] == outcome]
            comps = sub[sub["role"] == "comparator"]
            for _, g in comps.groupby("icb_code"):
                ax.plot(g["year"], g["sii"], color=COMPARATOR_COLOUR, lw=0.6, alpha=0.6)
            avg = comps.groupby("year")["sii"].mean()
            ax.plot(
                avg.index,
                avg.values,
                color=COMPARATOR_COLOUR,
                lw=2,
                ls="--",
                label="comparator average",
            )
            for role, colour, label, dx in (
                ("england", "k", "England", -0.06),
                ("treated", LLR_COLOUR, "LLR", 0.06),
            ):
                g = sub[sub["role"] == role]
                if g.empty:
                    continue
                ax.errorbar(
                    g["year"] + dx,
                    g["sii"],
                    yerr=[g["sii"] - g["lower"], g["upper"] - g["sii"]],
                    color=colour,
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=label,
                )
            ax.axvline(start_year - 0.75, color="k", ls=":", lw=0.8)
            ax.annotate(
                "HEP start\n(July 2021)",
                (start_year - 0.75, 0.98),
                xycoords=("data", "axes fraction"),
                fontsize=6,
                va="top",
            )
            ax.axhline(0, color="k", lw=0.4)
            ax.set_title(outcome_short(outcome) or outcome, fontsize=8)
            ax.set_xlabel("fiscal year (end)")
            ax.set_ylabel("SII (least minus most deprived quintile end)")
        axes[0][0].legend(fontsize=6, frameon=False, loc="lower left")
    return fig
