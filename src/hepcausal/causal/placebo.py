"""Placebo inference for synthetic control: in space (permutation over donors) and in time.

In-space placebos (Abadie, Diamond & Hainmueller 2010): every donor in turn is treated as if it
had been treated at ``start``, with the other donors (never the real treated unit) as its donor
pool.
Each unit's post/pre RMSPE ratio of its gap series is computed; the treated unit's rank among the
ratios (1 = largest) gives the exact permutation p-value ``rank / (n_placebos + 1)``, whose smallest
possible value is ``1 / (n_placebos + 1)``.  Gaps are posterior-mode (``inference='map'``, default,
compiled once and refitted for every placebo: fast) or posterior-mean (``inference='mcmc'``: a full
fit per unit with the given settings) - the ranks use these point gaps, not the full posteriors.
The treated unit's gap is computed the same way as the placebos' so the ranks are comparable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from hepcausal.causal.synthetic_control import (
    SyntheticControlFit,
    fit_synthetic_control,
    prepare_panel,
    resolve_outcome_se,
)
from hepcausal.models.synthetic_control import MapFitter, SyntheticControlPriors

Inference = Literal["map", "mcmc"]
ABADIE_PRE_MSPE_FACTORS: dict[str, float] = {"20x": 20.0, "5x": 5.0, "2x": 2.0}
"""Abadie, Diamond & Hainmueller (2010, figures 5-7): placebos whose pre-period MSPE (mean squared,
not root mean squared, prediction error) exceeds 20, 5 or 2 times the treated unit's are dropped."""


def resolve_mspe_factor(factor: float | str | None) -> float | None:
    """A pre-period MSPE exclusion factor from a number, a named threshold or None.

    Parameters
    ----------
    factor : float, {"20x", "5x", "2x"} or None
        Multiple of the treated unit's pre-period MSPE; None keeps every placebo.

    Returns
    -------
    float or None
        The factor.
    """
    if factor is None:
        return None
    if isinstance(factor, str):
        if factor not in ABADIE_PRE_MSPE_FACTORS:
            raise ValueError(
                f"pre_mspe_factor {factor!r} is not a named threshold "
                f"({', '.join(ABADIE_PRE_MSPE_FACTORS)}) or a number"
            )
        return ABADIE_PRE_MSPE_FACTORS[factor]
    if not float(factor) > 0:
        raise ValueError(f"pre_mspe_factor must be > 0, a named threshold or None, got {factor}")
    return float(factor)


@dataclass(repr=False)
class PlaceboResult:
    """In-space placebo test.

    ``table`` (index = unit): pre/post RMSPE, pre-period MSPE, ratio, ``treated`` and
    ``excluded`` flags, ``rank``.  ``gaps``: ``time x unit`` point gaps (treated first; excluded
    placebos included, for plots).  ``ranks_by_threshold``: the treated unit's rank and number of
    retained units at each of Abadie et al.'s named thresholds (20x, 5x, 2x the treated unit's
    pre-period MSPE) and with none.
    """

    treated: str
    start: Any
    table: pd.DataFrame
    gaps: pd.DataFrame
    rank: int
    n_placebos: int
    n_excluded: int
    excluded: list[str]
    p_value: float
    p_value_floor: float
    inference: str
    pre_mspe_factor: float | None
    meta: dict[str, Any] = field(default_factory=dict)
    ranks_by_threshold: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ratios(self) -> pd.Series:
        """Post/pre RMSPE ratio of every retained unit (treated included)."""
        return self.table.loc[~self.table["excluded"], "ratio"]

    def summary(self) -> str:
        """Plain-language result, stating the smallest attainable p-value."""
        excl = (
            f"; {self.n_excluded} placebo(s) excluded for pre-period MSPE > "
            f"{self.pre_mspe_factor:g} x the treated unit's ({', '.join(self.excluded)})"
            if self.n_excluded
            else ""
        )
        return (
            f"In-space placebo test ({self.inference} gaps): {self.treated}'s post/pre RMSPE ratio "
            f"ranks {self.rank} of {self.n_placebos + 1}, exact permutation p = {self.rank}/"
            f"{self.n_placebos + 1} = {self.p_value:.3f} (the smallest attainable p with "
            f"{self.n_placebos} placebos is {self.p_value_floor:.3f}){excl}."
        )

    def __repr__(self) -> str:
        return f"PlaceboResult({self.summary()})"


def _rmspe(gap: np.ndarray, n_pre: int) -> tuple[float, float]:
    return float(np.sqrt(np.mean(gap[:n_pre] ** 2))), float(np.sqrt(np.mean(gap[n_pre:] ** 2)))


def placebo_in_space(
    wide: pd.DataFrame,
    treated: str,
    start: Any,
    *,
    fit_kwargs: Mapping[str, Any] | None = None,
    inference: Inference = "map",
    pre_mspe_factor: float | str | None = "20x",
) -> PlaceboResult:
    """Permutation (in-space) placebo test of a synthetic control.

    ``fit_kwargs`` go to :func:`fit_synthetic_control` (``method``, ``intercept``, ``priors``,
    ``settings``, ``outcome_se``/``outcome_draws``; with ``inference='map'`` the sampler settings
    are ignored).  ``pre_mspe_factor``: placebos whose pre-period MSPE exceeds this multiple of
    the treated unit's are excluded from the ranking (counted and listed); a named threshold
    ``"20x"`` (default), ``"5x"`` or ``"2x"`` (:data:`ABADIE_PRE_MSPE_FACTORS`), a number, or
    ``None`` (keep all).  The ranks at every named threshold are in ``ranks_by_threshold``.

    Parameters
    ----------
    wide : pandas.DataFrame
        ``time x unit`` panel.
    treated : str
        Treated unit (a column).
    start : object
        First treated period.
    fit_kwargs : mapping, optional
        Keyword arguments of the fits.
    inference : {"map", "mcmc"}
        Point gaps from posterior-mode / penalised fits or from full fits.
    pre_mspe_factor : float, str or None
        Exclusion threshold (see above).

    Returns
    -------
    PlaceboResult
        The ranks, table and gaps.
    """
    kw = dict(fit_kwargs or {})
    if "donors" in kw:
        raise ValueError(
            "fit_kwargs['donors'] is not allowed: restrict the columns of wide instead"
        )
    if inference not in ("map", "mcmc"):
        raise ValueError(f"inference must be 'map' or 'mcmc', got {inference!r}")
    factor = resolve_mspe_factor(pre_mspe_factor)
    wide = wide.copy()
    wide.columns = [str(c) for c in wide.columns]
    treated = str(treated)
    prepare_panel(wide, treated, start)  # validate before reading the standard errors
    se = resolve_outcome_se(wide, kw.pop("outcome_se", None), kw.pop("outcome_draws", None))
    cov, lags = kw.get("covariates"), tuple(kw.get("outcome_lags", ()))
    d_treated = prepare_panel(wide, treated, start, se, covariates=cov, outcome_lags=lags)
    donors = d_treated.donors
    if len(donors) < 3:
        raise ValueError(
            f"placebo_in_space needs at least 3 donors (each placebo needs 2), got {len(donors)}"
        )
    method = kw.get("method", "bayesian_bootstrap")
    intercept = bool(kw.get("intercept", False))
    priors = SyntheticControlPriors.from_any(kw.get("priors"))

    gaps: dict[str, np.ndarray] = {}
    if inference == "map":
        gaps[treated] = (
            d_treated.y
            - MapFitter(d_treated, method, intercept=intercept, priors=priors).fit(d_treated)[1]
        )
        fitter: MapFitter | None = None
        for u in donors:
            pool = [c for c in donors if c != u]
            d = prepare_panel(
                wide[[u, *pool]],
                u,
                start,
                None if se is None else se[[u, *pool]],
                covariates=cov,
                outcome_lags=lags,
            )
            if fitter is None:
                fitter = MapFitter(d, method, intercept=intercept, priors=priors)
            gaps[u] = d.y - fitter.fit(d)[1]
    else:
        for u in [treated, *donors]:
            pool = donors if u == treated else [c for c in donors if c != u]
            f: SyntheticControlFit = fit_synthetic_control(
                wide[[u, *pool]], u, start, outcome_se=None if se is None else se[[u, *pool]], **kw
            )
            gaps[u] = f.series["effect_mean"].to_numpy()

    n_pre = d_treated.n_pre
    rows = []
    for u, g in gaps.items():
        pre, post = _rmspe(g, n_pre)
        rows.append(
            {
                "unit": u,
                "pre_rmspe": pre,
                "pre_mspe": pre**2,
                "post_rmspe": post,
                "ratio": post / pre if pre > 0 else np.inf,
                "treated": u == treated,
            }
        )
    table = pd.DataFrame(rows).set_index("unit")
    tr_pre = table.at[treated, "pre_mspe"]
    tr_ratio = table.at[treated, "ratio"]

    def _excluded(f: float | None) -> pd.Series:
        if f is None:
            return pd.Series(False, index=table.index)
        return (~table["treated"]) & (table["pre_mspe"] > f * tr_pre)

    ranks_by: dict[str, tuple[int, int]] = {}
    for name, thr in [*ABADIE_PRE_MSPE_FACTORS.items(), ("none", None)]:
        k = table[~_excluded(thr)]
        ranks_by[name] = (int((k["ratio"] >= tr_ratio).sum()), len(k))
    table["excluded"] = _excluded(factor)
    kept = table[~table["excluded"]]
    rank = int((kept["ratio"] >= tr_ratio).sum())  # ties counted against the treated unit
    table["rank"] = kept["ratio"].rank(ascending=False, method="max").reindex(table.index)
    n_placebos = len(kept) - 1
    excluded = list(table.index[table["excluded"]])
    gap_df = pd.DataFrame(gaps, index=pd.Index(d_treated.times, name="time"))
    return PlaceboResult(
        treated=treated,
        start=start,
        table=table,
        gaps=gap_df,
        rank=rank,
        n_placebos=n_placebos,
        n_excluded=len(excluded),
        excluded=excluded,
        p_value=rank / (n_placebos + 1),
        p_value_floor=1 / (n_placebos + 1),
        inference=inference,
        pre_mspe_factor=factor,
        ranks_by_threshold=ranks_by,
        meta={
            "estimator": "placebo_in_space",
            "fit_kwargs": {k: v for k, v in kw.items() if k != "settings"},
            "measurement_error": se is not None,
        },
    )


@dataclass(repr=False)
class PlaceboInTimeResult:
    """In-time placebos: one fit per fake start on pre-period data only; effects should be null.

    ``table`` (index = fake start): mean, HDI and P(direction) of the fake average post effect,
    ``covers_zero``.  ``fits`` holds the fits by fake start.
    """

    treated: str
    start: Any
    table: pd.DataFrame
    fits: dict[Any, SyntheticControlFit]

    def summary(self) -> str:
        n_cover = int(self.table["covers_zero"].sum())
        return (
            f"In-time placebo test for {self.treated} (real start {self.start}): "
            "the HDI of the fake "
            f"average effect covers 0 for {n_cover} of {len(self.table)} fake start(s)."
        )

    def __repr__(self) -> str:
        return f"PlaceboInTimeResult({self.summary()})"


def placebo_in_time(
    wide: pd.DataFrame,
    treated: str,
    start: Any,
    *,
    fake_starts: Sequence[Any] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    min_pre: int = 4,
    min_post: int = 2,
) -> PlaceboInTimeResult:
    """Refit the synthetic control with fake earlier starts using only the pre-``start`` periods.

    Default ``fake_starts``: one fake date in the pre-period leaving at least ``min_pre`` fake
    pre-periods to fit on and at least ``min_post`` fake post-periods to test (the middle of the
    pre-period when it is long enough); when the pre-period is too short for that, a ValueError
    says so (an in-time placebo on 2 fake pre-periods has no power).  Explicit ``fake_starts``
    need >= 2 periods before them and must precede ``start``.

    Parameters
    ----------
    wide : pandas.DataFrame
        ``time x unit`` panel.
    treated : str
        Treated unit.
    start : object
        Real first treated period.
    fake_starts : sequence, optional
        Fake start dates (default: chosen as above).
    fit_kwargs : mapping, optional
        Keyword arguments of the fits.
    min_pre, min_post : int
        Fake pre- and post-periods the default fake date must leave.

    Returns
    -------
    PlaceboInTimeResult
        One row per fake start.
    """
    kw = dict(fit_kwargs or {})
    wide = wide.copy()
    wide.columns = [str(c) for c in wide.columns]
    d = prepare_panel(wide, treated, start)  # validates the real design
    pre_times = d.times[: d.n_pre]
    if fake_starts is None:
        if d.n_pre < min_pre + min_post:
            raise ValueError(
                f"cannot run an in-time placebo: {d.n_pre} pre-periods before start={start!r}, "
                f"but a fake date needs >= {min_pre} fake pre-periods and >= {min_post} fake "
                f"post-periods ({min_pre + min_post} in all); pass fake_starts to force one"
            )
        k = min(max(min_pre, d.n_pre // 2), d.n_pre - min_post)
        fake_starts = [pre_times[k]]
    se_all = resolve_outcome_se(wide, kw.pop("outcome_se", None), kw.pop("outcome_draws", None))
    pre_wide = wide.loc[pre_times]
    rows, fits = [], {}
    for fs in fake_starts:
        if fs not in pre_times:
            raise ValueError(f"fake start {fs!r} is not a pre-period time before start={start!r}")
        se = None if se_all is None else se_all.loc[pre_times]
        f = fit_synthetic_control(pre_wide, treated, fs, outcome_se=se, **kw)
        h = f.headline
        rows.append(
            {
                "fake_start": fs,
                "mean": h.mean,
                "hdi_low": h.hdi_low,
                "hdi_high": h.hdi_high,
                "p_direction": h.p_direction,
                "covers_zero": h.hdi_low <= 0 <= h.hdi_high,
                "diagnostics_ok": f.diagnostics.ok,
            }
        )
        fits[fs] = f
    table = pd.DataFrame(rows).set_index("fake_start")
    return PlaceboInTimeResult(treated=str(treated), start=start, table=table, fits=fits)


# ----------------------------------------------------------------------------- leave-one-out


@dataclass(repr=False)
class LeaveOneOutResult:
    """Leave-one-out donors (Abadie, Diamond & Hainmueller 2015): the synthetic control refitted
    without each donor with a positive weight in turn.

    ``table`` (index = dropped donor, first row ``"none"`` = all donors): the dropped donor's
    weight, the pre-period RMSPE and the average post-period gap.  ``gaps``: ``time x fit`` point
    gaps (penalised simplex / posterior-mode fits).
    """

    treated: str
    start: Any
    table: pd.DataFrame
    gaps: pd.DataFrame

    def summary(self) -> str:
        """Range of the average post-period gap over the leave-one-out fits."""
        loo = self.table.drop(index="none")["avg_post_gap"]
        full = self.table.at["none", "avg_post_gap"]
        return (
            f"Leave-one-out donors for {self.treated}: average post-period gap {full:.3g} with all "
            f"donors, {loo.min():.3g} to {loo.max():.3g} dropping one of {len(loo)} donors."
        )

    def __repr__(self) -> str:
        return f"LeaveOneOutResult({self.summary()})"


def leave_one_out(
    wide: pd.DataFrame,
    treated: str,
    start: Any,
    *,
    fit_kwargs: Mapping[str, Any] | None = None,
    min_weight: float = 0.01,
) -> LeaveOneOutResult:
    """Refit without each donor whose weight exceeds ``min_weight`` (point fits).

    Parameters
    ----------
    wide : pandas.DataFrame
        ``time x unit`` panel.
    treated : str
        Treated unit.
    start : object
        First treated period.
    fit_kwargs : mapping, optional
        ``method``, ``intercept``, ``priors`` (as :func:`fit_synthetic_control`).
    min_weight : float
        Donors with a larger weight in the all-donor fit are dropped in turn.

    Returns
    -------
    LeaveOneOutResult
        The table and gaps.
    """
    kw = dict(fit_kwargs or {})
    wide = wide.copy()
    wide.columns = [str(c) for c in wide.columns]
    treated = str(treated)
    d = prepare_panel(wide, treated, start)
    method = kw.get("method", "bayesian_bootstrap")
    intercept = bool(kw.get("intercept", False))
    priors = SyntheticControlPriors.from_any(kw.get("priors"))
    w, mu = MapFitter(d, method, intercept=intercept, priors=priors).fit(d)
    gaps = {"none": d.y - mu}
    rows = [{"dropped": "none", "weight": 0.0}]
    big = [u for u, wj in zip(d.donors, w, strict=True) if wj > min_weight]
    if not big:
        raise ValueError(f"no donor has a weight above min_weight={min_weight}")
    fitter: MapFitter | None = None
    for u in big:
        pool = [c for c in d.donors if c != u]
        if len(pool) < 2:
            raise ValueError("leave-one-out needs at least 3 donors")
        du = prepare_panel(wide[[treated, *pool]], treated, start)
        if fitter is None:
            fitter = MapFitter(du, method, intercept=intercept, priors=priors)
        gaps[u] = du.y - fitter.fit(du)[1]
        rows.append({"dropped": u, "weight": float(w[d.donors.index(u)])})
    table = pd.DataFrame(rows).set_index("dropped")
    table["pre_rmspe"] = [float(np.sqrt(np.mean(g[: d.n_pre] ** 2))) for g in gaps.values()]
    table["avg_post_gap"] = [float(np.mean(g[d.n_pre :])) for g in gaps.values()]
    gap_df = pd.DataFrame(gaps, index=pd.Index(d.times, name="time"))
    return LeaveOneOutResult(treated=treated, start=start, table=table, gaps=gap_df)
