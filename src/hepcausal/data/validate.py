"""Validation of a practice x fiscal-year panel against :mod:`hepcausal.schema`.

:func:`validate_panel` checks a panel and returns a normalised copy with canonical dtypes; every
problem found is listed in one :class:`PanelValidationError` whose message names the source, the
column and the offending rows (index label, practice code and year).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.outcomes import OUTCOMES, denominator_columns

__all__ = [
    "ENGLAND_ICB_CODES",
    "MIN_PRACTICES_PER_ICB",
    "PanelValidationError",
    "practices_per_icb_warnings",
    "validate_panel",
]

# The 42 integrated care boards of England (ODS codes), as in the CCG/sub-ICB -> ICB lookup.
ENGLAND_ICB_CODES: Final = frozenset(
    {
        "QE1",
        "QF7",
        "QGH",
        "QH8",
        "QHG",
        "QHL",
        "QHM",
        "QJ2",
        "QJG",
        "QJK",
        "QJM",
        "QK1",
        "QKK",
        "QKS",
        "QM7",
        "QMF",
        "QMJ",
        "QMM",
        "QNC",
        "QNQ",
        "QNX",
        "QOC",
        "QOP",
        "QOQ",
        "QOX",
        "QPM",
        "QR1",
        "QRL",
        "QRV",
        "QSL",
        "QT1",
        "QT6",
        "QU9",
        "QUA",
        "QUE",
        "QUY",
        "QVV",
        "QWE",
        "QWO",
        "QWU",
        "QXU",
        "QYG",
    }
)

_STRING_COLUMNS: Final = (S.PRACTICE, S.PCN, S.SUB_ICB, S.ICB, S.ICB_NAME)
_FLOAT_COLUMNS: Final = (
    S.LIST_SIZE,
    S.WEIGHTED_LIST_SIZE,
    S.IMD,
    S.IMD2015,
    S.DEPRIVATION_RANK,
    S.NEED_SCORE,
    S.NEED_RANK,
    S.HEP_DOSE,
    *OUTCOMES,
    *denominator_columns(),
)
# From the outcome table: proportions on [0, 1]; rates, counts and denominators non-negative;
# every outcome within its plausibility bounds.
_UNIT_INTERVAL: Final = (
    *(o.column for o in OUTCOMES.values() if o.is_proportion),
    S.DEPRIVATION_RANK,
    S.NEED_RANK,
)
_NON_NEGATIVE: Final = (
    *(o.column for o in OUTCOMES.values() if not o.is_proportion and o.bounds[0] >= 0),
    S.HEP_DOSE,
    *denominator_columns(),
)
_MAX_LISTED: Final = 5
# IMD practice scores (population-weighted LSOA scores) lie well inside [0, 100].
IMD_BOUNDS: Final = (0.0, 100.0)
# The largest English practice lists about 110,000 patients; weighted / registered list is
# 0.5-1.6 in the real panel.
MAX_LIST_SIZE: Final = 500_000.0
WEIGHT_RATIO_BOUNDS: Final = (0.1, 10.0)


class PanelValidationError(ValueError):
    """A panel violates the schema; ``problems`` lists one message per failed check.

    Parameters
    ----------
    source : str
        What was validated (e.g. ``"panel"`` or a file name); starts the message.
    problems : list of str
        One message per failed check (stored as ``self.problems``).
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} validation problem(s):\n{lines}")


def _where_rows(df: pd.DataFrame, mask: pd.Series, row_word: str = "row") -> str:
    """Describe the first offending rows as 'row <label> (practice X, year Y)'."""
    idx = mask[mask.fillna(False).astype(bool)].index
    parts = []
    for label in idx[:_MAX_LISTED]:
        bits = []
        if S.PRACTICE in df:
            bits.append(f"practice {df.at[label, S.PRACTICE]}")
        if S.YEAR in df:
            year = df.at[label, S.YEAR]
            if isinstance(year, float) and year.is_integer():
                year = int(year)
            bits.append(f"year {year}")
        parts.append(
            f"{row_word} {label!r} ({', '.join(bits)})" if bits else f"{row_word} {label!r}"
        )
    more = f" and {len(idx) - _MAX_LISTED} more" if len(idx) > _MAX_LISTED else ""
    return f"{len(idx)} row(s): " + "; ".join(parts) + more


def validate_panel(
    df: pd.DataFrame,
    *,
    source: str = "panel",
    known_icbs: Collection[str] | None = ENGLAND_ICB_CODES,
    year_range: tuple[int, int] = (2000, 2100),
    required: Collection[str] = S.REQUIRED_COLUMNS,
    column_sources: Mapping[str, str] | None = None,
    allow_missing_imd: bool = False,
    row_word: str = "row",
) -> pd.DataFrame:
    """Check ``df`` against the panel schema and return a copy with canonical dtypes.

    Checks: required columns present; ``(practice_code, year)`` unique; list sizes present and
    positive; proportion outcomes and ranks in [0, 1]; rate outcomes, HEP dose and proportion
    denominators non-negative; every outcome of :data:`hepcausal.outcomes.OUTCOMES` within its
    plausibility ``bounds``; ``icb_code`` in ``known_icbs``; ``year`` an integer within
    ``year_range``; ``hep_treated`` 0/1; deprivation scores within :data:`IMD_BOUNDS`; list
    sizes at most :data:`MAX_LIST_SIZE` and weighted / registered list within
    :data:`WEIGHT_RATIO_BOUNDS`;
    one ICB per practice; at least one row; ``imd_score`` present in every row (unless
    ``allow_missing_imd``).  Every data source goes through this function: the built NHS panel,
    panel files (``data.source = "file"``) and synthetic panels.  Canonical dtypes: identifiers
    ``str``, ``year`` int64, measures float64, ``hep_treated`` int64.

    Parameters
    ----------
    df : DataFrame
        The panel (one row per practice and fiscal year).
    source : str
        Name of the panel's origin, used in the error message.
    known_icbs : collection of str or None
        Valid ICB codes (the 42 English ICBs by default); None skips the check.
    year_range : tuple of int
        Inclusive ``(first, last)`` fiscal years allowed.
    required : collection of str
        Columns that must be present.
    column_sources : mapping of str to str, optional
        Where a column's values come from (e.g. ``"workforce/x.csv column 'TOTAL_GP_EXTGL_FTE'
        / weighted list x 1000"``); named in the message of every problem with that column.
    allow_missing_imd : bool
        Accept rows without an IMD 2019 score (``imd_score``); by default they are a problem,
        since the deprivation rank and every gradient estimand need it.
    row_word : str
        How an index label is named in the messages: ``"row"`` (default), or ``"line"`` when
        the index holds the file's line numbers (as for panel files).

    Returns
    -------
    DataFrame
        A validated copy with canonical dtypes.

    Raises
    ------
    PanelValidationError
        Listing every problem found (column and offending rows).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise PanelValidationError(source, [f"missing required column(s): {missing}"])
    if df.empty:
        raise PanelValidationError(source, ["the panel has no rows"])
    problems: list[str] = []
    out = df.copy()
    sources = dict(column_sources or {})

    def _where(frame: pd.DataFrame, mask: pd.Series) -> str:
        return _where_rows(frame, mask, row_word)

    def col_name(col: str) -> str:
        return f"column {col!r} (from {sources[col]})" if col in sources else f"column {col!r}"

    for col in _STRING_COLUMNS:
        if col in out:
            values = out[col]
            out[col] = values.astype("str").str.strip().mask(values.isna())
    for col in (*_FLOAT_COLUMNS, S.YEAR):
        if col in out:
            num = pd.to_numeric(out[col], errors="coerce")
            bad = num.isna() & out[col].notna()
            if bad.any():
                problems.append(f"{col_name(col)}: non-numeric values at {_where(out, bad)}")
            out[col] = num.astype(float)

    if S.PRACTICE in out:
        bad = out[S.PRACTICE].isna() | out[S.PRACTICE].eq("")
        if bad.any():
            problems.append(f"column {S.PRACTICE!r}: missing practice code at {_where(out, bad)}")

    if S.YEAR in out:
        year = out[S.YEAR]
        bad = year.isna() | (year != np.round(year))
        if bad.any():
            problems.append(f"column {S.YEAR!r}: missing or non-integer year at {_where(out, bad)}")
        lo, hi = year_range
        bad = year.notna() & ((year < lo) | (year > hi))
        if bad.any():
            problems.append(
                f"column {S.YEAR!r}: year outside [{lo}, {hi}] (fiscal-year end) at "
                f"{_where(out, bad)}"
            )
        if not year.isna().any():
            out[S.YEAR] = year.astype("int64")

    if S.PRACTICE in out and S.YEAR in out:
        dup = out.duplicated([S.PRACTICE, S.YEAR], keep=False)
        if dup.any():
            problems.append(
                f"columns ({S.PRACTICE!r}, {S.YEAR!r}): duplicated practice-years at "
                f"{_where(out, dup)}"
            )

    for col in (S.LIST_SIZE, S.WEIGHTED_LIST_SIZE):
        if col in out:
            bad = out[col].isna() | (out[col] <= 0)
            if bad.any():
                problems.append(
                    f"{col_name(col)}: missing or non-positive list size at {_where(out, bad)}"
                )

    for col in (S.LIST_SIZE, S.WEIGHTED_LIST_SIZE):
        if col in out:
            bad = out[col] > MAX_LIST_SIZE
            if bad.any():
                problems.append(
                    f"{col_name(col)}: list size above {MAX_LIST_SIZE:,.0f} patients (implausible "
                    f"for one practice) at {_where(out, bad)}"
                )
    if S.LIST_SIZE in out and S.WEIGHTED_LIST_SIZE in out:
        ratio = out[S.WEIGHTED_LIST_SIZE] / out[S.LIST_SIZE]
        low, high = WEIGHT_RATIO_BOUNDS
        bad = (out[S.LIST_SIZE] > 0) & (out[S.WEIGHTED_LIST_SIZE] > 0) & ~ratio.between(low, high)
        if bad.any():
            problems.append(
                f"{col_name(S.WEIGHTED_LIST_SIZE)}: weighted / registered list outside "
                f"[{low:g}, {high:g}] at {_where(out, bad)}"
            )

    for col in _UNIT_INTERVAL:
        if col in out:
            bad = out[col].notna() & ((out[col] < 0) | (out[col] > 1))
            if bad.any():
                problems.append(f"{col_name(col)}: proportion outside [0, 1] at {_where(out, bad)}")

    for col in _NON_NEGATIVE:
        if col in out:
            bad = out[col].notna() & (out[col] < 0)
            if bad.any():
                problems.append(f"{col_name(col)}: negative value at {_where(out, bad)}")

    for row in OUTCOMES.values():
        col = row.column
        if col in out:
            low, high = row.bounds
            domain = (0.0, 1.0) if row.is_proportion else (0.0 if low >= 0 else -np.inf, np.inf)
            inside = (out[col] >= domain[0]) & (out[col] <= domain[1])
            bad = out[col].notna() & inside & ((out[col] < low) | (out[col] > high))
            if bad.any():
                problems.append(
                    f"{col_name(col)}: value outside the plausible range [{low:g}, {high:g}] "
                    f"{row.units} at {_where(out, bad)}"
                )

    for col in (S.IMD, S.IMD2015):
        if col in out:
            bad = out[col].notna() & ((out[col] < IMD_BOUNDS[0]) | (out[col] > IMD_BOUNDS[1]))
            if bad.any():
                problems.append(
                    f"{col_name(col)}: deprivation score outside [{IMD_BOUNDS[0]:g}, "
                    f"{IMD_BOUNDS[1]:g}] at {_where(out, bad)}"
                )

    if S.IMD in out and not allow_missing_imd:
        bad = out[S.IMD].isna()
        if bad.any():
            problems.append(
                f"{col_name(S.IMD)}: missing deprivation (IMD 2019) score at {_where(out, bad)}"
            )

    if known_icbs is not None and S.ICB in out:
        known = set(known_icbs)
        bad = ~out[S.ICB].isin(known)
        if bad.any():
            codes = sorted(set(out.loc[bad, S.ICB].fillna("<missing>")))[:_MAX_LISTED]
            problems.append(f"{col_name(S.ICB)}: unknown ICB code(s) {codes} at {_where(out, bad)}")

    if S.PRACTICE in out and S.ICB in out:
        n_icbs = out.groupby(S.PRACTICE)[S.ICB].nunique()
        movers = n_icbs.index[n_icbs > 1]
        if len(movers):
            bad = out[S.PRACTICE].isin(movers)
            problems.append(
                f"{col_name(S.ICB)}: practice(s) {list(movers[:_MAX_LISTED])} in more than one "
                f"ICB (a practice keeps one ICB in every year) at {_where(out, bad)}"
            )

    if S.HEP_TREATED in out:
        treated = pd.to_numeric(out[S.HEP_TREATED], errors="coerce")
        bad = ~treated.isin([0, 1])
        if bad.any():
            problems.append(
                f"column {S.HEP_TREATED!r}: values other than 0/1 at {_where(out, bad)}"
            )
        else:
            out[S.HEP_TREATED] = treated.astype("int64")

    if problems:
        raise PanelValidationError(source, problems)
    return out


# A treated ICB with fewer practices than this (in any year) gets a warning.
MIN_PRACTICES_PER_ICB: Final = 10


def practices_per_icb_warnings(
    panel: pd.DataFrame,
    icbs: Collection[str] | None = None,
    *,
    min_practices: int = MIN_PRACTICES_PER_ICB,
) -> list[str]:
    """Warnings for ICBs with very few practices (an effect there rests on a handful of units).

    Parameters
    ----------
    panel : DataFrame
        The analysis panel (after inclusion), with ``icb_code``, ``practice_code``, ``year``.
    icbs : collection of str, optional
        The ICBs to check (e.g. the treated ones); default: every ICB with a treated row
        (``hep_treated == 1``), or none if the panel has no ``hep_treated`` column.
    min_practices : int
        Fewest practices an ICB should have in every year (default
        :data:`MIN_PRACTICES_PER_ICB`).

    Returns
    -------
    list of str
        One message per ICB with no practices, or with fewer than ``min_practices`` practices
        in some year (naming the ICB, the year(s) and the counts); empty when all is well.
    """
    if icbs is None:
        if S.HEP_TREATED not in panel:
            return []
        treated = pd.to_numeric(panel[S.HEP_TREATED], errors="coerce").eq(1)
        icbs = sorted(set(panel.loc[treated, S.ICB].dropna()))
    warnings: list[str] = []
    for icb in sorted(set(icbs)):
        rows = panel[panel[S.ICB] == icb]
        if rows.empty:
            warnings.append(f"ICB {icb}: no practices in the panel")
            continue
        per_year = rows.groupby(S.YEAR)[S.PRACTICE].nunique()
        few = per_year[per_year < min_practices]
        if len(few):
            counts = ", ".join(f"{int(y)}: {int(n)}" for y, n in few.items())
            warnings.append(
                f"ICB {icb}: only {int(few.min())} practice(s) in some year(s) (fewer than "
                f"{min_practices}; practices per year {counts}): its estimates rest on very "
                "few practices"
            )
    return warnings
