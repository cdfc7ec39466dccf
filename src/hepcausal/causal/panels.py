"""ICS-level series for synthetic control: the wide ``year x ICS`` table of a practice outcome.

A *wide* table has one row per time point (sorted index) and one column per unit, the input of
:func:`hepcausal.causal.synthetic_control.fit_synthetic_control`.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from hepcausal import schema as S

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
