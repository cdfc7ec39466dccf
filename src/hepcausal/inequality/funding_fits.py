"""The money side as registered estimators (``hepcausal run``): funding SII and PCN regression.

* :func:`fit_funding_sii` (``estimator.name = "funding_sii"``): the classical SII of a funding
  outcome per ICS x year (treated ICS and comparators, ranks within ICS x year) and for England
  (national ranks within year), with the funding-by-deprivation-quintile table.  Its "draws"
  are a normal approximation with the classical standard errors (labelled so); the intervals
  reported are the classical ones.  The Bayesian SII per ICS x year of the same outcome is the
  ``gradient`` estimator (``experiments/funding_gradient.toml``).
* :func:`fit_pcn_funding` (``estimator.name = "pcn_regression"``): the Warwick-Giles regression
  of PCN funding per weighted patient on the PCN's deprivation per contract year, Bayesian
  (:func:`~hepcausal.inequality.funding.fit_pcn_regression_bayes`, partial pooling across ICSs)
  and classical (OLS, HC1) side by side.  On NHS data the PCNs are summed from every practice
  of the payments files (:func:`hepcausal.data.pcn.pcn_practices`, as the published study
  used all PCNs): the config's inclusion rules do not apply, ``data.payment_validity`` does.

Only the overall IMD 2019 score is available, not the IMD income domain of the published
study: every output says so (:data:`~hepcausal.inequality.funding.DEPRIVATION_NOTE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal import schema as S
from hepcausal.data.pcn import PCN_FUNDING, TOTAL_FUNDING
from hepcausal.diagnostics import Diagnostics
from hepcausal.inequality.funding import (
    DEPRIVATION_NOTE,
    PUBLISHED_SLOPES,
    fit_pcn_regression_bayes,
    pcn_regression,
)
from hepcausal.models.priors import Priors
from hepcausal.outcomes import get_outcome
from hepcausal.results import ESTIMAND, TERM, FitResult
from hepcausal.spec import Design, Inference
from hepcausal.summaries import EffectSummary, summarise_effect

__all__ = [
    "NHS_DATA_ATTR",
    "PCN_OUTCOMES",
    "FundingSiiFit",
    "FundingSiiPriors",
    "PcnRegressionFit",
    "fit_funding_sii",
    "fit_pcn_funding",
    "pcn_data",
]

NHS_DATA_ATTR = "nhs_data_dir"
"""``panel.attrs`` key: the NHS data folder a panel was built from (set by
:func:`hepcausal.data.nhs.build_nhs_panel`), with ``payment_validity`` beside it."""

PCN_OUTCOMES: dict[str, str] = {S.FUND_PCN: PCN_FUNDING, S.FUND_TOTAL: TOTAL_FUNDING}
"""Practice funding outcome (``analysis.outcome``) -> the PCN-level column it selects: PCN
lines per weighted patient, or all payments including the PCN lines."""

SII_NOTE = (
    "rank 0 = most deprived, SII = least minus most deprived: a NEGATIVE funding SII means more "
    "money per patient to the more deprived practices"
)


def _one_chain(draws: dict[str, np.ndarray]) -> az.InferenceData:
    """Independent draws of each term as a one-chain ``estimand`` posterior."""
    n = len(next(iter(draws.values())))
    post = xr.Dataset(
        {
            ESTIMAND: xr.DataArray(
                np.stack([draws[t] for t in draws], axis=-1)[None],
                dims=("chain", "draw", TERM),
                coords={"chain": [0], "draw": np.arange(n), TERM: list(draws)},
            )
        }
    )
    return az.InferenceData(posterior=post)


# ----------------------------------------------------------------------------- funding SII


@dataclass(frozen=True)
class FundingSiiPriors(Priors):
    """The classical funding SII has no priors."""


@dataclass(repr=False)
class FundingSiiFit(FitResult):
    """Classical funding SII per ICS x year and England (:func:`fit_funding_sii`).

    ``table``: ``icb_code, role ('treated'/'comparator'/'england'), year, sii, lower, upper,
    se, n_practices, method, note``; ``quintiles``: funding per weighted patient by
    deprivation quintile, year and group (:func:`hepcausal.plots.funding.funding_by_quintile`).
    """

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    quintiles: pd.DataFrame = field(default_factory=pd.DataFrame)


def fit_funding_sii(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    method: Literal["unit", "phe", "quintile_bootstrap"] = "unit",
    england: bool = True,
    n_draws: int = 4000,
    seed: int = 20211,
) -> FundingSiiFit:
    """Classical SII of a funding outcome per ICS x year and for England (registry entry).

    ICS rows rank practices within ICS x year (``design.rank_col``, default the panel's
    ``deprivation_rank``); England's rows rank every practice of the panel nationally within
    year (IMD 2019).  ``design.weights`` None gives practice-average SIIs (as the gradient
    model's default), a column name population-weighted ones.

    Parameters
    ----------
    panel : DataFrame
        Practice panel with the funding outcome.
    outcome : str
        A funding outcome (``source = "payments"`` in the outcome table), column or alias.
    design : Design, optional
        Treated ICS, comparators (``"all"``: every other ICS), start year, rank column, weights.
    inference : Inference, optional
        Its ``hdi_prob`` is the confidence level.
    method : {"unit", "phe", "quintile_bootstrap"}
        :func:`~hepcausal.inequality.classical.sii_table` method (default practice-level
        regression on the rank with HC1 standard errors).
    england : bool
        Add England's rows (national ranks).
    n_draws : int
        Normal-approximation draws per term (from the classical SE).
    seed : int
        Seed of the draws and of a bootstrap.

    Returns
    -------
    FundingSiiFit
        The table, the quintile table and one term ``sii[<ICS>,<year>]`` per row; the headline
        is the treated ICS's first post-year SII.

    Raises
    ------
    ValueError
        When ``outcome`` is not a funding outcome or no row has an SII.
    """
    from hepcausal.inequality.classical import sii_table
    from hepcausal.plots.funding import funding_by_quintile

    d = design or Design()
    inf = inference or Inference()
    row = get_outcome(outcome)
    if row.source != "payments":
        raise ValueError(
            f"estimator 'funding_sii': analysis.outcome = {outcome!r} is not a funding outcome "
            "(funding outcomes: fund_total, fund_total_reg, fund_core, fund_qof, fund_enhanced, "
            "fund_local, fund_pcn)"
        )
    col = row.column
    comps = (
        sorted(str(c) for c in panel[S.ICB].dropna().unique() if c != d.treated)
        if d.comparators == "all"
        else list(d.comparators)
    )
    sub = panel[panel[col].notna() & panel[S.ICB].isin([d.treated, *comps])]
    common = {"method": method, "weight_col": d.weights, "confidence": inf.hdi_prob, "seed": seed}
    ics = sii_table(sub, col, rank_col=d.rank_col, **common)  # type: ignore[arg-type]
    ics["role"] = np.where(ics[S.ICB] == d.treated, "treated", "comparator")
    parts = [ics]
    if england:
        nat = panel[panel[col].notna() & panel[S.IMD].notna()]
        eng = sii_table(nat, col, by=(S.YEAR,), score_col=S.IMD, **common)  # type: ignore[arg-type]
        parts.append(eng.assign(**{S.ICB: "England", "role": "england"}))
    table = pd.concat(parts, ignore_index=True)
    lead = ["role", S.ICB, S.YEAR, "sii", "lower", "upper", "se", "n_practices"]
    table = table[[*lead, *(c for c in table.columns if c not in lead)]]
    rng = np.random.default_rng(seed)
    draws: dict[str, np.ndarray] = {}
    effects: dict[str, EffectSummary] = {}
    ok = table[np.isfinite(table["sii"]) & np.isfinite(table["se"])]
    first_post = ok[(ok["role"] == "treated") & (ok[S.YEAR] >= d.start_year)].index[:1]
    for i in [*first_post, *(i for i in ok.index if i not in first_post)]:
        r = ok.loc[i]
        term = f"sii[{r[S.ICB]},{int(r[S.YEAR])}]"
        draws[term] = rng.normal(float(r["sii"]), float(r["se"]), n_draws)
        base = summarise_effect(
            draws[term],
            name=term,
            hdi_prob=inf.hdi_prob,
            units=row.units,
            draws_kind="normal approximation (classical SE)",
        )
        effects[term] = replace(
            base, mean=float(r["sii"]), hdi_low=float(r["lower"]), hdi_high=float(r["upper"])
        )
    if not draws:
        raise ValueError(f"estimator 'funding_sii': no ICS-year of {col!r} has an SII")
    quint = funding_by_quintile(panel, col, treated_icb=d.treated, comparators=comps)
    meta = {
        "estimator": "funding_sii",
        "outcome": col,
        "treated": d.treated,
        "comparators": comps,
        "start_year": d.start_year,
        "rank_col": d.rank_col,
        "method": method,
        "notes": [
            SII_NOTE,
            f"classical SII ({method}); ICS rows rank within ICS x year ({d.rank_col}), "
            "England ranks every practice nationally within year (IMD 2019); "
            + ("practice-average" if d.weights is None else f"weighted by {d.weights}"),
            "draws: normal approximation from the classical standard errors (not a posterior);"
            " the Bayesian SII per ICS x year is the gradient estimator "
            "(experiments/funding_gradient.toml)",
        ],
        "tables": {"funding_sii": table, "funding_by_quintile": quint},
    }
    return FundingSiiFit(
        idata=_one_chain(draws),
        diagnostics=Diagnostics.independent(n_draws),
        effects=effects,
        meta=meta,
        table=table,
        quintiles=quint,
    )


# ----------------------------------------------------------------------------- PCN regression


def pcn_data(
    panel: pd.DataFrame, *, lines_recorded_only: bool = False
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The PCN-years of a run: summed from the NHS payments files, or given.

    Parameters
    ----------
    panel : DataFrame
        Either PCN-years already (with ``pcn_funding_per_wpt``, e.g.
        :func:`~hepcausal.inequality.funding.simulate_pcns`), or an NHS practice panel whose
        ``attrs`` name its data folder (:data:`NHS_DATA_ATTR`): the PCNs are then summed from
        every practice of the payments files (2019/20 on), with the panel's payment-validity
        rule.
    lines_recorded_only : bool
        From 2020/21 keep only PCNs with PCN lines recorded against a member practice
        (``pcn_lines_recorded``); 2019/20 (participation only) is kept whole.

    Returns
    -------
    tuple of (DataFrame, dict)
        The PCN-years and the counts of what was left out (``"<reason> <year>"`` -> rows).

    Raises
    ------
    ValueError
        For a practice panel without its NHS data folder (a panel file or synthetic data).
    """
    from hepcausal.data.pcn import aggregate_pcns, pcn_practices

    dropped: dict[str, int] = {}
    if PCN_FUNDING in panel:
        pcns = panel
    elif panel.attrs.get(NHS_DATA_ATTR):
        validity = panel.attrs.get("payment_validity")
        practices = pcn_practices(
            panel.attrs[NHS_DATA_ATTR],
            payment_validity=None if validity is None else (validity[0], validity[1]),
        )
        for key in ("n_invalid_by_year", "n_no_pcn_by_year"):
            reason = (
                "practice-years outside the payment-validity rule"
                if key == "n_invalid_by_year"
                else "practice-years without a PCN code"
            )
            for year, n in practices.attrs.get(key, {}).items():
                dropped[f"{reason} {year}"] = int(n)
        pcns = aggregate_pcns(practices)
    else:
        raise ValueError(
            "estimator 'pcn_regression' needs NHS data (data.source = 'nhs'): PCN funding is "
            "summed from every practice's payment lines in the payments files, which a panel "
            "file or a synthetic panel does not carry (API: pass PCN-years, e.g. from "
            "hepcausal.data.pcn.aggregate_pcns)"
        )
    no_imd = pcns[pcns[S.IMD].isna()].groupby(S.YEAR).size()
    for year, n in no_imd.items():
        dropped[f"PCN-years without an IMD 2019 score {int(year)}"] = int(n)
    if lines_recorded_only and "pcn_lines_recorded" in pcns:
        cut = (pcns[S.YEAR] > min(pcns[S.YEAR])) & ~pcns["pcn_lines_recorded"].astype(bool)
        for year, n in pcns[cut].groupby(S.YEAR).size().items():
            dropped[f"PCN-years without PCN lines recorded {int(year)}"] = int(n)
        pcns = pcns[~cut]
    return pcns.reset_index(drop=True), dropped


@dataclass(repr=False)
class PcnRegressionFit(FitResult):
    """The PCN funding regression per contract year (:func:`fit_pcn_funding`).

    ``table``: per year the Bayesian (``slope, lower, upper``) and classical
    (``ols_slope, ols_lower, ols_upper``) slopes, GBP per weighted patient per 10 IMD points,
    with the published ones beside (``published_*``, per 10% income deprivation);
    ``pcns``: the PCN-years fitted; ``pcn_outcome``: their funding column.
    """

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    pcns: pd.DataFrame = field(default_factory=pd.DataFrame)
    pcn_outcome: str = PCN_FUNDING


def fit_pcn_funding(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    model: Literal["bayesian", "classical"] = "bayesian",
    lines_recorded_only: bool = False,
    centring: Literal["auto", "centred", "non_centred"] = "auto",
) -> PcnRegressionFit:
    """The Warwick-Giles PCN funding regression per contract year (registry entry).

    Parameters
    ----------
    panel : DataFrame
        An NHS practice panel (PCNs summed from its payments files, see :func:`pcn_data`) or
        PCN-years.
    outcome : str
        ``fund_pcn`` (PCN lines per weighted patient, the published outcome; default) or
        ``fund_total`` (all payments including the PCN lines), column or alias.
    design : Design, optional
        Not used (the regression has no treated group).
    inference : Inference, optional
        Sampler settings (Bayesian) and ``hdi_prob`` (interval level of both models).
    model : {"bayesian", "classical"}
        Estimands from the Bayesian model (partial pooling across ICSs) or from OLS with HC1
        standard errors (normal-approximation draws); the classical slopes are in the table
        either way.
    lines_recorded_only : bool
        Sensitivity: from 2020/21 only PCNs with PCN lines recorded against a member practice.
    centring : {"auto", "centred", "non_centred"}
        Parameterisation of the Bayesian model's ICS x year intercepts
        (:func:`~hepcausal.inequality.funding.fit_pcn_regression_bayes`).

    Returns
    -------
    PcnRegressionFit
        Terms ``slope[<year>]`` (the last year first: the headline), the table, the PCN-years.

    Raises
    ------
    ValueError
        For an outcome other than ``fund_pcn`` / ``fund_total``, or no usable data.
    """
    del design
    inf = inference or Inference()
    column = get_outcome(outcome).column
    if column not in PCN_OUTCOMES:
        raise ValueError(
            f"estimator 'pcn_regression': analysis.outcome = {outcome!r} has no PCN-level "
            f"funding column; use fund_pcn (PCN lines per weighted patient) or fund_total"
        )
    pcn_col = PCN_OUTCOMES[column]
    pcns, dropped = pcn_data(panel, lines_recorded_only=lines_recorded_only)
    ols = pcn_regression(pcns, outcome=pcn_col, confidence=inf.hdi_prob)
    ols = ols[np.isfinite(ols["slope"])]
    years = [int(y) for y in ols[S.YEAR]]
    diag_notes: list[str] = []
    draws: dict[str, np.ndarray] = {}
    if model == "bayesian":
        bayes = fit_pcn_regression_bayes(
            pcns,
            outcome=pcn_col,
            settings=inf.settings,
            priors=dict(inf.priors or {}),
            hdi_prob=inf.hdi_prob,
            centring=centring,
        )
        diag_notes.append(
            f"ICS x year intercepts {bayes.idata.posterior.attrs['centring'].replace('_', '-')}"
        )
        post = bayes.idata.posterior
        for y in years:
            draws[f"slope[{y}]"] = post["slope"].sel(year=y).values  # (chain, draw)
        idata = bayes.idata
        diagnostics = bayes.diagnostics
        bt = bayes.table.set_index(S.YEAR)
    else:
        rng = np.random.default_rng(inf.settings.seed)
        n = inf.settings.draws * inf.settings.chains
        for r in ols.itertuples():
            draws[f"slope[{int(getattr(r, S.YEAR))}]"] = rng.normal(r.slope, r.se, n)[None]
        idata = _one_chain({k: v[0] for k, v in draws.items()})
        diagnostics = Diagnostics.independent(n)
        bt = ols.set_index(S.YEAR)
        diag_notes.append("classical model: draws are a normal approximation (HC1 SE)")
    if model == "bayesian":
        from hepcausal.results import append_terms

        append_terms(idata, {k: v for k, v in draws.items()})
    table = ols.rename(
        columns={"slope": "ols_slope", "lower": "ols_lower", "upper": "ols_upper", "se": "ols_se"}
    ).set_index(S.YEAR)
    for c in ("slope", "lower", "upper"):
        table[c] = bt[c]
    pub = PUBLISHED_SLOPES.set_index("year")
    for c in ("slope", "lower", "upper"):
        table[f"published_{c}"] = pub[c].reindex(table.index)
    table = table.reset_index()
    lead = [S.YEAR, "slope", "lower", "upper", "ols_slope", "ols_lower", "ols_upper"]
    table = table[[*lead, *(c for c in table.columns if c not in lead)]]
    units = "GBP per weighted patient per 10 IMD 2019 points"
    kind = "posterior" if model == "bayesian" else "normal approximation (HC1 SE)"
    effects = {}
    for term in sorted(draws, reverse=True):  # the last contract year first
        effects[term] = summarise_effect(
            draws[term], name=term, hdi_prob=inf.hdi_prob, units=units, draws_kind=kind
        )
        if model == "classical":
            r = table.set_index(S.YEAR).loc[int(term[6:-1])]
            effects[term] = replace(
                effects[term],
                mean=float(r["ols_slope"]),
                hdi_low=float(r["ols_lower"]),
                hdi_high=float(r["ols_upper"]),
            )
    if model == "bayesian":  # the run's table shows the same intervals as its effects (HDI)
        t = table.set_index(S.YEAR)
        for term, e in effects.items():
            t.loc[int(term[6:-1]), ["lower", "upper"]] = (e.hdi_low, e.hdi_high)
        table = t.reset_index()
    meta = {
        "estimator": "pcn_regression",
        "outcome": column,
        "pcn_outcome": pcn_col,
        "model": model,
        "years": years,
        "n_obs": int(pcns[pcn_col].notna().sum()),
        "n_groups": int(pcns[S.ICB].nunique()),
        "dropped": dropped,
        "notes": [
            DEPRIVATION_NOTE,
            "published (Warwick-Giles et al., BJGP 2024, 1,243 PCNs): 2019/20 -0.31 "
            "(-0.37, -0.25), 2022/23 +0.16 (0.11, 0.21) GBP per weighted patient per 10% "
            "higher income deprivation: a different deprivation measure, shown for direction "
            "and order of magnitude only",
            "Bayesian model: one slope per contract year (not pooled across years), ICS slope "
            "deviations and ICS x year intercepts partially pooled; outcome standardised "
            "within year; intervals are highest-density. Its slope is WITHIN ICS (the ICS x "
            "year intercepts absorb differences between ICSs); the OLS slope (ols_*) is across "
            "England, as the published one: the two answer different questions",
            *diag_notes,
        ]
        + (
            ["sensitivity: from 2020/21 only PCNs with PCN lines recorded against a practice"]
            if lines_recorded_only
            else []
        ),
        "tables": {"pcn_slopes": table},
    }
    return PcnRegressionFit(
        idata=idata,
        diagnostics=diagnostics,
        effects=effects,
        meta=meta,
        table=table,
        pcns=pcns,
        pcn_outcome=pcn_col,
    )
