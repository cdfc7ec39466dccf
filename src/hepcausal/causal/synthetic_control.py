"""Bayesian synthetic control on any wide ``time x unit`` panel.

The model (:mod:`hepcausal.models.synthetic_control`: Dirichlet or horseshoe donor weights on a
standardised scale, PyMC only) is fitted here; the counterfactual of every period is the posterior
predictive of the treated unit's untreated outcome ``a + X_t w + sigma * e``; the effect of a period
is observed minus counterfactual; the headline is the average post-period effect.

Measurement error (``outcome_se`` or ``outcome_draws``): observed values are noisy measurements of
latent true values, ``obs ~ N(true, se)``.  Donors' pre-period true values are latent parameters
(non-centred ``X_true = X_obs + se * z``), the treated unit's pre-period likelihood is
``y_obs ~ N(X_true w, sqrt(sigma^2 + se^2))`` (latent true value integrated out).  Post-period donor
true values are drawn from ``N(X_obs, se)`` and the treated unit's true value from
``N(y_obs, se)``, so the effect (true minus counterfactual) carries every measurement error.
``outcome_draws`` (joint posterior draws of the whole panel, e.g. the gradient model's ICB x year
SII): with the default ``method='bayesian_bootstrap'`` each weight draw is fitted on one draw of
the series and its effect uses that same draw, so correlations across years and units carry
through; the NUTS methods summarise the draws by their per-cell sd (a normal approximation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal.diagnostics import Diagnostics, check_convergence
from hepcausal.models.backend import Backend, ModelSpec, check_backend, sample_model
from hepcausal.models.synthetic_control import (
    Method,
    Predictors,
    SyntheticControlData,
    SyntheticControlPriors,
    bootstrap_posterior,
    build_model,
    learn_predictor_weights,
)
from hepcausal.results import FitResult, append_terms
from hepcausal.sampling import SamplerSettings
from hepcausal.summaries import summarise_effect


@dataclass(repr=False)
class SyntheticControlFit(FitResult):
    """A fitted synthetic control.

    Estimands (``posterior["estimand"]``, term): ``avg_post_effect`` (headline),
    ``cumulative_effect`` and ``effect_<time>`` for every post period (observed minus
    counterfactual, including the residual noise of the counterfactual).

    Parameters
    ----------
    treated, start, method
        The treated unit, the first treated period and the weight prior.
    series
        Index = time: observed, counterfactual mean/HDI, effect mean/HDI, ``post`` flag.
    weights
        Index = donor: posterior mean, sd, HDI of each donor weight.
    pre_fit
        Pre-period RMSPE, R^2 and MAPE (%) of the posterior-mean counterfactual.

    Draws: ``idata.posterior_predictive`` holds ``counterfactual`` and ``effect`` (time),
    ``avg_post_effect`` and ``cumulative_effect``.
    """

    treated: str = ""
    start: Any = None
    method: str = "dirichlet"
    series: pd.DataFrame = field(default_factory=pd.DataFrame)
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    pre_fit: dict[str, float] = field(default_factory=dict)

    @property
    def counterfactual(self) -> xr.DataArray:
        """Posterior predictive draws of the untreated outcome (chain, draw, time)."""
        return self.idata.posterior_predictive["counterfactual"]

    @property
    def gaps(self) -> pd.Series:
        """Posterior-mean gap (observed minus counterfactual) per period."""
        return self.series["effect_mean"]


# ----------------------------------------------------------------------------- validation


def _check_finite(df: pd.DataFrame, what: str) -> None:
    bad = df.isna()
    if bad.to_numpy().any():
        cells = [(t, u) for t in df.index for u in df.columns if bad.at[t, u]]
        shown = ", ".join(f"unit {u!r} at time {t!r}" for t, u in cells[:5])
        raise ValueError(f"{what} has {len(cells)} missing values: {shown}")


def _se_from_draws(wide: pd.DataFrame, draws: object) -> pd.DataFrame:
    if isinstance(draws, xr.DataArray):
        other = [d for d in draws.dims if d not in ("chain", "draw")]
        if len(other) != 2:
            raise ValueError(f"outcome_draws needs dims (draw, time, unit), got {draws.dims}")
        sample = [d for d in draws.dims if d in ("chain", "draw")]
        tdim, udim = other
        da = draws.stack(_s=sample) if sample else draws.expand_dims("_s")
        sd = da.std("_s", ddof=1).transpose(tdim, udim)
        sd_df = pd.DataFrame(
            sd.values,
            index=list(sd.coords[tdim].values),
            columns=[str(u) for u in sd.coords[udim].values],
        )
        missing_u = [u for u in wide.columns if u not in sd_df.columns]
        missing_t = [t for t in wide.index if t not in sd_df.index]
        if missing_u or missing_t:
            raise ValueError(
                f"outcome_draws lacks units {missing_u} / times {missing_t} of the panel"
            )
        return sd_df.loc[list(wide.index), list(wide.columns)]
    arr = np.asarray(draws, dtype=float)
    if arr.ndim != 3 or arr.shape[1:] != wide.shape:
        raise ValueError(
            f"outcome_draws must be (draw, time, unit) = (n, {wide.shape[0]}, {wide.shape[1]}), "
            f"got {arr.shape}"
        )
    return pd.DataFrame(arr.std(axis=0, ddof=1), index=wide.index, columns=wide.columns)


def align_series_draws(wide: pd.DataFrame, draws: object) -> np.ndarray:
    """Joint draws of the panel as an ``(S, T, N)`` array aligned with ``wide``'s rows/columns.

    Parameters
    ----------
    wide : pandas.DataFrame
        ``time x unit`` panel (the point values).
    draws : xarray.DataArray or numpy.ndarray
        DataArray with ``chain``/``draw`` dims and two others (time, unit; any order, matched by
        their coordinates), or an array ``(S, T, N)`` in ``wide``'s order.

    Returns
    -------
    numpy.ndarray
        The aligned draws.
    """
    if isinstance(draws, xr.DataArray):
        sample = [d for d in draws.dims if d in ("chain", "draw")]
        other = [d for d in draws.dims if d not in ("chain", "draw")]
        if len(other) != 2:
            raise ValueError(f"outcome_draws needs dims (draw, time, unit), got {draws.dims}")
        da = draws.stack(_s=sample) if sample else draws.expand_dims("_s")
        c0 = [str(v) for v in da.coords[other[0]].values]
        tdim, udim = (other[1], other[0]) if set(map(str, wide.columns)) <= set(c0) else other
        units = [str(u) for u in da.coords[udim].values]
        times = list(da.coords[tdim].values)
        missing_u = [u for u in wide.columns if u not in units]
        missing_t = [t for t in wide.index if t not in times]
        if missing_u or missing_t:
            raise ValueError(
                f"outcome_draws lacks units {missing_u} / times {missing_t} of the panel"
            )
        da = da.assign_coords({udim: units}).transpose("_s", tdim, udim)
        da = da.sel({tdim: list(wide.index), udim: [str(u) for u in wide.columns]})
        return np.asarray(da.values, dtype=float)
    arr = np.asarray(draws, dtype=float)
    if arr.ndim != 3 or arr.shape[1:] != wide.shape:
        raise ValueError(
            f"outcome_draws must be (draw, time, unit) = (n, {wide.shape[0]}, {wide.shape[1]}), "
            f"got {arr.shape}"
        )
    return arr


def resolve_outcome_se(
    wide: pd.DataFrame, outcome_se: pd.DataFrame | None = None, outcome_draws: object = None
) -> pd.DataFrame | None:
    """The standard-error table (aligned with ``wide``) from ``outcome_se`` or ``outcome_draws``."""
    if outcome_se is not None and outcome_draws is not None:
        raise ValueError("give outcome_se or outcome_draws, not both")
    if outcome_draws is not None:
        se = _se_from_draws(wide, outcome_draws)
    elif outcome_se is not None:
        se = outcome_se.copy()
        se.columns = [str(c) for c in se.columns]
        missing_u = [u for u in wide.columns if u not in se.columns]
        missing_t = [t for t in wide.index if t not in se.index]
        if missing_u or missing_t:
            raise ValueError(f"outcome_se lacks units {missing_u} / times {missing_t} of the panel")
        se = se.loc[list(wide.index), list(wide.columns)].astype(float)
    else:
        return None
    _check_finite(se, "outcome_se")
    if (se.to_numpy() < 0).any():
        raise ValueError("outcome_se has negative standard errors")
    return se


def build_predictors(
    wide: pd.DataFrame,
    n_pre: int,
    covariates: pd.DataFrame | None = None,
    outcome_lags: Sequence[Any] = (),
    *,
    unit_col: str = "unit",
    time_col: str = "time",
    outcome_mean: bool = True,
) -> Predictors | None:
    """The predictors of Abadie et al. for the units (columns) of ``wide``, treated first.

    Parameters
    ----------
    wide : pandas.DataFrame
        ``time x unit`` outcome panel (columns: treated first, then donors).
    n_pre : int
        Number of pre-periods.
    covariates : pandas.DataFrame, optional
        *Wide*: index = unit, one column per (time-invariant) covariate.  *Long*: a column
        ``unit_col``, optionally ``time_col`` (then each covariate is averaged over the
        pre-periods where it is observed) and one column per covariate.
    outcome_lags : sequence
        Pre-period times whose outcome values are predictors (e.g. ADH's 1975, 1980, 1988).
    unit_col, time_col : str
        Column names of the long format.
    outcome_mean : bool
        Include the pre-period mean of the outcome.

    Returns
    -------
    Predictors or None
        None when there are no predictors (outcome-only synthetic control).
    """
    if covariates is None and not outcome_lags:
        return None
    units = [str(c) for c in wide.columns]
    pre_times = list(wide.index[:n_pre])
    Y = wide.to_numpy(dtype=float)[:n_pre]
    names: list[str] = []
    vals: list[np.ndarray] = []
    avgs: list[np.ndarray] = []
    if outcome_mean:
        names.append("outcome_mean")
        vals.append(Y)
        avgs.append(np.ones(n_pre))
    for lag in outcome_lags:
        if lag not in pre_times:
            raise ValueError(f"outcome_lags: {lag!r} is not a pre-period time ({pre_times})")
        a = np.zeros(n_pre)
        a[pre_times.index(lag)] = 1.0
        names.append(f"outcome_{lag}")
        vals.append(Y)
        avgs.append(a)
    if covariates is not None:
        if not isinstance(covariates, pd.DataFrame):
            raise TypeError(f"covariates must be a DataFrame, got {type(covariates).__name__}")
        cov = covariates.copy()
        if unit_col in cov.columns:  # long
            cov[unit_col] = cov[unit_col].astype(str)
            cols = [c for c in cov.columns if c not in (unit_col, time_col)]
            missing = sorted(set(units) - set(cov[unit_col]))
            if missing:
                raise ValueError(f"covariates: units {missing} have no rows ({unit_col!r} column)")
            for c in cols:
                if not pd.api.types.is_numeric_dtype(cov[c]):
                    raise ValueError(f"covariates: column {c!r} is not numeric")
                if time_col in cov.columns:
                    tab = cov.pivot_table(
                        index=time_col, columns=unit_col, values=c, aggfunc="mean"
                    )
                    tab = tab.reindex(index=pre_times, columns=units)
                    obs = tab.notna().all(axis=1).to_numpy()
                    if not obs.any():
                        raise ValueError(
                            f"covariates: {c!r} is not observed for every unit in any pre-period"
                        )
                    M = np.nan_to_num(tab.to_numpy(dtype=float))
                    a = obs.astype(float)
                else:
                    ser = cov.groupby(unit_col)[c].mean().reindex(units)
                    if ser.isna().any():
                        raise ValueError(
                            f"covariates: {c!r} missing for units {list(ser.index[ser.isna()])}"
                        )
                    M = np.broadcast_to(ser.to_numpy(dtype=float), (n_pre, len(units))).copy()
                    a = np.ones(n_pre)
                names.append(str(c))
                vals.append(M)
                avgs.append(a)
        else:  # wide: index = unit
            cov.index = cov.index.astype(str)
            missing = sorted(set(units) - set(cov.index))
            if missing:
                raise ValueError(f"covariates: units {missing} are not in the index")
            for c in cov.columns:
                ser = pd.to_numeric(cov[c], errors="coerce").reindex(units)
                if ser.isna().any():
                    raise ValueError(
                        f"covariates: column {c!r} is missing or not numeric for units "
                        f"{list(ser.index[ser.isna()])}"
                    )
                names.append(str(c))
                vals.append(np.broadcast_to(ser.to_numpy(float), (n_pre, len(units))).copy())
                avgs.append(np.ones(n_pre))
    return Predictors(names=names, values=np.stack(vals), avg=np.stack(avgs))


def prepare_panel(
    wide: pd.DataFrame,
    treated: str,
    start: Any,
    outcome_se: pd.DataFrame | None = None,
    outcome_draws: object = None,
    donors: list[str] | None = None,
    covariates: pd.DataFrame | None = None,
    outcome_lags: Sequence[Any] = (),
) -> SyntheticControlData:
    """Validate the panel and return arrays (used by the fit and the placebo tests).

    Parameters
    ----------
    wide : pandas.DataFrame
        ``time x unit`` panel.
    treated : str
        Treated unit.
    start : object
        First treated period.
    outcome_se, outcome_draws : optional
        Measurement error (see :func:`resolve_outcome_se`).
    donors : list of str, optional
        Donor units (default: all other columns).
    covariates, outcome_lags : optional
        Predictors (see :func:`build_predictors`).

    Returns
    -------
    SyntheticControlData
        The arrays.
    """
    if not isinstance(wide, pd.DataFrame):
        raise TypeError(f"wide must be a pandas DataFrame (time x unit), got {type(wide).__name__}")
    wide = wide.copy()
    wide.columns = [str(c) for c in wide.columns]
    treated = str(treated)
    if wide.columns.duplicated().any():
        raise ValueError(
            f"duplicated unit columns: {sorted(set(wide.columns[wide.columns.duplicated()]))}"
        )
    if treated not in wide.columns:
        raise KeyError(
            f"treated unit {treated!r} is not a column of the panel (units: {list(wide.columns)})"
        )
    if start not in wide.index:
        raise KeyError(f"start {start!r} is not in the panel's time index ({list(wide.index)})")
    if not wide.index.is_monotonic_increasing or wide.index.duplicated().any():
        raise ValueError("the panel's time index must be strictly increasing")
    n_pre = int(wide.index.get_loc(start))
    if n_pre < 2:
        raise ValueError(
            f"need at least 2 pre-treatment periods before start={start!r}, got {n_pre}"
        )
    if donors is None:
        donors = [c for c in wide.columns if c != treated]
    else:
        donors = [str(d) for d in donors]
        bad = [d for d in donors if d not in wide.columns or d == treated]
        if bad:
            raise KeyError(f"donors {bad} are not donor columns of the panel")
    if len(donors) < 2:
        raise ValueError(f"need at least 2 donor units, got {len(donors)}: {donors}")
    wide = wide[[treated, *donors]]
    _check_finite(wide, "the panel")
    se = resolve_outcome_se(wide, outcome_se, outcome_draws)
    vals = wide.to_numpy(dtype=float)
    pre = vals[:n_pre]
    m = float(pre.mean())
    s = float(pre.std())
    if not s > 0:
        s = 1.0
    return SyntheticControlData(
        times=list(wide.index),
        donors=donors,
        treated=treated,
        start=start,
        n_pre=n_pre,
        y=vals[:, 0],
        X=vals[:, 1:],
        se_y=None if se is None else se.to_numpy()[:, 0],
        se_X=None if se is None else se.to_numpy()[:, 1:],
        m=m,
        s=s,
        predictors=build_predictors(wide, n_pre, covariates, outcome_lags),
    )


def convex_hull_check(d: SyntheticControlData) -> list[Any]:
    """Pre-periods where the treated unit lies outside the donors' range (no convex combination
    of donors can reach it there).

    Parameters
    ----------
    d : SyntheticControlData
        The prepared panel.

    Returns
    -------
    list
        The offending pre-period times (empty when the treated series is inside the range).
    """
    y, X = d.y[: d.n_pre], d.X[: d.n_pre]
    out = (y > X.max(axis=1)) | (y < X.min(axis=1))
    return [d.times[i] for i in np.flatnonzero(out)]


def _counterfactual_draws(
    d: SyntheticControlData,
    w: np.ndarray,
    a: np.ndarray,
    sigma: np.ndarray,
    x_err: np.ndarray | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive (S, T) draws on the original scale: mu, counterfactual, effect."""
    rng = np.random.default_rng(seed)
    S, T = w.shape[0], len(d.times)
    X = np.broadcast_to((d.X - d.m) / d.s, (S, *d.X.shape)).copy()
    if d.se_X is not None:
        seX = d.se_X / d.s
        if x_err is None:  # bootstrap fit: the latent pre-period values are not sampled
            x_err = rng.standard_normal((S, d.n_pre, X.shape[2]))
        X[:, : d.n_pre] += seX[: d.n_pre] * x_err  # posterior of the latent pre-period values
        X[:, d.n_pre :] += seX[d.n_pre :] * rng.standard_normal((S, T - d.n_pre, X.shape[2]))
    mu_s = np.einsum("stj,sj->st", X, w) + a[:, None]
    cf_s = mu_s + sigma[:, None] * rng.standard_normal((S, T))
    y_true = np.broadcast_to(d.y, (S, T)).copy()
    if d.se_y is not None:
        y_true = y_true + d.se_y * rng.standard_normal((S, T))
    mu = d.m + d.s * mu_s
    cf = d.m + d.s * cf_s
    return mu, cf, y_true - cf


def _pre_fit(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    resid = y - yhat
    sst = float(((y - y.mean()) ** 2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(np.abs(resid / y)) * 100) if np.all(y != 0) else float("nan")
    return {
        "rmspe": float(np.sqrt(np.mean(resid**2))),
        "r2": float(1 - (resid**2).sum() / sst) if sst > 0 else float("nan"),
        "mape": mape,
    }


def fit_synthetic_control(
    wide: pd.DataFrame,
    treated: str,
    start: Any,
    *,
    method: Method = "bayesian_bootstrap",
    intercept: bool = False,
    donors: list[str] | None = None,
    outcome_se: pd.DataFrame | None = None,
    outcome_draws: object = None,
    covariates: pd.DataFrame | None = None,
    outcome_lags: Sequence[Any] = (),
    settings: SamplerSettings | None = None,
    priors: SyntheticControlPriors | Mapping[str, Any] | None = None,
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    units: str = "",
    backend: Backend = "pymc",
) -> SyntheticControlFit:
    """Fit a Bayesian synthetic control of ``treated`` (a column of ``wide``) from ``start`` on.

    ``method``: ``'bayesian_bootstrap'`` (default: the penalised simplex fit of Abadie et al.
    with a Bayesian-bootstrap posterior, exact independent draws; reproduces the published
    Prop 99 weights), ``'dirichlet'`` or ``'horseshoe'`` (PyMC NUTS models); see
    :mod:`hepcausal.models.synthetic_control`.

    ``wide``: index = time (strictly increasing), columns = units; donors = all other columns unless
    ``donors`` is given.  ``intercept`` only affects ``method='dirichlet'`` (the horseshoe always
    has one).  ``priors``: :class:`~hepcausal.models.synthetic_control.SyntheticControlPriors` or
    a dict of overrides (standardised scale).  ``settings`` defaults to
    ``SamplerSettings(target_accept=0.95)``.  ``backend``: the model is PyMC-only ('stan' is a
    ValueError saying so).  Headline = average post-period effect (observed minus
    counterfactual) with HDI, P(direction) and ``rope``.
    """
    check_backend(backend, model="synthetic-control", supported=("pymc",))
    if method not in ("bayesian_bootstrap", "dirichlet", "horseshoe"):
        raise ValueError(
            f"method must be 'bayesian_bootstrap', 'dirichlet' or 'horseshoe', got {method!r}"
        )
    joint = method == "bayesian_bootstrap" and outcome_draws is not None
    d = prepare_panel(
        wide,
        treated,
        start,
        outcome_se,
        None if joint else outcome_draws,
        donors,
        covariates,
        outcome_lags,
    )
    series_draws: np.ndarray | None = None
    if joint:
        sub = wide.copy()
        sub.columns = [str(c) for c in sub.columns]
        series_draws = align_series_draws(sub[[d.treated, *d.donors]], outcome_draws)
    pri = SyntheticControlPriors.from_any(priors)
    if d.predictors is not None:
        if method != "bayesian_bootstrap":
            raise ValueError(
                "covariates / outcome_lags (predictors) need method='bayesian_bootstrap'"
            )
        P = d.predictors.matrix()
        n = d.n_pre
        v = learn_predictor_weights(
            P, (d.y[:n] - d.m) / d.s, (d.X[:n] - d.m) / d.s, ridge=pri.ridge
        )
        d = replace(d, predictors=replace(d.predictors, v=v))
    outside = convex_hull_check(d)
    if outside and not (intercept or method == "horseshoe"):
        import warnings

        warnings.warn(
            f"synthetic control: {d.treated}'s pre-period value lies outside the donors' range "
            f"(above every donor or below every donor) in {len(outside)} of {d.n_pre} "
            f"pre-periods ({', '.join(map(str, outside[:6]))}): no convex combination of donors "
            "can match it there; consider intercept=True (method='dirichlet'), the synthetic DiD "
            "(hepcausal.causal.sdid) or other donors",
            UserWarning,
            stacklevel=2,
        )
    s = settings or SamplerSettings(target_accept=0.95)
    if method == "bayesian_bootstrap":
        if intercept:
            raise ValueError("intercept=True needs method='dirichlet' (the bootstrap fit has none)")
        if series_draws is not None:  # pair each bootstrap draw with one draw of the series
            n_tot = s.chains * s.draws
            idx = np.random.default_rng([s.seed, 99]).choice(
                series_draws.shape[0], n_tot, replace=series_draws.shape[0] < n_tot
            )
            series_draws = series_draws[idx]
        bb = bootstrap_posterior(
            d, chains=s.chains, draws=s.draws, seed=s.seed, priors=pri, series_draws=series_draws
        )
        coords = {"chain": np.arange(s.chains), "draw": np.arange(s.draws)}
        idata = az.InferenceData(
            posterior=xr.Dataset(
                {
                    "weights": (("chain", "draw", "donor"), bb["weights"]),
                    "sigma": (("chain", "draw"), bb["sigma"]),
                },
                coords={**coords, "donor": d.donors},
            ),
            sample_stats=xr.Dataset(
                {"diverging": (("chain", "draw"), np.zeros((s.chains, s.draws), dtype=bool))},
                coords=coords,
            ),
        )
        checked = ["weights", "sigma"]
    else:
        model = build_model(d, method, intercept=intercept, priors=pri)
        spec = ModelSpec(name="synthetic-control", build_pymc=lambda: model, mass_matrix="low_rank")
        idata = sample_model(spec, backend, s)
        raw = ("X_err", "weights_raw", "z_w")  # latent helpers: checked through ``weights``
        checked = [rv.name for rv in model.free_RVs if rv.name not in raw] + ["weights"]
    diag: Diagnostics = check_convergence(idata, checked)

    post = idata.posterior
    n_chain, n_draw = int(post.sizes["chain"]), int(post.sizes["draw"])

    def flat(v: str) -> np.ndarray:
        return np.asarray(post[v].values, dtype=float).reshape(n_chain * n_draw, *post[v].shape[2:])

    w = flat("weights")
    a = flat("intercept") if "intercept" in post else np.zeros(w.shape[0])
    x_err = flat("X_err") if "X_err" in post else None
    mu, cf, eff = _counterfactual_draws(d, w, a, flat("sigma"), x_err, s.seed + 1)
    if series_draws is not None:  # the series' own joint draws replace the observed values
        noise = cf - mu
        mu = np.einsum("stj,sj->st", series_draws[:, :, 1:], w) + a[:, None] * d.s
        cf = mu + noise
        eff = series_draws[:, :, 0] - cf

    times = d.times
    post_mask = np.arange(len(times)) >= d.n_pre
    avg = eff[:, post_mask].mean(axis=1)
    cum = eff[:, post_mask].sum(axis=1)
    shape = (n_chain, n_draw)
    pp = xr.Dataset(
        {
            "counterfactual": (("chain", "draw", "time"), cf.reshape(*shape, -1)),
            "effect": (("chain", "draw", "time"), eff.reshape(*shape, -1)),
            "avg_post_effect": (("chain", "draw"), avg.reshape(shape)),
            "cumulative_effect": (("chain", "draw"), cum.reshape(shape)),
        },
        coords={"chain": post.chain.values, "draw": post.draw.values, "time": times},
    )
    idata.add_groups(posterior_predictive=pp)

    terms = {"avg_post_effect": avg, "cumulative_effect": cum}
    terms.update({f"effect_{times[i]}": eff[:, i] for i in np.flatnonzero(post_mask)})
    append_terms(idata, terms)  # posterior["estimand"] (term): the contract of every fit
    effects = {
        "avg_post_effect": summarise_effect(
            avg,
            name=f"average post-period effect on {d.treated}",
            hdi_prob=hdi_prob,
            rope=rope,
            units=units,
        ),
        "cumulative_effect": summarise_effect(
            cum, name="cumulative post-period effect", hdi_prob=hdi_prob, units=units
        ),
    }
    for i in np.flatnonzero(post_mask):
        effects[f"effect_{times[i]}"] = summarise_effect(
            eff[:, i], name=f"effect in {times[i]}", hdi_prob=hdi_prob, units=units
        )

    cf_hdi = np.array([az.hdi(cf[:, i], hdi_prob=hdi_prob) for i in range(len(times))])
    eff_hdi = np.array([az.hdi(eff[:, i], hdi_prob=hdi_prob) for i in range(len(times))])
    series = pd.DataFrame(
        {
            "observed": d.y,
            "counterfactual_mean": cf.mean(axis=0),
            "counterfactual_low": cf_hdi[:, 0],
            "counterfactual_high": cf_hdi[:, 1],
            "effect_mean": eff.mean(axis=0),
            "effect_low": eff_hdi[:, 0],
            "effect_high": eff_hdi[:, 1],
            "post": post_mask,
        },
        index=pd.Index(times, name="time"),
    )
    w_hdi = np.array([az.hdi(w[:, j], hdi_prob=hdi_prob) for j in range(w.shape[1])])
    weights = pd.DataFrame(
        {
            "mean": w.mean(axis=0),
            "sd": w.std(axis=0, ddof=1),
            "hdi_low": w_hdi[:, 0],
            "hdi_high": w_hdi[:, 1],
        },
        index=pd.Index(d.donors, name="donor"),
    ).sort_values("mean", ascending=False)
    pre_fit = _pre_fit(d.y[: d.n_pre], mu[:, : d.n_pre].mean(axis=0))
    meta = {
        "estimator": "synthetic_control",
        "method": method,
        "intercept": intercept or method == "horseshoe",
        "treated": d.treated,
        "start": start,
        "donors": d.donors,
        "n_pre": d.n_pre,
        "n_post": int(post_mask.sum()),
        "measurement_error": (
            "joint series draws" if series_draws is not None else d.se_y is not None
        ),
        "priors": {k: (np.asarray(v).tolist()) for k, v in pri.to_dict().items()},
        "settings": s.to_dict(),
        "standardisation": {"mean": d.m, "sd": d.s},
        "pre_fit": pre_fit,
        "outside_convex_hull": [str(t) for t in outside],
        "predictor_weights": (
            {}
            if d.predictors is None or d.predictors.v is None
            else dict(zip(d.predictors.names, map(float, d.predictors.v), strict=True))
        ),
    }
    return SyntheticControlFit(
        idata=idata,
        diagnostics=diag,
        effects=effects,
        meta=meta,
        treated=d.treated,
        start=start,
        method=method,
        series=series,
        weights=weights,
        pre_fit=pre_fit,
    )
