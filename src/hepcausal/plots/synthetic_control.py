"""Synthetic-control figures: observed vs counterfactual, gap, cumulative gap; donor weights;
placebo RMSPE ratios."""

from __future__ import annotations

from collections.abc import Sequence

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hepcausal.plots.labels import outcome_units, sii_axis_label
from hepcausal.plots.style import (
    ACCENT_COLOUR,
    COMPARATOR_COLOUR,
    DOUBLE_COLUMN,
    LLR_COLOUR,
    PLACEBO_COLOUR,
    POST_SHADE,
    SINGLE_COLUMN,
    hepcausal_style,
    mark_treatment,
    new_axes,
    set_fiscal_year_ticks,
)
from hepcausal.schema import HEP_START_YEAR


def as_draws(x: object, n_cols: int | None = None) -> np.ndarray:
    """Posterior draws as a 2-d ``(n_draws, n_cols)`` array (chain and draw dims flattened).

    Accepts numpy arrays ``(draws, k)`` or ``(chain, draw, k)`` and xarray DataArrays with
    ``chain``/``draw`` (or ``sample``) dims, which are moved to the front.
    """
    if isinstance(x, xr.DataArray):
        sample_dims = [d for d in ("chain", "draw", "sample") if d in x.dims]
        other = [d for d in x.dims if d not in sample_dims]
        arr = np.asarray(x.transpose(*sample_dims, *other).values, dtype=np.float64)
        n_sample = int(np.prod([x.sizes[d] for d in sample_dims])) if sample_dims else 1
        arr = arr.reshape(n_sample, -1)
    else:
        arr = np.asarray(x, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        elif arr.ndim > 2:
            arr = arr.reshape(-1, arr.shape[-1])
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"draws have {arr.shape[1]} columns, expected {n_cols}")
    return arr


def hdi_columns(draws: np.ndarray, hdi_prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise HDI of a ``(n_draws, k)`` array: ``(low, high)`` each of length ``k``."""
    lo = np.empty(draws.shape[1])
    hi = np.empty(draws.shape[1])
    for j in range(draws.shape[1]):
        lo[j], hi[j] = az.hdi(draws[:, j], hdi_prob=hdi_prob)
    return lo, hi


def _band(
    ax: Axes,
    x: np.ndarray,
    draws: np.ndarray,
    colour: str,
    hdi_prob: float,
    ls: str = "-",
    label: str | None = None,
    lw: float = 1.3,
) -> None:
    lo, hi = hdi_columns(draws, hdi_prob)
    ax.fill_between(x, lo, hi, color=colour, alpha=0.22, lw=0, zorder=2)
    ax.plot(x, draws.mean(axis=0), color=colour, lw=lw, ls=ls, zorder=3, label=label)


def _placebo_matrix(placebo_gaps: object, years: np.ndarray) -> np.ndarray:
    if isinstance(placebo_gaps, pd.DataFrame):
        p = placebo_gaps.reindex(years)
        if p.isna().all(axis=None):
            raise ValueError("placebo_gaps index must be the years of the treated series")
        return p.to_numpy(dtype=float)
    arr = np.asarray(placebo_gaps, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != years.size:
        raise ValueError(f"placebo_gaps must be (n_years={years.size}, n_units), got {arr.shape}")
    return arr


def plot_synthetic_control(
    years: Sequence[int] | np.ndarray,
    observed: Sequence[float] | np.ndarray,
    counterfactual: object,
    *,
    treatment_year: int = HEP_START_YEAR,
    placebo_gaps: pd.DataFrame | np.ndarray | None = None,
    hdi_prob: float = 0.95,
    outcome: str | None = None,
    units: str = "",
    series_label: str = "SII",
    treated_label: str = "LLR (QK1)",
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Three panels: observed vs synthetic counterfactual (HDI band), gap, cumulative post gap.

    ``counterfactual`` holds posterior draws ``(n_draws, n_years)`` (or ``(chain, draw, year)``
    / a DataArray).  ``placebo_gaps`` (``year x unit``: DataFrame indexed by year, or array) are
    drawn as grey lines in the gap panels.  ``axes`` may be three existing axes.

    Parameters
    ----------
    years : array_like of int
        Fiscal years (year end), one per column of the series.
    observed : array_like of float
        Observed series of the treated unit, same length as ``years``.
    counterfactual : array_like or xarray.DataArray
        Posterior draws of the synthetic counterfactual, ``(n_draws, n_years)`` or
        ``(chain, draw, n_years)``.
    treatment_year : int, default HEP_START_YEAR
        First treated fiscal year; the cumulative gap sums from here.
    placebo_gaps : pandas.DataFrame or numpy.ndarray or None, default None
        Placebo gaps, ``year x unit`` (DataFrame indexed by year, or an array with one row per
        year), drawn in grey.
    hdi_prob : float, default 0.95
        Probability of the HDI bands.
    outcome : str or None, default None
        Outcome column or alias, for the axis labels.
    units : str, default ""
        Units for the axis labels; default the outcome's units.
    series_label : str, default "SII"
        What the series is (first word of the y label of panel (a)).
    treated_label : str, default "LLR (QK1)"
        Legend label of the treated unit.
    axes : sequence of matplotlib.axes.Axes or None, default None
        Three axes to draw on; None creates a double-column figure with a shared legend.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the three panels.

    Raises
    ------
    ValueError
        When shapes disagree (``observed``, ``counterfactual`` or ``placebo_gaps`` against
        ``years``) or ``axes`` is not three axes.
    """
    x = np.asarray(years, dtype=float)
    y = np.asarray(observed, dtype=float)
    if y.shape != x.shape:
        raise ValueError(f"observed has shape {y.shape}, years {x.shape}")
    cf = as_draws(counterfactual, x.size)
    gap = y[None, :] - cf
    post = x >= treatment_year
    cum = np.cumsum(np.where(post[None, :], gap, 0.0), axis=1)
    pl = _placebo_matrix(placebo_gaps, x.astype(int)) if placebo_gaps is not None else None
    u = units or outcome_units(outcome)
    ylab = sii_axis_label(outcome, units, prefix=series_label)
    unit_txt = f"\n({u})" if u else ""
    with hepcausal_style():
        if axes is None:
            fig, ax_arr = plt.subplots(1, 3, figsize=(DOUBLE_COLUMN, DOUBLE_COLUMN * 0.4))
            axs = list(ax_arr)
        else:
            axs = list(axes)
            if len(axs) != 3:
                raise ValueError("axes must be three Axes")
            fig = axs[0].figure
        a, b, c = axs
        a.plot(x, y, color=LLR_COLOUR, lw=1.6, marker="o", ms=3, zorder=4, label=treated_label)
        _band(a, x, cf, ACCENT_COLOUR, hdi_prob, ls="--", label="Synthetic control")
        a.set_ylabel(ylab)
        a.set_title("(a) Observed and counterfactual")
        if pl is not None:
            for j in range(pl.shape[1]):
                b.plot(x, pl[:, j], color=PLACEBO_COLOUR, lw=0.6, zorder=1)
                pc = np.cumsum(np.where(post, pl[:, j], 0.0))
                c.plot(x[post], pc[post], color=PLACEBO_COLOUR, lw=0.6, zorder=1)
        _band(b, x, gap, LLR_COLOUR, hdi_prob)
        b.set_ylabel(f"Observed − synthetic{unit_txt}")
        b.set_title("(b) Gap")
        _band(c, x[post], cum[:, post], LLR_COLOUR, hdi_prob, lw=1.4)
        c.plot(x[post], cum[:, post].mean(axis=0), "o", color=LLR_COLOUR, ms=3, zorder=4)
        c.set_ylabel(f"Cumulative gap{unit_txt}")
        c.set_title("(c) Cumulative gap, HEP period")
        for ax in axs:
            shown = x if ax is not c else x[post]
            ax.set_xlim(shown.min() - 0.4, shown.max() + 0.4)
            mark_treatment(ax, treatment_year, label=None)
            set_fiscal_year_ticks(ax, shown.astype(int))
            ax.tick_params(axis="x", labelrotation=90)
            ax.set_xlabel("Fiscal year")
        for ax in (b, c):
            ax.axhline(0, color="black", lw=0.5, zorder=0.6)
        handles: list[object] = [
            Line2D([], [], color=LLR_COLOUR, lw=1.6, marker="o", ms=3, label=treated_label),
            Line2D([], [], color=ACCENT_COLOUR, lw=1.3, ls="--", label="Synthetic control"),
            Patch(color="#B0B0B0", alpha=0.5, lw=0, label=f"{hdi_prob:.0%} HDI"),
        ]
        if pl is not None:
            handles.append(
                Line2D(
                    [], [], color=PLACEBO_COLOUR, lw=0.8, label=f"Placebo gaps (n={pl.shape[1]})"
                )
            )
        handles.append(Patch(color=POST_SHADE, lw=0, label="HEP period"))
        if axes is None:
            fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        else:
            a.legend(handles=handles, loc="best")
    return fig


def weights_table(
    weights: object, donors: Sequence[str] | None = None, hdi_prob: float = 0.95
) -> pd.DataFrame:
    """Donor weights as ``donor, mean, hdi_low, hdi_high`` from draws or a summary DataFrame
    (with a ``donor`` column or donors as the index)."""
    if isinstance(weights, pd.DataFrame):
        t = weights.copy()
        if "donor" not in t.columns:
            t = t.rename_axis("donor").reset_index()  # donors as the index
            t["donor"] = t["donor"].astype(str)
        need = ["donor", "mean"]
        missing = [c for c in need if c not in t.columns]
        if missing:
            raise KeyError(f"weights table: missing column(s) {missing}")
        for col in ("hdi_low", "hdi_high"):
            if col not in t.columns:
                t[col] = t["mean"]
        return t[["donor", "mean", "hdi_low", "hdi_high"]]
    if isinstance(weights, pd.Series):
        return pd.DataFrame(
            {
                "donor": weights.index.astype(str),
                "mean": weights.to_numpy(),
                "hdi_low": weights.to_numpy(),
                "hdi_high": weights.to_numpy(),
            }
        )
    if donors is None and isinstance(weights, xr.DataArray):
        other = [d for d in weights.dims if d not in ("chain", "draw", "sample")]
        if len(other) == 1:
            donors = [str(v) for v in weights.coords[other[0]].values]
    w = as_draws(weights)
    if donors is None:
        donors = [f"donor {j}" for j in range(w.shape[1])]
    if len(donors) != w.shape[1]:
        raise ValueError(f"{len(donors)} donor names for {w.shape[1]} weight columns")
    lo, hi = hdi_columns(w, hdi_prob) if w.shape[0] > 1 else (w[0], w[0])
    return pd.DataFrame(
        {"donor": list(donors), "mean": w.mean(axis=0), "hdi_low": lo, "hdi_high": hi}
    )


def plot_donor_weights(
    weights: object,
    *,
    donors: Sequence[str] | None = None,
    hdi_prob: float = 0.95,
    top: int | None = None,
    labels: dict[str, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Donor weights (posterior mean and HDI), sorted from largest; ``top`` keeps the largest.

    Parameters
    ----------
    weights : array_like or xarray.DataArray or pandas.DataFrame or pandas.Series
        Weight draws ``(n_draws, n_donors)`` (or with chain and draw dims), or a summary with
        ``mean`` (and ``hdi_low``, ``hdi_high``) per donor.
    donors : sequence of str or None, keyword-only, default None
        Donor names, one per weight column; None: from the DataArray's donor coordinate or
        the summary, else ``"donor j"``.
    hdi_prob : float, default 0.95
        Probability of the HDI computed from draws.
    top : int or None, default None
        Keep only the ``top`` largest weights.
    labels : dict of str to str or None, default None
        Donor code -> display label.
    ax : matplotlib.axes.Axes or None, default None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ValueError
        When the number of donor names differs from the number of weight columns.
    """
    t = weights_table(weights, donors, hdi_prob).sort_values("mean", ascending=False)
    if top is not None:
        t = t.head(top)
    t = t.iloc[::-1]  # largest at the top
    n = len(t)
    with hepcausal_style():
        fig, ax = new_axes(ax, (SINGLE_COLUMN, max(1.6, 0.17 * n + 0.7)))
        ypos = np.arange(n)
        m = t["mean"].to_numpy(dtype=float)
        err = np.vstack(
            [m - t["hdi_low"].to_numpy(dtype=float), t["hdi_high"].to_numpy(dtype=float) - m]
        )
        ax.errorbar(
            m,
            ypos,
            xerr=np.clip(err, 0, None),
            fmt="o",
            color=ACCENT_COLOUR,
            ms=3.5,
            elinewidth=1.0,
            capsize=0,
        )
        names = [(labels or {}).get(str(d), str(d)) for d in t["donor"]]
        ax.set_yticks(ypos)
        ax.set_yticklabels(names)
        ax.set_xlabel(f"Donor weight (mean, {hdi_prob:.0%} HDI)")
        ax.axvline(0, color="black", lw=0.5)
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(axis="x")
        ax.set_title("Synthetic-control donor weights")
    return fig


def plot_placebo_ratios(
    ratios: pd.Series,
    *,
    treated: str,
    p_value: float | None = None,
    labels: dict[str, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Post/pre RMSPE ratio of every unit (treated highlighted), with the permutation p-value.

    Parameters
    ----------
    ratios : pandas.Series
        Post/pre-period RMSPE ratio, indexed by unit (the treated unit and the placebos).
    treated : str
        Index label of the treated unit, drawn in the LLR colour.
    p_value : float or None, default None
        Permutation p-value, shown in the title when given.
    labels : dict of str to str or None, default None
        Unit code -> display label.
    ax : matplotlib.axes.Axes or None, default None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.
    """
    r = pd.Series(ratios, dtype=float).sort_values()
    n = len(r)
    with hepcausal_style():
        fig, ax = new_axes(ax, (SINGLE_COLUMN, max(1.6, 0.15 * n + 0.8)))
        ypos = np.arange(n)
        is_t = np.asarray([str(i) == str(treated) for i in r.index])
        colours = np.where(is_t, LLR_COLOUR, COMPARATOR_COLOUR)
        ax.barh(ypos, r.to_numpy(), color=colours, height=0.65)
        ax.set_yticks(ypos)
        ax.set_yticklabels([(labels or {}).get(str(i), str(i)) for i in r.index])
        for t in ax.get_yticklabels():
            if t.get_text() == (labels or {}).get(str(treated), str(treated)):
                t.set_color(LLR_COLOUR)
                t.set_fontweight("bold")
        ax.set_xlabel("Post/pre RMSPE ratio")
        ax.set_ylim(-0.7, n - 0.3)
        title = "Placebo-in-space RMSPE ratios"
        ax.set_title(title)
        if p_value is not None:
            ax.text(
                0.97,
                0.03,
                f"permutation p = {p_value:.3g}",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#BDBDBD", "lw": 0.5},
            )
    return fig


def plot_placebo_gaps(
    gaps: pd.DataFrame,
    *,
    treated: str,
    treatment_year: int = HEP_START_YEAR,
    excluded: Sequence[str] = (),
    outcome: str | None = None,
    units: str = "",
    treated_label: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """In-space placebo gaps (``time x unit``): treated unit highlighted, placebos in grey.

    Placebos in ``excluded`` (poor pre-period fit) are drawn dotted and lighter.

    Parameters
    ----------
    gaps : pandas.DataFrame
        Observed minus synthetic, indexed by fiscal year (year end), one column per unit.
    treated : str
        Column of the treated unit.
    treatment_year : int, default HEP_START_YEAR
        First treated fiscal year (the shaded period starts half a year before).
    excluded : sequence of str, default ()
        Placebo units excluded from inference (drawn dotted).
    outcome : str or None, default None
        Outcome column or alias, for the default units.
    units : str, default ""
        Units for the y label; default the outcome's units.
    treated_label : str or None, default None
        Legend label of the treated unit; None: ``treated``.
    ax : matplotlib.axes.Axes or None, default None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    KeyError
        When ``treated`` is not a column of ``gaps``.
    """
    if treated not in gaps.columns:
        raise KeyError(
            f"placebo gaps: treated unit {treated!r} not among columns {list(gaps.columns)}"
        )
    x = np.asarray(gaps.index, dtype=float)
    u = units or outcome_units(outcome)
    excl = {str(e) for e in excluded}
    with hepcausal_style():
        fig, ax = new_axes(ax, (SINGLE_COLUMN * 1.25, SINGLE_COLUMN * 0.85))
        for col in gaps.columns:
            if col == treated:
                continue
            dotted = str(col) in excl
            ax.plot(
                x,
                gaps[col].to_numpy(dtype=float),
                color=PLACEBO_COLOUR,
                lw=0.6 if dotted else 0.8,
                ls=":" if dotted else "-",
                zorder=2,
                alpha=0.6 if dotted else 1.0,
            )
        ax.plot(
            x,
            gaps[treated].to_numpy(dtype=float),
            color=LLR_COLOUR,
            lw=1.8,
            marker="o",
            ms=3,
            zorder=4,
        )
        ax.axhline(0, color="black", lw=0.5, zorder=1)
        ax.set_xlim(x.min() - 0.4, x.max() + 0.4)
        mark_treatment(ax, treatment_year, label=None)
        set_fiscal_year_ticks(ax, x.astype(int))
        ax.set_xlabel("Fiscal year")
        ax.set_ylabel("Gap, observed − synthetic" + (f"\n({u})" if u else ""))
        n_pl = gaps.shape[1] - 1
        handles: list[object] = [
            Line2D(
                [], [], color=LLR_COLOUR, lw=1.8, marker="o", ms=3, label=treated_label or treated
            ),
            Line2D([], [], color=PLACEBO_COLOUR, lw=0.8, label=f"Placebo units (n={n_pl})"),
        ]
        if excl:
            handles.append(
                Line2D(
                    [], [], color=PLACEBO_COLOUR, lw=0.6, ls=":", label="Excluded (poor pre-fit)"
                )
            )
        handles.append(Patch(color=POST_SHADE, lw=0, label="Treatment period"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2)
    return fig


def plot_sdid(
    series: pd.DataFrame,
    time_weights: pd.Series,
    *,
    treatment_year: int,
    treated_label: str = "treated",
    ylabel: str = "",
) -> Figure:
    """Synthetic DiD: the treated series, the omega-weighted controls shifted by the
    lambda-weighted pre-period difference (the counterfactual), and the time weights.

    Parameters
    ----------
    series : pandas.DataFrame
        ``SdidFit.series`` (index = time; ``treated``, ``synthetic``, ``counterfactual``).
    time_weights : pandas.Series
        ``SdidFit.time_weights`` (index = pre-period).
    treatment_year : int
        First treated period.
    treated_label : str
        Legend label of the treated series.
    ylabel : str
        Y-axis label.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: (a) trajectories, (b) time weights.
    """
    x = series.index.to_numpy(dtype=float)
    with hepcausal_style():
        fig, axes = plt.subplots(
            2, 1, figsize=(DOUBLE_COLUMN * 0.6, 3.6), sharex=True, height_ratios=[3, 1]
        )
        ax = axes[0]
        ax.plot(x, series["treated"], color=LLR_COLOUR, lw=1.6, label=treated_label)
        ax.plot(
            x,
            series["synthetic"],
            color=COMPARATOR_COLOUR,
            lw=1.0,
            ls=":",
            label="weighted controls",
        )
        ax.plot(
            x,
            series["counterfactual"],
            color=ACCENT_COLOUR,
            lw=1.2,
            ls="--",
            label="synthetic DiD counterfactual",
        )
        ax.axvline(treatment_year - 0.5, color="black", lw=0.6)
        ax.set_ylabel(ylabel)
        ax.legend(frameon=False, fontsize="small")
        ax.set_title("(a) Synthetic difference-in-differences", loc="left")
        tw = time_weights.reindex(series.index).fillna(0.0)
        axes[1].bar(x, tw.to_numpy(dtype=float), width=0.8, color=ACCENT_COLOUR)
        axes[1].set_ylabel("time weight")
        axes[1].set_title("(b) Time weights (lambda)", loc="left")
    return fig
