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
ABADIE_PRE_RMSPE_FACTOR = 20.0  # ADH (2010) show placebos with pre-MSPE up to 20x, 5x and 2x


@dataclass(repr=False)
class PlaceboResult:
    """In-space placebo test.

    ``table`` (index = unit): pre/post RMSPE, ratio, ``treated`` and ``excluded`` flags, ``rank``.
    ``gaps``: ``time x unit`` point gaps (treated first; excluded placebos included, for plots).
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
    pre_rmspe_factor: float | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ratios(self) -> pd.Series:
        """Post/pre RMSPE ratio of every retained unit (treated included)."""
        return self.table.loc[~self.table["excluded"], "ratio"]

    def summary(self) -> str:
        """Plain-language result, stating the smallest attainable p-value."""
        excl = (
            f"; {self.n_excluded} placebo(s) excluded for pre-period RMSPE > "
            f"{self.pre_rmspe_factor:g} x the treated unit's ({', '.join(self.excluded)})"
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
    pre_rmspe_factor: float | None = ABADIE_PRE_RMSPE_FACTOR,
) -> PlaceboResult:
    """Permutation (in-space) placebo test of a synthetic control.

    ``fit_kwargs`` go to :func:`fit_synthetic_control` (``method``, ``intercept``, ``priors``,
    ``settings``, ``outcome_se``/``outcome_draws``; with ``inference='map'`` the sampler settings
    are ignored).  ``pre_rmspe_factor``: placebos whose pre-period RMSPE exceeds this multiple of
    the treated unit's are excluded from the ranking (counted and listed); ``None`` keeps all.
    """
    kw = dict(fit_kwargs or {})
    if "donors" in kw:
        raise ValueError(
            "fit_kwargs['donors'] is not allowed: restrict the columns of wide instead"
        )
    if inference not in ("map", "mcmc"):
        raise ValueError(f"inference must be 'map' or 'mcmc', got {inference!r}")
    if pre_rmspe_factor is not None and not pre_rmspe_factor > 0:
        raise ValueError(f"pre_rmspe_factor must be > 0 or None, got {pre_rmspe_factor}")
    wide = wide.copy()
    wide.columns = [str(c) for c in wide.columns]
    treated = str(treated)
    prepare_panel(wide, treated, start)  # validate before reading the standard errors
    se = resolve_outcome_se(wide, kw.pop("outcome_se", None), kw.pop("outcome_draws", None))
    d_treated = prepare_panel(wide, treated, start, se)
    donors = d_treated.donors
    if len(donors) < 3:
        raise ValueError(
            f"placebo_in_space needs at least 3 donors (each placebo needs 2), got {len(donors)}"
        )
    method = kw.get("method", "dirichlet")
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
            d = prepare_panel(wide[[u, *pool]], u, start, None if se is None else se[[u, *pool]])
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
                "post_rmspe": post,
                "ratio": post / pre if pre > 0 else np.inf,
                "treated": u == treated,
            }
        )
    table = pd.DataFrame(rows).set_index("unit")
    tr_pre = table.at[treated, "pre_rmspe"]
    if pre_rmspe_factor is None:
        table["excluded"] = False
    else:
        table["excluded"] = (~table["treated"]) & (table["pre_rmspe"] > pre_rmspe_factor * tr_pre)
    kept = table[~table["excluded"]]
    tr_ratio = table.at[treated, "ratio"]
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
        pre_rmspe_factor=pre_rmspe_factor,
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
) -> PlaceboInTimeResult:
    """Refit the synthetic control with fake earlier starts using only the pre-``start`` periods.

    Default ``fake_starts``: the period in the middle of the pre-period (at least 2 periods before
    it).  Each fake start needs >= 2 periods before it and must precede ``start``.
    """
    kw = dict(fit_kwargs or {})
    wide = wide.copy()
    wide.columns = [str(c) for c in wide.columns]
    d = prepare_panel(wide, treated, start)  # validates the real design
    pre_times = d.times[: d.n_pre]
    if fake_starts is None:
        k = max(2, d.n_pre // 2)
        if k >= d.n_pre:
            raise ValueError(f"too few pre-periods ({d.n_pre}) for an in-time placebo: need >= 3")
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
