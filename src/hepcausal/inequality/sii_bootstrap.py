"""Quantile-mean SII with a stratified practice bootstrap (the LLR Health Equity Payment study).

Practices are grouped into deprivation quantiles; each quantile's value is the mean of its
practices' outcomes and its "population" the number of practices (or the sum of ``weight_col``
with weighted means); the PHE SII (optionally log/logit-transformed and back-transformed) is
computed from these means.  Intervals come from resampling practices within quantiles (``boot``
with ``strata``) and BCa with stratified jackknife acceleration, or percentiles.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from hepcausal.inequality.bca import bca_interval, percentile_interval
from hepcausal.inequality.ranks import ordered_relative_rank, relative_rank
from hepcausal.inequality.sii_core import (
    TRANSFORM_NAMES,
    SIIInputError,
    SIIResult,
    back_transformed_sii,
    check_value_type,
    check_values,
    check_weights,
    column_array,
    link,
    parse_confidence,
    quantile_of_rank,
    weighted_line,
)

_EPS = float(np.finfo(float).eps)
_CELLS_PER_CHUNK = 4_000_000  # bootstrap frequency-matrix cells held at once


def quantile_mean_sii(
    sum_wy: np.ndarray,
    sum_w: np.ndarray,
    value_type: str = "other",
    transform: bool = False,
) -> np.ndarray:
    """SII from per-quantile weighted sums (last axis = quantiles, most -> least deprived).

    Means ``sum_wy / sum_w`` are fitted on the relative ranks of populations ``sum_w``.  For
    transformed proportions, means of exactly 0 or 1 are moved by machine epsilon (as the LLR
    study's ``myeps``) so the logit exists.

    Parameters
    ----------
    sum_wy : numpy.ndarray
        Per-quantile sums of weight x value; the last axis is the quantiles, ordered most ->
        least deprived (leading axes, e.g. bootstrap replicates, are vectorised over).
    sum_w : numpy.ndarray
        Per-quantile sums of weights (the quantile populations), same shape as ``sum_wy``.
    value_type : {"other", "rate", "proportion"}, default "other"
        Indicator type; selects the log (rate) or logit (proportion) link when ``transform``.
    transform : bool, default False
        Fit the line on the link scale and back-transform the SII.

    Returns
    -------
    numpy.ndarray
        SII (fitted value at rank 1 minus at rank 0, natural scale), one per leading index
        (a 0-d array for 1-d inputs).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sum_wy / sum_w
        if transform and value_type == "proportion":
            means = np.clip(means, _EPS, 1.0 - _EPS)
        fy = link(means, value_type) if transform else means
        b = ordered_relative_rank(sum_w)
        intercept, slope = weighted_line(b, fy, sum_w)
        return back_transformed_sii(intercept, slope, value_type, transform)[0]


def sii_bootstrap(
    df: pd.DataFrame,
    value_col: str,
    *,
    quantile_col: str | None = None,
    score_col: str | None = None,
    n_quantiles: int = 5,
    weight_col: str | None = None,
    value_type: Literal["other", "rate", "proportion"] = "other",
    transform: bool | None = None,
    n_boot: int = 1000,
    method: Literal["bca", "percentile"] = "bca",
    strata: str | None = "quantile",
    confidence: float | Sequence[float] = 0.95,
    min_per_quantile: int = 2,
    seed: int | np.random.Generator | None = None,
) -> SIIResult:
    """Quantile-mean SII of one area/period with a stratified bootstrap interval.

    Parameters
    ----------
    df, value_col
        One row per practice; ``value_col`` is the practice outcome (no missing values).
    quantile_col, score_col, n_quantiles
        Either precomputed quantiles (sortable labels, ascending = most -> least deprived, e.g.
        IMD quintile 1..5) or a deprivation score (higher = more deprived) cut into
        ``n_quantiles`` groups of the (weighted) relative rank.
    weight_col
        ``None`` (LLR study): plain means, population = number of practices.  A column (e.g.
        list size): weighted means, population = sum of weights.
    value_type, transform
        log (rates) / logit (proportions) fit with back-transformed SII; ``transform`` defaults
        to ``value_type != 'other'`` as in the LLR study.
    n_boot, method, strata, confidence, seed
        Replicates; ``'bca'`` (jackknife acceleration within strata) or ``'percentile'``;
        resampling strata: ``'quantile'`` (default, as ``boot(strata=quintile)``), ``None``
        (unstratified; replicates missing a quantile are dropped and counted) or a column name.
    min_per_quantile
        Minimum practices per quantile (>= 2, needed by the jackknife).
    """
    if transform is None:
        transform = value_type != "other"
    check_value_type(value_type, transform)
    levels = parse_confidence(confidence, low=0.5)
    if method not in ("bca", "percentile"):
        raise SIIInputError(f"method must be 'bca' or 'percentile'; got {method!r}")
    if int(n_boot) != n_boot or n_boot < 100:
        raise SIIInputError(f"n_boot must be an integer >= 100; got {n_boot}")
    if min_per_quantile < 2:
        raise SIIInputError("min_per_quantile must be >= 2 (the jackknife deletes one practice)")
    if (quantile_col is None) == (score_col is None):
        raise SIIInputError("give exactly one of quantile_col or score_col")
    src = "sii_bootstrap"
    y = column_array(df, value_col, source=src)
    check_values(y, value_type, name=f"column {value_col!r}")
    n = y.size
    w = np.ones(n) if weight_col is None else column_array(df, weight_col, source=src)
    check_weights(w, name=f"column {weight_col!r}")

    if quantile_col is not None:
        if quantile_col not in df.columns:
            raise SIIInputError(f"{src}: column {quantile_col!r} not found")
        lab = df[quantile_col]
        if lab.isna().any():
            rows = df.index[lab.isna().to_numpy()][:10].tolist()
            raise SIIInputError(f"{src}: column {quantile_col!r} has missing values (rows {rows})")
        labels, q = np.unique(lab.to_numpy(), return_inverse=True)
    else:
        score = column_array(df, score_col, source=src)  # type: ignore[arg-type]
        q = quantile_of_rank(relative_rank(score, w), n_quantiles) - 1
        labels = np.arange(1, n_quantiles + 1)
    k = labels.size
    if not 5 <= k <= 100:
        raise SIIInputError(f"{src}: number of quantiles must be between 5 and 100; got {k}")
    counts = np.bincount(q, minlength=k)
    small = np.flatnonzero(counts < min_per_quantile)
    if small.size:
        detail = ", ".join(f"{labels[i]}: {counts[i]}" for i in small)
        raise SIIInputError(
            f"{src}: quantiles with fewer than {min_per_quantile} practices ({detail})"
        )

    onehot = np.zeros((n, k))
    onehot[np.arange(n), q] = 1.0
    m_wy, m_w = onehot * (w * y)[:, None], onehot * w[:, None]
    tot_wy, tot_w = m_wy.sum(axis=0), m_w.sum(axis=0)
    theta = float(quantile_mean_sii(tot_wy, tot_w, value_type, transform))
    if not np.isfinite(theta):
        raise SIIInputError(f"{src}: SII is not finite (a quantile mean of 0 with log transform?)")
    notes = [
        f"transform: {TRANSFORM_NAMES[value_type] if transform else 'none'}",
        "population: " + ("practice count" if weight_col is None else f"sum of {weight_col}"),
    ]
    means = tot_wy / tot_w
    if transform and value_type == "proportion" and np.any((means <= 0) | (means >= 1)):
        notes.append("quantile mean of 0 or 1 moved by machine epsilon for the logit")

    # Strata for resampling and the jackknife.
    if strata == "quantile":
        s_idx = q
    elif strata is None:
        s_idx = np.zeros(n, dtype=int)
    else:
        if strata not in df.columns:
            raise SIIInputError(f"{src}: strata column {strata!r} not found")
        s_idx = np.unique(df[strata].astype(str).to_numpy(), return_inverse=True)[1]
    members = [np.flatnonzero(s_idx == s) for s in range(s_idx.max() + 1)]

    rng = np.random.default_rng(seed)
    reps = _bootstrap(members, m_wy, m_w, int(n_boot), rng, value_type, transform)
    finite = np.isfinite(reps)
    if not finite.all():
        n_bad = int((~finite).sum())
        msg = f"{n_bad} of {n_boot} bootstrap replicates had an empty quantile and were dropped"
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
        reps = reps[finite]

    jack = quantile_mean_sii(tot_wy - m_wy, tot_w - m_w, value_type, transform)
    jack_by_stratum = [jack[idx] for idx in members]
    cis: dict[float, tuple[float, float]] = {}
    info: dict[str, float] = {}
    for level in levels:
        if method == "bca":
            lo, hi, info = bca_interval(theta, reps, jack_by_stratum, level)
        else:
            lo, hi = percentile_interval(reps, level)
        cis[level] = (lo, hi)
    notes.append(
        f"CI: {method} stratified bootstrap, {reps.size} replicates"
        if strata is not None
        else f"CI: {method} bootstrap, {reps.size} replicates"
    )
    return SIIResult(
        sii=theta,
        sii_lower=cis[levels[0]][0],
        sii_upper=cis[levels[0]][1],
        confidence=levels,
        sii_ci=cis,
        method=f"quintile_bootstrap_{method}",
        value_type=value_type,
        transform=bool(transform),
        se=float(np.std(reps, ddof=1)),
        n_quantiles=k,
        n_units=n,
        replicates=reps,
        notes=tuple(notes),
        meta={
            "quantile_labels": labels,
            "quantile_means": means,
            "populations": tot_w,
            "n_per_quantile": counts,
            "relative_rank": ordered_relative_rank(tot_w),
            **info,
        },
    )


def _bootstrap(
    members: list[np.ndarray],
    m_wy: np.ndarray,
    m_w: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    value_type: str,
    transform: bool,
) -> np.ndarray:
    """SII replicates from practice resamples within strata (frequency-matrix products)."""
    n = m_wy.shape[0]
    chunk = max(1, min(n_boot, _CELLS_PER_CHUNK // max(n, 1)))
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        flat = [
            (np.arange(c)[:, None] * n + idx[rng.integers(0, idx.size, size=(c, idx.size))]).ravel()
            for idx in members
        ]
        freq = np.bincount(np.concatenate(flat), minlength=c * n).reshape(c, n).astype(float)
        out[start : start + c] = quantile_mean_sii(freq @ m_wy, freq @ m_w, value_type, transform)
    return out
