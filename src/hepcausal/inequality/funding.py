"""The money side: PCN funding regressions, the funding SII and an observed funding dose.

* :func:`pcn_regression` — the Warwick-Giles regression per contract year: PCN funding per
  weighted patient on the PCN's list-weighted deprivation, OLS with HC1 standard errors, slope
  per 10 points of the IMD 2019 score.  **Only the overall IMD 2019 score is available here, not
  the IMD income domain** (share of people income-deprived) the published study used, so the
  slopes are per 10 IMD score points, not per 10 percentage points of income deprivation: the
  published numbers (:data:`PUBLISHED_SLOPES`) are shown beside ours for direction and order of
  magnitude, not as a replication.  Note the published slopes are per 10% *more* deprivation
  with a negative value meaning less money to more deprived PCNs.
* :func:`fit_pcn_regression_bayes` — the same slopes with partial pooling across ICSs: one
  slope per contract year (not pooled across the four years: see the function), ICS slope
  deviations ``c_g ~ N(0, tau_ics)`` shared by the years, ICS x year intercepts
  ``a_t + v_gt``, ``v_gt ~ N(0, tau_int)``, year-specific noise SDs.  The estimands
  ``slope[t]`` are the slopes of an average ICS in year ``t``.
* :func:`simulate_pcns` — a small PCN-level generator with known year slopes (tests).
* :func:`funding_sii` — the classical SII of a funding outcome per ICS x year
  (:func:`hepcausal.inequality.classical.sii_table`).
* :func:`funding_dose` — the change in local incentive payments per weighted patient from the
  last pre-year, as a practice dose column (a CANDIDATE proxy of the Health Equity Payments:
  whether that payment line carries them is not documented), and :func:`dose_need_check`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from scipy import stats

from hepcausal import schema as S
from hepcausal.data.pcn import PCN_FUNDING
from hepcausal.models.priors import Priors

__all__ = [
    "DEPRIVATION_NOTE",
    "DOSE_COL",
    "PUBLISHED_SLOPES",
    "PcnBayesFit",
    "PcnPriors",
    "dose_need_check",
    "fit_pcn_regression_bayes",
    "funding_dose",
    "funding_sii",
    "information_ratio",
    "pcn_regression",
    "simulate_pcns",
]

PER: Final = 10.0
"""Slopes are per 10 points of the deprivation score."""

DEPRIVATION_NOTE: Final = (
    "deprivation = list-weighted IMD 2019 overall score (the income domain used by Warwick-Giles "
    "et al. is not in this data set): slopes are GBP per weighted patient per 10 IMD score "
    "points, not per 10 percentage points of income deprivation"
)

PUBLISHED_SLOPES: Final = pd.DataFrame(
    {
        "year": [2020, 2023],
        "slope": [-0.31, 0.16],
        "lower": [-0.37, 0.11],
        "upper": [-0.25, 0.21],
        "source": ["Warwick-Giles et al., BJGP 2024 (1,243 PCNs, per 10% income deprivation)"] * 2,
    }
)
"""Published PCN funding slopes (GBP per weighted patient per 10% higher income deprivation)."""

DOSE_COL: Final = "local_incentive_change"


def _ols_hc1(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """Slope, its HC1 standard error and n of ``y ~ 1 + x``."""
    X = np.column_stack([np.ones_like(x), x])
    n, k = X.shape
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    resid = y - X @ beta
    meat = (X * resid[:, None] ** 2).T @ X
    cov = xtx_inv @ meat @ xtx_inv * n / (n - k)
    return float(beta[1]), float(np.sqrt(cov[1, 1])), n


def pcn_regression(
    pcns: pd.DataFrame,
    *,
    outcome: str = PCN_FUNDING,
    score_col: str = S.IMD,
    by: str = S.YEAR,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """OLS of PCN funding per weighted patient on deprivation, per contract year.

    Parameters
    ----------
    pcns : DataFrame
        PCN-years (:func:`hepcausal.data.pcn.aggregate_pcns`).
    outcome : str
        Funding column (default ``pcn_funding_per_wpt``; ``total_funding_per_wpt`` for all
        payments including the PCN lines).
    score_col : str
        Deprivation score (higher = more deprived; default IMD 2019).
    by : str
        Grouping column (the contract year).
    confidence : float
        Interval level (t-interval with HC1 standard errors).

    Returns
    -------
    DataFrame
        Per ``by``: ``slope`` (GBP per weighted patient per 10 score points; positive = more
        money to more deprived PCNs), ``se``, ``lower``, ``upper``, ``n_pcns``, ``outcome``,
        ``note`` (:data:`DEPRIVATION_NOTE`).
    """
    rows = []
    for key, g in pcns.groupby(by, sort=True):
        ok = g[outcome].notna() & g[score_col].notna()
        x = g.loc[ok, score_col].to_numpy(float) / PER
        y = g.loc[ok, outcome].to_numpy(float)
        if len(x) < 3:
            rows.append({by: key, "slope": np.nan, "n_pcns": len(x)})
            continue
        b, se, n = _ols_hc1(x, y)
        t = stats.t.ppf(0.5 + confidence / 2, n - 2)
        rows.append(
            {by: key, "slope": b, "se": se, "lower": b - t * se, "upper": b + t * se, "n_pcns": n}
        )
    out = pd.DataFrame(rows)
    out["outcome"] = outcome
    out["note"] = DEPRIVATION_NOTE
    return out


def simulate_pcns(
    slopes: dict[int, float],
    *,
    n_icbs: int = 12,
    pcns_per_icb: int = 25,
    intercept: float = 10.0,
    sd_icb_slope: float = 0.05,
    sd_icb_year: float = 0.5,
    sigma: float = 2.0,
    seed: int = 0,
) -> pd.DataFrame:
    """PCN-years with known year slopes of funding per weighted patient on deprivation.

    Parameters
    ----------
    slopes : dict of int to float
        Year -> true slope (GBP per weighted patient per 10 score points).
    n_icbs, pcns_per_icb : int
        Design size (the same PCNs every year).
    intercept : float
        Mean funding at the mean deprivation.
    sd_icb_slope : float
        SD of the ICS slope deviations (shared by the years).
    sd_icb_year : float
        SD of the ICS x year intercept shifts.
    sigma : float
        Noise SD.
    seed : int
        Random seed.

    Returns
    -------
    DataFrame
        ``pcn_code``, ``icb_code``, ``year``, ``imd_score``, ``pcn_funding_per_wpt``;
        ``attrs["slopes"]`` holds the truth.
    """
    rng = np.random.default_rng(seed)
    n = n_icbs * pcns_per_icb
    icb = np.repeat([f"Q{i:02d}" for i in range(n_icbs)], pcns_per_icb)
    imd = rng.gamma(4.0, 5.5, n)  # mean 22, SD 11: like the real PCN IMD 2019 scores
    c = dict(zip(np.unique(icb), rng.normal(0, sd_icb_slope, n_icbs), strict=True))
    frames = []
    for year, slope in slopes.items():
        v = dict(zip(np.unique(icb), rng.normal(0, sd_icb_year, n_icbs), strict=True))
        x = (imd - imd.mean()) / PER
        y = (
            intercept
            + np.array([v[g] for g in icb])
            + (slope + np.array([c[g] for g in icb])) * x
            + rng.normal(0, sigma, n)
        )
        frames.append(
            pd.DataFrame(
                {
                    S.PCN: [f"U{i:05d}" for i in range(n)],
                    S.ICB: icb,
                    S.YEAR: year,
                    S.IMD: imd,
                    PCN_FUNDING: y,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out.attrs["slopes"] = dict(slopes)
    return out


CENTRING_RATIO: Final = 3.0
"""``centring="auto"`` centres the ICS x year intercepts above this information ratio."""


def information_ratio(y: np.ndarray, year_idx: np.ndarray, group_idx: np.ndarray) -> float:
    """Method-of-moments ``n_cell tau^2 / s^2`` of the group x year intercepts.

    ``s^2`` = mean within-cell variance, ``tau^2`` = between-cell variance of the cell means
    (within year) minus ``s^2 / n_cell``, ``n_cell`` = mean cell size.  Large: the cells
    identify their intercepts (centre them); small: the prior does (non-centre them).

    Parameters
    ----------
    y : ndarray
        Outcome.
    year_idx, group_idx : ndarray
        Integer year and group of each row.

    Returns
    -------
    float
        The ratio (0 when there is no between-cell variation beyond the noise).
    """
    cells = pd.DataFrame({"t": year_idx, "g": group_idx, "y": y}).groupby(["t", "g"])["y"]
    stats_ = cells.agg(["mean", "var", "size"])
    s2 = float(stats_["var"].mean())
    n_cell = float(stats_["size"].mean())
    between = float(stats_.groupby(level=0)["mean"].var().mean())
    tau2 = max(between - s2 / n_cell, 0.0)
    return n_cell * tau2 / s2 if s2 > 0 else float("inf")


@dataclass(frozen=True)
class PcnPriors(Priors):
    """Prior scales of :func:`fit_pcn_regression_bayes` (outcome standardised within year).

    Attributes
    ----------
    intercept : float
        SD of the year intercepts ``a_t`` (Normal).
    slope : float
        SD of the year slopes ``b_t`` (Normal; per 10 score points, standardised outcome).
    tau_ics : float
        Scale of the HalfNormal prior of the ICS slope-deviation SD.
    tau_int : float
        Scale of the HalfNormal prior of the ICS x year intercept SD.
    sigma : float
        Scale of the HalfNormal prior of the residual SD per year.
    """

    intercept: float = 1.0
    slope: float = 1.0
    tau_ics: float = 0.5
    tau_int: float = 0.5
    sigma: float = 1.0


@dataclass
class PcnBayesFit:
    """Result of :func:`fit_pcn_regression_bayes`.

    Attributes
    ----------
    idata : arviz.InferenceData
        Posterior; ``slope`` (dim ``year``) is the estimand.
    table : DataFrame
        Per year: ``slope`` (posterior mean), ``lower``, ``upper`` (equal-tailed interval),
        ``n_pcns``, ``note``.
    diagnostics : hepcausal.diagnostics.Diagnostics
        Convergence of every parameter.
    """

    idata: Any
    table: pd.DataFrame
    diagnostics: Any


def fit_pcn_regression_bayes(
    pcns: pd.DataFrame,
    *,
    outcome: str = PCN_FUNDING,
    score_col: str = S.IMD,
    settings: Any = None,
    priors: PcnPriors | dict[str, float] | None = None,
    hdi_prob: float = 0.95,
    centring: Literal["auto", "centred", "non_centred"] = "auto",
) -> PcnBayesFit:
    """Bayesian PCN funding regression: year slopes, ICS deviations partially pooled.

    On the outcome standardised within year (``y* = (y - mean_t) / sd_t``, so that the years'
    slopes share one scale although PCN funding grew tenfold from 2019/20):
    ``y* = a_t + v_gt + (b_t + c_g) x + e``, ``e ~ N(0, sigma_t)``, ``x`` = (score - mean) / 10.

    * ``b_t ~ N(0, 1)``: one slope per contract year, NOT pooled across years.  With four
      contract years a between-year SD is identified by four values only: its posterior is the
      prior, and the funnel it makes with the year slopes gave 18 divergences on the real data
      (2019/20-2022/23, 4 x 2000 draws at target_accept 0.95).  Each year has ~1,250 PCNs, so
      its slope is well identified without pooling, and the contract changed between years
      (the published slope changed sign), so the years are not exchangeable anyway.
    * ``c_g`` ICS slope deviations shared by the years (sum to zero over ICSs, scale
      ``tau_ics``, non-centred: with ~30 PCNs per ICS and a small ``tau_ics`` the data say
      little about each ``c_g``);
    * ``v_gt`` ICS x year intercepts (sum to zero over ICSs per year, scale ``tau_int``),
      centred when the cells identify them well, else non-centred (``centring="auto"``: centred
      when the method-of-moments information ratio ``n_cell tau^2 / s^2`` exceeds
      :data:`CENTRING_RATIO`; on the real PCNs, ~30 per ICS-year and ratio ~20, the
      non-centred version had R-hat 1.013 for ``tau_int`` at the defaults, the centred one
      1.003; on the simulator's 20 PCNs per cell, ratio ~1, the centred one mixed worse);
    * ``a_t ~ N(0, 1)``, ``tau_* ~ HalfNormal(0.5)``, ``sigma_t ~ HalfNormal(1)``
      (:class:`PcnPriors`; the year slopes ``b_t ~ N(0, 1)`` on the standardised outcome are
      weak: a slope of 1 SD per 10 IMD points would be extreme).

    Estimand ``slope[t] = b_t sd_t``: GBP per weighted patient per 10 score points for an
    average ICS (partial pooling across ICSs).

    Parameters
    ----------
    pcns : DataFrame
        PCN-years with ``year``, ``icb_code``, the outcome and the score.
    outcome, score_col : str
        Funding column and deprivation score.
    settings : SamplerSettings, optional
        Sampler settings (default: the package defaults).
    priors : PcnPriors or dict, optional
        Prior scales (default :class:`PcnPriors`; a dict overrides some).
    hdi_prob : float
        Interval level of the table (equal-tailed).
    centring : {"auto", "centred", "non_centred"}
        Parameterisation of the ICS x year intercepts (``"auto"``: see above; the choice is in
        ``idata.posterior.attrs["centring"]``).

    Returns
    -------
    PcnBayesFit
        Posterior, per-year slope table (GBP per weighted patient per 10 score points) and
        convergence diagnostics.

    Raises
    ------
    ValueError
        When a year has fewer than 3 PCNs with the outcome and the score.
    """
    import pymc as pm

    from hepcausal.diagnostics import check_convergence
    from hepcausal.sampling import SamplerSettings, sample_pymc

    d = pcns[pcns[outcome].notna() & pcns[score_col].notna() & pcns[S.ICB].notna()]
    n_by_year = d.groupby(S.YEAR).size()
    if d.empty or (n_by_year < 3).any():
        raise ValueError(
            f"PCN regression of {outcome!r}: every year needs 3 PCNs with {outcome!r}, "
            f"{score_col!r} and an ICB; got {n_by_year.to_dict()}"
        )
    years = sorted(int(y) for y in d[S.YEAR].unique())
    icbs = sorted(d[S.ICB].unique())
    ti = d[S.YEAR].map({y: i for i, y in enumerate(years)}).to_numpy()
    gi = d[S.ICB].map({g: i for i, g in enumerate(icbs)}).to_numpy()
    x = ((d[score_col] - d[score_col].mean()) / PER).to_numpy(float)
    y = d[outcome].to_numpy(float)
    by_year = d.groupby(S.YEAR)[outcome]
    m = by_year.mean().reindex(years).to_numpy(float)
    sd = by_year.std().reindex(years).fillna(1.0).replace(0.0, 1.0).to_numpy(float)
    ys = (y - m[ti]) / sd[ti]  # standardised within year: the year slopes share one scale
    if centring == "auto":
        centring = "centred" if information_ratio(ys, ti, gi) > CENTRING_RATIO else "non_centred"
    pr = PcnPriors.from_any(priors)
    coords = {"year": years, "icb": icbs}
    with pm.Model(coords=coords) as model:
        a = pm.Normal("a", 0.0, pr.intercept, dims="year")
        b = pm.Normal("b", 0.0, pr.slope, dims="year")
        pm.Deterministic("slope", b * sd, dims="year")
        tau_ics = pm.HalfNormal("tau_ics", pr.tau_ics)
        tau_int = pm.HalfNormal("tau_int", pr.tau_int)
        c = pm.Deterministic(
            "c", tau_ics * pm.ZeroSumNormal("zc", sigma=1.0, dims="icb"), dims="icb"
        )
        if centring == "centred":
            v = pm.ZeroSumNormal("v", sigma=tau_int, dims=("year", "icb"))
        else:
            v = pm.Deterministic(
                "v",
                tau_int * pm.ZeroSumNormal("zv", sigma=1.0, dims=("year", "icb")),
                dims=("year", "icb"),
            )
        sigma = pm.HalfNormal("sigma", pr.sigma, dims="year")
        mu = a[ti] + v[ti, gi] + (b[ti] + c[gi]) * x
        pm.Normal("y", mu, sigma[ti], observed=ys)
    idata = sample_pymc(model, settings or SamplerSettings())
    idata.posterior.attrs["centring"] = centring
    free = ["a", "b", "tau_ics", "tau_int", "zc", "v" if centring == "centred" else "zv", "sigma"]
    diag = check_convergence(idata, free, warn=False)
    post = idata.posterior["slope"]
    q = (1 - hdi_prob) / 2
    table = pd.DataFrame(
        {
            S.YEAR: years,
            "slope": post.mean(("chain", "draw")).to_numpy(),
            "lower": post.quantile(q, ("chain", "draw")).to_numpy(),
            "upper": post.quantile(1 - q, ("chain", "draw")).to_numpy(),
            "n_pcns": [int(n_by_year[y]) for y in years],
        }
    )
    table["outcome"] = outcome
    table["note"] = DEPRIVATION_NOTE
    return PcnBayesFit(idata=idata, table=table, diagnostics=diag)


def funding_sii(
    panel: pd.DataFrame,
    outcome: str,
    *,
    icbs: Sequence[str] | None = None,
    method: str = "unit",
    seed: int | None = 20211,
) -> pd.DataFrame:
    """Classical SII of a funding outcome per ICS x year (rank 0 = most deprived).

    A negative SII (least minus most deprived) means more money per patient to the more
    deprived practices.

    Parameters
    ----------
    panel : DataFrame
        Practice panel (:func:`hepcausal.data.nhs.build_nhs_panel`).
    outcome : str
        A funding outcome column or alias.
    icbs : sequence of str, optional
        ICBs to keep (default all).
    method : str
        :func:`~hepcausal.inequality.classical.sii_table` method (default practice-level
        ``"unit"`` on the panel's ``deprivation_rank``).
    seed : int, optional
        Bootstrap seed (quintile bootstrap).

    Returns
    -------
    DataFrame
        The SII table (``icb_code, year, sii, lower, upper, ...``).
    """
    from hepcausal.inequality.classical import sii_table
    from hepcausal.outcomes import get_outcome

    col = get_outcome(outcome).column
    sub = panel if icbs is None else panel[panel[S.ICB].isin(list(icbs))]
    sub = sub[sub[col].notna()]
    return sii_table(sub, col, method=method, rank_col=S.DEPRIVATION_RANK, seed=seed)  # type: ignore[arg-type]


def funding_dose(
    panel: pd.DataFrame,
    *,
    base_year: int = 2021,
    line: str = S.FUND_LOCAL,
    treated_icb: str = S.LLR_ICB,
    start_year: int = S.HEP_START_YEAR,
    clip: bool = True,
) -> pd.Series:
    """Candidate dose: rise in local incentive payments per weighted patient since ``base_year``.

    CANDIDATE proxy of the Health Equity Payments: whether the 'Local Incentive Schemes' payment
    line carries them is NOT documented.  For practices of ``treated_icb`` in years from
    ``start_year``: ``line(year) - line(base_year)`` of the same practice (clipped at 0 unless
    ``clip=False``: the dose-response estimator takes non-negative doses); 0 for every other
    row (comparators and earlier years); missing where ``line`` is missing that year (e.g.
    years without a payments file) or, for treated rows, in ``base_year``.

    Parameters
    ----------
    panel : DataFrame
        Practice panel with ``practice_code``, ``year``, ``icb_code`` and ``line``.
    base_year : int
        Last pre-year (2021 = FY2020/21).
    line : str
        Funding column (default local incentive payments per weighted patient).
    treated_icb : str
        The ICB whose practices get a dose.
    start_year : int
        First treated year (2022 = FY2021/22).
    clip : bool
        Clip negative changes at 0.

    Returns
    -------
    Series
        The dose (GBP per weighted patient per year), aligned with ``panel``, named
        :data:`DOSE_COL`.
    """
    base = panel.loc[panel[S.YEAR] == base_year].set_index(S.PRACTICE)[line]
    change = panel[line] - panel[S.PRACTICE].map(base)
    if clip:
        change = change.clip(lower=0.0)
    treated = panel[S.ICB].eq(treated_icb).fillna(False) & (panel[S.YEAR] >= start_year)
    dose = change.where(treated, 0.0).where(panel[line].notna())
    return dose.rename(DOSE_COL)


def dose_need_check(
    panel: pd.DataFrame, *, year: int, dose_col: str = DOSE_COL, icb: str = S.LLR_ICB
) -> dict[str, float]:
    """Is the dose related to need as intended?  Spearman and OLS of dose on IMD 2019.

    Parameters
    ----------
    panel : DataFrame
        Panel with the dose column and ``imd_score``.
    year : int
        The year whose dose is checked.
    dose_col : str
        Dose column.
    icb : str
        ICB whose practices are checked (default LLR).

    Returns
    -------
    dict
        ``n``, ``spearman``, ``spearman_p``, ``share_positive``, ``slope_per_10_imd``,
        ``slope_lower``, ``slope_upper`` (95% HC1 interval), ``mean_dose``.
    """
    d = panel[(panel[S.ICB] == icb) & (panel[S.YEAR] == year)]
    d = d[d[dose_col].notna() & d[S.IMD].notna()]
    rho, p = stats.spearmanr(d[dose_col], d[S.IMD])
    b, se, n = _ols_hc1(d[S.IMD].to_numpy(float) / PER, d[dose_col].to_numpy(float))
    t = stats.t.ppf(0.975, n - 2)
    return {
        "n": float(n),
        "spearman": float(rho),
        "spearman_p": float(p),
        "share_positive": float((d[dose_col] > 0).mean()),
        "slope_per_10_imd": b,
        "slope_lower": b - t * se,
        "slope_upper": b + t * se,
        "mean_dose": float(d[dose_col].mean()),
    }
