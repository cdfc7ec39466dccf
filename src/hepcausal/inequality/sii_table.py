"""SII per area and year of a practice-year panel (schema of :mod:`hepcausal.schema`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from hepcausal import schema
from hepcausal.inequality.ranks import relative_rank
from hepcausal.inequality.sii_bootstrap import sii_bootstrap
from hepcausal.inequality.sii_core import SIIInputError, SIIResult, quantile_of_rank
from hepcausal.inequality.sii_phe import sii
from hepcausal.inequality.sii_unit import sii_unit
from hepcausal.outcomes import SiiValueType, find_outcome

NATIONAL = "England"
Method = Literal["quintile_bootstrap", "unit", "phe"]
CiMethod = Literal["bca", "percentile"]
UnitSe = Literal["hc0", "hc1", "hc2", "hc3", "bootstrap"]


def default_value_type(outcome: str) -> SiiValueType:
    """PHE value type of an outcome, from the outcome table.

    Parameters
    ----------
    outcome : str
        Panel column or alias of :data:`hepcausal.outcomes.OUTCOMES`, or any other column.

    Returns
    -------
    str
        The row's ``sii_value_type`` (``"rate"`` for FTE per 1,000 weighted patients,
        ``"proportion"`` for QOF/GPPS), ``"other"`` for columns not in the table.
    """
    row = find_outcome(outcome)
    return row.sii_value_type if row is not None else "other"


def sii_table(
    panel: pd.DataFrame,
    outcome: str,
    *,
    by: Sequence[str] = (schema.ICB, schema.YEAR),
    method: Method = "quintile_bootstrap",
    score_col: str = schema.IMD,
    weight_col: str | None = None,
    rank_within: Sequence[str] | None = None,
    rank_col: str | None = None,
    n_quantiles: int = 5,
    min_per_quantile: int = 5,
    value_type: SiiValueType | None = None,
    transform: bool | None = None,
    n_boot: int = 1000,
    ci_method: CiMethod = "bca",
    unit_se: UnitSe = "hc1",
    n_sim: int = 10_000,
    confidence: float = 0.95,
    national: bool = False,
    seed: int | None = None,
) -> pd.DataFrame:
    """One SII (with interval) per ``by`` group; columns ``*by, sii, lower, upper, se,
    n_practices, n_missing, n_missing_score, method, note``.

    * ``method='quintile_bootstrap'``: quintile means + stratified bootstrap (LLR study);
      ``'phe'``: quintile means with SE = SD/sqrt(n) fed to the PHE simulation (:func:`sii`);
      ``'unit'``: practice-level WLS on relative rank (:func:`sii_unit`, ``unit_se``).
    * Ranks/quantiles of ``score_col`` (higher = more deprived) are computed within each group
      on the practices analysed, or, with ``rank_within`` (e.g. ``('year',)``), on all practices
      with a score in those cells (a national deprivation scale).
    * ``weight_col=None`` weights every practice equally (population = practice count, as the
      LLR study); e.g. ``'list_size'`` gives population weighting.
    * ``rank_col`` (e.g. ``schema.DEPRIVATION_RANK``, as built by ``build_nhs_panel`` and used
      by the Bayesian gradient model) uses precomputed ranks (0 = most deprived) as they are,
      instead of ranking ``score_col``.
    * Rows with a missing outcome or score are dropped and counted per group (``n_missing``,
      ``n_missing_score``).  Groups with a quantile of fewer than ``min_per_quantile`` practices
      (or fewer than 3 practices for ``'unit'``) get NaN and a ``note``.
    * ``national=True`` adds rows with ``icb_code == 'England'`` pooling all groups per the
      remaining ``by`` keys.

    Parameters
    ----------
    panel : pandas.DataFrame
        Practice x year panel (one row per practice and ``by`` group) with ``outcome``,
        ``score_col`` (or ``rank_col``), the ``by`` columns and ``weight_col`` if given.
    outcome : str
        Outcome column.
    by : sequence of str, default (ICB, YEAR)
        Grouping columns; one SII per group (year = fiscal-year end).
    method : {"quintile_bootstrap", "unit", "phe"}, default "quintile_bootstrap"
        SII estimator (see above).
    score_col : str, default schema.IMD
        Deprivation score (higher = more deprived) that the ranks are computed from.
    weight_col : str or None, default None
        Positive practice weights (e.g. list size); None weights practices equally.
    rank_within : sequence of str or None, default None
        Rank on all practices with a score in these cells (e.g. ``("year",)``) instead of within
        each group.  Exclusive with ``rank_col``.
    rank_col : str or None, default None
        Column of precomputed relative ranks in [0, 1] (0 = most deprived) used as they are.
        Exclusive with ``rank_within``.
    n_quantiles : int, default 5
        Number of quantiles of the quantile methods (5 = quintiles).
    min_per_quantile : int, default 5
        Groups with a quantile of fewer practices get NaN and a note.
    value_type : {"rate", "proportion", "other"} or None, default None
        PHE value type; None takes it from the outcome table (:func:`default_value_type`).
    transform : bool or None, default None
        Fit on the log/logit scale and back-transform; None: ``value_type != "other"``.
    n_boot : int, default 1000
        Bootstrap replicates (``quintile_bootstrap``, and ``unit`` with
        ``unit_se="bootstrap"``).
    ci_method : {"bca", "percentile"}, default "bca"
        Bootstrap interval of ``quintile_bootstrap``.
    unit_se : {"hc0", "hc1", "hc2", "hc3", "bootstrap"}, default "hc1"
        Standard error of ``method="unit"``.
    n_sim : int, default 10000
        Simulations of ``method="phe"`` (>= 1000).
    confidence : float, default 0.95
        Confidence level of ``lower``/``upper``.
    national : bool, default False
        Also compute England rows pooling all ICBs (needs the ICB column in ``by``).
    seed : int or None, default None
        Seed; every group gets an independent stream spawned from it.

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by ``by``: ``*by, sii, lower, upper, se, n_practices,
        n_missing, n_missing_score, method, note``; SII = least minus most deprived, in the
        outcome's units.

    Raises
    ------
    SIIInputError
        On an unknown ``method``, missing columns, both ``rank_within`` and ``rank_col``,
        ``national`` without the ICB column in ``by``, duplicate practice rows per group,
        ranks outside [0, 1] or non-positive weights.
    """
    by = list(by)
    if rank_col is not None and rank_within:
        raise SIIInputError("give at most one of rank_within and rank_col")
    if rank_col is not None:
        score_col = rank_col
    if method not in ("quintile_bootstrap", "unit", "phe"):
        raise SIIInputError(f"method must be 'quintile_bootstrap', 'unit' or 'phe'; got {method!r}")
    needed = [*by, outcome, score_col, *([weight_col] if weight_col else []), *(rank_within or ())]
    missing_cols = [c for c in dict.fromkeys(needed) if c not in panel.columns]
    if missing_cols:
        raise SIIInputError(f"panel: missing column(s) {missing_cols}")
    if national and schema.ICB not in by:
        raise SIIInputError(f"national=True needs {schema.ICB!r} in by={by}")
    key = [schema.PRACTICE, *[c for c in by if c != schema.PRACTICE]]
    if schema.PRACTICE in panel.columns:
        dup = panel.duplicated(key, keep=False)
        if dup.any():
            raise SIIInputError(
                f"panel: duplicate rows for key {key} (rows "
                f"{panel.index[dup.to_numpy()][:10].tolist()})"
            )
    vt = value_type or default_value_type(outcome)
    df = panel.copy()
    df["_y"] = pd.to_numeric(df[outcome], errors="raise").astype(float)
    df["_score"] = pd.to_numeric(df[score_col], errors="raise").astype(float)
    if rank_col is not None:
        bad = df["_score"].notna() & ~df["_score"].between(0.0, 1.0)
        if bad.any():
            raise SIIInputError(
                f"panel: column {rank_col!r} must lie in [0, 1] (rows "
                f"{df.index[bad.to_numpy()][:10].tolist()})"
            )
        df["_rank"] = df["_score"]
        df["_score"] = -df["_score"]  # higher score = more deprived
    if weight_col:
        df["_w"] = pd.to_numeric(df[weight_col], errors="raise").astype(float)
        bad = ~(df["_w"] > 0)
        if bad.any():
            raise SIIInputError(
                f"panel: column {weight_col!r} must be positive and non-missing (rows "
                f"{df.index[bad.to_numpy()][:10].tolist()})"
            )
    else:
        df["_w"] = 1.0
    if rank_within:
        df["_rank"] = np.nan
        has = df["_score"].notna()
        for _, g in df.loc[has].groupby(list(rank_within), sort=False, observed=True):
            df.loc[g.index, "_rank"] = relative_rank(g["_score"].to_numpy(), g["_w"].to_numpy())

    jobs: list[tuple[dict, pd.DataFrame]] = []
    for keys, g in df.groupby(by, sort=True, observed=True, dropna=False):
        jobs.append((dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True)), g))
    if national:
        rest = [c for c in by if c != schema.ICB]
        groups = df.groupby(rest, sort=True, observed=True) if rest else [((), df)]
        for keys, g in groups:
            keys = keys if isinstance(keys, tuple) else (keys,)
            jobs.append(({schema.ICB: NATIONAL, **dict(zip(rest, keys, strict=True))}, g))

    fixed_ranks = bool(rank_within) or rank_col is not None
    seeds = np.random.SeedSequence(seed).spawn(len(jobs))
    rows = []
    for (keys, g), ss in zip(jobs, seeds, strict=True):
        rows.append(
            {
                **keys,
                **_one_group(
                    g,
                    method=method,
                    vt=vt,
                    transform=transform,
                    rank_within=fixed_ranks,
                    n_quantiles=n_quantiles,
                    min_per_quantile=min_per_quantile,
                    n_boot=n_boot,
                    ci_method=ci_method,
                    unit_se=unit_se,
                    n_sim=n_sim,
                    confidence=confidence,
                    weighted=weight_col is not None,
                    rng=np.random.default_rng(ss),
                ),
            }
        )
    out = pd.DataFrame(rows)
    skipped = out["note"].str.startswith("skipped").sum()
    if skipped:
        warnings.warn(
            f"sii_table: {skipped} of {len(out)} groups skipped (see column 'note')",
            UserWarning,
            stacklevel=2,
        )
    return out


def _one_group(
    g: pd.DataFrame,
    *,
    method: Method,
    vt: SiiValueType,
    transform: bool | None,
    rank_within: bool,
    n_quantiles: int,
    min_per_quantile: int,
    n_boot: int,
    ci_method: CiMethod,
    unit_se: UnitSe,
    n_sim: int,
    confidence: float,
    weighted: bool,
    rng: np.random.Generator,
) -> dict[str, Any]:
    n_missing_score = int(g["_score"].isna().sum())
    n_missing = int((g["_y"].isna() & g["_score"].notna()).sum())
    a = g.loc[g["_y"].notna() & g["_score"].notna()]
    row: dict[str, Any] = {
        "sii": np.nan,
        "lower": np.nan,
        "upper": np.nan,
        "se": np.nan,
        "n_practices": len(a),
        "n_missing": n_missing,
        "n_missing_score": n_missing_score,
        "method": method,
        "note": "",
    }
    y, w = a["_y"].to_numpy(), a["_w"].to_numpy()
    rank = a["_rank"].to_numpy() if rank_within else None
    try:
        if method == "unit":
            if len(a) < 3:
                row["note"] = f"skipped: {len(a)} practices (< 3)"
                return row
            res = sii_unit(
                y,
                w,
                ranks=rank,
                scores=None if rank_within else a["_score"].to_numpy(),
                se_method=unit_se,
                n_boot=n_boot,
                confidence=confidence,
                seed=rng,
            )
        else:
            if rank is None:
                rank = relative_rank(a["_score"].to_numpy(), w) if len(a) else np.empty(0)
            q = quantile_of_rank(rank, n_quantiles)
            counts = np.bincount(q, minlength=n_quantiles + 1)[1:]
            if counts.min() < min_per_quantile:
                row["note"] = (
                    f"skipped: practices per quantile {counts.tolist()} (< {min_per_quantile})"
                )
                return row
            res = _quantile_method(
                method, y, w, q, vt, transform, n_boot, ci_method, n_sim, confidence, weighted, rng
            )
    except SIIInputError as exc:
        row["note"] = f"skipped: {exc}"
        return row
    row.update(
        sii=res.sii,
        lower=res.sii_lower,
        upper=res.sii_upper,
        se=res.se,
        method=res.method,
        note="; ".join(res.notes),
    )
    return row


def _quantile_method(
    method: Method,
    y: np.ndarray,
    w: np.ndarray,
    q: np.ndarray,
    vt: SiiValueType,
    transform: bool | None,
    n_boot: int,
    ci_method: CiMethod,
    n_sim: int,
    confidence: float,
    weighted: bool,
    rng: np.random.Generator,
) -> SIIResult:
    if transform is None:
        transform = vt != "other"
    if method == "quintile_bootstrap":
        frame = pd.DataFrame({"y": y, "weight": w, "q": q})
        return sii_bootstrap(
            frame,
            "y",
            quantile_col="q",
            weight_col="weight" if weighted else None,
            value_type=vt,
            transform=transform,
            n_boot=n_boot,
            method=ci_method,
            confidence=confidence,
            seed=rng,
        )
    k = int(q.max())
    means, pops, ses = np.empty(k), np.empty(k), np.empty(k)
    for j in range(k):
        m = q == j + 1
        yj, wj = y[m], w[m]
        pops[j] = wj.sum()
        means[j] = np.sum(wj * yj) / pops[j]
        nj = yj.size
        # SE of the (weighted) mean: sqrt(n/(n-1) * sum w^2 (y - mean)^2) / sum w
        ses[j] = np.sqrt(nj / (nj - 1) * np.sum(wj**2 * (yj - means[j]) ** 2)) / pops[j]
    return sii(
        means,
        pops,
        se=ses,
        value_type=vt,
        transform=transform,
        confidence=confidence,
        n_sim=n_sim,
        seed=rng,
    )
