"""Primary care networks (PCNs): practices aggregated to PCN x fiscal year.

PCNs exist from 2019/20 (``year == 2020``).  The payments files give each practice's PCN code,
its payment lines and its registered and weighted list; the PCN payment lines (PCN leadership,
support, extended hours, ARRS workforce, IIF, care home premium, enhanced access, from 2020/21)
are paid to the practice that receives them for its PCN, so practice-level PCN funding is lumpy
and only the PCN sum is meaningful.

:func:`pcn_practices` builds the practice-year frame (payment lines, ICB, IMD 2019) from the NHS
data folder; :func:`aggregate_pcns` sums it to PCNs:

* ``list_size``, ``weighted_list_size``: sums over the PCN's practices;
* ``pay_total``: sum of 'Total NHS Payments to General Practice';
* ``pay_pcn``: sum of the PCN lines (:data:`~hepcausal.data.nhs_files.PAYMENT_GROUPS` ``"pcn"``:
  PCN participation plus the PCN lines above);
* ``pay_total_incl_pcn``: ``pay_total`` plus the PCN lines outside it (equals the files' own
  'Total NHS Payments including PCN Workforce, Leadership and Support', 2020/21 on);
* per weighted patient: ``pcn_funding_per_wpt`` (= ``pay_pcn`` / weighted list) and
  ``total_funding_per_wpt`` (= ``pay_total_incl_pcn`` / weighted list), GBP per year;
* ``imd_score``: registered-list-weighted mean of the practices' IMD 2019 scores (practices
  without a score are left out of the mean; ``imd_coverage`` = the share of the PCN's list with
  a score);
* ``icb_code``: the ICB holding most of the PCN's registered list;
* ``pcn_lines_recorded``: True when the PCN lines beyond participation (2020/21 on) sum to more
  than zero over the PCN's practices.  About a quarter of PCNs have none recorded against a
  member practice from 2020/21 (their PCN payments presumably go to a non-practice body, e.g. a
  federation, which the practice-level files do not list): their ``pcn_funding_per_wpt`` is
  participation only, an undercount; restrict to ``pcn_lines_recorded`` as a sensitivity.

Only the overall IMD 2019 score is available here, not the IMD income domain the published PCN
studies used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.nhs_files import (
    PAYMENT_GROUPS,
    PAYMENT_LINE_PATTERNS,
    PCN_LINES_OUTSIDE_TOTAL,
    imd_wide,
    load_ccg_icb,
    load_imd,
    load_payments,
    payments_files,
)

__all__ = [
    "PCN_FUNDING",
    "PCN_YEARS",
    "TOTAL_FUNDING",
    "aggregate_pcns",
    "pcn_practices",
]

PCN_YEARS = (2020, 2021, 2022, 2023)
"""Fiscal years (ends) with PCNs in the payments files (2019/20-2022/23)."""
PCN_FUNDING = "pcn_funding_per_wpt"
TOTAL_FUNDING = "total_funding_per_wpt"


def pcn_practices(
    data_dir: str | Path,
    *,
    years: tuple[int, ...] = PCN_YEARS,
    payment_validity: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Practice x fiscal-year payment lines with PCN, ICB and IMD 2019, from the NHS folder.

    Parameters
    ----------
    data_dir : str or Path
        The NHS data folder (``payments/``, ``imd/``, ``lookups/``).
    years : tuple of int
        Fiscal years (ends) to keep (default 2019/20-2022/23).
    payment_validity : tuple of float, optional
        ``(low, high)`` GBP per registered patient: practice-years whose total NHS payments per
        registered patient lie outside are dropped (counted in ``attrs["n_invalid"]`` and per
        fiscal year in ``attrs["n_invalid_by_year"]``).

    Returns
    -------
    DataFrame
        One row per practice-year: ``practice_code``, ``year``, ``pcn_code``, ``sub_icb_code``,
        ``icb_code``, list sizes, the ``pay_*`` lines and ``imd_score``; ``attrs`` counts the
        practice-years without a PCN (``n_no_pcn``; per year ``n_no_pcn_by_year``) and outside
        the validity rule (``n_invalid``; per year ``n_invalid_by_year``).
    """
    from hepcausal.data.nhs import IMD_FILE, LOOKUP_FILE

    data_dir = Path(data_dir)
    frames = [load_payments(f) for f in payments_files(data_dir)]
    pay = pd.concat(frames, ignore_index=True)
    pay = pay[pay[S.YEAR].isin(years)].copy()
    lookup = load_ccg_icb(data_dir / LOOKUP_FILE).rename(columns={"code": S.SUB_ICB})
    pay = pay.merge(lookup, on=S.SUB_ICB, how="left")
    imd = imd_wide(load_imd(data_dir / IMD_FILE))[[S.PRACTICE, S.IMD]]
    pay = pay.merge(imd, on=S.PRACTICE, how="left")
    invalid_by_year = {int(y): 0 for y in sorted(pay[S.YEAR].unique())}
    if payment_validity is not None:
        low, high = payment_validity
        per_reg = (pay["pay_total"] / pay[S.LIST_SIZE]).where(pay[S.LIST_SIZE] > 0)
        bad = per_reg.notna() & ((per_reg < low) | (per_reg > high))
        invalid_by_year.update(
            {int(y): int(n) for y, n in pay.loc[bad, S.YEAR].value_counts().items()}
        )
        pay = pay[~bad]
    no_pcn_by_year = {int(y): int(pay.loc[pay[S.YEAR] == y, S.PCN].isna().sum()) for y in years}
    cols = [S.PRACTICE, S.YEAR, S.PCN, S.SUB_ICB, S.ICB, S.LIST_SIZE, S.WEIGHTED_LIST_SIZE]
    out = pay[[*cols, *PAYMENT_LINE_PATTERNS, S.IMD]].reset_index(drop=True)
    out.attrs.update(
        n_no_pcn=sum(no_pcn_by_year.values()),
        n_no_pcn_by_year=no_pcn_by_year,
        n_invalid=sum(invalid_by_year.values()),
        n_invalid_by_year=invalid_by_year if payment_validity is not None else {},
    )
    return out


def aggregate_pcns(practices: pd.DataFrame) -> pd.DataFrame:
    """Sum practices to PCN x fiscal year (see the module docstring for every column).

    Parameters
    ----------
    practices : DataFrame
        Practice-years with ``pcn_code``, ``year``, ``icb_code``, ``list_size``,
        ``weighted_list_size``, ``imd_score``, ``pay_total`` and the PCN ``pay_pcn_*`` lines
        (missing lines count as zero within a PCN-year that has any line).  Practices without a
        PCN code are left out.

    Returns
    -------
    DataFrame
        One row per (``pcn_code``, ``year``): ``icb_code``, ``n_practices``, ``list_size``,
        ``weighted_list_size``, ``pay_total``, ``pay_pcn``, ``pay_total_incl_pcn``,
        ``pcn_funding_per_wpt``, ``total_funding_per_wpt``, ``imd_score``, ``imd_coverage``.

    Raises
    ------
    KeyError
        Naming the missing input columns.
    """
    pcn_lines = [c for c in PAYMENT_GROUPS["pcn"] if c in practices]
    outside = [c for c in PCN_LINES_OUTSIDE_TOTAL if c in practices]
    need = [S.PCN, S.YEAR, S.ICB, S.LIST_SIZE, S.WEIGHTED_LIST_SIZE, S.IMD, "pay_total"]
    missing = [c for c in need if c not in practices]
    if missing:
        raise KeyError(f"aggregate_pcns: input lacks column(s) {missing}")
    p = practices[practices[S.PCN].notna()].copy()
    p["pay_pcn"] = p[pcn_lines].sum(axis=1, min_count=1) if pcn_lines else np.nan
    p["pay_total_incl_pcn"] = p["pay_total"] + (p[outside].fillna(0).sum(axis=1) if outside else 0)
    has_imd = p[S.IMD].notna()
    p["_imd_w"] = (p[S.IMD] * p[S.LIST_SIZE]).where(has_imd, 0.0)
    p["_w"] = p[S.LIST_SIZE].where(has_imd, 0.0)
    keys = [S.PCN, S.YEAR]
    g = p.groupby(keys, sort=True)
    out = g.agg(
        n_practices=(S.PRACTICE, "size") if S.PRACTICE in p else (S.YEAR, "size"),
        list_size=(S.LIST_SIZE, "sum"),
        weighted_list_size=(S.WEIGHTED_LIST_SIZE, "sum"),
        pay_total=("pay_total", "sum"),
        pay_pcn=("pay_pcn", lambda s: s.sum(min_count=1)),
        pay_total_incl_pcn=("pay_total_incl_pcn", "sum"),
        _imd_w=("_imd_w", "sum"),
        _w=("_w", "sum"),
    )
    out[S.IMD] = (out["_imd_w"] / out["_w"]).where(out["_w"] > 0)
    out["imd_coverage"] = out["_w"] / out[S.LIST_SIZE]
    wl = out[S.WEIGHTED_LIST_SIZE].where(out[S.WEIGHTED_LIST_SIZE] > 0)
    out[PCN_FUNDING] = out["pay_pcn"] / wl
    out[TOTAL_FUNDING] = out["pay_total_incl_pcn"] / wl
    icb_list = p.groupby([*keys, S.ICB], dropna=False)[S.LIST_SIZE].sum().reset_index()
    icb_list = icb_list.sort_values(S.LIST_SIZE, ascending=False).drop_duplicates(keys)
    if outside:
        rec = p[outside].fillna(0).sum(axis=1).groupby([p[S.PCN], p[S.YEAR]]).sum()
        out["pcn_lines_recorded"] = rec.reindex(out.index).to_numpy() > 0
    else:
        out["pcn_lines_recorded"] = False
    out = out.drop(columns=["_imd_w", "_w"]).reset_index()
    return out.merge(icb_list[[*keys, S.ICB]], on=keys, how="left")
