"""The real NHS practice x fiscal-year panel, built from the published open files.

``build_nhs_panel(data_dir)`` reads the files described in the data README (payments, QOF,
Fingertips deprivation, workforce means, CCG/sub-ICB -> ICB lookup; optionally GP Patient Survey
files) and returns a :class:`PanelBuild` with the validated panel and the counted inclusion report.

Construction choices (all counted or documented in ``PanelBuild.report.notes``):

* **Geography.** Each practice gets its *latest* CCG/sub-ICB code in the payments files (so a
  practice keeps one ICB across the 2022 CCG -> sub-ICB change; LLR = 03W, 04C, 04V -> QK1), mapped
  to an ICB by the lookup.  Practices whose code cannot be mapped get no ICB and are dropped by the
  ``icb_known`` rule (listed in ``PanelBuild.unmapped_practices``).
* **List sizes.** Registered and weighted patients come from the payments file of each year
  (2017/18-2022/23, :data:`PAYMENTS_YEARS`).  For panel years the data set has no payments file
  for (2023/24, ``year == 2024``), the registered list is the workforce file's mean
  ``TOTAL_PATIENTS`` and the weighted list is that times the practice's weighted/registered ratio
  in its nearest payments year (column ``list_source`` says which).  Workforce
  ``TOTAL_PATIENTS`` is a different count from the payments list, so the ``no_list_jumps`` rule
  skips the step into such years by default.
* **Missing files are errors.** A panel year of :data:`PAYMENTS_YEARS` without its payments file
  (or of :data:`QOF_YEARS` without its QOF file) raises ``FileNotFoundError`` naming the year and
  the expected file, unless :class:`NHSLoadOptions` opts into the fallback
  (``allow_list_size_fallback``: the workforce list as for 2023/24; ``allow_missing_qof``: QOF
  missing that year); a fallback used is a ``fallback:`` row of the inclusion table.
* **Damaged files are errors** (:class:`~hepcausal.data.headers.DataFileError`, naming the file):
  empty or header-only files, rows with too few or too many fields (with the line number), two
  files for one year, a workforce file without rows for a panel year, and a file with more than
  ``max_practice_drop`` (5%) fewer practices per year apart than the nearest earlier or later
  year's file of the same kind (real year-on-year drops are at most 3.8%; a file cut at a line
  boundary loses far more).
* **Implausible raw values are errors** naming the file, its column and the rows, also in
  practices the inclusion rules would drop: list sizes above
  :data:`~hepcausal.data.validate.MAX_LIST_SIZE`, workforce FTE above an outcome's upper
  ``bound`` per 1,000 of the file's patients (practices with >= 1,000 patients) or in absolute
  terms, deprivation scores outside [0, 100], LLR sub-ICB codes not mapped to QK1.  Implausible
  panel values (outside the outcome table's ``bounds``) are a
  :class:`~hepcausal.data.validate.PanelValidationError` naming the file, its column and the
  practice-years.
* **PCN.** PCNs exist from 2019/20; earlier (and unknown) years take the practice's nearest
  recorded PCN.
* **Outcomes.** Every ``source="workforce"`` row of :data:`hepcausal.outcomes.OUTCOMES`: FTE per
  1,000 weighted patients = its workforce FTE column / weighted list x 1000 (GP FTE excludes
  locums and trainees).  ``qof_achievement`` = points / maximum points (559 to 2019/20,
  635 from 2021/22); missing for 2020/21 (not published) and 2023/24 (not in the data set).
* **Deprivation.** ``imd_score`` = IMD 2019 practice score, ``imd2015_score`` = IMD 2015 (both
  constant per practice).  ``deprivation_rank`` = population-weighted relative rank of IMD 2019
  within ICB x year (weights = registered list), computed *after* inclusion.
* **Need proxy.** The LLR need formula is unpublished.  ``need_score`` = mean of available
  within-year z-scores (over included practices) of: case mix (weighted / registered list),
  list turnover (|change| of the workforce patient count from the previous year / previous
  count) and IMD 2019.  ``need_rank`` = its population-weighted rank within ICB x year (0 = most
  need).
* **Funding.** Every ``source="payments"`` row of the outcome table: its payment group's lines
  summed / the weighted (or registered) list, GBP per patient per fiscal year
  (:func:`add_funding_outcomes`); missing in years without a payments file (2023/24).  Optional
  payment-validity rule (``NHSLoadOptions.payment_validity``, e.g. GBP 80-550 per registered
  patient as the published evaluation): funding values outside set missing, counted.
* **Candidate dose.** ``local_incentive_change``: for LLR practices from 2022, the rise (clipped
  at 0) of local incentive payments per weighted patient over FY2020/21; 0 for comparators and
  earlier years.  A CANDIDATE proxy: whether that payment line carries the Health Equity
  Payments is not documented (:func:`hepcausal.inequality.funding.funding_dose`).
* **Treatment.** ``hep_treated`` = ICB is QK1 and year >= 2022; ``hep_dose`` is missing (the
  per-practice payment is not in the open data).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.gpps import load_gpps, merge_gpps
from hepcausal.data.headers import ColumnNotFoundError, DataFileError
from hepcausal.data.inclusion import LIST_SOURCE, InclusionReport, InclusionRules, apply_inclusion
from hepcausal.data.nhs_files import (
    PAYMENT_GROUPS,
    PAYMENT_LINE_PATTERNS,
    WORKFORCE_PATIENTS,
    imd_wide,
    load_ccg_icb,
    load_imd,
    load_payments,
    load_qof,
    load_workforce,
    payments_files,
    qof_files,
)
from hepcausal.data.validate import validate_panel
from hepcausal.inequality.ranks import add_relative_rank
from hepcausal.outcomes import OUTCOMES

__all__ = [
    "LOCAL_INCENTIVE_DOSE",
    "MAX_PRACTICE_DROP",
    "PAYMENTS_YEARS",
    "PAYMENT_INVALID",
    "QOF_YEARS",
    "ColumnNotFoundError",
    "DataFileError",
    "NHSLoadOptions",
    "PanelBuild",
    "add_funding_outcomes",
    "build_nhs_panel",
    "check_nhs_layout",
    "check_practice_counts",
    "load_ccg_icb",
    "load_gpps",
    "load_imd",
    "load_payments",
    "load_qof",
    "load_workforce",
    "need_score",
]

IMD_FILE = Path("imd") / "fingertips-93553-practice-deprivation.csv"
WORKFORCE_FILE = Path("workforce") / "workforce-practice-fiscal-year.csv"
LOOKUP_FILE = Path("lookups") / "ccg-icb.csv"

TURNOVER = "list_turnover"

# Fiscal years (ends) for which the data set holds a file of each kind (see the data README).
PAYMENTS_YEARS: Final = tuple(range(2018, 2024))  # 2017/18 - 2022/23
QOF_YEARS: Final = (2018, 2019, 2020, 2022, 2023)  # 2020/21 not published; 2023/24 not in the set
# Largest accepted drop in the number of practices between adjacent years' files of one kind
# (a drop is an error only when it is also at least MIN_PRACTICE_DROP practices: tiny files).
MAX_PRACTICE_DROP: Final = 0.05
MIN_PRACTICE_DROP: Final = 3


@dataclass(frozen=True)
class NHSLoadOptions:
    """How :func:`build_nhs_panel` treats missing and damaged files (defaults: strict).

    Parameters
    ----------
    allow_list_size_fallback : bool
        A panel year of ``payments_years`` whose payments file is missing takes its registered
        list from the workforce file (as 2023/24 does) instead of raising; config key
        ``data.allow_list_size_fallback``.  Reported as the inclusion-table row
        ``fallback: list_size_from_workforce``.
    allow_missing_qof : bool
        A panel year of ``qof_years`` whose QOF file is missing gets no QOF values instead of
        raising; config key ``data.allow_missing_qof``.  Reported as the row
        ``fallback: qof_missing``.
    max_practice_drop : float
        Largest accepted fraction by which a file's practice count may fall short of an adjacent
        year's file of the same kind (payments, QOF, workforce years); default 5% (the real
        files fall by at most 3.8% a year).  Drops of fewer than :data:`MIN_PRACTICE_DROP`
        practices are accepted.
    payments_years, qof_years : tuple of int
        The fiscal years (ends) the data set holds payments / QOF files for.
    payment_validity : tuple of float, optional
        ``(low, high)`` in GBP per registered patient: practice-years whose total NHS payments
        per registered patient ('Total NHS Payments to General Practice' / registered list)
        lie outside get every payment-derived (funding) value set missing, as the published
        evaluation did with (80, 550).  Config key ``data.payment_validity``; counted as the
        inclusion-table row ``fallback: payment_validity``.  Default None: no such rule.
    """

    allow_list_size_fallback: bool = False
    allow_missing_qof: bool = False
    max_practice_drop: float = MAX_PRACTICE_DROP
    payments_years: tuple[int, ...] = PAYMENTS_YEARS
    qof_years: tuple[int, ...] = QOF_YEARS
    payment_validity: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.payment_validity is not None:
            low, high = self.payment_validity
            if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
                raise ValueError(
                    "NHSLoadOptions.payment_validity must be (low, high) GBP per registered "
                    f"patient with 0 <= low < high, got {self.payment_validity!r}"
                )
        if not 0 <= self.max_practice_drop < 1:
            raise ValueError(
                "NHSLoadOptions.max_practice_drop must be in [0, 1), got "
                f"{self.max_practice_drop!r}"
            )


@dataclass
class PanelBuild:
    """Result of :func:`build_nhs_panel`: the validated panel and its inclusion report.

    Attributes
    ----------
    panel : pandas.DataFrame
        The validated practice x fiscal-year panel (year = fiscal-year end), columns of
        :mod:`hepcausal.schema`.
    report : InclusionReport
        Practices and practice-years dropped by each inclusion rule (and ``fallback:`` rows).
    unmapped_practices : tuple of str, default ()
        Practices whose sub-ICB code has no ICB in the lookup (dropped by ``icb_known``).
    files : dict of str to list of str, default {}
        Files read, by kind (``payments``, ``qof``, ``imd``, ``workforce``, ``lookup``, ...).
    fallbacks : dict of str to list of int, default {}
        Fallback used -> the fiscal years it was used for.
    """

    panel: pd.DataFrame
    report: InclusionReport
    unmapped_practices: tuple[str, ...] = ()
    files: dict[str, list[str]] = field(default_factory=dict)
    fallbacks: dict[str, list[int]] = field(default_factory=dict)  # fallback -> years


def _fiscal_label(year: int) -> str:
    return f"{year - 1}/{year % 100:02d}"


def _one_file_per_year(frames: Sequence[pd.DataFrame], files: Sequence[Path], kind: str) -> None:
    """Raise if two files of one kind hold the same fiscal year."""
    seen: dict[int, Path] = {}
    for frame, f in zip(frames, files, strict=True):
        for year in sorted(set(frame[S.YEAR])):
            if year in seen:
                raise DataFileError(
                    f,
                    f"a second {kind} file for fiscal year {_fiscal_label(year)} (year {year}); "
                    f"the first is {seen[year]}: keep one",
                )
            seen[year] = f


def check_practice_counts(
    counts: Mapping[int, int], files: Mapping[int, str | Path], kind: str, max_drop: float
) -> None:
    """Raise if a year's practice count falls short of an adjacent year's by more than ``max_drop``.

    Each year is compared with the nearest earlier and later year present; for years ``k``
    apart the accepted drop is ``k * max_drop`` (e.g. QOF 2019/20 vs 2021/22).  Only drops of at
    least :data:`MIN_PRACTICE_DROP` practices count (small files).

    Parameters
    ----------
    counts : mapping of int to int
        Practices per fiscal year (end) in the files of one kind.
    files : mapping of int to str or Path
        The file of each year (named in the error).
    kind : str
        What the files are (``"payments"``, ``"QOF"``, ``"workforce"``).
    max_drop : float
        Largest accepted shortfall, as a fraction of the adjacent year's count.

    Raises
    ------
    DataFileError
        Naming the file, its year and count, and the adjacent year's file and count.
    """
    years = sorted(counts)
    for i, year in enumerate(years):
        for other in years[max(i - 1, 0) : i + 2]:
            if other == year or counts[other] == 0:
                continue
            short = 1 - counts[year] / counts[other]
            allowed = max_drop * abs(other - year)  # files two years apart: twice the drop
            if short > allowed and counts[other] - counts[year] >= MIN_PRACTICE_DROP:
                where = f"year {year} of " if files[year] == files[other] else ""
                raise DataFileError(
                    files[year],
                    f"{where}{kind} data for {_fiscal_label(year)} has {counts[year]:,} "
                    f"practices, {short:.0%} fewer than the {counts[other]:,} of "
                    f"{_fiscal_label(other)} ({files[other]}); more than the "
                    f"{allowed:.0%} accepted: is the file truncated?",
                )


def check_nhs_layout(data_dir: str | Path) -> Path:
    """Check that ``data_dir`` has the NHS data layout, without reading the files.

    Cheap (a few ``stat`` calls): run it before hashing or loading anything.

    Parameters
    ----------
    data_dir : str or Path
        The NHS data folder.

    Returns
    -------
    Path
        ``data_dir`` as a Path.

    Raises
    ------
    FileNotFoundError
        Naming the folder and every missing part (payments files, workforce, deprivation and
        lookup files).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: NHS data directory not found")
    missing = [] if payments_files(data_dir) else ["payments/nhspaymentsgp-*.csv"]
    missing += [
        str(f) for f in (WORKFORCE_FILE, IMD_FILE, LOOKUP_FILE) if not (data_dir / f).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{data_dir}: not an NHS data folder (see the NHS data README): missing {missing}"
        )
    return data_dir


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file not found (see the NHS data README)")
    return path


def _geography(payments: pd.DataFrame, lookup: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per practice: latest sub-ICB code, its ICB code and name; plus unmapped practice codes."""
    latest = (
        payments.dropna(subset=[S.SUB_ICB])
        .sort_values(S.YEAR)
        .groupby(S.PRACTICE)[S.SUB_ICB]
        .last()
    )
    geo = (
        latest.rename(S.SUB_ICB)
        .reset_index()
        .merge(lookup.rename(columns={"code": S.SUB_ICB}), on=S.SUB_ICB, how="left")
    )
    unmapped = sorted(geo.loc[geo[S.ICB].isna(), S.PRACTICE])
    return geo, unmapped


def _icb_movers(payments: pd.DataFrame, lookup: pd.DataFrame) -> list[str]:
    """Practices whose yearly CCG/sub-ICB codes map to more than one ICB."""
    icb = payments[S.SUB_ICB].map(lookup.set_index("code")[S.ICB])
    n = icb.groupby(payments[S.PRACTICE]).nunique()
    return sorted(n.index[n > 1])


def _fill_pcn(panel: pd.DataFrame) -> pd.Series:
    ordered = panel.sort_values([S.PRACTICE, S.YEAR])
    forward = ordered.groupby(S.PRACTICE, sort=False)[S.PCN].ffill()
    backward = ordered.groupby(S.PRACTICE, sort=False)[S.PCN].bfill()
    return forward.fillna(backward).reindex(panel.index)


def need_score(panel: pd.DataFrame) -> pd.Series:
    """Need proxy: mean of available within-year z-scores of case mix, list turnover and IMD.

    Case mix = weighted / registered list; turnover = column ``list_turnover``; IMD = IMD 2019.
    Higher = more need.  Not the (unpublished) LLR need formula.

    Parameters
    ----------
    panel : pandas.DataFrame
        Practice x year panel with ``weighted_list_size``, ``list_size``, ``list_turnover``,
        ``imd_score`` and ``year``.

    Returns
    -------
    pandas.Series
        Need score aligned with ``panel.index`` (mean of the non-missing z-scores, each
        standardised within fiscal year; NaN when all three are missing).

    Raises
    ------
    KeyError
        When a required column is missing.
    """
    comps = pd.DataFrame(
        {
            "case_mix": panel[S.WEIGHTED_LIST_SIZE] / panel[S.LIST_SIZE],
            "turnover": panel[TURNOVER],
            "imd": panel[S.IMD],
        },
        index=panel.index,
    )
    by_year = comps.groupby(panel[S.YEAR])
    z = (comps - by_year.transform("mean")) / by_year.transform("std")
    return z.mean(axis=1, skipna=True)


def _expected_file(folder: Path, pattern: str, year: int) -> str:
    yy = year % 100
    return str(folder / pattern.format(a=f"{(yy - 1) % 100:02d}", b=f"{yy:02d}", y=year - 1))


PAYMENT_INVALID = "payment_invalid"
LOCAL_INCENTIVE_DOSE = "local_incentive_change"
"""Candidate dose column (see :func:`hepcausal.inequality.funding.funding_dose`)."""


def _candidate_dose(panel: pd.DataFrame) -> pd.Series:
    from hepcausal.inequality.funding import funding_dose

    return funding_dose(panel)


def add_funding_outcomes(
    panel: pd.DataFrame, payment_validity: tuple[float, float] | None = None
) -> tuple[pd.DataFrame, int]:
    """Add every ``source="payments"`` outcome of the outcome table to a practice-year frame.

    Each funding outcome = the sum of its payment group's lines
    (:data:`~hepcausal.data.nhs_files.PAYMENT_GROUPS`; ``"total"`` = the files' 'Total NHS
    Payments to General Practice') / its ``list_denominator``.  A group sums the lines present
    that year (a line absent from a year's file counts as zero when the group has another line
    that year; a group with no line that year, e.g. PCN lines before 2019/20, is missing).

    Parameters
    ----------
    panel : DataFrame
        Practice-years with the loaded payment lines (``pay_*`` columns of
        :func:`~hepcausal.data.nhs_files.load_payments`) and the list sizes.
    payment_validity : tuple of float, optional
        ``(low, high)`` GBP per registered patient: rows whose total payments per registered
        patient lie outside get every funding outcome set missing.

    Returns
    -------
    tuple of (DataFrame, int)
        The frame with the funding outcome columns and the boolean column ``payment_invalid``,
        and the number of rows the validity rule blanked.
    """
    out = panel.copy()
    for row in OUTCOMES.values():
        if row.source != "payments" or row.source_column is None:
            continue
        lines = ["pay_total"] if row.source_column == "total" else PAYMENT_GROUPS[row.source_column]
        amount = out[list(lines)].sum(axis=1, min_count=1)
        denom = out[row.list_denominator or S.WEIGHTED_LIST_SIZE]
        out[row.column] = (amount / denom).where(denom > 0)
    invalid = pd.Series(False, index=out.index)
    if payment_validity is not None:
        low, high = payment_validity
        per_reg = (out["pay_total"] / out[S.LIST_SIZE]).where(out[S.LIST_SIZE] > 0)
        invalid = per_reg.notna() & ((per_reg < low) | (per_reg > high))
        for row in OUTCOMES.values():
            if row.source == "payments":
                out.loc[invalid, row.column] = np.nan
    out[PAYMENT_INVALID] = invalid
    return out, int(invalid.sum())


def payment_validity_description(
    raw: pd.DataFrame, dropped: pd.DataFrame, bounds: tuple[float, float]
) -> str:
    """The inclusion-table text of the payment-validity rule, with its counts per year.

    The rule blanks the funding outcomes of a practice-year before the inclusion rules run; a
    blanked practice-year whose analysed outcome is a funding outcome is then dropped by the
    ``missing_outcome`` rule (and counted in that rule's row).  The text gives both, per fiscal
    year, so that nothing the rule removes goes uncounted; the ``fallback: payment_validity``
    row itself counts the kept practice-years whose funding outcomes are missing by the rule.

    Parameters
    ----------
    raw : DataFrame
        The panel before the inclusion rules, with the ``payment_invalid`` flag.
    dropped : DataFrame
        :attr:`~hepcausal.data.inclusion.InclusionReport.dropped` (practice, year, rule).
    bounds : tuple of float
        ``(low, high)`` GBP per registered patient.

    Returns
    -------
    str
        E.g. ``"... blanked before the rules: 2018 120, 2019 98 (total 218); of these dropped
        by missing_outcome: 2018 40, ..."``.
    """
    low, high = bounds
    bad = raw.loc[raw[PAYMENT_INVALID].astype(bool), [S.PRACTICE, S.YEAR]]
    per_year = bad.groupby(S.YEAR).size()
    text = (
        f"total NHS payments per registered patient outside GBP {low:g}-{high:g}: funding "
        "outcomes set missing (data.payment_validity; the published evaluation's rule); "
        "practice-years blanked before the rules: "
        + (", ".join(f"{int(y)} {int(n):,}" for y, n in per_year.items()) or "none")
        + f" (total {len(bad):,})"
    )
    if len(bad) and len(dropped):
        hit = bad.merge(dropped, on=[S.PRACTICE, S.YEAR], how="inner")
        by_rule = hit.groupby("rule").size().sort_values(ascending=False)
        if len(by_rule):
            text += "; of these dropped later by " + ", ".join(
                f"{r} {int(n):,}" for r, n in by_rule.items()
            )
        miss = hit[hit["rule"] == "missing_outcome"].groupby(S.YEAR).size()
        if len(miss):
            text += " (missing_outcome per year: " + ", ".join(
                f"{int(y)} {int(n):,}" for y, n in miss.items()
            )
            text += ")"
    return text + "; this row: kept practice-years with funding outcomes blanked by the rule"


def _raw_panel(
    data_dir: Path,
    years: Sequence[int],
    gpps_paths: str | Path | Sequence[str | Path] | None,
    options: NHSLoadOptions,
) -> tuple[
    pd.DataFrame, list[str], list[str], dict[str, list[str]], dict[str, list[int]], dict[str, str]
]:
    pay_files = payments_files(data_dir)
    if not pay_files:
        raise FileNotFoundError(f"{data_dir / 'payments'}: no nhspaymentsgp-*.csv files")
    q_files = qof_files(data_dir)
    fallbacks: dict[str, list[int]] = {}
    files = {
        "payments": [str(f) for f in pay_files],
        "qof": [str(f) for f in q_files],
        "imd": [str(data_dir / IMD_FILE)],
        "workforce": [str(data_dir / WORKFORCE_FILE)],
        "lookup": [str(data_dir / LOOKUP_FILE)],
    }
    pay_frames = [load_payments(f) for f in pay_files]
    _one_file_per_year(pay_frames, pay_files, "payments")
    payments = pd.concat(pay_frames, ignore_index=True)
    lookup_path = _require(data_dir / LOOKUP_FILE, "CCG/sub-ICB -> ICB lookup")
    lookup = load_ccg_icb(lookup_path)
    llr = lookup[lookup["code"].isin(S.LLR_SUB_ICBS)]
    wrong = llr[llr[S.ICB] != S.LLR_ICB]
    if len(wrong):
        raise DataFileError(
            lookup_path,
            f"the LLR sub-ICB code(s) {sorted(wrong['code'])} map to {sorted(set(wrong[S.ICB]))}, "
            f"not to the treated ICB {S.LLR_ICB} (Leicester, Leicestershire and Rutland)",
        )
    wf_path = _require(data_dir / WORKFORCE_FILE, "workforce")
    workforce = load_workforce(wf_path)
    wf_counts = workforce.groupby(S.YEAR)[S.PRACTICE].nunique()
    imd = imd_wide(load_imd(_require(data_dir / IMD_FILE, "Fingertips 93553 deprivation")))
    q_frames = [load_qof(f) for f in q_files]
    _one_file_per_year(q_frames, q_files, "QOF")
    qof = (
        pd.concat(q_frames, ignore_index=True)
        if q_frames
        else pd.DataFrame(columns=[S.PRACTICE, S.YEAR, S.QOF, S.QOF_MAX_POINTS])
    )
    notes: list[str] = []

    pay_years = sorted(payments[S.YEAR].unique())
    wf_years = set(workforce[S.YEAR].unique())
    missing = [y for y in years if y not in pay_years and y not in wf_years]
    if missing:
        raise ValueError(
            f"build_nhs_panel(years=...): no payments or workforce data for years "
            f"{missing} (payments {pay_years[0]}-{pay_years[-1]}, workforce "
            f"{min(wf_years)}-{max(wf_years)})"
        )
    no_wf = [y for y in years if y not in wf_years]
    if no_wf:
        raise DataFileError(
            wf_path,
            f"no rows for panel year(s) {no_wf} (the workforce outcomes of every panel year "
            f"come from this file; it has {min(wf_years)}-{max(wf_years)}): is it truncated?",
        )
    no_pay = [y for y in years if y in options.payments_years and y not in pay_years]
    if no_pay and not options.allow_list_size_fallback:
        expected = [
            _expected_file(data_dir / "payments", "nhspaymentsgp-{a}-{b}-*.csv", y) for y in no_pay
        ]
        raise FileNotFoundError(
            f"no payments file for panel year(s) {no_pay} "
            f"({', '.join(_fiscal_label(y) for y in no_pay)}): expected {expected}.  Restore the "
            "file(s), or set data.allow_list_size_fallback = true "
            "(NHSLoadOptions.allow_list_size_fallback) to take those years' registered list "
            "from the workforce file (reported in the inclusion table)"
        )
    q_years = sorted(set(qof[S.YEAR]))
    no_qof = [y for y in years if y in options.qof_years and y not in q_years]
    if no_qof and not options.allow_missing_qof:
        expected = [_expected_file(data_dir / "qof", "qof-{y}-{b}.csv", y) for y in no_qof]
        raise FileNotFoundError(
            f"no QOF file for panel year(s) {no_qof} "
            f"({', '.join(_fiscal_label(y) for y in no_qof)}): expected {expected}.  Restore the "
            "file(s), or set data.allow_missing_qof = true (NHSLoadOptions.allow_missing_qof) to "
            "leave QOF missing in those years (reported in the inclusion table)"
        )
    # after the missing-file checks, which say more about a deleted file than the count check
    check_practice_counts(
        {int(f[S.YEAR].iloc[0]): len(f) for f in pay_frames},
        {int(f[S.YEAR].iloc[0]): p for f, p in zip(pay_frames, pay_files, strict=True)},
        "payments",
        options.max_practice_drop,
    )
    check_practice_counts(
        {int(y): int(n) for y, n in wf_counts.items()},
        {int(y): wf_path for y in wf_counts.index},
        "workforce",
        options.max_practice_drop,
    )
    check_practice_counts(
        {int(f[S.YEAR].iloc[0]): len(f) for f in q_frames},
        {int(f[S.YEAR].iloc[0]): p for f, p in zip(q_frames, q_files, strict=True)},
        "QOF",
        options.max_practice_drop,
    )
    if no_pay:
        fallbacks["list_size_from_workforce"] = no_pay
    if no_qof:
        fallbacks["qof_missing"] = no_qof

    # Registered / weighted list: payments where available, else workforce x carried ratio.
    base = payments[payments[S.YEAR].isin(years)][
        [S.PRACTICE, S.YEAR, S.PCN, S.LIST_SIZE, S.WEIGHTED_LIST_SIZE, *PAYMENT_LINE_PATTERNS]
    ].assign(**{LIST_SOURCE: "payments"})
    ext_years = [y for y in years if y not in pay_years]
    if ext_years:
        ratio = payments.assign(r=payments[S.WEIGHTED_LIST_SIZE] / payments[S.LIST_SIZE])
        ratio = ratio[np.isfinite(ratio["r"]) & (ratio["r"] > 0)].sort_values(S.YEAR)
        ext = workforce[workforce[S.YEAR].isin(ext_years)][[S.PRACTICE, S.YEAR, WORKFORCE_PATIENTS]]
        # nearest payments year: the last one before, else the first one after
        before = ratio.groupby(S.PRACTICE)["r"].last()
        after = ratio.groupby(S.PRACTICE)["r"].first()
        r = np.where(
            ext[S.YEAR] > pay_years[-1], ext[S.PRACTICE].map(before), ext[S.PRACTICE].map(after)
        )
        ext = ext.assign(
            **{
                S.PCN: np.nan,
                S.LIST_SIZE: ext[WORKFORCE_PATIENTS],
                S.WEIGHTED_LIST_SIZE: ext[WORKFORCE_PATIENTS] * r,
                LIST_SOURCE: "workforce",
            }
        ).drop(columns=WORKFORCE_PATIENTS)
        ext[S.PCN] = ext[S.PCN].astype("str").mask(ext[S.PCN].isna())
        n_no_ratio = int(ext[S.WEIGHTED_LIST_SIZE].isna().sum())
        notes.append(
            f"years {ext_years}: registered list = workforce TOTAL_PATIENTS, weighted list = "
            f"that x the practice's weighted/registered ratio in its nearest payments year "
            f"({len(ext):,} practice-years; {n_no_ratio:,} without a payments ratio get no "
            "weighted list)"
        )
        base = pd.concat([base, ext], ignore_index=True)
    panel = base
    panel[S.PCN] = _fill_pcn(panel)

    geo, unmapped = _geography(payments, lookup)
    panel = panel.merge(geo, on=S.PRACTICE, how="left")
    no_payments = sorted(set(panel[S.PRACTICE]) - set(payments[S.PRACTICE]))
    if unmapped:
        notes.append(
            f"{len(unmapped)} practice(s) whose latest CCG/sub-ICB code is not in the "
            f"lookup: {unmapped[:10]}"
        )
    if no_payments:
        notes.append(
            f"{len(no_payments)} practice(s) only in the workforce file (no payments "
            "record, hence no sub-ICB/ICB)"
        )
    movers = _icb_movers(payments, lookup)
    notes.append(
        f"geography: each practice's latest CCG/sub-ICB code in the payments files "
        f"({len(movers)} practice(s) whose yearly codes map to different ICBs, e.g. "
        f"{movers[:3]}, get the ICB of their latest code)"
    )

    wf = workforce.sort_values([S.PRACTICE, S.YEAR])
    prev = wf.groupby(S.PRACTICE)[WORKFORCE_PATIENTS].shift(1)
    prev_year = wf.groupby(S.PRACTICE)[S.YEAR].shift(1)
    wf[TURNOVER] = ((wf[WORKFORCE_PATIENTS] - prev).abs() / prev).where(
        (wf[S.YEAR] - prev_year).eq(1) & (prev > 0)
    )
    panel = panel.merge(wf, on=[S.PRACTICE, S.YEAR], how="left")
    for row in OUTCOMES.values():
        if row.source == "workforce" and row.source_column is not None:
            out = row.column
            panel[out] = panel[row.source_column] / panel[S.WEIGHTED_LIST_SIZE] * 1000.0
            panel.loc[~(panel[S.WEIGHTED_LIST_SIZE] > 0), out] = np.nan
    panel, n_invalid = add_funding_outcomes(panel, options.payment_validity)
    panel[LOCAL_INCENTIVE_DOSE] = _candidate_dose(panel)
    if options.payment_validity is not None:
        fallbacks["payment_validity"] = sorted(
            int(y) for y in panel.loc[panel[PAYMENT_INVALID], S.YEAR].unique()
        )
        notes.append(
            f"payment validity: {n_invalid:,} practice-year(s) with total NHS payments per "
            f"registered patient outside GBP {options.payment_validity[0]:g}-"
            f"{options.payment_validity[1]:g} have their funding outcomes set missing"
        )
    panel = panel.merge(
        qof[[S.PRACTICE, S.YEAR, S.QOF, S.QOF_MAX_POINTS]], on=[S.PRACTICE, S.YEAR], how="left"
    )
    panel = panel.merge(imd, on=S.PRACTICE, how="left")
    panel[S.HEP_TREATED] = (
        panel[S.ICB].eq(S.LLR_ICB).fillna(False) & (panel[S.YEAR] >= S.HEP_START_YEAR)
    ).astype("int64")
    panel[S.HEP_DOSE] = np.nan
    if gpps_paths is not None:
        paths = [gpps_paths] if isinstance(gpps_paths, str | Path) else list(gpps_paths)
        gpps = load_gpps(paths)
        panel = merge_gpps(panel, gpps)
        files["gpps"] = [str(p) for p in paths]
        notes.append(
            f"GPPS: {gpps.attrs.get('suppressed', 0):,} suppressed (-97) cells set missing"
        )
        survey_years = sorted({int(y) for y in gpps[S.YEAR]})
        unused = [y for y in survey_years if y not in years]
        uncovered = [y for y in years if y not in survey_years]
        if unused:
            notes.append(f"GPPS: survey year(s) {unused} are not panel years (not used)")
        if uncovered:
            notes.append(f"GPPS: no survey file for panel year(s) {uncovered} (GPPS missing)")
        matched = panel.loc[panel[S.YEAR].isin(survey_years), S.GPPS_OVERALL].notna()
        notes.append(
            f"GPPS: {int(matched.sum()):,} of {len(matched):,} practice-years of the survey "
            "years have a result"
        )
    else:
        missing_cols = [
            c
            for o in OUTCOMES.values()
            if o.source == "gpps"
            for c in (o.column, o.denominator)
            if c is not None
        ]
        for c in missing_cols:
            panel[c] = np.nan
        notes.append(f"GPPS files not given: {' and '.join(missing_cols)} are missing")
    sources = _column_sources(data_dir, wf_path, workforce.attrs.get("headers", {}))
    return panel, unmapped, notes, files, fallbacks, sources


def _column_sources(data_dir: Path, wf_path: Path, wf_headers: Mapping[str, str]) -> dict[str, str]:
    """Where each checked panel column comes from, for validation messages."""
    out = {
        S.LIST_SIZE: f"the payments files in {data_dir / 'payments'} (per year; column "
        f"{LIST_SOURCE!r} says which), else {wf_path}",
        S.IMD: str(data_dir / IMD_FILE),
        S.IMD2015: str(data_dir / IMD_FILE),
        S.ICB: f"{data_dir / LOOKUP_FILE} via each practice's latest CCG/sub-ICB code",
    }
    out[S.WEIGHTED_LIST_SIZE] = out[S.LIST_SIZE]
    for row in OUTCOMES.values():
        if row.source == "workforce" and row.source_column is not None:
            header = wf_headers.get(row.source_column, row.source_column)
            out[row.column] = f"{wf_path} column {header!r} / weighted list x 1000"
        elif row.source == "qof":
            out[row.column] = f"the QOF files in {data_dir / 'qof'}"
    return out


_COLUMN_ORDER = (
    S.PRACTICE,
    S.YEAR,
    S.PCN,
    S.SUB_ICB,
    S.ICB,
    S.ICB_NAME,
    S.LIST_SIZE,
    S.WEIGHTED_LIST_SIZE,
    LIST_SOURCE,
    S.IMD,
    S.IMD2015,
    S.DEPRIVATION_RANK,
    S.NEED_SCORE,
    S.NEED_RANK,
    # each outcome of the outcome table, followed by its denominator (proportions)
    *(c for o in OUTCOMES.values() for c in (o.column, o.denominator) if c is not None),
    S.HEP_TREATED,
    S.HEP_DOSE,
    LOCAL_INCENTIVE_DOSE,
    TURNOVER,
)


def build_nhs_panel(
    data_dir: str | Path,
    rules: InclusionRules | None = None,
    years: Iterable[int] = range(2018, 2024 + 1),
    *,
    gpps_paths: str | Path | Sequence[str | Path] | None = None,
    options: NHSLoadOptions | None = None,
) -> PanelBuild:
    """Build the validated practice x fiscal-year panel from the files in ``data_dir``.

    See the module docstring for every construction choice.

    Parameters
    ----------
    data_dir : str or Path
        The NHS data folder (``payments/``, ``qof/``, ``imd/``, ``workforce/``, ``lookups/``).
    rules : InclusionRules, optional
        Inclusion rules; default :class:`InclusionRules` with the window set to ``years``.
    years : iterable of int
        Panel fiscal years (ends).
    gpps_paths : path or sequence of paths, optional
        GP Patient Survey practice files to merge.
    options : NHSLoadOptions, optional
        Fallbacks for missing files and the practice-count check (default: strict).

    Returns
    -------
    PanelBuild
        The validated panel, its inclusion report (with a ``fallback:`` row per fallback used),
        the unmapped practices, the files read and the fallbacks used (name -> years).
        ``panel.attrs`` holds ``nhs_data_dir`` and ``payment_validity`` (read by the PCN
        funding regression, which sums every practice of the payments files).

    Raises
    ------
    FileNotFoundError
        A folder or file is missing, or a panel year's payments / QOF file (naming the year and
        the expected file) unless ``options`` allows the fallback.
    DataFileError
        A file is empty, header-only, has short or long rows, or too few practices.
    PanelValidationError
        The built panel fails :func:`~hepcausal.data.validate.validate_panel` (the message names
        the file and column each value comes from, and the practice-years).
    """
    data_dir = check_nhs_layout(data_dir)
    years = sorted({int(y) for y in years})
    if not years:
        raise ValueError("build_nhs_panel(years=...): no years given")
    options = NHSLoadOptions() if options is None else options
    raw, unmapped, notes, files, fallbacks, sources = _raw_panel(
        data_dir, years, gpps_paths, options
    )
    if rules is None:
        rules = InclusionRules(window=(years[0], years[-1]))
    panel, report = apply_inclusion(raw, rules, notes=notes)
    if "list_size_from_workforce" in fallbacks:
        fb = fallbacks["list_size_from_workforce"]
        report.add_fallback(
            "list_size_from_workforce",
            f"years {fb}: payments file missing; registered list = workforce TOTAL_PATIENTS, "
            "weighted list = that x the nearest payments year's weighted/registered ratio "
            "(allowed by data.allow_list_size_fallback)",
            panel[panel[S.YEAR].isin(fb)],
        )
    if "payment_validity" in fallbacks and options.payment_validity is not None:
        report.add_fallback(
            "payment_validity",
            payment_validity_description(raw, report.dropped, options.payment_validity),
            panel[panel[PAYMENT_INVALID]],
        )
    if "qof_missing" in fallbacks:
        fb = fallbacks["qof_missing"]
        report.add_fallback(
            "qof_missing",
            f"years {fb}: QOF file missing; QOF achievement missing in those years "
            "(allowed by data.allow_missing_qof)",
            panel[panel[S.YEAR].isin(fb)],
        )
    panel = panel.copy()
    panel[S.NEED_SCORE] = need_score(panel)
    panel = add_relative_rank(panel, S.IMD, S.LIST_SIZE, by=[S.ICB, S.YEAR], out=S.DEPRIVATION_RANK)
    panel = add_relative_rank(panel, S.NEED_SCORE, S.LIST_SIZE, by=[S.ICB, S.YEAR], out=S.NEED_RANK)
    panel = panel[[c for c in _COLUMN_ORDER if c in panel]]
    panel = panel.sort_values([S.PRACTICE, S.YEAR]).reset_index(drop=True)
    panel = validate_panel(
        panel,
        source=str(data_dir),
        year_range=(years[0], years[-1]),
        column_sources=sources,
        allow_missing_imd=not rules.require_imd,
    )
    # where the panel came from: estimators that need more than the panel's columns (the PCN
    # funding regression sums every practice's payment lines) read the folder from here
    panel.attrs.update(nhs_data_dir=str(data_dir), payment_validity=options.payment_validity)
    return PanelBuild(
        panel=panel,
        report=report,
        unmapped_practices=tuple(unmapped),
        files=files,
        fallbacks=fallbacks,
    )
