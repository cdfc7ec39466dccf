"""The published evaluation's SII method, reproduced on the open data.

The published evaluation of LLR's Health Equity Payments (HFAnalyticsLab/
health_equity_payment_evaluation) computed, per ICS, year and outcome:

* **national** IMD quintiles of practices, cut by practice count (each quintile has a fifth of
  the practices) and **fixed** at one time point (June 2021, panel year 2022 = FY2021/22);
* the SII from **quintile means**, the "population" of each quintile being its practice count;
* log (FTE rates) or logit (proportions) transformed fits, back-transformed;
* a seeded **stratified BCa bootstrap** (strata = quintiles, R = 1000);
* an ICS is dropped for an outcome when any quintile has fewer than 5 practices in any year;
* the payment-validity rule: where a practice's total NHS payments per registered patient are
  missing or outside GBP 80-550, the study set every payments-file value missing, *including
  the weighted list that is the denominator of its staffing rates* (``clean_data.R``:
  ``avg_weighted`` blanked, ``total_gp_extg_fte_weighted = total_gp_extg_fte / avg_weighted``),
  so those practice-years have no FTE rate; FY2023/24 (no payments file) reuses FY2022/23's
  weighted list, hence its validity.

:func:`replicate_sii` returns the SII table (LLR, the comparators and England);
:data:`DIVERGENCES` lists every way the open data force this reproduction to differ from the
study.  ``python -m hepcausal.inequality.replication experiments/replication.toml`` runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from hepcausal import schema
from hepcausal.diagnostics import Diagnostics
from hepcausal.inequality.sii_bootstrap import sii_bootstrap
from hepcausal.inequality.sii_core import SIIInputError
from hepcausal.inequality.sii_table import NATIONAL, default_value_type
from hepcausal.models.priors import Priors
from hepcausal.outcomes import find_outcome
from hepcausal.results import ESTIMAND, TERM, FitResult
from hepcausal.spec import Design, Inference
from hepcausal.summaries import EffectSummary, summarise_effect

QUINTILE = "national_imd_quintile"
PAYMENT_COL = schema.FUND_TOTAL_REG  # total NHS payments per registered patient (GBP)
PAYMENT_RANGE = (80.0, 550.0)
#: Outcome sources whose values the payment rule blanks: funding (payments-derived) and the
#: staffing rates (their weighted-list denominator comes from the payments file in the study).
PAYMENT_RULE_SOURCES = ("payments", "workforce")

DIVERGENCES: tuple[dict[str, str], ...] = (
    {
        "item": "staffing frequency",
        "study": "monthly NHS Digital GP workforce: one SII per month (the figure shows the "
        "first month of each quarter before July 2021, when releases were quarterly)",
        "here": "annual (September) workforce snapshot per fiscal year",
        "why": "only the annual workforce files are in the open data folder",
    },
    {
        "item": ">60%-male patient rule",
        "study": "practices with more than 60% male patients excluded (prisons, institutions)",
        "here": "not applied",
        "why": "the open list-size files used have no sex split",
    },
    {
        "item": "patient experience (GPPS)",
        "study": "GP Patient Survey outcomes",
        "here": "not reproduced",
        "why": "no GPPS practice files in the open data folder",
    },
    {
        "item": "QOF 2020/21",
        "study": "QOF achievement for every year",
        "here": "no QOF 2020/21 (panel year 2021); QOF SIIs skip that year",
        "why": "QOF was income-protected in 2020/21 and is absent from the open data",
    },
    {
        "item": "need measure",
        "study": "LLR's payment bands (need-weighted allocation)",
        "here": "a proxy need score from deprivation and weighted list (hepcausal.data.nhs)",
        "why": "LLR's payment bands per practice are private",
    },
    {
        "item": "payment-validity rule",
        "study": "where total NHS payments per registered patient are missing or outside GBP "
        "80-550, every payments-file value is set missing, including the weighted list that "
        "divides the staffing counts (so the FTE rates are missing too); 2023/24 reuses "
        "2022/23's weighted list",
        "here": f"the same on the panel's {PAYMENT_COL!r} (payments file total / registered "
        "list): staffing and funding outcomes blanked where it is outside GBP 80-550 or missing "
        "in a year with a payments file; 2023/24 (no file) takes the practice's 2022/23 verdict",
        "why": "the study's monthly payment/list join is annual here (fiscal-year files)",
    },
    {
        "item": "estimated staffing",
        "study": "staffing values NHS Digital marked 'Fully estimated - no data provided' set "
        "missing (gp_source, nurse_source, admin_source)",
        "here": "not applied",
        "why": "the open fiscal-year workforce file has no data-source flag",
    },
    {
        "item": "practice inclusion",
        "study": "monthly rules: list <= 500 (or missing) in any month while open; opened after "
        "January 2018 or closed before June 2024; a month-on-month list change > 10% and > 100 "
        "patients after the first year; > 60% male; practices LLR marked as excluded",
        "here": "the package's annual inclusion rules of the [data] table (defaults: list < 500 "
        "(study: <= 500) in any year, present in every year 2018-2024, year-on-year change "
        "> 10% and >= 100 patients after the first step); no sex or LLR-exclusion rule",
        "why": "annual open files, no sex split, LLR's exclusion list is private",
    },
    {
        "item": "quintile fixing date",
        "study": "national IMD quintiles fixed at June 2021",
        "here": "fixed at panel year fix_year (default 2022 = FY2021/22, the annual file "
        "covering June 2021); practices absent that year have no quintile and are dropped",
        "why": "annual panel",
    },
    {
        "item": "bootstrap random numbers",
        "study": "R's boot::boot with set.seed(177)",
        "here": "numpy generator seeded by replication.seed (default 20211)",
        "why": "R's random streams cannot be reproduced; intervals differ by Monte Carlo error",
    },
)


class ReplicationSpec(BaseModel):
    """The ``[replication]`` table of ``experiments/replication.toml``.

    Parameters
    ----------
    outcomes
        Outcome aliases or columns (default GP FTE per 1,000 weighted patients).
    fix_year
        Panel year whose national IMD quintiles are used for every year.
    n_quantiles, min_per_quantile
        Quintiles; the fewer-than-``min_per_quantile``-practices ICS rule.
    n_boot, confidence, seed
        Stratified BCa bootstrap.
    treated, comparators
        ICB codes ("published" = the study's 10 comparators).
    payment_validity
        Apply the study's GBP 80-550 payment-per-registered-patient rule
        (:func:`apply_payment_rule`; needs the panel's total payments per registered patient).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcomes: tuple[str, ...] = ("gp",)
    fix_year: int = 2022
    n_quantiles: Annotated[int, Field(ge=5, le=100)] = 5
    min_per_quantile: Annotated[int, Field(ge=2)] = 5
    n_boot: Annotated[int, Field(ge=100)] = 1000
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    seed: int = 20211
    treated: str = schema.LLR_ICB
    comparators: str | tuple[str, ...] = "published"
    payment_validity: bool = True
    start_year: int = schema.HEP_START_YEAR

    def comparator_codes(self) -> tuple[str, ...]:
        """The comparator ICB codes.

        Returns
        -------
        tuple of str
            The published comparators or the listed codes.
        """
        if self.comparators == "published":
            return tuple(schema.PUBLISHED_COMPARATORS)
        if isinstance(self.comparators, str):
            raise ValueError(
                f"replication.comparators must be 'published' or a list; got {self.comparators!r}"
            )
        return tuple(self.comparators)


@dataclass
class Replication:
    """The reproduced SII table with its divergences.

    ``table``: ``outcome, icb_code, role ('treated'/'comparator'/'england'), year, sii, lower,
    upper, n_practices, note``.
    """

    table: pd.DataFrame
    spec: ReplicationSpec
    divergences: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(DIVERGENCES))
    notes: list[str] = field(default_factory=list)


def national_quintiles(
    panel: pd.DataFrame, fix_year: int, *, n_quantiles: int = 5, score_col: str = schema.IMD
) -> pd.Series:
    """National IMD quantiles of practices, cut by practice count, fixed at ``fix_year``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Practice-year panel with ``practice_code``, ``year`` and ``score_col``.
    fix_year : int
        The year whose practices and scores define the quantiles.
    n_quantiles : int
        Number of quantiles.
    score_col : str
        Deprivation score (higher = more deprived).

    Returns
    -------
    pandas.Series
        Practice code -> quantile (1 = most deprived), practices present in ``fix_year``.
    """
    for col in (schema.PRACTICE, schema.YEAR, score_col):
        if col not in panel.columns:
            raise SIIInputError(f"panel: missing column {col!r}")
    snap = panel.loc[panel[schema.YEAR] == fix_year, [schema.PRACTICE, score_col]].dropna()
    if snap.empty:
        years = sorted(panel[schema.YEAR].unique().tolist())
        raise SIIInputError(f"replication.fix_year {fix_year}: no practices (years {years})")
    snap = snap.drop_duplicates(schema.PRACTICE)
    # the study: clean_quintile = 6 - dplyr::ntile(IMD_score, 5): ntile on ascending score
    # (least deprived first), groups differing by at most one with the larger groups first;
    # ties broken here by practice code (dplyr: by row order)
    order = snap.sort_values([score_col, schema.PRACTICE], ascending=[True, True])
    n = len(order)
    larger, n_larger = -(-n // n_quantiles), n % n_quantiles
    smaller, threshold = n // n_quantiles, (-(-n // n_quantiles)) * (n % n_quantiles)
    pos = np.arange(n)  # row_number - 1
    tile = np.where(
        pos < threshold,
        pos // max(larger, 1),
        (pos - threshold) // max(smaller, 1) + n_larger,
    )
    q = n_quantiles - tile  # 1 = most deprived
    return pd.Series(q.astype(int), index=order[schema.PRACTICE].to_numpy(), name=QUINTILE)


def apply_payment_rule(
    panel: pd.DataFrame, columns: Sequence[str], *, enabled: bool = True
) -> tuple[pd.DataFrame, str]:
    """The study's payment-validity rule: blank payment-dependent values of invalid rows.

    A practice-year is invalid when its total NHS payments per registered patient
    (:data:`PAYMENT_COL`) lie outside GBP 80-550, or are missing in a year for which the panel
    has payment data at all; in a year without any (FY2023/24) a practice takes its latest
    earlier verdict (the study reused FY2022/23's weighted list).

    Parameters
    ----------
    panel : pandas.DataFrame
        The panel (``practice_code``, ``year`` and :data:`PAYMENT_COL`).
    columns : sequence of str
        Payment-dependent columns to blank (the study: every payments-file value, including
        the weighted list dividing the staffing counts, so the staffing rates too).
    enabled : bool
        False: skip the rule (returned note says so).

    Returns
    -------
    tuple
        The panel and a note (how many practice-years were blanked).

    Raises
    ------
    SIIInputError
        ``enabled`` and the panel has no :data:`PAYMENT_COL` column.
    """
    if not enabled:
        return panel, "payment-validity rule NOT applied (replication.payment_validity = false)"
    if PAYMENT_COL not in panel.columns:
        raise SIIInputError(
            f"replication.payment_validity = true needs panel column {PAYMENT_COL!r} (total NHS "
            "payments per registered patient, from the NHS payments files); this panel has "
            "none. Set replication.payment_validity = false to run without the rule (listed as "
            "a divergence)"
        )
    out = panel.copy()
    pay = pd.to_numeric(out[PAYMENT_COL], errors="coerce")
    has_file = pay.notna().groupby(out[schema.YEAR]).transform("any")
    verdict = (~pay.between(*PAYMENT_RANGE)).where(has_file)  # NaN: no payments data that year
    order = out.sort_values([schema.PRACTICE, schema.YEAR]).index
    carried = verdict.loc[order].groupby(out.loc[order, schema.PRACTICE]).ffill()
    bad = carried.reindex(out.index).fillna(False).astype(bool)
    for col in columns:
        if col in out.columns:
            out.loc[bad, col] = np.nan
    return out, (
        f"payment-validity rule: {int(bad.sum())} practice-years with payments per registered "
        "patient missing or outside GBP 80-550 (staffing and funding values blanked)"
    )


def _resolve_outcome(name: str) -> str:
    row = find_outcome(name)
    return row.column if row is not None else name


def replicate_sii(
    panel: pd.DataFrame, spec: ReplicationSpec | None = None, *, keep_replicates: bool = False
) -> Replication:
    """SII by year per outcome for LLR, the comparators and England, as the published study.

    Parameters
    ----------
    panel : pandas.DataFrame
        National practice-year panel (all English practices: England's SII uses them all).
    spec : ReplicationSpec, optional
        Options (default ``ReplicationSpec()``).

    keep_replicates : bool
        Keep each cell's bootstrap replicates in column ``_replicates``.

    Returns
    -------
    Replication
        The table, the spec and the divergences.
    """
    spec = spec or ReplicationSpec()
    outcomes = [_resolve_outcome(o) for o in spec.outcomes]
    missing = [o for o in outcomes if o not in panel.columns]
    if missing:
        raise SIIInputError(f"replication.outcomes: panel has no column(s) {missing}")
    notes: list[str] = []
    # payment-dependent columns: funding, and the staffing rates (in the study their weighted
    # list comes from the payments file and is blanked with it); QOF and GPPS are not
    dependent = [
        o
        for o in {*outcomes, PAYMENT_COL}
        if (o_row := find_outcome(o)) is not None and o_row.source in PAYMENT_RULE_SOURCES
    ]
    panel, note = apply_payment_rule(panel, dependent, enabled=spec.payment_validity)
    notes.append(note)
    quint = national_quintiles(panel, spec.fix_year, n_quantiles=spec.n_quantiles)
    df = panel.assign(**{QUINTILE: panel[schema.PRACTICE].map(quint)})
    n_noq = int(df[QUINTILE].isna().sum())
    notes.append(f"{n_noq} practice-years of practices absent in {spec.fix_year} have no quintile")
    df = df[df[QUINTILE].notna()]
    comps = spec.comparator_codes()
    groups = [(spec.treated, "treated"), *[(c, "comparator") for c in comps], (NATIONAL, "england")]
    rows: list[dict[str, Any]] = []
    rng = np.random.SeedSequence(spec.seed)
    for outcome in outcomes:
        vt = default_value_type(outcome)
        sub_all = df[df[outcome].notna()]
        for code, role in groups:
            sub = sub_all if code == NATIONAL else sub_all[sub_all[schema.ICB] == code]
            counts = sub.groupby([schema.YEAR, QUINTILE]).size().unstack(fill_value=0)
            counts = counts.reindex(columns=range(1, spec.n_quantiles + 1), fill_value=0)
            small = counts[(counts < spec.min_per_quantile).any(axis=1)]
            drop_note = ""
            if code != NATIONAL and not small.empty:
                drop_note = (
                    f"dropped: a quintile has fewer than {spec.min_per_quantile} practices in "
                    f"{sorted(int(y) for y in small.index)}"
                )
            for year in sorted(sub[schema.YEAR].unique()):
                cell = sub[sub[schema.YEAR] == year]
                row: dict[str, Any] = {
                    "outcome": outcome,
                    schema.ICB: code,
                    "role": role,
                    schema.YEAR: int(year),
                    "sii": np.nan,
                    "lower": np.nan,
                    "upper": np.nan,
                    "n_practices": len(cell),
                    "note": drop_note,
                    "_replicates": None,
                }
                if not drop_note:
                    try:
                        res = sii_bootstrap(
                            cell,
                            outcome,
                            quantile_col=QUINTILE,
                            value_type=vt,
                            transform=vt != "other",
                            n_boot=spec.n_boot,
                            method="bca",
                            strata="quantile",
                            confidence=spec.confidence,
                            min_per_quantile=spec.min_per_quantile,
                            seed=np.random.default_rng(rng.spawn(1)[0]),
                        )
                        row.update(sii=res.sii, lower=res.sii_lower, upper=res.sii_upper)
                        row["_replicates"] = res.replicates
                    except SIIInputError as exc:
                        row["note"] = str(exc)
                rows.append(row)
    table = pd.DataFrame(rows)
    if not keep_replicates:
        table = table.drop(columns="_replicates")
    return Replication(table=table, spec=spec, notes=notes)


def spec_from_config(path: str | Path, outcomes: Sequence[str] | None = None) -> ReplicationSpec:
    """The :class:`ReplicationSpec` of a run config whose ``estimator.name = "replication"``.

    Parameters
    ----------
    path : str or Path
        The TOML file (e.g. ``experiments/replication.toml``).
    outcomes : sequence of str, optional
        Outcomes of the figure (default: the config's outcome).

    Returns
    -------
    ReplicationSpec
        The validated spec.
    """
    from hepcausal.experiments.config import load_config

    cfg = load_config(path)
    if cfg.estimator.name != "replication":
        raise ValueError(
            f"{path}: estimator.name must be 'replication'; got {cfg.estimator.name!r}"
        )
    a = cfg.analysis
    return ReplicationSpec(
        outcomes=tuple(outcomes or (a.outcome,)),
        treated=a.treated_icb,
        comparators="published" if a.comparators == "published" else a.comparator_codes(),
        start_year=a.start_year,
        confidence=cfg.summary.hdi_prob,
        **dict(cfg.estimator.options),
    )


def run_replication(
    path: str | Path,
    out_dir: str | Path | None = None,
    outcomes: Sequence[str] = ("gp", "nurse", "dpc", "admin", "qof"),
) -> Replication:
    """Run a replication config for several outcomes; write table, divergences and figure.

    Parameters
    ----------
    path : str or Path
        The replication run config.
    out_dir : str or Path, optional
        Output folder (default ``runs/replication``).
    outcomes : sequence of str
        Outcomes (one figure panel each).

    Returns
    -------
    Replication
        The result.
    """
    from hepcausal.experiments.config import load_config
    from hepcausal.experiments.inputs import prepare_data
    from hepcausal.plots.null_result import plot_replication

    spec = spec_from_config(path, outcomes)
    panel = prepare_data(load_config(path)).panel
    rep = replicate_sii(panel, spec)
    out = Path(out_dir or "runs/replication")
    out.mkdir(parents=True, exist_ok=True)
    rep.table.to_csv(out / "sii_by_year.csv", index=False)
    rep.divergences.to_csv(out / "divergences.csv", index=False)
    fig = plot_replication(rep.table, start_year=spec.start_year)
    for ext in ("pdf", "png"):
        fig.savefig(out / f"replication.{ext}", dpi=200)
    return rep


if __name__ == "__main__":  # pragma: no cover - command-line entry
    r = run_replication(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print("\n".join(r.notes))
    print(r.table.to_string())


# ----------------------------------------------------------------------------- registry entry


@dataclass(frozen=True)
class ReplicationPriors(Priors):
    """The replication is classical (bootstrap): it has no priors."""


@dataclass(repr=False)
class ReplicationFit(FitResult):
    """The replication as a run result: ``table`` (SII by ICS and year) and its divergences.

    Its "draws" are the stratified bootstrap replicates (one chain), one term per ICS-year
    ``sii[ICB,year]``; ``effects`` hold BCa intervals.  The first effect is LLR's first post-year
    SII.  Diagnostics are not MCMC checks (one chain of independent replicates).
    """

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    divergences: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(DIVERGENCES))


def fit_replication(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    fix_year: int = 2022,
    n_quantiles: int = 5,
    min_per_quantile: int = 5,
    n_boot: int = 1000,
    seed: int = 20211,
    payment_validity: bool = True,
) -> ReplicationFit:
    """The published SII method as a registered estimator (``estimator.name = "replication"``).

    Parameters
    ----------
    panel : pandas.DataFrame
        The national panel.
    outcome : str
        Outcome column.
    design : Design, optional
        Treated ICB, comparators and start year.
    inference : Inference, optional
        Its ``hdi_prob`` is the bootstrap confidence level.
    fix_year, n_quantiles, min_per_quantile, n_boot, seed, payment_validity
        As :class:`ReplicationSpec`.

    Returns
    -------
    ReplicationFit
        Table, divergences and the bootstrap replicates as estimands.
    """
    d = design or Design()
    inf = inference or Inference()
    comps = tuple(d.comparators) if d.comparators != "all" else "published"
    spec = ReplicationSpec(
        outcomes=(outcome,),
        fix_year=fix_year,
        n_quantiles=n_quantiles,
        min_per_quantile=min_per_quantile,
        n_boot=n_boot,
        confidence=inf.hdi_prob,
        seed=seed,
        treated=d.treated,
        comparators=comps,
        payment_validity=payment_validity,
        start_year=d.start_year,
    )
    rep = replicate_sii(panel, spec, keep_replicates=True)
    tab = rep.table
    draws: dict[str, np.ndarray] = {}
    effects: dict[str, EffectSummary] = {}
    first_post = tab[(tab["role"] == "treated") & (tab[schema.YEAR] >= d.start_year)]
    order = [*first_post.index[:1], *[i for i in tab.index if i not in first_post.index[:1]]]
    for i in order:
        row = tab.loc[i]
        reps = row["_replicates"]
        if reps is None or not np.isfinite(row["sii"]):
            continue
        term = f"sii[{row[schema.ICB]},{int(row[schema.YEAR])}]"
        draws[term] = np.resize(np.asarray(reps, float), n_boot)
        base = summarise_effect(
            draws[term], name=term, hdi_prob=inf.hdi_prob, draws_kind="BCa bootstrap"
        )
        effects[term] = replace(
            base, mean=float(row["sii"]), hdi_low=float(row["lower"]), hdi_high=float(row["upper"])
        )
    if not draws:
        raise SIIInputError(f"replication of {outcome!r}: no ICS-year has an SII")
    post = xr.Dataset(
        {
            ESTIMAND: xr.DataArray(
                np.stack([draws[t] for t in draws], axis=-1)[None],
                dims=("chain", "draw", TERM),
                coords={"chain": [0], "draw": np.arange(n_boot), TERM: list(draws)},
            )
        }
    )
    diag = Diagnostics.independent(n_boot)
    meta = {
        "estimator": "replication",
        "outcome": outcome,
        "treated": d.treated,
        "start_year": d.start_year,
        "notes": rep.notes,
        "method": "published SII: national quintiles fixed at fix_year, quintile means, "
        "practice counts, log/logit, stratified BCa bootstrap",
    }
    return ReplicationFit(
        idata=az.InferenceData(posterior=post),
        diagnostics=diag,
        effects=effects,
        meta=meta,
        table=tab.drop(columns="_replicates"),
        divergences=rep.divergences,
    )
