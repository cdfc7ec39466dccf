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
``outcome_draws`` is summarised by its per-cell sd (a normal approximation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal.diagnostics import Diagnostics, check_convergence
from hepcausal.models.backend import Backend, ModelSpec, check_backend, sample_model
from hepcausal.models.synthetic_control import (
    Method,
    SyntheticControlData,
    SyntheticControlPriors,
    build_model,
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
) -> SyntheticControlData:
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
    )


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
        assert x_err is not None  # drawn whenever the series carry standard errors
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
    priors: SyntheticControlPriors | Mapping[str, Any] | None = None,
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    units: str = "",
    backend: Backend = "pymc",
) -> SyntheticControlFit:
    """Fit a Bayesian synthetic control of ``treated`` (a column of ``wide``) from ``start`` on.

    ``wide``: index = time (strictly increasing), columns = units; donors = all other columns unless
    ``donors`` is given.  ``intercept`` only affects ``method='dirichlet'`` (the horseshoe always
    has one).  ``priors``: :class:`~hepcausal.models.synthetic_control.SyntheticControlPriors` or
    a dict of overrides (standardised scale).  ``settings`` defaults to
    ``SamplerSettings(target_accept=0.95)``.  ``backend``: the model is PyMC-only ('stan' is a
    ValueError saying so).  Headline = average post-period effect (observed minus
    counterfactual) with HDI, P(direction) and ``rope``.
    """
    check_backend(backend, model="synthetic-control", supported=("pymc",))
    d = prepare_panel(wide, treated, start, outcome_se, outcome_draws, donors)
    pri = SyntheticControlPriors.from_any(priors)
    s = settings or SamplerSettings(target_accept=0.95)
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
        "priors": {k: (np.asarray(v).tolist()) for k, v in pri.to_dict().items()},
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
