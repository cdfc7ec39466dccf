"""Named, configurable, counted inclusion rules for the practice x year panel.

Rules are applied sequentially in a fixed order (see :data:`RULE_ORDER`); every dropped
practice-year is recorded with the rule that dropped it, so that the report's counts add up:
``in = dropped + kept`` for practices, practice-years and the LLR subset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import pandas as pd

from hepcausal import schema as S

__all__ = ["RULE_ORDER", "InclusionReport", "InclusionRules", "InclusionStep", "apply_inclusion"]

LIST_SOURCE: Final = "list_source"  # optional panel column: where each year's list size comes from

MissingPolicy = Literal["drop_practice", "drop_year", "keep"]

RULE_ORDER: Final = (
    "study_window",
    "icb_known",
    "open_whole_window",
    "invalid_list_size",
    "min_list_size",
    "no_list_jumps",
    "imd_available",
    "missing_outcome",
    "icb_subset",
    "valid_list_size",
)


@dataclass(frozen=True)
class InclusionRules:
    """Inclusion rules; defaults reproduce the published evaluation's practice selection.

    Each attribute is a named rule; set it to ``None``/``False``/``"keep"`` to switch it off.
    Years are fiscal-year ends (2022 = FY 2021/22).

    Attributes
    ----------
    window : tuple of int or None, default (first, last) of schema.STUDY_YEARS
        First and last fiscal-year end of the study (inclusive); rows outside are dropped
        (rule ``study_window``).
    require_all_years : bool, default True
        Practice present in every year of ``window`` (``open_whole_window``).
    min_list_size : float or None, default 500.0
        Minimum registered list size in *every* window year (``min_list_size``).  A registered
        list that is missing, zero or negative is not counted here but by the rule
        ``invalid_list_size`` just before it, which drops the whole practice when
        ``min_list_size`` is set (the practice cannot meet it in every year) and only the
        practice-year otherwise.
    max_jump_fraction : float or None, default 0.10
        A practice is dropped if any year-on-year step of its registered list (from the second
        window year on) changes by more than ``max_jump_fraction`` of the previous year's list
        AND by at least ``max_jump_patients`` patients (``no_list_jumps``; mergers and splits).
        None switches the rule off.
    max_jump_patients : float, default 100.0
        Minimum absolute change (patients) of a step counted as a jump.
    jump_skip_first_step : bool, default True
        Do not check the step from the first to the second window year (the published rule
        checks jumps "after the first year"; with the default window the 2017/18 -> 2018/19
        step is not checked).
    jump_skip_years : tuple of int, default ()
        Further years whose incoming step is not checked.
    jump_skip_source_change : bool, default True
        Do not check steps between years whose lists come from different sources (panel
        column ``list_source``, e.g. payments -> workforce).
    require_imd : bool, default True
        Practice has an IMD 2019 score (``imd_available``).
    outcomes : tuple of str, default (schema.GP_FTE,)
        Outcome columns of the ``missing_outcome`` rule.
    missing_outcome : {"drop_year", "drop_practice", "keep"}, default "drop_year"
        Practice-years with any of ``outcomes`` missing are dropped (``"drop_year"``), or
        their whole practice (``"drop_practice"``), or kept (``"keep"``) (``missing_outcome``).
    icbs : tuple of str or None, default None
        Keep only these ICB codes (``icb_subset``; None keeps all).

    Three rules always apply: ``icb_known`` (practice has an ICB code), ``invalid_list_size``
    (registered list missing, zero or negative) and ``valid_list_size`` (registered and weighted
    list present and positive; required by :func:`validate_panel`).
    """

    window: tuple[int, int] | None = (S.STUDY_YEARS[0], S.STUDY_YEARS[-1])
    require_all_years: bool = True
    min_list_size: float | None = 500.0
    max_jump_fraction: float | None = 0.10
    max_jump_patients: float = 100.0
    jump_skip_first_step: bool = True
    jump_skip_years: tuple[int, ...] = ()
    jump_skip_source_change: bool = True
    require_imd: bool = True
    outcomes: tuple[str, ...] = (S.GP_FTE,)
    missing_outcome: MissingPolicy = "drop_year"
    icbs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.window is not None:
            lo, hi = self.window
            if int(lo) != lo or int(hi) != hi or lo > hi:
                raise ValueError(
                    f"InclusionRules.window must be (first, last) years with "
                    f"first <= last, got {self.window!r}"
                )
        if self.min_list_size is not None and self.min_list_size < 0:
            raise ValueError(
                f"InclusionRules.min_list_size must be >= 0, got {self.min_list_size!r}"
            )
        if self.max_jump_fraction is not None and self.max_jump_fraction < 0:
            raise ValueError(
                f"InclusionRules.max_jump_fraction must be >= 0, got {self.max_jump_fraction!r}"
            )
        if self.max_jump_patients < 0:
            raise ValueError(
                f"InclusionRules.max_jump_patients must be >= 0, got {self.max_jump_patients!r}"
            )
        if self.missing_outcome not in ("drop_practice", "drop_year", "keep"):
            raise ValueError(
                "InclusionRules.missing_outcome must be 'drop_practice', "
                f"'drop_year' or 'keep', got {self.missing_outcome!r}"
            )
        if isinstance(self.outcomes, str):
            raise TypeError("InclusionRules.outcomes must be a tuple of column names, not a str")


@dataclass(frozen=True)
class InclusionStep:
    """Counts dropped by one rule (applied after all earlier rules).

    Attributes
    ----------
    rule : str
        Rule name (see :data:`RULE_ORDER`), or a fallback's name.
    description : str
        The rule with its settings, in words.
    practices_dropped, practice_years_dropped : int
        Practices and practice-years dropped by this rule (for a fallback: the kept ones that
        use it).
    llr_practices_dropped, llr_practice_years_dropped : int
        The same counts for the LLR subset.
    """

    rule: str
    description: str
    practices_dropped: int
    practice_years_dropped: int
    llr_practices_dropped: int
    llr_practice_years_dropped: int


@dataclass
class InclusionReport:
    """Sequential inclusion table plus totals; ``dropped`` lists every dropped practice-year.

    Counts add up: ``in = dropped + kept`` for practices, practice-years and the LLR subset.

    Attributes
    ----------
    steps : list of InclusionStep
        One step per rule, in the order applied.
    practices_in, practice_years_in : int
        Practices and practice-years before the rules.
    llr_practices_in, llr_practice_years_in : int
        The same for the LLR subset.
    practices_kept, practice_years_kept : int
        Practices and practice-years after all rules.
    llr_practices_kept, llr_practice_years_kept : int
        The same for the LLR subset.
    dropped : pandas.DataFrame
        Every dropped practice-year: ``practice_code``, ``year`` and the ``rule`` that dropped
        it.
    notes : list of str, default []
        Notes on the construction of the panel, printed with the report.
    fallbacks : list of InclusionStep, default []
        Data fallbacks opted into (:meth:`add_fallback`), counting the kept rows using them.
    """

    steps: list[InclusionStep]
    practices_in: int
    practice_years_in: int
    llr_practices_in: int
    llr_practice_years_in: int
    practices_kept: int
    practice_years_kept: int
    llr_practices_kept: int
    llr_practice_years_kept: int
    dropped: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    fallbacks: list[InclusionStep] = field(default_factory=list)

    def add_fallback(self, rule: str, description: str, rows: pd.DataFrame) -> None:
        """Record a data fallback that was opted into (e.g. a list size from another file).

        Parameters
        ----------
        rule : str
            Name of the fallback (shown as ``fallback: <rule>`` in :meth:`table`).
        description : str
            What was substituted, for which years, and which option allowed it.
        rows : DataFrame
            The kept panel rows that use the fallback (counted, not dropped).
        """
        p, py, lp, lpy = _count(rows)
        self.fallbacks.append(InclusionStep(rule, description, p, py, lp, lpy))

    @property
    def practices_dropped(self) -> int:
        return sum(s.practices_dropped for s in self.steps)

    @property
    def practice_years_dropped(self) -> int:
        return sum(s.practice_years_dropped for s in self.steps)

    @property
    def llr_practices_dropped(self) -> int:
        return sum(s.llr_practices_dropped for s in self.steps)

    @property
    def llr_practice_years_dropped(self) -> int:
        return sum(s.llr_practice_years_dropped for s in self.steps)

    def table(self) -> pd.DataFrame:
        """One row per rule plus 'in', 'dropped (total)' and 'kept' rows.

        Fallbacks that were opted into (:meth:`add_fallback`) follow as rows named
        ``fallback: <name>``, counting the *kept* practices and practice-years that use them.
        """
        cols = ["practices", "practice_years", "llr_practices", "llr_practice_years"]
        rows = [
            (
                "in (before rules)",
                "",
                self.practices_in,
                self.practice_years_in,
                self.llr_practices_in,
                self.llr_practice_years_in,
            )
        ]
        rows += [
            (
                s.rule,
                s.description,
                s.practices_dropped,
                s.practice_years_dropped,
                s.llr_practices_dropped,
                s.llr_practice_years_dropped,
            )
            for s in self.steps
        ]
        rows.append(
            (
                "dropped (total)",
                "",
                self.practices_dropped,
                self.practice_years_dropped,
                self.llr_practices_dropped,
                self.llr_practice_years_dropped,
            )
        )
        rows.append(
            (
                "kept",
                "",
                self.practices_kept,
                self.practice_years_kept,
                self.llr_practices_kept,
                self.llr_practice_years_kept,
            )
        )
        rows += [
            (
                f"fallback: {f.rule}",
                f.description,
                f.practices_dropped,
                f.practice_years_dropped,
                f.llr_practices_dropped,
                f.llr_practice_years_dropped,
            )
            for f in self.fallbacks
        ]
        return pd.DataFrame(rows, columns=["rule", "description", *cols])

    def __str__(self) -> str:
        tab = self.table()
        w = max(20, *(len(str(r)) for r in tab["rule"]))
        header = (
            f"{'rule':<{w}} {'practices':>10} {'prac-years':>11} {'LLR prac':>9} {'LLR p-y':>8}"
        )
        lines = [
            "Inclusion (rules applied in order; counts are those dropped by each rule)",
            header,
            "-" * len(header),
        ]
        first_fallback = len(tab) - len(self.fallbacks)
        for i, r in tab.iterrows():
            if r["rule"] == "dropped (total)" or i == 1:
                lines.append("-" * len(header))
            if self.fallbacks and i == first_fallback:
                lines.append("-" * len(header) + " fallbacks used by kept rows:")
            lines.append(
                f"{r['rule']:<{w}} {r['practices']:>10,} {r['practice_years']:>11,} "
                f"{r['llr_practices']:>9,} {r['llr_practice_years']:>8,}"
            )
        lines.append("")
        lines += [f"{s.rule}: {s.description}" for s in self.steps]
        lines += [f"FALLBACK {f.rule}: {f.description}" for f in self.fallbacks]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _is_llr(panel: pd.DataFrame) -> pd.Series:
    if S.ICB in panel:
        return panel[S.ICB].eq(S.LLR_ICB).fillna(False).astype(bool)
    if S.SUB_ICB in panel:
        return panel[S.SUB_ICB].isin(S.LLR_SUB_ICBS).fillna(False).astype(bool)
    return pd.Series(False, index=panel.index)


def _practices_failing(panel: pd.DataFrame, row_fails: pd.Series) -> pd.Series:
    """Row mask: rows of every practice with at least one failing row."""
    bad = set(panel.loc[row_fails.fillna(True).astype(bool), S.PRACTICE])
    return panel[S.PRACTICE].isin(bad)


def _jumps(panel: pd.DataFrame, rules: InclusionRules) -> pd.Series:
    """Row mask of practices with an abrupt year-on-year registered list change."""
    assert rules.max_jump_fraction is not None
    ordered = panel.sort_values([S.PRACTICE, S.YEAR])
    prev = ordered.groupby(S.PRACTICE, sort=False)[S.LIST_SIZE].shift(1)
    prev_year = ordered.groupby(S.PRACTICE, sort=False)[S.YEAR].shift(1)
    change = (ordered[S.LIST_SIZE] - prev).abs()
    consecutive = (ordered[S.YEAR] - prev_year).eq(1)
    skip = set(rules.jump_skip_years)
    if rules.jump_skip_first_step and len(ordered):
        first = rules.window[0] if rules.window is not None else int(ordered[S.YEAR].min())
        skip.add(first + 1)
    checked = consecutive & ~ordered[S.YEAR].isin(sorted(skip))
    if rules.jump_skip_source_change and LIST_SOURCE in ordered:
        prev_source = ordered.groupby(S.PRACTICE, sort=False)[LIST_SOURCE].shift(1)
        checked &= ordered[LIST_SOURCE].eq(prev_source).fillna(False).astype(bool)
    jump = checked & (change > rules.max_jump_fraction * prev) & (change >= rules.max_jump_patients)
    return _practices_failing(panel, jump.reindex(panel.index).fillna(False))


def _rule_masks(
    rules: InclusionRules,
) -> list[tuple[str, str, Callable[[pd.DataFrame], pd.Series] | None]]:
    """(rule, description, function returning a row mask of rows to DROP) in RULE_ORDER."""
    window = rules.window

    def study_window(p: pd.DataFrame) -> pd.Series:
        assert window is not None
        return ~p[S.YEAR].between(window[0], window[1])

    def icb_known(p: pd.DataFrame) -> pd.Series:
        return _practices_failing(p, p[S.ICB].isna()) if S.ICB in p else p[S.PRACTICE].isna()

    def open_whole_window(p: pd.DataFrame) -> pd.Series:
        years = range(window[0], window[1] + 1) if window else sorted(p[S.YEAR].unique())
        n_years = p[p[S.YEAR].isin(years)].groupby(S.PRACTICE)[S.YEAR].nunique()
        complete = set(n_years.index[n_years == len(years)])
        return ~p[S.PRACTICE].isin(complete)

    def invalid_list(p: pd.DataFrame) -> pd.Series:
        bad = ~(p[S.LIST_SIZE] > 0)
        return _practices_failing(p, bad) if rules.min_list_size is not None else bad

    def min_list(p: pd.DataFrame) -> pd.Series:
        return _practices_failing(p, ~(p[S.LIST_SIZE] >= rules.min_list_size))

    def no_list_jumps(p: pd.DataFrame) -> pd.Series:
        return _jumps(p, rules)

    def imd_available(p: pd.DataFrame) -> pd.Series:
        return _practices_failing(p, p[S.IMD].isna())

    def missing_outcome(p: pd.DataFrame) -> pd.Series:
        absent = [c for c in rules.outcomes if c not in p.columns]
        if absent:
            raise KeyError(f"InclusionRules.outcomes: column(s) {absent} not in the panel")
        missing = p[list(rules.outcomes)].isna().any(axis=1)
        return missing if rules.missing_outcome == "drop_year" else _practices_failing(p, missing)

    def icb_subset(p: pd.DataFrame) -> pd.Series:
        assert rules.icbs is not None
        return ~p[S.ICB].isin(rules.icbs)

    def valid_list(p: pd.DataFrame) -> pd.Series:
        bad = pd.Series(False, index=p.index)
        for col in (S.LIST_SIZE, S.WEIGHTED_LIST_SIZE):
            if col in p:
                bad |= ~(p[col] > 0)
        return bad

    w = f"{window[0]}-{window[1]}" if window else "all panel years"
    jump_txt = "off"
    if rules.max_jump_fraction is not None:
        jump_txt = (
            f"no year-on-year registered list change > {rules.max_jump_fraction:.0%} "
            f"and >= {rules.max_jump_patients:g} patients"
            + (" after the first year" if rules.jump_skip_first_step else "")
            + (
                f" (steps into {list(rules.jump_skip_years)} not checked)"
                if rules.jump_skip_years
                else ""
            )
            + (" (steps between list sources not checked)" if rules.jump_skip_source_change else "")
        )
    return [
        ("study_window", f"fiscal years {w} only", study_window if window else None),
        (
            "icb_known",
            "practice mapped to an ICB (NHS data: its latest CCG/sub-ICB code is in the lookup; "
            "practices only in the workforce file have none)",
            icb_known,
        ),
        (
            "open_whole_window",
            f"practice present in every year {w}",
            open_whole_window if rules.require_all_years else None,
        ),
        (
            "invalid_list_size",
            "registered list missing, zero or negative in a year ("
            + (
                "practice dropped)" if rules.min_list_size is not None else "practice-year dropped)"
            ),
            invalid_list,
        ),
        (
            "min_list_size",
            f">= {rules.min_list_size:g} registered patients in every year"
            if rules.min_list_size is not None
            else "off",
            min_list if rules.min_list_size is not None else None,
        ),
        ("no_list_jumps", jump_txt, no_list_jumps if rules.max_jump_fraction is not None else None),
        (
            "imd_available",
            "practice has an IMD 2019 score",
            imd_available if rules.require_imd else None,
        ),
        (
            "missing_outcome",
            f"{rules.missing_outcome} when any of {list(rules.outcomes)} is missing",
            missing_outcome if rules.outcomes and rules.missing_outcome != "keep" else None,
        ),
        (
            "icb_subset",
            f"ICBs {list(rules.icbs)} only" if rules.icbs is not None else "off",
            icb_subset if rules.icbs is not None else None,
        ),
        ("valid_list_size", "registered and weighted list present and positive", valid_list),
    ]


def _count(panel: pd.DataFrame) -> tuple[int, int, int, int]:
    llr = _is_llr(panel)
    return (
        int(panel[S.PRACTICE].nunique()),
        len(panel),
        int(panel.loc[llr, S.PRACTICE].nunique()),
        int(llr.sum()),
    )


def apply_inclusion(
    panel: pd.DataFrame,
    rules: InclusionRules | None = None,
    *,
    notes: Sequence[str] = (),
) -> tuple[pd.DataFrame, InclusionReport]:
    """Apply ``rules`` in :data:`RULE_ORDER`; return the kept rows and the counted report.

    A rule's "practices dropped" are practices that had rows before the rule and none after it,
    so the per-rule counts add up to the totals.  ``notes`` are appended to the report.

    Parameters
    ----------
    panel : DataFrame
        The panel before inclusion.
    rules : InclusionRules, optional
        The rules (default :class:`InclusionRules`).
    notes : sequence of str
        Notes appended to the report.

    Returns
    -------
    tuple of (DataFrame, InclusionReport)
        The kept rows and the counted report.

    Raises
    ------
    ValueError
        If ``rules.icbs`` names an ICB absent from the panel, or the rules drop every row
        (naming the rule that dropped the last ones).
    KeyError
        If a rule needs a column the panel lacks.
    """
    rules = InclusionRules() if rules is None else rules
    for col in (S.PRACTICE, S.YEAR):
        if col not in panel:
            raise KeyError(f"apply_inclusion: panel has no column {col!r}")
    needed = {
        "invalid_list_size": S.LIST_SIZE,
        "min_list_size": S.LIST_SIZE,
        "no_list_jumps": S.LIST_SIZE,
        "imd_available": S.IMD,
        "icb_subset": S.ICB,
    }
    if rules.icbs is not None and S.ICB in panel:
        absent = sorted(set(rules.icbs) - set(panel[S.ICB].dropna()))
        if absent:
            raise ValueError(
                f"InclusionRules.icbs: ICB code(s) {absent} not in the panel (it has "
                f"{panel[S.ICB].nunique()} ICBs, e.g. {sorted(panel[S.ICB].dropna().unique())[:5]})"
            )
    current = panel.copy()
    p_in, py_in, lp_in, lpy_in = _count(current)
    steps: list[InclusionStep] = []
    dropped_parts: list[pd.DataFrame] = []
    for rule, description, fn in _rule_masks(rules):
        if fn is None:
            steps.append(InclusionStep(rule, description, 0, 0, 0, 0))
            continue
        if rule in needed and needed[rule] not in current:
            raise KeyError(f"inclusion rule {rule!r} needs column {needed[rule]!r}")
        drop = fn(current).reindex(current.index).fillna(False).astype(bool)
        before = _count(current)
        removed = current.loc[drop, [S.PRACTICE, S.YEAR]].assign(rule=rule)
        dropped_parts.append(removed)
        current = current.loc[~drop]
        after = _count(current)
        steps.append(
            InclusionStep(
                rule,
                description,
                before[0] - after[0],
                before[1] - after[1],
                before[2] - after[2],
                before[3] - after[3],
            )
        )
    p_k, py_k, lp_k, lpy_k = _count(current)
    dropped = (
        pd.concat(dropped_parts, ignore_index=True)
        if dropped_parts
        else pd.DataFrame(columns=[S.PRACTICE, S.YEAR, "rule"])
    )
    if len(panel) and current.empty:
        last = next(s for s in reversed(steps) if s.practice_years_dropped)
        raise ValueError(
            "the inclusion rules dropped every practice-year (the last "
            f"{last.practice_years_dropped:,} by rule {last.rule!r}: {last.description}); "
            "check the window, ICBs and outcomes "
            "of the inclusion rules (config table data.inclusion)"
        )
    report = InclusionReport(
        steps=steps,
        practices_in=p_in,
        practice_years_in=py_in,
        llr_practices_in=lp_in,
        llr_practice_years_in=lpy_in,
        practices_kept=p_k,
        practice_years_kept=py_k,
        llr_practices_kept=lp_k,
        llr_practice_years_kept=lpy_k,
        dropped=dropped,
        notes=list(notes),
    )
    return current.reset_index(drop=True), report
