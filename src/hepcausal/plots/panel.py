"""Time-axis figures of a panel design (DiD / DDD / event study): the data the fit saw.

* :func:`icb_year_table` / :func:`plot_icb_series`: the outcome level and the classical SII by
  ICS and fiscal year (treated ICS highlighted with its 95% CI band, comparators in grey and
  their average, England (every practice of the panel: :func:`england_level`,
  :func:`england_sii`) as the reference line, the treatment period shaded);
* :func:`descriptive_event_table` / :func:`plot_descriptive_event`: the treated-minus-
  comparator SII difference per year relative to the year before the start (descriptive).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hepcausal.plots.labels import icb_label
from hepcausal.plots.style import (
    ACCENT_COLOUR,
    COMPARATOR_COLOUR,
    LLR_COLOUR,
    SINGLE_COLUMN,
    hepcausal_style,
    mark_treatment,
    new_axes,
    set_fiscal_year_ticks,
)
from hepcausal.schema import ICB, YEAR

Z95 = 1.959963984540054


def classical_sii(
    data: pd.DataFrame, outcome: str, rank_col: str
) -> tuple[pd.DataFrame, Literal["phe", "unit"]]:
    """Classical SII per ICS and year of a design's data: PHE method, else (quintiles too small)
    the practice-level regression on the rank.

    Parameters
    ----------
    data : pandas.DataFrame
        Practice-year rows (``icb_code``, ``year``, the outcome and the rank).
    outcome : str
        Outcome column.
    rank_col : str
        Relative rank (0 = most deprived / in need).

    Returns
    -------
    (pandas.DataFrame, str)
        :func:`hepcausal.inequality.classical.sii_table` output and the method used
        (``"phe"`` or ``"unit"``).
    """
    t = _sii_table(data, outcome, rank_col, "phe")
    if t["sii"].notna().any():
        return t, "phe"
    return _sii_table(data, outcome, rank_col, "unit"), "unit"


def _sii_table(
    data: pd.DataFrame, outcome: str, rank_col: str, method: Literal["phe", "unit"]
) -> pd.DataFrame:
    """The figures' classical SII table: fixed seed, skipped groups reported in its 'note'."""
    import warnings

    from hepcausal.inequality.classical import sii_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return sii_table(data, outcome, method=method, rank_col=rank_col, seed=20211)


def sii_by_year(sii: pd.DataFrame, treated: str) -> pd.DataFrame:
    """Treated ICS's classical SII, the comparator average and their difference by year.

    Parameters
    ----------
    sii : pandas.DataFrame
        Classical SII table (``icb_code, year, sii, lower, upper``).
    treated : str
        Treated ICB code.

    Returns
    -------
    pandas.DataFrame
        ``year, treated_sii, treated_lower, treated_upper, comparator_average, difference``.
    """
    tr = sii[sii[ICB] == treated].set_index(YEAR)
    avg = sii[sii[ICB] != treated].groupby(YEAR)["sii"].mean()
    out = pd.DataFrame(
        {
            "treated_sii": tr["sii"],
            "treated_lower": tr["lower"],
            "treated_upper": tr["upper"],
            "comparator_average": avg,
        }
    )
    out["difference"] = out["treated_sii"] - out["comparator_average"]
    return out.rename_axis(YEAR).reset_index()


def icb_year_table(data: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Practice-average outcome by ICS and year with a normal 95% CI.

    Parameters
    ----------
    data : pandas.DataFrame
        Practice-year rows with ``icb_code``, ``year`` and ``outcome``.
    outcome : str
        Outcome column.

    Returns
    -------
    pandas.DataFrame
        ``icb_code, year, value, lower, upper, n`` (mean over practices, each weighted equally).
    """
    g = data.dropna(subset=[outcome]).groupby([ICB, YEAR])[outcome]
    t = g.agg(value="mean", sd="std", n="count").reset_index()
    half = Z95 * t["sd"] / np.sqrt(t["n"])
    t["lower"], t["upper"] = t["value"] - half, t["value"] + half
    return t.drop(columns="sd")


ENGLAND = "England"
"""Group label of the England-wide reference rows (:func:`england_level`, :func:`england_sii`)."""


def _england_rows(panel: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    return panel.loc[:, [YEAR, *columns]].dropna().assign(**{ICB: ENGLAND})


def england_level(panel: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """England-wide practice-average outcome by year: every practice of ``panel`` as one group.

    Parameters
    ----------
    panel : pandas.DataFrame
        The whole practice-year panel the design was cut from (all ICBs).
    outcome : str
        Outcome column.

    Returns
    -------
    pandas.DataFrame
        :func:`icb_year_table` output with ``icb_code == "England"``.
    """
    return icb_year_table(_england_rows(panel, (outcome,)), outcome)


def england_sii(
    panel: pd.DataFrame, outcome: str, rank_col: str, method: Literal["phe", "unit"] = "phe"
) -> pd.DataFrame | None:
    """England-wide classical SII by year: every practice of ``panel`` as one group.

    Parameters
    ----------
    panel : pandas.DataFrame
        The whole practice-year panel the design was cut from (all ICBs).
    outcome : str
        Outcome column.
    rank_col : str
        Relative rank (0 = most deprived / in need).
    method : {"phe", "unit"}
        The method of the ICS lines it is drawn with (:func:`classical_sii`).

    Returns
    -------
    pandas.DataFrame or None
        :func:`hepcausal.inequality.classical.sii_table` output with ``icb_code == "England"``;
        None when no year has a finite SII.
    """
    t = _sii_table(_england_rows(panel, (outcome, rank_col)), outcome, rank_col, method)
    return t if t["sii"].notna().any() else None


def plot_icb_series(
    table: pd.DataFrame,
    *,
    treated: str,
    treatment_year: int,
    ylabel: str,
    title: str,
    value: str = "value",
    reference: pd.DataFrame | None = None,
) -> Figure:
    """One line per ICS over fiscal years: the treated ICS highlighted with its 95% CI band,
    the comparators in grey, their unweighted average dashed, England as the reference line,
    the treatment period shaded.

    Parameters
    ----------
    table : pandas.DataFrame
        ``icb_code, year, <value>, lower, upper`` (e.g. :func:`icb_year_table`, or the classical
        SII table with ``value='sii'``).
    treated : str
        Treated ICB code.
    treatment_year : int
        First treated fiscal year (its end year).
    ylabel : str
        Y-axis label in words with units.
    title : str
        Figure title.
    value : str
        Column of the point estimate.
    reference : pandas.DataFrame or None
        England-wide rows in the same columns (:func:`england_level`, :func:`england_sii`),
        drawn as a solid blue line with its 95% CI as error bars; None draws none.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    t = table.dropna(subset=[value]).sort_values([ICB, YEAR])
    if t.empty:
        raise ValueError(f"no finite {value!r} values to plot")
    years = sorted(int(y) for y in t[YEAR].unique())
    with hepcausal_style():
        fig, ax = new_axes(None, (SINGLE_COLUMN * 1.35, SINGLE_COLUMN * 0.9))
        comps = t[t[ICB] != treated]
        for _, d in comps.groupby(ICB):
            ax.plot(d[YEAR], d[value], color=COMPARATOR_COLOUR, lw=0.6, alpha=0.7, zorder=2)
        avg = comps.groupby(YEAR)[value].mean()
        ax.plot(avg.index, avg.values, color="black", lw=1.2, ls="--", zorder=3)
        tr = t[t[ICB] == treated]
        ax.fill_between(
            tr[YEAR].astype(float), tr["lower"], tr["upper"], color=LLR_COLOUR, alpha=0.2, lw=0
        )
        ax.plot(tr[YEAR], tr[value], color=LLR_COLOUR, lw=1.8, marker="o", ms=3, zorder=4)
        ref = None if reference is None else reference.dropna(subset=[value]).sort_values(YEAR)
        if ref is not None and not ref.empty:
            ax.errorbar(
                ref[YEAR],
                ref[value],
                yerr=[ref[value] - ref["lower"], ref["upper"] - ref[value]],
                color=ACCENT_COLOUR,
                lw=1.2,
                marker="s",
                ms=2.5,
                capsize=1.5,
                elinewidth=0.8,
                zorder=3.5,
            )
        ax.set_xlim(years[0] - 0.4, years[-1] + 0.4)
        mark_treatment(ax, treatment_year, label=None)
        set_fiscal_year_ticks(ax, years)
        ax.set_xlabel("Fiscal year")
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left")
        handles = [
            Line2D([], [], color=LLR_COLOUR, lw=1.8, marker="o", ms=3),
            Line2D([], [], color=COMPARATOR_COLOUR, lw=0.6),
            Line2D([], [], color="black", lw=1.2, ls="--"),
        ]
        labels = [
            f"{icb_label(treated)} (95% CI band)",
            f"Comparator ICSs (n = {comps[ICB].nunique()})",
            "Comparator average",
        ]
        if ref is not None and not ref.empty:
            handles.append(Line2D([], [], color=ACCENT_COLOUR, lw=1.2, marker="s", ms=2.5))
            labels.append("England, all practices (95% CI)")
        ax.legend(handles, labels, fontsize=6.5, frameon=False, loc="best")
    return fig


def descriptive_event_table(
    sii: pd.DataFrame, *, treated: str, treatment_year: int
) -> pd.DataFrame:
    """Treated-minus-comparator-average classical SII per year, relative to the last pre year.

    ``diff_t = (SII_T,t - mean_c SII_c,t) - (SII_T,r - mean_c SII_c,r)`` with ``r`` the year
    before ``treatment_year``; its 95% CI treats the ICS-year SIIs as independent (normal, from
    their standard errors).  Descriptive: no model, no adjustment for practice composition.

    Parameters
    ----------
    sii : pandas.DataFrame
        Classical SII table (``icb_code, year, sii, se``).
    treated : str
        Treated ICB code.
    treatment_year : int
        First treated fiscal year.

    Returns
    -------
    pandas.DataFrame
        ``year, event_time, diff, lower, upper`` (the reference year has diff 0 and no CI).
    """
    s = sii.dropna(subset=["sii"])
    tr = s[s[ICB] == treated].set_index(YEAR)
    comps = s[s[ICB] != treated]
    avg = comps.groupby(YEAR)["sii"].mean()
    avg_var = comps.groupby(YEAR)["se"].apply(lambda x: float(np.sum(x**2)) / len(x) ** 2)
    gap = tr["sii"] - avg
    var = tr["se"] ** 2 + avg_var
    ref = int(treatment_year) - 1
    if ref not in gap.index or not np.isfinite(gap.get(ref, np.nan)):
        raise ValueError(f"no SII for {treated} and the comparators in the reference year {ref}")
    out = pd.DataFrame({"diff": gap - gap[ref], "var": var + var[ref]}).dropna(subset=["diff"])
    out.loc[ref, "var"] = 0.0
    half = Z95 * np.sqrt(out["var"])
    out["lower"], out["upper"] = out["diff"] - half, out["diff"] + half
    out.index.name = YEAR
    out = out.reset_index()
    out["event_time"] = out[YEAR].astype(int) - int(treatment_year)
    return out[[YEAR, "event_time", "diff", "lower", "upper"]]


def plot_descriptive_event(
    table: pd.DataFrame,
    *,
    ylabel: str,
    title: str,
    estimate: tuple[float, float, float] | None = None,
    truth: float | None = None,
) -> Figure:
    """Event view of :func:`descriptive_event_table`, with the model's estimate beside it.

    Parameters
    ----------
    table : pandas.DataFrame
        ``event_time, diff, lower, upper``.
    ylabel : str
        Y-axis label in words with units.
    title : str
        Figure title.
    estimate : (float, float, float), optional
        The fitted average post-period change (mean, HDI low, HDI high), drawn as a band.
    truth : float, optional
        The true average change (synthetic data), drawn as a line.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    with hepcausal_style():
        fig, ax = new_axes(None, (SINGLE_COLUMN * 1.35, SINGLE_COLUMN * 0.9))
        x = table["event_time"].to_numpy(dtype=float)
        y = table["diff"].to_numpy(dtype=float)
        err = np.vstack([y - table["lower"].to_numpy(float), table["upper"].to_numpy(float) - y])
        ax.axhline(0, color="black", lw=0.6, label="Zero")
        ax.axvline(-0.5, color="#6E6E6E", lw=0.7, ls="--")
        post = x >= 0
        if estimate is not None and post.any():
            m, lo, hi = estimate
            ax.fill_between(
                [-0.3, x.max() + 0.3],
                lo,
                hi,
                color=LLR_COLOUR,
                alpha=0.15,
                lw=0,
                label="Model estimate (95% HDI)",
            )
            ax.plot([-0.3, x.max() + 0.3], [m, m], color=LLR_COLOUR, lw=1.2)
        if truth is not None and post.any():
            ax.plot(
                [-0.3, x.max() + 0.3],
                [truth, truth],
                color="black",
                lw=1.2,
                ls=":",
                label="True value",
            )
        ax.errorbar(
            x,
            y,
            yerr=err,
            fmt="o",
            ms=3.5,
            color=ACCENT_COLOUR,
            elinewidth=0.8,
            capsize=2,
            label="Classical SII difference (95% CI)",
            zorder=4,
        )
        ax.set_xticks(x)
        ax.set_xlabel("Years relative to the treatment start (0 = first treated year)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left")
        # below the x label: the legend never covers an interval
        ax.legend(
            fontsize=6.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2
        )
    return fig
