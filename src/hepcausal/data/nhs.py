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
  (2017/18-2022/23).  For panel years without a payments file (2023/24, ``year == 2024``), the
  registered list is the workforce file's mean ``TOTAL_PATIENTS`` and the weighted list is that
  times the practice's weighted/registered ratio in its nearest payments year (column
  ``list_source`` says which).  Workforce ``TOTAL_PATIENTS`` is a different count from the
  payments list, so the ``no_list_jumps`` rule skips the step into such years by default.
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
* **Treatment.** ``hep_treated`` = ICB is QK1 and year >= 2022; ``hep_dose`` is missing (the
  per-practice payment is not in the open data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.gpps import load_gpps, merge_gpps
from hepcausal.data.headers import ColumnNotFoundError
from hepcausal.data.inclusion import LIST_SOURCE, InclusionReport, InclusionRules, apply_inclusion
from hepcausal.data.nhs_files import (
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
    "ColumnNotFoundError",
    "PanelBuild",
    "build_nhs_panel",
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


@dataclass
class PanelBuild:
    """Result of :func:`build_nhs_panel`: the validated panel and its inclusion report."""

    panel: pd.DataFrame
    report: InclusionReport
    unmapped_practices: tuple[str, ...] = ()
    files: dict[str, list[str]] = field(default_factory=dict)


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


def _raw_panel(
    data_dir: Path, years: Sequence[int], gpps_paths: str | Path | Sequence[str | Path] | None
) -> tuple[pd.DataFrame, list[str], list[str], dict[str, list[str]]]:
    pay_files = payments_files(data_dir)
    if not pay_files:
        raise FileNotFoundError(f"{data_dir / 'payments'}: no nhspaymentsgp-*.csv files")
    q_files = qof_files(data_dir)
    files = {
        "payments": [str(f) for f in pay_files],
        "qof": [str(f) for f in q_files],
        "imd": [str(data_dir / IMD_FILE)],
        "workforce": [str(data_dir / WORKFORCE_FILE)],
        "lookup": [str(data_dir / LOOKUP_FILE)],
    }
    payments = pd.concat([load_payments(f) for f in pay_files], ignore_index=True)
    lookup = load_ccg_icb(_require(data_dir / LOOKUP_FILE, "CCG/sub-ICB -> ICB lookup"))
    workforce = load_workforce(_require(data_dir / WORKFORCE_FILE, "workforce"))
    imd = imd_wide(load_imd(_require(data_dir / IMD_FILE, "Fingertips 93553 deprivation")))
    qof = (
        pd.concat([load_qof(f) for f in q_files], ignore_index=True)
        if q_files
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

    # Registered / weighted list: payments where available, else workforce x carried ratio.
    base = payments[payments[S.YEAR].isin(years)][
        [S.PRACTICE, S.YEAR, S.PCN, S.LIST_SIZE, S.WEIGHTED_LIST_SIZE]
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
    return panel, unmapped, notes, files


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
    TURNOVER,
)


def build_nhs_panel(
    data_dir: str | Path,
    rules: InclusionRules | None = None,
    years: Iterable[int] = range(2018, 2024 + 1),
    *,
    gpps_paths: str | Path | Sequence[str | Path] | None = None,
) -> PanelBuild:
    """Build the validated practice x fiscal-year panel from the files in ``data_dir``.

    ``rules`` default to :class:`InclusionRules` with the window set to ``years``.  See the
    module docstring for every construction choice.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: NHS data directory not found")
    years = sorted({int(y) for y in years})
    if not years:
        raise ValueError("build_nhs_panel(years=...): no years given")
    raw, unmapped, notes, files = _raw_panel(data_dir, years, gpps_paths)
    if rules is None:
        rules = InclusionRules(window=(years[0], years[-1]))
    panel, report = apply_inclusion(raw, rules, notes=notes)
    panel = panel.copy()
    panel[S.NEED_SCORE] = need_score(panel)
    panel = add_relative_rank(panel, S.IMD, S.LIST_SIZE, by=[S.ICB, S.YEAR], out=S.DEPRIVATION_RANK)
    panel = add_relative_rank(panel, S.NEED_SCORE, S.LIST_SIZE, by=[S.ICB, S.YEAR], out=S.NEED_RANK)
    panel = panel[[c for c in _COLUMN_ORDER if c in panel]]
    panel = panel.sort_values([S.PRACTICE, S.YEAR]).reset_index(drop=True)
    panel = validate_panel(panel, source=str(data_dir), year_range=(years[0], years[-1]))
    return PanelBuild(panel=panel, report=report, unmapped_practices=tuple(unmapped), files=files)
