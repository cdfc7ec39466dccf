"""Bayesian synthetic control on any wide ``time x unit`` panel.

Model (on a standardised scale: every value minus ``m`` and divided by ``s``, the mean and sd of all
pre-period values of the treated unit and donors, so ``X w`` with simplex ``w`` stays a convex
combination):

* ``method='dirichlet'``: ``w ~ Dirichlet(concentration)`` (simplex weights, default
  concentration 1 = uniform on the simplex), ``y_pre ~ N(X_pre w [+ a], sigma)``.  No intercept by
  default (classic synthetic control: the treated unit is a convex combination of donors);
  ``intercept=True`` adds ``a ~ N(0, prior_intercept)`` (the de-meaned synthetic control).
* ``method='horseshoe'``: unconstrained weights with the regularised horseshoe prior
  (Piironen & Vehtari 2017; non-centred) plus an intercept (always).

``sigma ~ HalfNormal(prior_sigma)``.  The counterfactual of every period is the posterior
predictive of the treated unit's untreated outcome ``a + X_t w + sigma * e``; the effect of a period
is observed minus counterfactual; the headline is the average post-period effect.

Measurement error (``outcome_se`` or ``outcome_draws``): observed values are noisy measurements of
latent true values, ``obs ~ N(true, se)``.  Donors' pre-period true values are latent parameters
(non-centred ``X_true = X_obs + se * z``), the treated unit's pre-period likelihood is
``y_obs ~ N(X_true w, sqrt(sigma^2 + se^2))`` (latent true value integrated out).  Post-period donor
true values are drawn from ``N(X_obs, se)`` and the treated unit's true value from
``N(y_obs, se)``, so the effect (true minus counterfactual) carries every measurement error.
``outcome_draws`` is summarised by its per-cell sd (a normal approximation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal.diagnostics import Diagnostics, check_convergence
from hepcausal.results import FitResult, append_terms
from hepcausal.sampling import SamplerSettings, sample_pymc
from hepcausal.summaries import summarise_effect

Method = Literal["dirichlet", "horseshoe"]

PRIOR_DEFAULTS: dict[str, float] = {
    # Dirichlet concentration (scalar or one per donor).  1 = uniform on the simplex; with many
    # donors (say > 20) a sparse prior such as 0.1 fits the pre-period far better (Prop 99) but
    # mixes more slowly (multimodal near-corner posteriors: use more draws).
    "concentration": 1.0,
    "sigma": 1.0,  # HalfNormal scale of the residual sd (standardised units)
    "intercept": 1.0,  # Normal sd of the intercept (standardised units)
    "expected_donors": 3.0,  # horseshoe: prior guess of the number of non-zero weights (p0)
    "slab_scale": 1.0,  # horseshoe: slab scale of large weights
    "slab_df": 4.0,  # horseshoe: slab degrees of freedom
}


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


@dataclass(frozen=True)
class _Data:
    times: list[Any]
    donors: list[str]
    treated: str
    start: Any
    n_pre: int
    y: np.ndarray  # (T,)
    X: np.ndarray  # (T, J)
    se_y: np.ndarray | None  # (T,)
    se_X: np.ndarray | None  # (T, J)
    m: float
    s: float


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


def prepare_panel(
    wide: pd.DataFrame,
    treated: str,
    start: Any,
    outcome_se: pd.DataFrame | None = None,
    outcome_draws: object = None,
    donors: list[str] | None = None,
) -> _Data:
    """Validate the panel and return arrays (used by the fit and the placebo tests)."""
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
    return _Data(
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
    )


def _priors(priors: Mapping[str, Any] | None) -> dict[str, Any]:
    p: dict[str, Any] = dict(PRIOR_DEFAULTS)
    if priors:
        unknown = sorted(set(priors) - set(PRIOR_DEFAULTS))
        if unknown:
            raise KeyError(f"unknown prior keys {unknown}; known: {sorted(PRIOR_DEFAULTS)}")
        p.update(priors)
    return p


# ----------------------------------------------------------------------------- model


def build_model(d: _Data, method: Method, *, intercept: bool, priors: Mapping[str, Any]) -> Any:
    """The PyMC model on the standardised scale; data in ``pm.Data`` containers (``y_pre``,
    ``X_pre``, ``se_y_pre``, ``se_X_pre``) so placebo refits can swap them without recompiling."""
    import pymc as pm
    import pytensor.tensor as pt

    if method not in ("dirichlet", "horseshoe"):
        raise ValueError(f"method must be 'dirichlet' or 'horseshoe', got {method!r}")
    n_pre, J = d.n_pre, len(d.donors)
    y_pre = (d.y[:n_pre] - d.m) / d.s
    X_pre = (d.X[:n_pre] - d.m) / d.s
    coords = {"donor": d.donors, "pre_time": list(range(n_pre))}
    with pm.Model(coords=coords) as model:
        y_d = pm.Data("y_pre", y_pre, dims="pre_time")
        X_d = pm.Data("X_pre", X_pre, dims=("pre_time", "donor"))
        if d.se_X is not None:
            seX = pm.Data("se_X_pre", d.se_X[:n_pre] / d.s, dims=("pre_time", "donor"))
            z = pm.Normal("X_err", 0.0, 1.0, dims=("pre_time", "donor"))
            X_use = X_d + seX * z
        else:
            X_use = X_d
        sigma = pm.HalfNormal("sigma", float(priors["sigma"]))
        if method == "dirichlet":
            conc = np.broadcast_to(np.asarray(priors["concentration"], dtype=float), (J,)).copy()
            if not np.all(conc > 0):
                raise ValueError("priors['concentration'] must be > 0")
            w = pm.Dirichlet("weights", a=conc, dims="donor")
            mu = pt.dot(X_use, w)
            if intercept:
                a = pm.Normal("intercept", 0.0, float(priors["intercept"]))
                mu = mu + a
        else:
            p0 = float(priors["expected_donors"])
            if not 0 < p0 < J:
                raise ValueError(f"priors['expected_donors'] must be in (0, {J}), got {p0}")
            tau0 = p0 / (J - p0) / np.sqrt(n_pre)
            slab_df, slab_scale = float(priors["slab_df"]), float(priors["slab_scale"])
            a = pm.Normal("intercept", 0.0, float(priors["intercept"]))
            tau = pm.HalfStudentT("tau", nu=2, sigma=tau0 * sigma)
            lam = pm.HalfStudentT("lam", nu=5, sigma=1.0, dims="donor")
            c2 = pm.InverseGamma("c2", slab_df / 2, slab_df * slab_scale**2 / 2)
            lam_t = pt.sqrt(c2 * lam**2 / (c2 + tau**2 * lam**2))
            z_w = pm.Normal("z_w", 0.0, 1.0, dims="donor")
            w = pm.Deterministic("weights", z_w * tau * lam_t, dims="donor")
            mu = a + pt.dot(X_use, w)
        if d.se_y is not None:
            se_y = pm.Data("se_y_pre", d.se_y[:n_pre] / d.s, dims="pre_time")
            sd = pt.sqrt(sigma**2 + se_y**2)
        else:
            sd = sigma
        pm.Normal("y_obs", mu=mu, sigma=sd, observed=y_d, dims="pre_time")
    return model


def _counterfactual_draws(
    d: _Data, w: np.ndarray, a: np.ndarray, sigma: np.ndarray, x_err: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior predictive (S, T) draws on the original scale: mu, counterfactual, effect."""
    rng = np.random.default_rng(seed)
    S, T = w.shape[0], len(d.times)
    X = np.broadcast_to((d.X - d.m) / d.s, (S, *d.X.shape)).copy()
    if d.se_X is not None:
        seX = d.se_X / d.s
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
    method: Method = "dirichlet",
    intercept: bool = False,
    donors: list[str] | None = None,
    outcome_se: pd.DataFrame | None = None,
    outcome_draws: object = None,
    settings: SamplerSettings | None = None,
    priors: Mapping[str, Any] | None = None,
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    units: str = "",
) -> SyntheticControlFit:
    """Fit a Bayesian synthetic control of ``treated`` (a column of ``wide``) from ``start`` on.

    ``wide``: index = time (strictly increasing), columns = units; donors = all other columns unless
    ``donors`` is given.  ``intercept`` only affects ``method='dirichlet'`` (the horseshoe always
    has one).  ``priors`` overrides :data:`PRIOR_DEFAULTS`.  ``settings`` defaults to
    ``SamplerSettings(target_accept=0.95)``.  Headline = average post-period effect (observed minus
    counterfactual) with HDI, P(direction) and ``rope``.
    """
    d = prepare_panel(wide, treated, start, outcome_se, outcome_draws, donors)
    pri = _priors(priors)
    s = settings or SamplerSettings(target_accept=0.95)
    model = build_model(d, method, intercept=intercept, priors=pri)
    idata = sample_pymc(model, s, mass_matrix="low_rank")
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
        "measurement_error": d.se_y is not None,
        "priors": {k: (np.asarray(v).tolist()) for k, v in pri.items()},
        "settings": s.to_dict(),
        "standardisation": {"mean": d.m, "sd": d.s},
        "pre_fit": pre_fit,
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


# ----------------------------------------------------------------------------- MAP (placebos)


class MapFitter:
    """Posterior-mode fits of one model structure, compiled once and refitted on new data.

    Used by the placebo tests (``inference='map'``): every placebo has the same numbers of
    pre-periods and donors, so only the ``pm.Data`` values change.  The mode is found in the
    unconstrained parameterisation (simplex transform for the Dirichlet weights, Jacobian included,
    which keeps the mode finite for concentrations < 1); the weights are close to the constrained
    least-squares (classic) synthetic control, slightly shrunk towards the prior.
    With measurement error the treated unit's standard errors enter the likelihood (precision
    weighting); the donors' latent true values are not optimised (their mode is ill-posed and
    slow to find), so the point gaps use the observed donor values.
    """

    def __init__(
        self, template: _Data, method: Method, *, intercept: bool, priors: Mapping[str, Any]
    ):
        import pytensor
        import pytensor.tensor as pt
        from pytensor.graph.replace import graph_replace

        self.method = method
        self.intercept = intercept or method == "horseshoe"
        template = replace(template, se_X=None)
        self.model = build_model(template, method, intercept=intercept, priors=_priors(priors))
        m = self.model
        value_vars = m.continuous_value_vars
        ip = m.initial_point()
        self._names = [v.name for v in value_vars]
        self._shapes = [np.shape(ip[n]) for n in self._names]
        self._x0 = np.concatenate([np.ravel(ip[n]) for n in self._names])
        x = pt.vector("x", dtype="float64")
        repl, i = {}, 0
        for v, shp in zip(value_vars, self._shapes, strict=True):
            size = int(np.prod(shp)) if shp else 1
            repl[v] = x[i : i + size].reshape(shp) if shp else x[i]
            i += size
        logp = m.logp(jacobian=True)
        grad = pt.grad(logp, value_vars)
        grad_flat = pt.concatenate([g.ravel() for g in grad])
        outs = graph_replace([-logp, -grad_flat], repl, strict=False)
        self._f = pytensor.function([x], outs)
        wanted = [m["weights"]] + ([m["intercept"]] if "intercept" in m.named_vars else [])
        wanted_vals = graph_replace(m.replace_rvs_by_values(wanted), repl, strict=False)
        self._point = pytensor.function([x], wanted_vals, on_unused_input="ignore")

    def fit(self, d: _Data) -> tuple[np.ndarray, np.ndarray]:
        """(weights, mu) with mu the posterior-mode counterfactual mean on the original scale."""
        import pymc as pm
        from scipy.optimize import minimize

        n_pre = d.n_pre
        new = {"y_pre": (d.y[:n_pre] - d.m) / d.s, "X_pre": (d.X[:n_pre] - d.m) / d.s}
        if d.se_y is not None:
            new["se_y_pre"] = d.se_y[:n_pre] / d.s
        pm.set_data(new, model=self.model)
        res = minimize(
            lambda v: tuple(self._f(v)),
            self._x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 5000},
        )
        vals = self._point(res.x)
        w = np.asarray(vals[0], dtype=float)
        a = float(vals[1]) if len(vals) > 1 else 0.0
        mu = d.m + d.s * (((d.X - d.m) / d.s) @ w + a)
        return w, mu
