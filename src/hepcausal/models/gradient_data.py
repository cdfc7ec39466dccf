"""Data preparation for the hierarchical gradient model: design, scaling, sufficient statistics.

The model (see :mod:`hepcausal.models.gradient`) is linear in the cell parameters
``theta = (alpha_{g,t}, beta_{g,t})`` (``2 G T`` entries, ``alpha`` first, cell ``k = g T + t``).
For the Gaussian likelihood the practice effects are integrated out analytically and the
likelihood needs only the sufficient statistics computed here (see :class:`GaussianStats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hepcausal import schema as S
from hepcausal.models.families import FAMILIES, Family, get_family
from hepcausal.models.priors import Priors
from hepcausal.outcomes import OUTCOMES, find_outcome


@dataclass(frozen=True)
class GradientPriors(Priors):
    """Prior scales of the gradient model, on the standardised outcome.

    The package convention (:mod:`hepcausal.models.priors`): ``z = (y - mean) / sd`` for the
    gaussian / student-t families (``log y`` for the lognormal), the logit scale centred on the
    pooled log-odds (sd = 1) for the binomial families.  Build with ``from_any`` from a dict of
    overrides (an unknown key or a non-positive value is a ``ValueError`` naming it).

    Parameters
    ----------
    mu_sd : float
        Global level ``mu ~ N(0, mu_sd)``.
    slope_sd : float
        Global SII ``b0 ~ N(0, slope_sd)``.
    sigma_icb : float
        SD of the ICB level effects, ``sigma_icb ~ HalfNormal(.)``.
    sigma_icb_slope : float
        SD of the ICB SII effects, ``~ HalfNormal(.)``.
    year_sd : float
        Fixed scale of the year level effects (sum to zero).
    year_slope_sd : float
        Fixed scale of the year SII effects (sum to zero).
    sigma_int : float
        SD of the ICB x year level deviations, ``~ HalfNormal(.)``.
    sigma_int_slope : float
        SD of the ICB x year SII deviations, ``~ HalfNormal(.)``.
    tau : float
        Practice effect SD ``tau ~ HalfNormal(.)``.
    sigma : float
        Residual SD (gaussian, lognormal, student_t) ``~ HalfNormal(.)``.
    overdispersion : float
        Beta-binomial ``1/sqrt(phi) ~ HalfNormal(.)``.
    nu_scale : float
        Student-t degrees of freedom ``nu ~ Gamma(2, scale=nu_scale)`` (default 10: rate 0.1,
        mean 20, Juarez & Steel 2010 as recommended for Stan).
    """

    mu_sd: float = 2.5
    slope_sd: float = 2.5
    sigma_icb: float = 1.0
    sigma_icb_slope: float = 1.0
    year_sd: float = 1.0
    year_slope_sd: float = 1.0
    sigma_int: float = 0.5
    sigma_int_slope: float = 0.5
    tau: float = 1.0
    sigma: float = 1.0
    overdispersion: float = 0.5
    nu_scale: float = 10.0


@dataclass(frozen=True)
class GaussianStats:
    """Sufficient statistics of the practice-marginalised Gaussian likelihood.

    Blocks ``j = 0..J-1``: block 0 holds the within-practice deviations (weight ``1/sigma^2``,
    ``df = N - P``); block ``j >= 1`` holds the practice means of the practices observed
    ``n_j`` times (weight ``1 / (tau^2 + sigma^2 / n_j)``, ``count = P_j``).  For weights ``w``::

        loglik = -0.5 * sum_j [ count_j * log(1/w_j) + w_j * (syy_j - 2 theta'sxy_j
                                                            + theta' Sxx_j theta) ] + const

    ``Sxx_j`` is stored sparsely on the union pattern (upper triangle, off-diagonals doubled):
    ``theta' Sxx_j theta = sum_k sxx[k, j] * theta[row_k] * theta[col_k]``.
    """

    n_per: np.ndarray  # (J-1,) practice sizes n_j of the mean blocks
    count: np.ndarray  # (J,) df of block 0 then P_j
    syy: np.ndarray  # (J,)
    sxy: np.ndarray  # (K, J)
    sxx: np.ndarray  # (nnz, J)
    row: np.ndarray  # (nnz,) int
    col: np.ndarray  # (nnz,) int


@dataclass
class GradientData:
    """The prepared panel: indices, scaled outcome and everything the backends need."""

    outcome: str
    rank_col: str
    likelihood: str  # family name (hepcausal.models.families.FAMILIES)
    icbs: list[str]
    years: list[int]
    practices: list[str]
    practice_idx: np.ndarray  # (N,)
    cell_idx: np.ndarray  # (N,) g * T + t
    rc: np.ndarray  # (N,) rank - 0.5
    y: np.ndarray  # (N,) outcome on the model scale (log for lognormal; proportion for binomial)
    loc: float  # outcome centre on the model scale
    scale: float  # outcome scale s (1 for logit)
    weights: np.ndarray  # (G, T) population weights of ICBs within each year (columns sum to 1)
    weight_source: str
    successes: np.ndarray | None = None  # binomial
    trials: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    n_rounded: int = 0
    # (P,) likelihood weights of the practices (None: practice-average estimand); normalised so
    # that they sum to Kish's effective sample size (see :func:`practice_weights`)
    practice_weight: np.ndarray | None = None
    weights_col: str | None = None
    # (G, T) 0/1 cells of the treated ICB from the start year (None: no treated-period term)
    treat_cells: np.ndarray | None = None

    def treated_post_design(self) -> np.ndarray:
        """The double-centred treated x post indicator (G, T) of the ``delta_treated`` term.

        Zero row and column sums, so the term is orthogonal to the ICB and year effects, and
        its treated-minus-comparators post-minus-pre contrast is exactly 1 (``delta_treated``
        is the DDD contrast of the SII).  Zeros when there is no treated-period term.
        """
        if self.treat_cells is None:
            return np.zeros((self.n_icb, self.n_year))
        m = np.asarray(self.treat_cells, dtype=float)
        return m - m.mean(axis=0, keepdims=True) - m.mean(axis=1, keepdims=True) + m.mean()

    def with_treated_period(self, treated: str, start_year: int) -> GradientData:
        """A copy with the treated-ICB x post-period SII term (``delta_treated``) switched on.

        Parameters
        ----------
        treated : str
            Treated ICB (must be modelled).
        start_year : int
            First treated year (there must be years before and from it).

        Returns
        -------
        GradientData
            The copy.
        """
        if treated not in self.icbs:
            raise ValueError(f"treated ICB {treated!r} is not among the modelled ICBs {self.icbs}")
        post = np.asarray(self.years) >= start_year
        if post.all() or not post.any():
            raise ValueError(
                f"start_year {start_year} must leave years before and from it in {self.years}"
            )
        cells = np.zeros((self.n_icb, self.n_year))
        cells[self.icbs.index(treated), post] = 1.0
        return replace(self, treat_cells=cells)

    @property
    def family(self) -> Family:
        """The likelihood family's row of :data:`~hepcausal.models.families.FAMILIES`."""
        return get_family(self.likelihood)

    @property
    def n_icb(self) -> int:
        return len(self.icbs)

    @property
    def n_year(self) -> int:
        return len(self.years)

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def n_practice(self) -> int:
        return len(self.practices)

    @property
    def z(self) -> np.ndarray:
        """Standardised outcome (continuous families)."""
        return (self.y - self.loc) / self.scale

    def design(self) -> sp.csr_matrix:
        """Sparse ``(N, 2GT)`` design: 1 in the cell's alpha column, ``rc`` in its beta column."""
        k = self.n_icb * self.n_year
        n = self.n_obs
        rows = np.concatenate([np.arange(n), np.arange(n)])
        cols = np.concatenate([self.cell_idx, self.cell_idx + k])
        vals = np.concatenate([np.ones(n), self.rc])
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, 2 * k))

    def gaussian_stats(self) -> GaussianStats:
        """Sufficient statistics of the marginalised Gaussian likelihood (standardised outcome)."""
        st = gaussian_suff_stats(
            self.design(), self.z, self.practice_idx, self.n_practice, self.practice_weight
        )
        return GaussianStats(
            n_per=st.n_per[0],
            count=st.count[0],
            syy=st.syy[0],
            sxy=st.sxy[0],
            sxx=st.sxx,
            row=st.row,
            col=st.col,
        )


@dataclass(frozen=True)
class StratifiedGaussianStats:
    """Sufficient statistics of a practice-marginalised Gaussian likelihood, by stratum.

    The model is ``z_n = x_n . theta + u_i + e_n`` with ``u_i ~ N(0, tau)`` and
    ``e_n ~ N(0, s_k)`` for practice ``i`` in stratum ``k`` (a stratum: the practices that share
    a residual scale, e.g. an ICB; a practice lies in one stratum).  Integrating ``u_i`` out, the
    log-likelihood is a sum over blocks ``(k, j)``: ``j = 0`` holds stratum ``k``'s
    within-practice deviations (variance ``v = s_k^2``, ``count = sum_i (n_i - 1)``), ``j >= 1``
    the practice means of its practices observed ``n_per[k, j-1]`` times (variance
    ``v = tau^2 + s_k^2 / n``, ``count`` = their number)::

        loglik = -0.5 * sum_kj [ count_kj log v_kj + (syy_kj - 2 theta'sxy_kj
                                                      + theta' Sxx_kj theta) / v_kj ] + const

    Strata with fewer distinct practice sizes are padded with empty blocks (count, syy, sxy and
    sxx zero, ``n_per`` 1).  ``Sxx_kj`` is stored sparsely on stratum ``k``'s union pattern
    (upper triangle, off-diagonals doubled): ``theta' Sxx_kj theta = sum over the entries e of
    stratum k of sxx[e, j] * theta[row_e] * theta[col_e]``.  With practice weights ``w_i`` every
    statistic is a ``w``-weighted sum over practices (each practice's marginal log-likelihood
    multiplied by ``w_i``).  One stratum gives :class:`GaussianStats`.
    """

    n_per: np.ndarray  # (S, J-1) practice sizes of the mean blocks (1 for padding)
    count: np.ndarray  # (S, J)
    syy: np.ndarray  # (S, J)
    sxy: np.ndarray  # (S, K, J)
    sxx: np.ndarray  # (nnz, J)
    row: np.ndarray  # (nnz,) int
    col: np.ndarray  # (nnz,) int
    stratum: np.ndarray  # (nnz,) int: the stratum of each entry


def gaussian_suff_stats(
    x: sp.spmatrix,
    z: np.ndarray,
    practice_idx: np.ndarray,
    n_practice: int,
    practice_weight: np.ndarray | None = None,
    practice_stratum: np.ndarray | None = None,
) -> StratifiedGaussianStats:
    """Sufficient statistics of ``z = x theta + u_practice + e`` with ``u`` integrated out.

    Parameters
    ----------
    x : scipy.sparse matrix
        ``(N, K)`` row design of the mean (practice effects excluded).
    z : numpy.ndarray
        ``(N,)`` outcome.
    practice_idx : numpy.ndarray
        ``(N,)`` 0-based practice of each row; every practice in ``range(n_practice)`` has rows.
    n_practice : int
        Number of practices.
    practice_weight : numpy.ndarray or None
        ``(P,)`` likelihood weights of the practices (None: all 1).
    practice_stratum : numpy.ndarray or None
        ``(P,)`` 0-based stratum (residual scale) of each practice (None: one stratum).

    Returns
    -------
    StratifiedGaussianStats
        The statistics (see the class).
    """
    x = sp.csr_matrix(x)
    p = n_practice
    n_obs = len(z)
    inc = sp.csr_matrix((np.ones(n_obs), (practice_idx, np.arange(n_obs))), shape=(p, n_obs))
    n_i = np.asarray(inc.sum(axis=1)).ravel()
    w_i = np.ones(p) if practice_weight is None else np.asarray(practice_weight, dtype=float)
    strat = np.zeros(p, dtype=np.int64) if practice_stratum is None else practice_stratum
    n_strata = int(strat.max()) + 1 if p else 1
    xbar = sp.csr_matrix(sp.diags(1.0 / n_i) @ inc @ x)  # (P, K)
    zbar = (inc @ z) / n_i
    row_stratum = strat[practice_idx]
    per: list[tuple[list[Any], list[np.ndarray], list[float], list[float], np.ndarray]] = []
    for k in range(n_strata):
        sel_p = strat == k
        sel_r = row_stratum == k
        xk, zk = x[sel_r], z[sel_r]
        wk_row = w_i[practice_idx[sel_r]]
        xbk, zbk, wk, nk = xbar[sel_p], zbar[sel_p], w_i[sel_p], n_i[sel_p]
        nx = sp.diags(wk * nk) @ xbk
        xw = sp.diags(wk_row) @ xk
        blocks_xx: list[Any] = [(xk.T @ xw - xbk.T @ nx).tocsr()]
        blocks_xy = [xw.T @ zk - nx.T @ zbk]
        blocks_yy = [float(zk @ (wk_row * zk) - np.sum(wk * nk * zbk**2))]
        counts = [float(np.sum(wk * (nk - 1)))]
        sizes = np.unique(nk)
        for n in sizes:
            sel = nk == n
            xs, ws = xbk[sel], wk[sel]
            blocks_xx.append((xs.T @ sp.diags(ws) @ xs).tocsr())
            blocks_xy.append(xs.T @ (ws * zbk[sel]))
            blocks_yy.append(float(np.sum(ws * zbk[sel] ** 2)))
            counts.append(float(ws.sum()))
        per.append((blocks_xx, blocks_xy, blocks_yy, counts, sizes))
    n_blocks = max(len(b[3]) for b in per)
    n_col = x.shape[1]
    n_per = np.ones((n_strata, n_blocks - 1))
    count = np.zeros((n_strata, n_blocks))
    syy = np.zeros((n_strata, n_blocks))
    sxy = np.zeros((n_strata, n_col, n_blocks))
    sxx, rows, cols, stratum = [], [], [], []
    for k, (blocks_xx, blocks_xy, blocks_yy, counts, sizes) in enumerate(per):
        nb = len(counts)
        n_per[k, : nb - 1] = sizes
        count[k, :nb], syy[k, :nb] = counts, blocks_yy
        sxy[k, :, :nb] = np.column_stack(blocks_xy)
        pattern = sp.triu(sum(abs(b) for b in blocks_xx)).tocoo()
        row, col = pattern.row.astype(np.int64), pattern.col.astype(np.int64)
        mult = np.where(row == col, 1.0, 2.0)
        vals = np.zeros((len(row), n_blocks))
        vals[:, :nb] = np.column_stack([np.asarray(b[row, col]).ravel() * mult for b in blocks_xx])
        sxx.append(vals)
        rows.append(row)
        cols.append(col)
        stratum.append(np.full(len(row), k, dtype=np.int64))
    return StratifiedGaussianStats(
        n_per=n_per,
        count=count,
        syy=syy,
        sxy=sxy,
        sxx=np.concatenate(sxx),
        row=np.concatenate(rows),
        col=np.concatenate(cols),
        stratum=np.concatenate(stratum),
    )


CENTRING_BLOCKS = ("a", "b", "d", "f")
"""The centred-or-not blocks of the cell hierarchy (ICB level / SII, ICB x year level / SII)."""
PRACTICE_BLOCK = "u"
"""Centring key of the explicit practice effects (count families: :func:`choose_centring`)."""


def choose_centring(data: GradientData, ratio: float = 2.0) -> dict[str, bool]:
    """Centred or non-centred parameterisation of each hierarchical block, from the data.

    A block is centred when the data pin its effects down well relative to their spread
    (Betancourt & Girolami 2015): with practice means ``m_i`` of the working response (the
    standardised outcome; empirical logits for binomial data) and ranks ``r_i``, the ICB level
    block ``a`` (slope block ``b``) is centred when the SD across ICBs of the per-ICB mean (OLS
    slope) exceeds ``ratio`` times the root-mean-square of their standard errors.  The ICB x year
    interaction blocks ``d``, ``f`` use the same rule on the per-cell means (OLS slopes),
    double-centred over ICBs and years, against the cells' standard errors: they are centred
    when the cells pin the interaction deviations down (e.g. QOF, where the non-centred level
    interactions left ``sigma_int`` at R-hat 1.015 on the real data), else non-centred.
    """
    if data.successes is not None and data.trials is not None:
        work = np.log((data.successes + 0.5) / (data.trials - data.successes + 0.5)) - data.loc
    else:
        work = data.z
    n_i = np.bincount(data.practice_idx, minlength=data.n_practice)
    m = np.bincount(data.practice_idx, weights=work) / n_i
    rc = np.bincount(data.practice_idx, weights=data.rc) / n_i
    first = np.zeros(data.n_practice, dtype=np.int64)
    first[data.practice_idx[::-1]] = (data.cell_idx // data.n_year)[::-1]  # ICB at first row
    means, mean_se, slopes, slope_se = [], [], [], []
    for g in range(data.n_icb):
        sel = first == g
        if sel.sum() < 4:
            continue
        y, x = m[sel], rc[sel]
        means.append(y.mean())
        mean_se.append(y.std(ddof=1) / np.sqrt(sel.sum()))
        xc = x - x.mean()
        sxx = float(xc @ xc)
        if sxx <= 0:
            continue
        b = float(xc @ (y - y.mean())) / sxx
        resid = y - y.mean() - b * xc
        slopes.append(b)
        slope_se.append(np.sqrt(resid @ resid / (sel.sum() - 2) / sxx))

    def informative(est: list[float], se: list[float]) -> bool:
        if len(est) < 3:
            return False
        return bool(np.std(est, ddof=1) > ratio * np.sqrt(np.mean(np.square(se))))

    # ICB x year blocks: the same rule on the per-cell mean / OLS slope, double-centred over
    # ICBs and years (the interaction deviations) against the cells' standard errors
    cm = np.full((data.n_icb, data.n_year), np.nan)
    cs, cm_se, cs_se = cm.copy(), cm.copy(), cm.copy()
    for k in range(data.n_icb * data.n_year):
        sel = data.cell_idx == k
        if sel.sum() < 4:
            continue
        g, t = divmod(k, data.n_year)
        y, x = work[sel], data.rc[sel]
        cm[g, t], cm_se[g, t] = y.mean(), y.std(ddof=1) / np.sqrt(sel.sum())
        xc = x - x.mean()
        sxx = float(xc @ xc)
        if sxx <= 0:
            continue
        b = float(xc @ (y - y.mean())) / sxx
        resid = y - y.mean() - b * xc
        cs[g, t], cs_se[g, t] = b, np.sqrt(resid @ resid / (sel.sum() - 2) / sxx)

    def informative_cells(est: np.ndarray, se: np.ndarray) -> bool:
        if np.isnan(est).any() or np.isnan(se).any() or min(est.shape) < 2:
            return False
        dev = est - est.mean(0, keepdims=True) - est.mean(1, keepdims=True) + est.mean()
        dof = (est.shape[0] - 1) * (est.shape[1] - 1)
        return bool(np.sqrt(np.sum(dev**2) / dof) > ratio * np.sqrt(np.mean(se**2)))

    return {
        "a": informative(means, mean_se),
        "b": informative(slopes, slope_se),
        "d": informative_cells(cm, cm_se),
        "f": informative_cells(cs, cs_se),
        PRACTICE_BLOCK: data.family.on_counts and _practices_informative(data, work, ratio),
    }


def _practices_informative(data: GradientData, work: np.ndarray, ratio: float) -> bool:
    """The practice means of the cell-centred working response are pinned down by the data."""
    k = data.n_icb * data.n_year
    n_cell = np.bincount(data.cell_idx, minlength=k)
    cell_mean = np.bincount(data.cell_idx, weights=work, minlength=k) / np.maximum(n_cell, 1)
    resid = work - cell_mean[data.cell_idx]
    n_i = np.bincount(data.practice_idx, minlength=data.n_practice)
    m = np.bincount(data.practice_idx, weights=resid, minlength=data.n_practice) / n_i
    within = resid - m[data.practice_idx]
    dof = int(np.sum(n_i - 1))
    if dof < 2 or data.n_practice < 3:
        return False
    s2_within = float(within @ within) / dof
    return bool(np.std(m, ddof=1) > ratio * np.sqrt(s2_within * np.mean(1.0 / n_i)))


def resolve_centring(
    data: GradientData, centring: Mapping[str, bool] | str | None
) -> dict[str, bool]:
    """'auto'/None -> :func:`choose_centring`; a dict overrides blocks (keys a, b, d, f, u)."""
    if centring is None or centring == "auto":
        return choose_centring(data)
    if isinstance(centring, str):
        raise ValueError(
            f"centring must be 'auto' or a dict over {(*CENTRING_BLOCKS, PRACTICE_BLOCK)}, got "
            f"{centring!r}"
        )
    valid = (*CENTRING_BLOCKS, PRACTICE_BLOCK)
    unknown = set(centring) - set(valid)
    if unknown:
        raise KeyError(f"unknown centring block(s) {sorted(unknown)}; valid: {valid}")
    out = choose_centring(data)
    out.update({k: bool(v) for k, v in centring.items()})
    return out


def resolve_family(outcome: str, likelihood: str = "auto") -> Family:
    """The likelihood family for ``outcome``.

    Parameters
    ----------
    outcome : str
        Outcome column.
    likelihood : str
        ``"auto"`` (the outcome's :attr:`~hepcausal.outcomes.Outcome.family`; gaussian for a
        column not in the outcome table) or a name in
        :data:`~hepcausal.models.families.FAMILIES`.

    Returns
    -------
    Family
        The family.

    Raises
    ------
    ValueError
        For an unknown family, or a family needing a denominator with an outcome that has none.
    """
    row = find_outcome(outcome)
    if likelihood == "auto":
        return get_family(row.family if row is not None else "gaussian")
    if likelihood not in FAMILIES:
        raise ValueError(
            f"likelihood must be 'auto' or one of {list(FAMILIES)}, got {likelihood!r}"
        )
    fam = get_family(likelihood)
    if fam.needs_denominator and (row is None or row.denominator is None):
        with_denom = sorted(o.column for o in OUTCOMES.values() if o.denominator)
        raise ValueError(
            f"likelihood {likelihood!r} needs a proportion outcome with a denominator "
            f"({with_denom}), got outcome {outcome!r}"
        )
    return fam


def prepare_gradient_data(
    panel: pd.DataFrame,
    outcome: str,
    *,
    rank_col: str = S.DEPRIVATION_RANK,
    likelihood: str = "auto",
    icbs: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    standardise: tuple[float, float] | None = None,
    weights: str | None = None,
) -> GradientData:
    """Validate the panel and build the model inputs; every dropped row is counted by reason.

    Parameters
    ----------
    panel : pandas.DataFrame
        Practice-year panel.
    outcome : str
        Outcome column (its denominator, for the binomial families, from the outcome table).
    rank_col : str
        Rank column in [0, 1].
    likelihood : str
        ``"auto"`` or a family name (:func:`resolve_family`).
    icbs, years : sequence or None
        Restrict to these ICBs / years (unknown values are an error).
    standardise : (float, float) or None
        Fixed ``(loc, scale)`` of the outcome on the model scale instead of the data's mean and
        SD (used by simulation-based calibration, where the prior must not depend on the data).
    weights : str or None
        None: every practice counts equally (the practice-average SII).  A column name (e.g.
        ``"list_size"``): population weighting, each practice's likelihood contribution is
        weighted by its mean of that column (:func:`practice_weights`), so the ICB-year SII is
        the population-weighted gradient of the PHE SII.  Marginalisable families only.

    Returns
    -------
    GradientData
        Indices, the outcome on the model scale and the counts of dropped rows.
    """
    fam = resolve_family(outcome, likelihood)
    if weights is not None and not fam.marginalisable:
        raise ValueError(
            f"weights={weights!r}: population weighting of the gradient model needs a "
            f"marginalisable family (gaussian, lognormal), got likelihood {fam.name!r}"
        )
    row = find_outcome(outcome)
    denom = row.denominator if fam.needs_denominator and row is not None else None
    needed = [S.PRACTICE, S.YEAR, S.ICB, outcome, rank_col] + ([denom] if denom else [])
    needed += [weights] if weights is not None and weights not in needed else []
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise KeyError(f"panel is missing column(s) {missing} needed by the gradient model")
    df = panel
    dropped: dict[str, int] = {}
    if icbs is not None:
        icbs = [str(c) for c in icbs]
        unknown = sorted(set(icbs) - set(df[S.ICB].astype(str)))
        if unknown:
            raise ValueError(f"icbs not in the panel's {S.ICB} column: {unknown}")
        keep = df[S.ICB].astype(str).isin(icbs)
        dropped["icb not selected"] = int((~keep).sum())
        df = df[keep]
    if years is not None:
        years = [int(y) for y in years]
        unknown_y = sorted(set(years) - set(df[S.YEAR].astype(int)))
        if unknown_y:
            raise ValueError(f"years not in the panel's {S.YEAR} column: {unknown_y}")
        keep = df[S.YEAR].astype(int).isin(years)
        dropped["year not selected"] = int((~keep).sum())
        df = df[keep]

    def _drop(mask: pd.Series, reason: str) -> None:
        nonlocal df
        dropped[reason] = int(mask.sum())
        df = df[~mask]

    _drop(df[S.ICB].isna() | df[S.PRACTICE].isna(), f"missing {S.ICB} or {S.PRACTICE}")
    y_raw = pd.to_numeric(df[outcome], errors="coerce").astype(float)
    _drop(~np.isfinite(y_raw), f"missing {outcome}")
    r_raw = pd.to_numeric(df[rank_col], errors="coerce").astype(float)
    _drop(~np.isfinite(r_raw), f"missing {rank_col}")
    if denom:
        d_raw = pd.to_numeric(df[denom], errors="coerce").astype(float)
        _drop(~(np.isfinite(d_raw) & (d_raw > 0)), f"missing or non-positive {denom}")
    if fam.scale == "log":
        _drop(pd.to_numeric(df[outcome]).astype(float) <= 0, f"non-positive {outcome} (lognormal)")
    if df.empty:
        raise ValueError(f"no rows left to fit {outcome!r} after dropping: {dropped}")
    if weights is not None:
        w_raw = pd.to_numeric(df[weights], errors="coerce").astype(float).to_numpy()
        bad_w = ~(np.isfinite(w_raw) & (w_raw > 0))
        if bad_w.any():
            i = int(np.argmax(bad_w))
            raise ValueError(
                f"weights column {weights!r} must be positive and finite; row {df.index[i]!r} "
                f"has {df[weights].iloc[i]!r} ({int(bad_w.sum())} such rows)"
            )
    if df.duplicated([S.PRACTICE, S.YEAR]).any():
        first = df.loc[df.duplicated([S.PRACTICE, S.YEAR]), [S.PRACTICE, S.YEAR]].iloc[0]
        raise ValueError(f"duplicate practice-year rows, e.g. {tuple(first)}")

    r = df[rank_col].astype(float).to_numpy()
    bad = (r < 0) | (r > 1)
    if bad.any():
        raise ValueError(
            f"column {rank_col!r} must lie in [0, 1]; row {df.index[np.argmax(bad)]!r} has "
            f"{r[np.argmax(bad)]}"
        )
    y = df[outcome].astype(float).to_numpy()
    icb_codes = df[S.ICB].astype(str).to_numpy()
    year_vals = df[S.YEAR].astype(int).to_numpy()
    icb_levels = sorted(set(icb_codes))
    year_levels = sorted(set(year_vals.tolist()))
    if len(icb_levels) < 2 or len(year_levels) < 2:
        raise ValueError(
            f"the gradient model needs at least 2 ICBs and 2 years, got {len(icb_levels)} ICB(s) "
            f"and {len(year_levels)} year(s)"
        )
    g = pd.Index(icb_levels).get_indexer(icb_codes)
    t = pd.Index(year_levels).get_indexer(year_vals)
    pr_codes = df[S.PRACTICE].astype(str).to_numpy()
    pr_levels = sorted(set(pr_codes))
    pidx = pd.Index(pr_levels).get_indexer(pr_codes)
    n_t = len(year_levels)

    wcol = S.LIST_SIZE if S.LIST_SIZE in df.columns else None
    w_obs = (
        pd.to_numeric(df[wcol], errors="coerce").astype(float).fillna(0.0).to_numpy()
        if wcol
        else np.ones(len(df))
    )
    if weights is not None:
        wcol = weights
        w_obs = pd.to_numeric(df[weights]).astype(float).to_numpy()
    p_weight = None if weights is None else practice_weights(pidx, w_obs, len(pr_levels))
    weights_icb = np.zeros((len(icb_levels), n_t))
    np.add.at(weights_icb, (g, t), np.clip(w_obs, 0, None))
    weights_arr = weights_icb
    if np.any(weights_arr.sum(axis=0) <= 0):
        weights_arr = np.zeros_like(weights_arr)
        np.add.at(weights_arr, (g, t), 1.0)
        wcol = None
    weights_arr = weights_arr / weights_arr.sum(axis=0, keepdims=True)

    successes = trials = None
    n_rounded = 0
    if not fam.needs_denominator:
        ym = np.log(y) if fam.scale == "log" else y
        loc, scale = float(ym.mean()), float(ym.std())
        if not scale > 0:
            raise ValueError(f"outcome {outcome!r} is constant; cannot fit a gradient")
    else:
        if np.any((y < 0) | (y > 1)):
            i = int(np.argmax((y < 0) | (y > 1)))
            raise ValueError(
                f"proportion {outcome!r} must lie in [0, 1]; row {df.index[i]!r}: {y[i]}"
            )
        tr_raw = df[denom].astype(float).to_numpy()
        trials = np.rint(tr_raw).astype(np.int64)
        successes = np.rint(y * tr_raw).astype(np.int64)
        n_rounded = int(np.sum(~np.isclose(y * tr_raw, successes) | ~np.isclose(tr_raw, trials)))
        p = float(np.clip(successes.sum() / trials.sum(), 1e-4, 1 - 1e-4))
        loc, scale = float(np.log(p / (1 - p))), 1.0
        ym = y
        if fam.marginalisable:  # logit_normal: Gaussian on the standardised empirical logit
            ym = np.log((successes + 0.5) / (trials - successes + 0.5))
            loc, scale = float(ym.mean()), float(ym.std())
            successes = trials = None
    if standardise is not None:
        loc, scale = float(standardise[0]), float(standardise[1])
    return GradientData(
        outcome=outcome,
        rank_col=rank_col,
        likelihood=fam.name,
        icbs=icb_levels,
        years=year_levels,
        practices=pr_levels,
        practice_idx=pidx.astype(np.int64),
        cell_idx=(g * n_t + t).astype(np.int64),
        rc=r - 0.5,
        y=ym,
        loc=loc,
        scale=scale,
        weights=weights_arr,
        weight_source=wcol or "equal (no list_size column)",
        successes=successes,
        trials=trials,
        dropped={k: v for k, v in dropped.items()},
        n_rounded=n_rounded,
        practice_weight=p_weight,
        weights_col=weights,
    )


def practice_weights(
    practice_idx: np.ndarray, row_weight: np.ndarray, n_practice: int
) -> np.ndarray:
    """Likelihood weights of the practices for the population-weighted SII.

    A practice's weight is the mean of its rows' weights (list sizes move slowly within a
    practice; a practice-constant weight keeps the practice effects analytically integrable),
    rescaled so that the weights sum to Kish's effective sample size
    ``(sum v)^2 / sum v^2``: the weighted pseudo-likelihood then carries as much information as
    the weighted least-squares estimator has (its posterior SD matches the WLS sandwich SD under
    homoscedastic noise), not the nominal number of practices.

    Parameters
    ----------
    practice_idx : numpy.ndarray
        (N,) practice index of each row.
    row_weight : numpy.ndarray
        (N,) positive weight of each row (e.g. list size).
    n_practice : int
        Number of practices.

    Returns
    -------
    numpy.ndarray
        (P,) practice weights, summing to the effective sample size.
    """
    n_i = np.bincount(practice_idx, minlength=n_practice)
    v = np.bincount(practice_idx, weights=row_weight, minlength=n_practice) / n_i
    return np.asarray(v * v.sum() / np.sum(v**2), dtype=float)
