"""Funding figures: money per weighted patient by deprivation quintile, the PCN regression."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hepcausal import schema as S
from hepcausal.outcomes import get_outcome
from hepcausal.plots.style import (
    DOUBLE_COLUMN,
    LLR_COLOUR,
    hepcausal_style,
    mark_treatment,
    set_fiscal_year_ticks,
)

__all__ = [
    "funding_by_quintile",
    "plot_dose_need",
    "plot_funding_by_quintile",
    "plot_funding_quintiles",
    "plot_pcn_regression",
]

_QUINTILE_COLOURS = ("#B2182B", "#EF8A62", "#BDBDBD", "#67A9CF", "#2166AC")


def funding_by_quintile(
    panel: pd.DataFrame,
    outcome: str = S.FUND_TOTAL,
    *,
    treated_icb: str = S.LLR_ICB,
    comparators: Sequence[str] = S.PUBLISHED_COMPARATORS,
) -> pd.DataFrame:
    """Weighted-list-weighted mean funding per deprivation quintile, year and group.

    Quintile 1 = most deprived fifth of practices by ``deprivation_rank`` (rank 0 = most
    deprived, within ICB x year).

    Parameters
    ----------
    panel : DataFrame
        Practice panel with the funding outcome, ``deprivation_rank`` and the weighted list.
    outcome : str
        Funding outcome (column or alias).
    treated_icb : str
        The treated ICB (group ``"LLR"``).
    comparators : sequence of str
        Comparator ICBs (group ``"comparators"``).

    Returns
    -------
    DataFrame
        ``group, year, quintile, funding, n_practices``.
    """
    col = get_outcome(outcome).column
    p = panel[panel[col].notna() & panel[S.DEPRIVATION_RANK].notna()].copy()
    p["group"] = np.where(
        p[S.ICB] == treated_icb,
        "LLR",
        np.where(p[S.ICB].isin(list(comparators)), "comparators", ""),
    )
    p = p[p["group"] != ""]
    p["quintile"] = np.minimum((p[S.DEPRIVATION_RANK] * 5).astype(int), 4) + 1
    p["_w"] = p[S.WEIGHTED_LIST_SIZE]
    p["_wy"] = p[col] * p["_w"]
    g = p.groupby(["group", S.YEAR, "quintile"])
    out = (g["_wy"].sum() / g["_w"].sum()).rename("funding").to_frame()
    out["n_practices"] = g.size()
    return out.reset_index()


def plot_funding_by_quintile(
    panel: pd.DataFrame,
    outcome: str = S.FUND_TOTAL,
    *,
    treated_icb: str = S.LLR_ICB,
    comparators: Sequence[str] = S.PUBLISHED_COMPARATORS,
) -> Figure:
    """Funding per weighted patient by deprivation quintile and year: LLR beside comparators.

    Parameters
    ----------
    panel : DataFrame
        Practice panel (see :func:`funding_by_quintile`).
    outcome : str
        Funding outcome.
    treated_icb : str
        The treated ICB.
    comparators : sequence of str
        Comparator ICBs (pooled).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing the y axis.
    """
    tab = funding_by_quintile(panel, outcome, treated_icb=treated_icb, comparators=comparators)
    return plot_funding_quintiles(tab, outcome)


def plot_funding_quintiles(table: pd.DataFrame, outcome: str = S.FUND_TOTAL) -> Figure:
    """Plot a :func:`funding_by_quintile` table: one panel per group (LLR, comparators).

    Parameters
    ----------
    table : DataFrame
        ``group, year, quintile, funding`` (:func:`funding_by_quintile`).
    outcome : str
        The funding outcome (labels and units).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing the y axis.
    """
    row = get_outcome(outcome)
    tab = table
    with hepcausal_style():
        fig, axes = plt.subplots(1, 2, figsize=(DOUBLE_COLUMN, 3.0), sharey=True)
        for ax, group, title in zip(
            axes, ("LLR", "comparators"), ("LLR (QK1)", "comparator ICBs"), strict=True
        ):
            sub = tab[tab["group"] == group]
            for q in range(1, 6):
                s = sub[sub["quintile"] == q].sort_values(S.YEAR)
                label = {1: "Q1 most deprived", 5: "Q5 least deprived"}.get(q, f"Q{q}")
                ax.plot(
                    s[S.YEAR],
                    s["funding"],
                    marker="o",
                    ms=3,
                    color=_QUINTILE_COLOURS[q - 1],
                    label=label,
                )
            mark_treatment(ax)
            set_fiscal_year_ticks(ax, sub[S.YEAR].unique())
            ax.set_title(title, color=LLR_COLOUR if group == "LLR" else "black")
        axes[0].set_ylabel(row.units)
        fig.suptitle(
            f"{row.short[:1].upper()}{row.short[1:]} by deprivation quintile", fontsize="medium"
        )
        axes[1].legend(frameon=False, fontsize="small")
    return fig


def plot_pcn_regression(
    pcns: pd.DataFrame,
    table: pd.DataFrame,
    *,
    outcome: str = "pcn_funding_per_wpt",
    score_col: str = S.IMD,
    published: pd.DataFrame | None = None,
) -> Figure:
    """PCN funding per weighted patient against deprivation, one panel per year, fitted line.

    Parameters
    ----------
    pcns : DataFrame
        PCN-years (:func:`hepcausal.data.pcn.aggregate_pcns`).
    table : DataFrame
        Per-year slopes ``year, slope, lower, upper``
        (:func:`hepcausal.inequality.funding.pcn_regression`, or the table of
        :class:`~hepcausal.inequality.funding_fits.PcnRegressionFit`, whose classical
        ``ols_slope`` is then drawn dashed beside the Bayesian line).
    outcome, score_col : str
        Funding column and deprivation score.
    published : DataFrame, optional
        Published slopes (year, slope, lower, upper) written in the panel titles.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per year with the OLS line and the slope per 10 IMD points in the title.
    """
    years = sorted(int(y) for y in table[S.YEAR])
    tab = table.set_index(S.YEAR)
    pub = published.set_index(S.YEAR) if published is not None else None
    with hepcausal_style():
        fig, axes = plt.subplots(1, len(years), figsize=(DOUBLE_COLUMN, 3.4), sharey=True)
        axes = np.atleast_1d(axes)
        for ax, year in zip(axes, years, strict=True):
            d = pcns[(pcns[S.YEAR] == year) & pcns[outcome].notna() & pcns[score_col].notna()]
            ax.scatter(d[score_col], d[outcome], s=3, alpha=0.35, color="#606060", lw=0)
            x = d[score_col].to_numpy(float)
            b = float(tab.loc[year, "slope"])
            a = float(d[outcome].mean() - b * x.mean() / 10)
            xs = np.linspace(x.min(), x.max(), 50)
            ax.plot(xs, a + b * xs / 10, color=LLR_COLOUR, lw=1.5)
            title = (
                f"{year - 1}/{year % 100:02d}: {b:+.2f} "
                f"({tab.loc[year, 'lower']:+.2f}, {tab.loc[year, 'upper']:+.2f})"
            )
            if "ols_slope" in tab:
                bo = float(tab.loc[year, "ols_slope"])
                ao = float(d[outcome].mean() - bo * x.mean() / 10)
                ax.plot(xs, ao + bo * xs / 10, color="k", lw=1.0, ls="--")
                title += f"\nOLS {bo:+.2f} ({tab.loc[year, 'ols_lower']:+.2f}, "
                title += f"{tab.loc[year, 'ols_upper']:+.2f})"
            if pub is not None and year in pub.index:
                title += f"\npublished {pub.loc[year, 'slope']:+.2f} (income dom.)"
            ax.set_title(title, fontsize="x-small", loc="left")
            ax.set_xlabel("IMD 2019 score")
            lo, hi = np.nanpercentile(pcns[outcome], [0.5, 99.5])
            ax.set_ylim(min(lo, 0), hi)
        axes[0].set_ylabel("GBP per weighted patient")
        fig.suptitle(
            "PCN funding on deprivation: slope per 10 IMD points (95% CI); overall IMD, not "
            "the income domain",
            fontsize="small",
        )
    return fig


def plot_dose_need(
    panel: pd.DataFrame, *, dose_col: str = "local_incentive_change", icb: str = S.LLR_ICB
) -> Figure:
    """Is the dose related to need as intended?  Dose against IMD 2019 per post year.

    One panel per year with a positive dose among ``icb``'s practices: the practices' dose
    against their IMD 2019 score, the OLS line and, in the title, the Spearman correlation
    and the slope per 10 IMD points with its 95% HC1 interval
    (:func:`hepcausal.inequality.funding.dose_need_check`).

    Parameters
    ----------
    panel : DataFrame
        Practice panel with ``dose_col``, ``imd_score``, ``icb_code`` and ``year``.
    dose_col : str
        The dose column.
    icb : str
        The ICB whose practices are checked (default LLR).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per year with a dose.

    Raises
    ------
    ValueError
        When no practice of ``icb`` has a positive dose.
    """
    from hepcausal.inequality.funding import dose_need_check

    d = panel[(panel[S.ICB] == icb) & panel[dose_col].notna() & panel[S.IMD].notna()]
    years = sorted(int(y) for y in d.loc[d[dose_col] > 0, S.YEAR].unique())
    if not years:
        raise ValueError(f"no practice of {icb} has a positive {dose_col!r}")
    with hepcausal_style():
        fig, axes = plt.subplots(
            1, len(years), figsize=(DOUBLE_COLUMN, 2.8), sharey=True, squeeze=False
        )
        for ax, year in zip(axes[0], years, strict=True):
            g = d[d[S.YEAR] == year]
            check = dose_need_check(panel, year=year, dose_col=dose_col, icb=icb)
            ax.scatter(g[S.IMD], g[dose_col], s=6, alpha=0.6, color=LLR_COLOUR, lw=0)
            xs = np.linspace(g[S.IMD].min(), g[S.IMD].max(), 20)
            b = check["slope_per_10_imd"]
            ax.plot(xs, g[dose_col].mean() + b * (xs - g[S.IMD].mean()) / 10, color="k", lw=1)
            ax.set_title(
                f"{year - 1}/{year % 100:02d}: Spearman {check['spearman']:+.2f} "
                f"(p = {check['spearman_p']:.2g})\nslope {b:+.2f} ({check['slope_lower']:+.2f}, "
                f"{check['slope_upper']:+.2f}) per 10 IMD",
                fontsize="x-small",
                loc="left",
            )
            ax.set_xlabel("IMD 2019 score")
        axes[0][0].set_ylabel("dose (GBP per weighted patient)")
    return fig
