"""Integrity of the outcome table (hepcausal.outcomes) and of its look-ups."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from hepcausal import schema as S
from hepcausal.outcomes import (
    OUTCOMES,
    Outcome,
    OutcomeKind,
    OutcomeSource,
    SiiValueType,
    UnknownOutcomeError,
    denominator_columns,
    find_outcome,
    get_outcome,
    label_of,
    outcome_columns,
    outcome_names,
    short_of,
    synthetic_specs,
    units_of,
)

FAMILIES = {"gaussian", "lognormal", "binomial", "beta_binomial", "student_t"}
ROWS = list(OUTCOMES.values())


def test_keys_aliases_and_columns_unique() -> None:
    assert all(col == row.column for col, row in OUTCOMES.items())
    aliases = [o.alias for o in ROWS]
    assert len(set(aliases)) == len(aliases)
    # an alias may not shadow another outcome's column (look-ups try columns first)
    assert not set(aliases) & set(OUTCOMES)
    assert len(outcome_names()) == 2 * len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda o: o.alias)
def test_row_is_complete(row: Outcome) -> None:
    assert row.label and row.short and row.units
    assert row.kind in get_args(OutcomeKind)
    assert row.source in get_args(OutcomeSource)
    assert row.sii_value_type in get_args(SiiValueType)
    assert row.sii_transform in ("identity", "log", "logit")
    assert row.family in FAMILIES
    lo, hi = row.bounds
    assert lo < hi
    assert row.rope > 0
    # the column is a plain constant of hepcausal.schema
    assert row.column in vars(S).values()


@pytest.mark.parametrize("row", ROWS, ids=lambda o: o.alias)
def test_kinds_are_consistent(row: Outcome) -> None:
    if row.is_proportion:
        assert row.denominator is not None and row.denominator in vars(S).values()
        assert row.bounds == (0.0, 1.0)
        assert row.sii_value_type == "proportion" and row.sii_transform == "logit"
        assert row.family in ("binomial", "beta_binomial")
    else:
        assert row.denominator is None
        assert row.family not in ("binomial", "beta_binomial")
    if row.source == "workforce":
        assert row.kind == "rate" and row.units == "FTE per 1,000 weighted patients"
        assert row.source_column and row.source_header
        re.compile(row.source_header)


def test_units_spelled_one_way() -> None:
    units = {o.units for o in ROWS}
    assert units <= {
        "FTE per 1,000 weighted patients",
        "proportion",
        "GBP per weighted patient",
        "GBP per registered patient",
    }
    for o in ROWS:
        # the label carries the units in words (rates) or names the proportion
        assert o.units in o.label


def test_lookups() -> None:
    assert get_outcome("gp") is get_outcome(S.GP_FTE) is OUTCOMES[S.GP_FTE]
    assert find_outcome("nope") is None and find_outcome(None) is None
    with pytest.raises(UnknownOutcomeError, match="did you mean 'qof'"):
        get_outcome("qfo")
    assert outcome_columns(kind="proportion") == (S.QOF, S.GPPS_OVERALL)
    assert S.GP_FTE in outcome_columns(source="workforce")
    assert denominator_columns() == (S.QOF_MAX_POINTS, S.GPPS_RESPONSES)
    assert units_of("qof") == "proportion" and units_of("x") == ""
    assert label_of(None) == "outcome" and label_of("my_col") == "my col"
    assert short_of(S.GP_FTE) == "GP FTE"
    assert set(synthetic_specs()) == {o.column for o in ROWS if o.synthetic is not None}


def test_existing_rows_keep_their_order() -> None:
    """Rows are appended, never inserted: the generator draws outcomes in table order."""
    first = [S.GP_FTE, S.NURSE_FTE, S.DPC_FTE, S.ADMIN_FTE, S.QOF, S.GPPS_OVERALL]
    assert list(OUTCOMES)[: len(first)] == first
