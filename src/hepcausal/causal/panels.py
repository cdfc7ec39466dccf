"""Unit x time panels for synthetic control: long <-> wide helpers and ICS-level series builders.

A *wide* table has one row per time point (sorted index) and one column per unit, e.g. the
ICS x year series of an outcome or of its SII.  ``ics_series`` builds it from the practice panel;
``sii_series_from_fit`` turns a gradient model's posterior SII into the (mean, sd, draws) triple
used by the measurement-error option of
:func:`hepcausal.causal.synthetic_control.fit_synthetic_control`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from hepcausal import schema as S


def to_wide(long: pd.DataFrame, *, time: str, unit: str, value: str) -> pd.DataFrame:
    """Pivot a long table (one row per unit-time) to a wide ``time x unit`` table.

    Raises on missing columns and on duplicated (unit, time) rows, naming the first duplicate.
    Unit labels become strings; missing combinations are NaN (the fit rejects them by name).
    """
    missing = [c for c in (time, unit, value) if c not in long.columns]
    if missing:
        raise KeyError(f"to_wide: columns {missing} not in the table (has {list(long.columns)})")
    dup = long.duplicated([unit, time], keep=False)
    if dup.any():
        row = long.loc[dup, [unit, time]].iloc[0]
        raise ValueError(
            f"to_wide: {int(dup.sum())} duplicated ({unit}, {time}) rows, "
            f"e.g. {unit}={row[unit]!r}, {time}={row[time]!r}"
        )
    df = long[[time, unit, value]].copy()
    df[unit] = df[unit].astype(str)
    wide = df.pivot(index=time, columns=unit, values=value).sort_index()
    wide.columns = pd.Index([str(c) for c in wide.columns], name=unit)
    return wide.astype(float)


def to_long(wide: pd.DataFrame, *, time: str, unit: str, value: str) -> pd.DataFrame:
    """Inverse of :func:`to_wide`: one row per (time, unit) with columns ``time, unit, value``."""
    out = wide.rename_axis(index=time, columns=unit).melt(ignore_index=False, value_name=value)
    return out.reset_index()[[time, unit, value]]


Stat = Literal["mean", "unweighted_mean", "median"]


def ics_series(
    panel: pd.DataFrame,
    outcome: str,
    *,
    stat: Stat = "mean",
    weight: str = S.LIST_SIZE,
    unit: str = S.ICB,
    time: str = S.YEAR,
    units: list[str] | tuple[str, ...] | None = None,
    years: list[int] | tuple[int, ...] | None = None,
) -> pd.DataFrame:
    """Wide ``year x ICS`` table of a practice-level outcome aggregated within ICS-year.

    ``stat='mean'`` is the population-weighted mean (weights ``weight``, default list size);
    ``'unweighted_mean'`` and ``'median'`` ignore weights.  ``units``/``years`` restrict the
    table (e.g. LLR plus the published comparators).  Practice-years with a missing outcome
    (or, for the weighted mean, a missing/non-positive weight) are dropped and counted in
    ``result.attrs['n_dropped']`` with the reason; an ICS-year with no practice left is NaN.
    """
    need = [outcome, unit, time] + ([weight] if stat == "mean" else [])
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise KeyError(f"ics_series: columns {missing} not in the panel")
    if stat not in ("mean", "unweighted_mean", "median"):
        raise ValueError(
            f"ics_series: stat must be 'mean', 'unweighted_mean' or 'median', got {stat!r}"
        )
    df = panel[need].copy()
    df[unit] = df[unit].astype(str)
    if units is not None:
        unknown = sorted(set(map(str, units)) - set(df[unit].unique()))
        if unknown:
            raise ValueError(f"ics_series: units {unknown} not in the panel's {unit!r} column")
        df = df[df[unit].isin([str(u) for u in units])]
    if years is not None:
        df = df[df[time].isin(list(years))]
    dropped: dict[str, int] = {}
    bad = df[outcome].isna()
    dropped[f"missing {outcome}"] = int(bad.sum())
    df = df[~bad]
    if stat == "mean":
        badw = ~(df[weight] > 0)
        dropped[f"missing or non-positive {weight}"] = int(badw.sum())
        df = df[~badw]
        df = df.assign(_wy=df[outcome] * df[weight])
        g = df.groupby([time, unit])
        agg = (g["_wy"].sum() / g[weight].sum()).rename(outcome)
    elif stat == "unweighted_mean":
        agg = df.groupby([time, unit])[outcome].mean()
    else:
        agg = df.groupby([time, unit])[outcome].median()
    wide = agg.unstack(unit).sort_index().astype(float)
    wide.columns = pd.Index([str(c) for c in wide.columns], name=unit)
    if years is not None:
        wide = wide.reindex(sorted(years))
    if units is not None:
        wide = wide.reindex(columns=[str(u) for u in units])
    wide.attrs["n_dropped"] = {k: v for k, v in dropped.items() if v}
    wide.attrs["stat"] = stat
    wide.attrs["outcome"] = outcome
    return wide


class SiiSeries(NamedTuple):
    """Posterior SII series of every ICS: mean and sd (``year x icb``) and draws."""

    mean: pd.DataFrame
    sd: pd.DataFrame
    draws: xr.DataArray  # dims (draw, year, icb); chains stacked into ``draw``


def sii_series_from_fit(fit: object, var: str = "sii") -> SiiSeries:
    """Turn a gradient fit's posterior ``var`` (dims chain, draw, icb, year) into wide tables.

    ``fit`` is a :class:`hepcausal.models.gradient.GradientFit` (anything with ``.idata``) or an
    ``InferenceData``/``DataArray``.  Pass ``mean`` as ``wide`` and ``sd`` as ``outcome_se`` (or
    ``draws`` as ``outcome_draws``) to ``fit_synthetic_control`` to propagate the SII's
    estimation uncertainty into the counterfactual.
    """
    if isinstance(fit, xr.DataArray):
        da = fit
    else:
        idata = getattr(fit, "idata", fit)
        post = getattr(idata, "posterior", None)
        if post is None or var not in post:
            raise KeyError(f"sii_series_from_fit: no posterior variable {var!r} in the fit")
        da = post[var]
    for d in ("chain", "draw", "icb", "year"):
        if d not in da.dims:
            raise ValueError(
                f"sii_series_from_fit: {var!r} needs dims (chain, draw, icb, year), has {da.dims}"
            )
    flat = da.stack(_sample=("chain", "draw")).transpose("_sample", "year", "icb")
    values = np.asarray(flat.values, dtype=float)
    years = list(da.coords["year"].values)
    icbs = [str(v) for v in da.coords["icb"].values]
    draws = xr.DataArray(
        values,
        dims=("draw", "year", "icb"),
        coords={"draw": np.arange(values.shape[0]), "year": years, "icb": icbs},
        name=var,
    )
    idx = pd.Index(years, name=S.YEAR)
    cols = pd.Index(icbs, name=S.ICB)
    mean = pd.DataFrame(values.mean(axis=0), index=idx, columns=cols)
    sd = pd.DataFrame(values.std(axis=0, ddof=1), index=idx, columns=cols)
    return SiiSeries(mean, sd, draws)


class FactorPanel(NamedTuple):
    """A simulated ``time x unit`` panel with a known effect on unit ``'treated'``."""

    wide: pd.DataFrame
    untreated: pd.Series  # the treated unit's true untreated outcome
    weights: pd.Series  # true donor weights
    effect: float
    start: int


def simulate_factor_panel(
    *,
    n_donors: int = 12,
    n_pre: int = 15,
    n_post: int = 5,
    n_factors: int = 2,
    effect: float = 0.0,
    weights: dict[str, float] | None = None,
    noise: float = 0.5,
    idiosyncratic: float = 0.0,
    seed: int = 1,
) -> FactorPanel:
    """Donors follow a linear factor model ``a_j + l_j' f_t + e``; the treated unit is a known
    convex
    combination of the donors' noiseless paths plus N(0, noise) noise, plus ``effect`` in every
    post period.  ``idiosyncratic`` adds donor-specific random walks (sd per step) so the weights
    are identifiable.  Default weights: 0.5, 0.3, 0.2 on the first three donors.
    Time = 2000, 2001, ...
    """
    rng = np.random.default_rng(seed)
    T = n_pre + n_post
    donors = [f"d{j:02d}" for j in range(n_donors)]
    f = np.cumsum(rng.normal(0.3, 1.0, size=(T, n_factors)), axis=0)
    lam = rng.uniform(0.2, 1.5, size=(n_donors, n_factors))
    alpha = rng.normal(10.0, 3.0, size=n_donors)
    signal = alpha + f @ lam.T
    if idiosyncratic > 0:  # donor-specific random walks make donors distinguishable
        signal = signal + np.cumsum(rng.normal(0.0, idiosyncratic, size=(T, n_donors)), axis=0)
    X = signal + rng.normal(0.0, noise, size=(T, n_donors))
    w = dict(weights) if weights is not None else {donors[0]: 0.5, donors[1]: 0.3, donors[2]: 0.2}
    wv = np.array([w.get(d, 0.0) for d in donors])
    untreated = signal @ wv + rng.normal(0.0, noise, size=T)
    y = untreated + effect * (np.arange(T) >= n_pre)
    times = pd.Index(np.arange(2000, 2000 + T), name="time")
    wide = pd.DataFrame(X, index=times, columns=donors)
    wide.insert(0, "treated", y)
    return FactorPanel(
        wide, pd.Series(untreated, index=times), pd.Series(wv, index=donors), effect, 2000 + n_pre
    )
