"""Residual structure of a practice x year outcome: what an iid-noise panel model ignores.

One function, :func:`residual_stats`, applied identically to the real NHS panel and to synthetic
panels (``benchmarks/calibrate_synthetic.py``, ``tests/test_synthetic_errors.py``).  It removes
practice means and ICB x year means (two-way fixed effects, exact on unbalanced panels by
alternating projections) and summarises what is left:

* within-practice autocorrelation of the residuals at lags 1..``max_lag`` (pooled Pearson
  correlation of the pairs ``(e_it, e_i,t+k)``).  With iid noise and ``T`` years the practice
  demeaning alone implies about ``-1/(T-1)`` at every lag (-0.17 for 7 years); AR(1) noise raises
  lag 1, practice-specific drift makes the long lags strongly negative;
* per ICB, the SD and excess kurtosis of the practice post-minus-pre changes
  ``mean_post(e_it) - mean_pre(e_it)`` (practices with at least one pre and one post year):
  the noise a DiD / DDD contrast of practice changes actually averages over;
* the share of exact zeros of the outcome, overall and in the treated ICB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from scipy import stats

from hepcausal import schema as S

__all__ = [
    "REAL_TARGETS",
    "ResidualStats",
    "icb_gradient_stats",
    "residual_stats",
    "simulated_residual_stats",
    "two_way_residuals",
]


# Residual statistics of the REAL panel, published design (QK1 and the 10 comparators,
# 2018-2024, treated QK1 from 2022), measured once on main with:
#   panel = hepcausal.data.nhs.build_nhs_panel(os.environ["HEPCAUSAL_NHS_DATA"]).panel
#   residual_stats(panel, outcome, icbs=[S.LLR_ICB, *S.PUBLISHED_COMPARATORS]).as_dict()
# (11,567 GP FTE rows, 1,661 practices).  Calibration targets of the ``realistic`` scenario
# (benchmarks/calibrate_synthetic.py, tests/test_synthetic_errors.py).
REAL_TARGETS: Final[dict[str, dict[str, float]]] = {
    S.GP_FTE: {
        "acf lag 1": 0.3589,
        "acf lag 2": -0.0958,
        "acf lag 3": -0.3869,
        "acf lag 4": -0.4955,
        "acf lag 5": -0.4972,
        "change SD min": 0.0887,
        "change SD median": 0.1002,
        "change SD max": 0.1335,
        "change SD treated": 0.1639,
        "change SD treated / median": 1.6357,
        "kurtosis pooled": 11.8674,
        "kurtosis treated": 24.3670,
        "residual SD": 0.0845,
        "zero share": 0.0119,
        "zero share treated": 0.0223,
    },
    S.NURSE_FTE: {
        "acf lag 1": 0.2628,
        "acf lag 2": -0.1606,
        "acf lag 3": -0.2845,
        "acf lag 4": -0.5690,
        "acf lag 5": -0.4156,
        "change SD min": 0.0700,
        "change SD median": 0.0986,
        "change SD max": 0.1075,
        "change SD treated": 0.0770,
        "change SD treated / median": 0.7812,
        "kurtosis pooled": 7.7747,
        "kurtosis treated": 3.1061,
        "residual SD": 0.0842,
        "zero share": 0.0090,
        "zero share treated": 0.0264,
    },
    S.ADMIN_FTE: {
        "acf lag 1": 0.2573,
        "acf lag 2": -0.0698,
        "acf lag 3": -0.3139,
        "acf lag 4": -0.4531,
        "acf lag 5": -0.4661,
        "change SD min": 0.1905,
        "change SD median": 0.2484,
        "change SD max": 0.3341,
        "change SD treated": 0.2320,
        "change SD treated / median": 0.9342,
        "kurtosis pooled": 27.0276,
        "kurtosis treated": 1.6148,
        "residual SD": 0.2078,
        "zero share": 0.0078,
        "zero share treated": 0.0137,
    },
}


@dataclass(frozen=True)
class ResidualStats:
    """Residual statistics of one outcome (see :func:`residual_stats`).

    Parameters
    ----------
    acf : tuple of float
        Within-practice residual autocorrelation at lags 1, 2, ..., ``max_lag``.
    change_sd : pandas.Series
        SD (ddof=1) of the practice post-minus-pre residual changes, by ICB code.
    change_kurtosis : pandas.Series
        Excess kurtosis (Fisher, bias-corrected) of those changes, by ICB code.
    pooled_kurtosis : float
        Excess kurtosis of the changes of all ICBs pooled (each centred on its ICB mean).
    residual_sd : float
        SD of the two-way residuals.
    zero_share : float
        Share of rows whose outcome is exactly 0.
    treated_zero_share : float
        The same share in the treated ICB (NaN without ``treated_icb``).
    treated_icb : str or None
        The treated ICB code the ``treated_*`` statistics refer to.
    n_rows, n_practices : int
        Rows and practices used.
    """

    acf: tuple[float, ...]
    change_sd: pd.Series
    change_kurtosis: pd.Series
    pooled_kurtosis: float
    residual_sd: float
    zero_share: float
    treated_zero_share: float
    treated_icb: str | None
    n_rows: int
    n_practices: int

    @property
    def treated_change_sd(self) -> float:
        """SD of the treated ICB's practice changes (NaN without a treated ICB)."""
        if self.treated_icb is None or self.treated_icb not in self.change_sd:
            return float("nan")
        return float(self.change_sd[self.treated_icb])

    @property
    def treated_kurtosis(self) -> float:
        """Excess kurtosis of the treated ICB's practice changes (NaN without a treated ICB)."""
        if self.treated_icb is None or self.treated_icb not in self.change_kurtosis:
            return float("nan")
        return float(self.change_kurtosis[self.treated_icb])

    def comparator_change_sd(self) -> pd.Series:
        """``change_sd`` without the treated ICB.

        Returns
        -------
        pandas.Series
            SD of the practice changes of every other ICB.
        """
        return self.change_sd.drop(self.treated_icb, errors="ignore")

    def as_dict(self) -> dict[str, float]:
        """Flat summary (the rows printed by ``benchmarks/calibrate_synthetic.py``).

        Returns
        -------
        dict
            ``acf lag k``, ``change SD min / median / max`` (comparators), ``change SD treated``,
            ``change SD treated / median``, ``kurtosis pooled``, ``kurtosis treated``,
            ``residual SD``, ``zero share`` and ``zero share treated``.
        """
        out = {f"acf lag {k}": v for k, v in enumerate(self.acf, start=1)}
        comp = self.comparator_change_sd()
        med = float(comp.median()) if len(comp) else float("nan")
        out.update(
            {
                "change SD min": float(comp.min()) if len(comp) else float("nan"),
                "change SD median": med,
                "change SD max": float(comp.max()) if len(comp) else float("nan"),
                "change SD treated": self.treated_change_sd,
                "change SD treated / median": self.treated_change_sd / med,
                "kurtosis pooled": self.pooled_kurtosis,
                "kurtosis treated": self.treated_kurtosis,
                "residual SD": self.residual_sd,
                "zero share": self.zero_share,
                "zero share treated": self.treated_zero_share,
            }
        )
        return out


def two_way_residuals(
    y: np.ndarray, unit: np.ndarray, cell: np.ndarray, *, tol: float = 1e-12, max_iter: int = 2000
) -> np.ndarray:
    """Residuals of ``y`` after removing unit means and cell means (two-way fixed effects).

    Alternating projections (exact at convergence for unbalanced designs).

    Parameters
    ----------
    y : numpy.ndarray
        Outcome, one value per row (finite).
    unit, cell : numpy.ndarray
        Integer codes ``0..n-1`` of the two factors (e.g. practice, ICB x year).
    tol : float
        Stop when the largest change of an iteration is below ``tol`` times the SD of ``y``.
    max_iter : int
        Maximum number of sweeps.

    Returns
    -------
    numpy.ndarray
        The residuals (mean zero within every unit and every cell).
    """
    e = np.asarray(y, dtype=float) - float(np.mean(y))
    n_u = np.bincount(unit).astype(float)
    n_c = np.bincount(cell).astype(float)
    scale = max(float(np.std(y)), 1e-300)
    for _ in range(max_iter):
        mu = np.bincount(unit, weights=e) / np.maximum(n_u, 1.0)
        e = e - mu[unit]
        mc = np.bincount(cell, weights=e) / np.maximum(n_c, 1.0)
        e = e - mc[cell]
        if max(np.abs(mu).max(), np.abs(mc).max()) < tol * scale:
            break
    return e


def residual_stats(
    panel: pd.DataFrame,
    outcome: str,
    *,
    icbs: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    treated_icb: str | None = S.LLR_ICB,
    start_year: int = S.HEP_START_YEAR,
    max_lag: int = 5,
) -> ResidualStats:
    """Residual structure of ``outcome`` after removing practice and ICB x year means.

    Parameters
    ----------
    panel : pandas.DataFrame
        Practice x year panel (schema of :mod:`hepcausal.schema`): needs ``practice_code``,
        ``year``, ``icb_code`` and ``outcome``.  Rows with a missing outcome are dropped.
    outcome : str
        Panel column.
    icbs : sequence of str, optional
        Keep only these ICBs (e.g. the treated ICB and its comparators); default all.
    years : sequence of int, optional
        Keep only these years; default all.
    treated_icb : str or None
        ICB whose change SD, kurtosis and zero share are reported separately.
    start_year : int
        First post year of the post-minus-pre changes.
    max_lag : int
        Largest autocorrelation lag.

    Returns
    -------
    ResidualStats
        The statistics.
    """
    d = panel.loc[:, [S.PRACTICE, S.YEAR, S.ICB, outcome]]
    d = d.loc[np.isfinite(d[outcome].to_numpy(dtype=float))]
    if icbs is not None:
        d = d.loc[d[S.ICB].isin(list(icbs))]
    if years is not None:
        d = d.loc[d[S.YEAR].isin(list(years))]
    if d.empty:
        raise ValueError(f"residual_stats: no finite {outcome!r} rows left")
    d = d.sort_values([S.PRACTICE, S.YEAR], kind="stable").reset_index(drop=True)
    y = d[outcome].to_numpy(dtype=float)
    unit = pd.factorize(d[S.PRACTICE])[0]
    cell = pd.factorize(d[S.ICB].astype(str) + ":" + d[S.YEAR].astype(str))[0]
    e = two_way_residuals(y, unit, cell)
    year = d[S.YEAR].to_numpy()

    acf = []
    for k in range(1, max_lag + 1):
        # pairs (i, t), (i, t + k): rows are sorted by practice and year, so search forward
        key = pd.MultiIndex.from_arrays([unit, year])
        j = key.get_indexer(pd.MultiIndex.from_arrays([unit, year + k]))
        ok = j >= 0
        if ok.sum() < 3:
            acf.append(float("nan"))
            continue
        acf.append(float(np.corrcoef(e[ok], e[j[ok]])[0, 1]))

    post = year >= start_year
    frame = pd.DataFrame({"unit": unit, "icb": d[S.ICB].to_numpy(), "post": post, "e": e})
    means = frame.groupby(["unit", "post"])["e"].mean().unstack()
    both = means.dropna()
    icb_of = frame.groupby("unit")["icb"].first()
    change = (both[True] - both[False]).rename("change").to_frame()
    change["icb"] = icb_of.loc[change.index].to_numpy()
    by = change.groupby("icb")["change"]
    change_sd = by.std(ddof=1)
    change_kurt = by.apply(lambda x: float(stats.kurtosis(x, bias=False)) if len(x) > 3 else np.nan)
    centred = change["change"] - by.transform("mean")
    pooled = float(stats.kurtosis(centred, bias=False)) if len(centred) > 3 else float("nan")

    zero = y == 0
    if treated_icb is not None and (d[S.ICB] == treated_icb).any():
        tz = float(zero[(d[S.ICB] == treated_icb).to_numpy()].mean())
    else:
        tz = float("nan")
    return ResidualStats(
        acf=tuple(acf),
        change_sd=change_sd.rename("change_sd"),
        change_kurtosis=change_kurt.rename("change_kurtosis"),
        pooled_kurtosis=pooled,
        residual_sd=float(np.std(e)),
        zero_share=float(zero.mean()),
        treated_zero_share=tz,
        treated_icb=treated_icb,
        n_rows=len(d),
        n_practices=int(unit.max()) + 1,
    )


def icb_gradient_stats(
    panel: pd.DataFrame,
    outcome: str,
    *,
    icbs: Sequence[str] | None = None,
    start_year: int = S.HEP_START_YEAR,
) -> dict[str, float]:
    """Spread over ICBs of the per ICB-year SII (the gradient a DDD contrasts).

    Per ICB-year list-weighted least-squares slope of ``outcome`` on ``deprivation_rank``; per
    ICB its linear trend over years and its post-minus-pre change (mean over years >=
    ``start_year`` minus mean before).  The SD over ICBs of those changes is the spread a
    placebo DDD sees; practice drift and AR(1) noise raise it above what iid noise implies.

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with ``icb_code``, ``year``, ``list_size``, ``deprivation_rank`` and ``outcome``.
    outcome : str
        Panel column.
    icbs : sequence of str, optional
        Keep only these ICBs; default all.
    start_year : int
        First post year.

    Returns
    -------
    dict
        ``ICB SII trend SD`` (per year) and ``ICB SII change SD``.
    """
    d = panel.loc[np.isfinite(panel[outcome].to_numpy(dtype=float))]
    if icbs is not None:
        d = d.loc[d[S.ICB].isin(list(icbs))]
    rows = []
    for (icb, year), g in d.groupby([S.ICB, S.YEAR]):
        w = g[S.LIST_SIZE].to_numpy(float)
        x = g[S.DEPRIVATION_RANK].to_numpy(float)
        y = g[outcome].to_numpy(float)
        xc = x - np.average(x, weights=w)
        slope = float(np.sum(w * xc * (y - np.average(y, weights=w))) / np.sum(w * xc**2))
        rows.append((icb, int(year), slope))
    sii = pd.DataFrame(rows, columns=["icb", "year", "sii"])
    trend, change = [], []
    for _, g in sii.groupby("icb"):
        t = g["year"].to_numpy(float)
        trend.append(float(np.polyfit(t - t.mean(), g["sii"].to_numpy(), 1)[0]))
        post = g["year"] >= start_year
        change.append(float(g.loc[post, "sii"].mean() - g.loc[~post, "sii"].mean()))
    return {
        "ICB SII trend SD": float(np.std(trend, ddof=1)),
        "ICB SII change SD": float(np.std(change, ddof=1)),
    }


def simulated_residual_stats(
    outcome: str,
    scenario_name: str = "realistic",
    seeds: Sequence[int] = (1, 2, 3, 4),
    **errors: object,
) -> dict[str, float]:
    """Residual statistics of one generated outcome at the published design, median over seeds.

    Only ``outcome`` is simulated (``SimulationConfig.published_design`` with the error scenario
    ``scenario_name``; its default gradient effect kept), so that the numbers are comparable with
    :data:`REAL_TARGETS`.

    Parameters
    ----------
    outcome : str
        Panel column.
    scenario_name : str
        Error scenario (:data:`hepcausal.data.synthetic.SCENARIOS`).
    seeds : sequence of int
        Seeds (independent panels).
    **errors
        Overrides of the outcome's :class:`~hepcausal.data.synthetic.ErrorStructure` fields.

    Returns
    -------
    dict
        Statistic -> median over seeds (:meth:`ResidualStats.as_dict` keys; the median because
        the kurtosis of heavy-tailed samples is erratic).
    """
    from hepcausal.data.synthetic import SimulationConfig, scenario, simulate_panel
    from hepcausal.outcomes import synthetic_specs

    out = []
    for seed in seeds:
        cfg = scenario(scenario_name, SimulationConfig.published_design(seed=seed))
        err = cfg.errors_for(outcome)
        if errors:
            err = err.replace(**errors)
        cfg = cfg.replace(
            outcome_specs={outcome: synthetic_specs()[outcome]},
            errors={outcome: err},
            gradient_effect={outcome: cfg.effect("gradient", outcome)},
        )
        out.append(residual_stats(simulate_panel(cfg).panel, outcome).as_dict())
    return {k: float(np.median([d[k] for d in out])) for k in out[0]}
