"""The Bayesian synthetic-control model (PyMC only) and its posterior-mode fitter.

Model (on a standardised scale: every value minus ``m`` and divided by ``s``, the mean and sd of all
pre-period values of the treated unit and donors, so ``X w`` with simplex ``w`` stays a convex
combination):

* ``method='bayesian_bootstrap'`` (default): the penalised simplex fit of Abadie et al.
  (``w = argmin ||y_pre - X_pre w||^2 + ridge ||w||^2`` over the simplex, the constrained
  least-squares synthetic control), with the weights' posterior given by Rubin's (1981) Bayesian
  bootstrap of the pre-periods (Dirichlet(1) period weights; each draw is the weighted simplex
  fit), and the residual sd from its conjugate conditional posterior
  ``sigma^2 | w ~ scaled-Inv-chi2(nu0 + n_pre, (nu0 s0^2 + RSS(w)) / (nu0 + n_pre))`` whose prior
  scale ``s0`` is on the outcome's own scale (``residual_scale`` times the SD of the treated unit's
  pre-period first differences; ``nu0 = residual_df``).  The draws are exact and independent (no
  MCMC; chains are independent streams, so R-hat and ESS are reported but trivially pass).  Why:
  with more donors than pre-periods the likelihood is flat along the null space of ``X_pre``, so
  the posterior *mean* of any Bayesian simplex prior is pulled by the prior's volume (Dirichlet(1):
  spread weights and an inflated residual sd) or, for sparse priors (concentration < 1,
  logistic-normal), is multimodal and does not converge (measured on Prop 99).
* ``method='dirichlet'``: ``w ~ Dirichlet(concentration)`` (simplex weights, default
  concentration 1 = uniform on the simplex), ``y_pre ~ N(X_pre w [+ a], sigma)``.  No intercept by
  default (classic synthetic control: the treated unit is a convex combination of donors);
  ``intercept=True`` adds ``a ~ N(0, intercept)`` (the de-meaned synthetic control).
* ``method='horseshoe'``: unconstrained weights with the regularised horseshoe prior
  (Piironen & Vehtari 2017; non-centred) plus an intercept (always).

``sigma ~ HalfNormal(sigma)``.  Measurement error (``se_X``, ``se_y``): donors' pre-period true
values are latent (non-centred ``X_true = X_obs + se * z``), and the treated unit's pre-period
likelihood is ``y_obs ~ N(X_true w, sqrt(sigma^2 + se^2))``.

Priors (the package convention, :mod:`hepcausal.models.priors`): the scales in
:class:`SyntheticControlPriors` are on the standardised scale above (``sigma``, ``intercept``,
``slab_scale``); ``concentration``, ``expected_donors`` and ``slab_df`` are unitless.

Backends: PyMC only (no Stan program; :func:`hepcausal.models.backend.check_backend` says so).
The fitting, counterfactuals and summaries are in :mod:`hepcausal.causal.synthetic_control`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from hepcausal.models.priors import Priors

Method = Literal["bayesian_bootstrap", "dirichlet", "horseshoe"]

__all__ = [
    "MapFitter",
    "Method",
    "Predictors",
    "SyntheticControlData",
    "SyntheticControlPriors",
    "bootstrap_posterior",
    "build_model",
    "learn_predictor_weights",
    "predictor_fit",
    "simplex_weights",
]


@dataclass(frozen=True)
class SyntheticControlPriors(Priors):
    """Prior parameters of the synthetic-control model (standardised scale).

    Parameters
    ----------
    concentration : float or tuple of float
        Dirichlet concentration (scalar or one per donor).  1 = uniform on the simplex; with many
        donors (say > 20) a sparse prior such as 0.1 fits the pre-period far better (Prop 99) but
        mixes more slowly (multimodal near-corner posteriors: use more draws).
    sigma : float
        HalfNormal scale of the residual sd.
    intercept : float
        Normal sd of the intercept.
    expected_donors : float
        Horseshoe: prior guess of the number of non-zero weights (p0).
    slab_scale : float
        Horseshoe: slab scale of large weights.
    slab_df : float
        Horseshoe: slab degrees of freedom.
    residual_scale : float
        Bayesian bootstrap: prior guess of the residual sd as a multiple of the SD of the treated
        unit's pre-period first differences (the outcome's own scale).
    residual_df : float
        Bayesian bootstrap: prior degrees of freedom of the residual variance.
    ridge : float
        Bayesian bootstrap and placebos: ridge penalty on the weights (standardised scale, per
        pre-period); a small value makes the simplex fit unique.
    """

    concentration: float | tuple[float, ...] = 1.0
    sigma: float = 1.0
    intercept: float = 1.0
    expected_donors: float = 3.0
    slab_scale: float = 1.0
    slab_df: float = 4.0
    residual_scale: float = 1.0
    residual_df: float = 1.0
    ridge: float = 1e-6


@dataclass(frozen=True)
class Predictors:
    """Predictors of Abadie et al.: each is a pre-period average of a per-period value.

    Predictor ``k`` of unit ``i`` is ``sum_t a[k, t] M[k, t, i] / sum_t a[k, t]``: an outcome lag
    (``a`` = indicator of one period), the pre-period mean of the outcome (``a`` = 1) or of a
    covariate (``a`` = 1 where observed; a time-invariant covariate is constant over ``t``).
    Under the Bayesian bootstrap the averages use the draw's period weights ``a * p``.

    Parameters
    ----------
    names : list of str
        Predictor names.
    values : numpy.ndarray
        ``M``: ``(K, n_pre, 1 + J)``, treated unit first.
    avg : numpy.ndarray
        ``a``: ``(K, n_pre)`` non-negative averaging weights.
    v : numpy.ndarray or None
        Predictor weights (``K``, simplex), learned by :func:`learn_predictor_weights` when None.
    """

    names: list[str]
    values: np.ndarray
    avg: np.ndarray
    v: np.ndarray | None = None

    def matrix(self, period_weights: np.ndarray | None = None) -> np.ndarray:
        """The ``(K, 1 + J)`` predictor values, standardised per predictor across units.

        Parameters
        ----------
        period_weights : numpy.ndarray, optional
            ``(n_pre,)`` weights multiplying the averaging weights.

        Returns
        -------
        numpy.ndarray
            Predictor values (row = predictor; column 0 = treated).
        """
        a = self.avg if period_weights is None else self.avg * period_weights[None, :]
        a = a / a.sum(axis=1, keepdims=True)
        P = np.einsum("kt,kti->ki", a, self.values)
        sd = P.std(axis=1, keepdims=True)
        return P / np.where(sd > 0, sd, 1.0)

    def subset(self, cols: list[int]) -> Predictors:
        """The predictors of a subset of units (column indices into ``values``).

        Parameters
        ----------
        cols : list of int
            Unit columns (the first becomes the treated unit).

        Returns
        -------
        Predictors
            A copy with those units and ``v`` re-learned later.
        """
        return Predictors(self.names, self.values[:, :, cols], self.avg, None)


def predictor_fit(P: np.ndarray, v: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """Inner problem: simplex weights matching the treated unit's predictors with weights ``v``.

    Parameters
    ----------
    P : numpy.ndarray
        ``(K, 1 + J)`` standardised predictors (column 0 = treated).
    v : numpy.ndarray
        ``(K,)`` predictor weights.
    ridge : float
        Ridge penalty.

    Returns
    -------
    numpy.ndarray
        ``(J,)`` donor weights.
    """
    return simplex_weights(P[:, 1:], P[:, 0], period_weights=v, ridge=ridge)


def learn_predictor_weights(
    P: np.ndarray, y_pre: np.ndarray, X_pre: np.ndarray, *, ridge: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Outer problem of Abadie et al.: predictor weights minimising the pre-period outcome MSPE.

    ``v* = argmin_v ||y_pre - X_pre w(v)||^2`` over the simplex of predictor weights, ``w(v)``
    from :func:`predictor_fit`; Nelder-Mead on a softmax parameterisation from several starts
    (equal weights, each predictor in turn dominant, random).

    Parameters
    ----------
    P : numpy.ndarray
        ``(K, 1 + J)`` standardised predictors.
    y_pre, X_pre : numpy.ndarray
        Pre-period outcomes of the treated unit ``(n,)`` and the donors ``(n, J)``.
    ridge : float
        Ridge penalty of the inner problem.
    seed : int
        Seed of the random starts.

    Returns
    -------
    numpy.ndarray
        ``(K,)`` predictor weights.
    """
    from scipy.optimize import minimize

    K = P.shape[0]
    if K == 1:
        return np.ones(1)

    def v_of(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        return e / e.sum()

    def loss(z: np.ndarray) -> float:
        w = predictor_fit(P, v_of(z), ridge)
        return float(np.mean((y_pre - X_pre @ w) ** 2))

    rng = np.random.default_rng(seed)
    starts = [np.zeros(K)] + [np.eye(K)[k] * 3.0 for k in range(K)]
    starts += [rng.normal(0, 1.5, K) for _ in range(3)]
    best = min(
        (minimize(loss, z0, method="Nelder-Mead", options={"maxiter": 400 * K}) for z0 in starts),
        key=lambda r: r.fun,
    )
    return v_of(best.x)


@dataclass(frozen=True)
class SyntheticControlData:
    """The validated panel (``hepcausal.causal.synthetic_control.prepare_panel``) as arrays.

    Parameters
    ----------
    times : list
        Time index (strictly increasing).
    donors : list of str
        Donor units (columns of ``X``).
    treated : str
        Treated unit.
    start : object
        First treated period.
    n_pre : int
        Number of pre-treatment periods.
    y : numpy.ndarray
        Treated unit's series ``(T,)``.
    X : numpy.ndarray
        Donors' series ``(T, J)``.
    se_y, se_X : numpy.ndarray or None
        Measurement standard errors of ``y`` and ``X``.
    m, s : float
        Standardisation: mean and SD of all pre-period values.
    predictors : Predictors or None
        Predictors matched as Abadie et al. (pre-period outcome summaries and covariates).
    """

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
    predictors: Predictors | None = None


def build_model(
    d: SyntheticControlData,
    method: Method,
    *,
    intercept: bool,
    priors: SyntheticControlPriors | Mapping[str, Any] | None = None,
) -> Any:
    """The PyMC model on the standardised scale (see the module docstring).

    Data sit in ``pm.Data`` containers (``y_pre``, ``X_pre``, ``se_y_pre``, ``se_X_pre``) so
    placebo refits can swap them without recompiling.

    Parameters
    ----------
    d : SyntheticControlData
        The prepared panel.
    method : {"dirichlet", "horseshoe"}
        Weight prior.
    intercept : bool
        Add an intercept (always present with the horseshoe).
    priors : SyntheticControlPriors, dict or None
        Prior parameters (standardised scale).

    Returns
    -------
    pymc.Model
        The model.
    """
    import pymc as pm
    import pytensor.tensor as pt

    pri = SyntheticControlPriors.from_any(priors)
    if method not in ("dirichlet", "horseshoe"):
        raise ValueError(
            f"method must be 'dirichlet' or 'horseshoe' for the PyMC model, got {method!r}"
        )
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
        sigma = pm.HalfNormal("sigma", pri.sigma)
        if method == "dirichlet":
            conc = np.broadcast_to(np.asarray(pri.concentration, dtype=float), (J,)).copy()
            w = pm.Dirichlet("weights", a=conc, dims="donor")
            mu = pt.dot(X_use, w)
            if intercept:
                a = pm.Normal("intercept", 0.0, pri.intercept)
                mu = mu + a
        else:
            p0 = pri.expected_donors
            if not 0 < p0 < J:
                raise ValueError(f"prior 'expected_donors' must be in (0, {J}), got {p0}")
            tau0 = p0 / (J - p0) / np.sqrt(n_pre)
            slab_df, slab_scale = pri.slab_df, pri.slab_scale
            a = pm.Normal("intercept", 0.0, pri.intercept)
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

    Parameters
    ----------
    template : SyntheticControlData
        A panel with the structure (numbers of pre-periods and donors) of every later fit.
    method : {"dirichlet", "horseshoe"}
        Weight prior.
    intercept : bool
        Add an intercept (always present with the horseshoe).
    priors : SyntheticControlPriors, dict or None
        Prior parameters (standardised scale).
    """

    def __init__(
        self,
        template: SyntheticControlData,
        method: Method,
        *,
        intercept: bool,
        priors: SyntheticControlPriors | Mapping[str, Any] | None = None,
    ) -> None:
        import pytensor
        import pytensor.tensor as pt
        from pytensor.graph.replace import graph_replace

        self.method = method
        self.intercept = intercept or method == "horseshoe"
        self._ridge = SyntheticControlPriors.from_any(priors).ridge
        if method == "bayesian_bootstrap":  # the penalised simplex fit: nothing to compile
            return
        template = replace(template, se_X=None)
        self.model = build_model(template, method, intercept=intercept, priors=priors)
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
        grad: Any = pt.grad(logp, value_vars)
        grad_flat = pt.concatenate([g.ravel() for g in grad])
        outs = graph_replace([-logp, -grad_flat], repl, strict=False)
        self._f = pytensor.function([x], outs)
        wanted = [m["weights"]] + ([m["intercept"]] if "intercept" in m.named_vars else [])
        wanted_vals = graph_replace(m.replace_rvs_by_values(wanted), repl, strict=False)
        self._point = pytensor.function([x], wanted_vals, on_unused_input="ignore")

    def fit(self, d: SyntheticControlData) -> tuple[np.ndarray, np.ndarray]:
        """Posterior-mode fit of ``d`` (same structure as the template).

        Parameters
        ----------
        d : SyntheticControlData
            The panel.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Donor weights and the posterior-mode counterfactual mean on the original scale.
        """
        n_pre = d.n_pre
        if self.method == "bayesian_bootstrap":
            Xs, ys = (d.X[:n_pre] - d.m) / d.s, (d.y[:n_pre] - d.m) / d.s
            if d.predictors is not None:
                P = d.predictors.matrix()
                v = d.predictors.v
                if v is None:
                    v = learn_predictor_weights(P, ys, Xs, ridge=self._ridge)
                w = predictor_fit(P, v, self._ridge)
            else:
                w = simplex_weights(Xs, ys, ridge=self._ridge * n_pre)
            return w, d.X @ w
        import pymc as pm
        from scipy.optimize import minimize

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


# ----------------------------------------------------------------------------- penalised simplex


def simplex_weights(
    X: np.ndarray,
    y: np.ndarray,
    *,
    period_weights: np.ndarray | None = None,
    ridge: float = 0.0,
) -> np.ndarray:
    """Weighted, ridge-penalised least squares on the simplex.

    ``argmin_w sum_t p_t (y_t - X_t w)^2 + ridge ||w||^2`` subject to ``w >= 0``, ``sum w = 1``
    (the constrained least-squares synthetic control), solved as a non-negative least-squares
    problem with the sum-to-one constraint as a heavily weighted extra row.

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, J)`` donor values.
    y : numpy.ndarray
        ``(n,)`` treated values.
    period_weights : numpy.ndarray, optional
        ``(n,)`` non-negative period weights (default: all 1).
    ridge : float
        Ridge penalty (>= 0).

    Returns
    -------
    numpy.ndarray
        ``(J,)`` simplex weights.
    """
    from scipy.optimize import nnls

    n, J = X.shape
    p = np.ones(n) if period_weights is None else np.asarray(period_weights, dtype=float)
    sw = np.sqrt(p)
    scale = float(np.abs(X).max()) if X.size else 1.0
    big = 1e4 * max(scale, 1.0) * np.sqrt(n)
    rows = [X * sw[:, None], np.full((1, J), big)]
    rhs = [y * sw, np.array([big])]
    if ridge > 0:
        rows.append(np.sqrt(ridge) * np.eye(J))
        rhs.append(np.zeros(J))
    w = nnls(np.vstack(rows), np.concatenate(rhs), maxiter=50 * J)[0]
    total = w.sum()
    return w / total if total > 0 else np.full(J, 1.0 / J)


def bootstrap_posterior(
    d: SyntheticControlData,
    *,
    chains: int,
    draws: int,
    seed: int,
    priors: SyntheticControlPriors | Mapping[str, Any] | None = None,
    series_draws: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Bayesian-bootstrap posterior of the simplex weights and the residual sd.

    See the module docstring (``method='bayesian_bootstrap'``).  Measurement error: the treated
    unit's pre-period variances enter as precision weights of each period; or ``series_draws``,
    joint posterior draws of the whole panel (e.g. of a model's ICB x year SII), paired one to
    one with the bootstrap draws so that the series' correlations across years and units carry
    through (predictors, if any, use the point values).

    Parameters
    ----------
    d : SyntheticControlData
        The prepared panel.
    chains, draws : int
        Independent streams and draws per stream.
    seed : int
        Random seed.
    priors : SyntheticControlPriors, dict or None
        ``residual_scale``, ``residual_df`` and ``ridge`` are used.
    series_draws : numpy.ndarray, optional
        ``(chains * draws, T, 1 + J)`` draws of the panel on the original scale (treated first).

    Returns
    -------
    dict
        ``weights`` ``(chains, draws, J)`` and ``sigma`` ``(chains, draws)`` (standardised
        scale, like the NUTS models).
    """
    pri = SyntheticControlPriors.from_any(priors)
    n = d.n_pre
    y = (d.y[:n] - d.m) / d.s
    X = (d.X[:n] - d.m) / d.s
    prec = np.ones(n)
    if d.se_y is not None:
        s2 = (d.se_y[:n] / d.s) ** 2
        prec = 1.0 / (s2 + max(float(np.median(s2)), 1e-12))
        prec = prec / prec.mean()
    diffs = np.diff(d.y[:n])
    s0 = pri.residual_scale * (float(diffs.std(ddof=1)) if n > 2 else 1.0) / d.s
    s0 = s0 if s0 > 0 else pri.residual_scale
    nu0 = pri.residual_df
    W = np.empty((chains, draws, X.shape[1]))
    sig = np.empty((chains, draws))
    for c in range(chains):
        rng = np.random.default_rng([seed, c])
        for i in range(draws):
            pw = rng.dirichlet(np.ones(n)) * n * prec
            if series_draws is not None:
                Z = (series_draws[c * draws + i, :n] - d.m) / d.s
                y, X = Z[:, 0], Z[:, 1:]
            if d.predictors is not None and d.predictors.v is not None:
                P = d.predictors.matrix(pw)
                w = predictor_fit(P, d.predictors.v, pri.ridge)
            else:
                w = simplex_weights(X, y, period_weights=pw, ridge=pri.ridge * n)
            rss = float((prec * (y - X @ w) ** 2).sum())
            scale2 = (nu0 * s0**2 + rss) / (nu0 + n)
            sig[c, i] = np.sqrt(scale2 * (nu0 + n) / rng.chisquare(nu0 + n))
            W[c, i] = w
    return {"weights": W, "sigma": sig}
