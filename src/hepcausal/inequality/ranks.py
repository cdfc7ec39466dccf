"""Population-weighted relative ranks (the x-axis of the slope index of inequality)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# Relative rank of IMD over every practice of the panel in each year (a national scale when the
# panel is national), derived by the panel designs when a config asks for analysis.rank =
# "deprivation_national"; the panel's own deprivation_rank is within ICB x year.
NATIONAL_RANK = "deprivation_rank_national"

__all__ = ["NATIONAL_RANK", "add_relative_rank", "ordered_relative_rank", "relative_rank"]


def relative_rank(score: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Population-weighted relative rank of ``score``; higher score = more deprived.

    Units are ordered from most deprived (highest score) to least deprived.  Each unit's rank is
    the midpoint of its cumulative population share, so ranks lie in (0, 1), the most deprived
    unit is nearest 0 and the population-weighted mean rank is exactly 0.5.  Tied scores share
    the midpoint of their pooled block.

    Parameters
    ----------
    score : numpy.ndarray
        1-d deprivation scores (e.g. IMD; higher = more deprived), all finite.
    weight : numpy.ndarray
        1-d positive, finite populations (e.g. list sizes), same length as ``score``.

    Returns
    -------
    numpy.ndarray
        Relative rank of each unit in (0, 1); 0 = most deprived end, 1 = least deprived end.
        Empty for empty input.

    Raises
    ------
    ValueError
        When the arrays are not 1-d of equal length, a score is missing or non-finite, or a
        weight is not positive and finite.
    """
    score = np.asarray(score, dtype=float)
    weight = np.asarray(weight, dtype=float)
    if score.shape != weight.shape or score.ndim != 1:
        raise ValueError("score and weight must be 1-d arrays of the same length")
    if score.size == 0:
        return np.empty(0)
    if not np.all(np.isfinite(score)):
        raise ValueError("score has missing or non-finite values; drop or impute them first")
    if not np.all(np.isfinite(weight)) or np.any(weight <= 0):
        raise ValueError("weights (populations) must be positive and finite")
    # ascending in -score: most deprived first
    uniq, inverse = np.unique(-score, return_inverse=True)
    block_w = np.bincount(inverse, weights=weight, minlength=uniq.size)
    total = block_w.sum()
    upper = np.cumsum(block_w)
    mid = (upper - block_w / 2.0) / total
    return mid[inverse]


def ordered_relative_rank(weight: np.ndarray) -> np.ndarray:
    """Relative ranks of groups already ordered from most to least deprived (along the last axis).

    The PHE ``FindXValues`` rule: each group's rank is the midpoint of its cumulative population
    share.  Equals :func:`relative_rank` with a strictly decreasing deprivation score; vectorised
    over leading axes (e.g. bootstrap replicates x quantiles).

    Parameters
    ----------
    weight : numpy.ndarray
        Group populations, the last axis ordered most -> least deprived.

    Returns
    -------
    numpy.ndarray
        Relative ranks (0 = most deprived), same shape as ``weight``.
    """
    weight = np.asarray(weight, dtype=float)
    total = weight.sum(axis=-1, keepdims=True)
    return (np.cumsum(weight, axis=-1) - weight / 2.0) / total


def add_relative_rank(
    df: pd.DataFrame,
    score_col: str,
    weight_col: str,
    *,
    by: Sequence[str] = (),
    out: str,
) -> pd.DataFrame:
    """Return a copy of ``df`` with column ``out`` = relative rank of ``score_col`` within ``by``.

    Rows with a missing score get a missing rank (they are not silently given one).

    Parameters
    ----------
    df : pandas.DataFrame
        Input table; not modified.
    score_col : str
        Deprivation score column (higher = more deprived).
    weight_col : str
        Population column (positive, finite where the score is present), e.g. list size.
    by : sequence of str, keyword-only, default ()
        Columns within whose groups ranks are computed (e.g. ICB and year); () ranks all rows
        together.
    out : str, keyword-only
        Name of the rank column to add (e.g. ``schema.DEPRIVATION_RANK``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with ``out`` in [0, 1] (0 = most deprived), NaN where the score is
        missing.

    Raises
    ------
    ValueError
        When a weight of a scored row is not positive and finite (see :func:`relative_rank`).
    """
    result = df.copy()
    ranks = pd.Series(np.nan, index=df.index, dtype=float)
    valid = df[score_col].notna()
    sub = df.loc[valid]
    if sub.empty:
        result[out] = ranks
        return result
    groups = sub.groupby(list(by), sort=False, observed=True) if by else [(None, sub)]
    for _, g in groups:
        ranks.loc[g.index] = relative_rank(g[score_col].to_numpy(), g[weight_col].to_numpy())
    result[out] = ranks
    return result
