"""The likelihood families of the gradient model: one :class:`Family` row each (cf. Bambi's
``BUILTIN_FAMILIES``).

A row says everything the model layer needs to know about a family:

* ``scale``: the model scale of the SII (``"identity"``, ``"log"``: the model is fitted to
  ``log y``, ``"logit"``: counts ``round(p * denominator)`` with a logit link);
* ``extra``: its extra parameters with their priors (prior scales are fields of
  :class:`~hepcausal.models.gradient_data.GradientPriors`, on the standardised scale);
* ``pymc_likelihood``: the PyMC likelihood given the linear predictor ``eta`` (the standardised
  outcome's mean for continuous families, the log-odds for the binomial families);
* ``stan_family``: the id of the family switch in ``models/gradient_explicit.stan`` (the explicit
  practice-effects program; marginalisable families use ``models/gradient_gaussian.stan`` when
  marginalised);
* ``derived``: derived posterior quantities (``rii = exp(sii)`` for the lognormal, the
  probability-scale ``sii_prob`` for the binomial families);
* ``marginalisable``: whether the practice effects can be integrated out analytically (Gaussian
  likelihoods only);
* ``needs_denominator``: whether the outcome needs a denominator column
  (:attr:`hepcausal.outcomes.Outcome.denominator`).

Adding a family is one row here plus its branch of the switch in ``gradient_explicit.stan``.
The default family of an outcome is :attr:`hepcausal.outcomes.Outcome.family`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from hepcausal.models.gradient_data import GradientData

Scale = Literal["identity", "log", "logit"]
FamilyName = Literal[
    "gaussian", "lognormal", "student_t", "binomial", "beta_binomial", "logit_normal"
]

__all__ = ["FAMILIES", "ExtraParam", "Family", "FamilyName", "Scale", "get_family"]


@dataclass(frozen=True)
class ExtraParam:
    """An extra parameter of a family (same name in PyMC and Stan).

    Parameters
    ----------
    name : str
        Posterior variable name.
    prior_key : str
        The :class:`~hepcausal.models.gradient_data.GradientPriors` field holding its prior scale.
    prior : str
        The prior in words (documentation and reports).
    pymc : callable
        ``pymc(scale) -> random variable``: creates the parameter in the current PyMC model.
    """

    name: str
    prior_key: str
    prior: str
    pymc: Callable[[float], Any]


@dataclass(frozen=True)
class Family:
    """One likelihood family of the gradient model (see the module docstring).

    Parameters
    ----------
    name : str
        Family name (``likelihood=`` of :func:`~hepcausal.models.gradient.fit_gradient`).
    scale : {"identity", "log", "logit"}
        Model scale of the SII.
    description : str
        The likelihood in words.
    extra : tuple of ExtraParam
        Extra parameters, in the order they are created.
    pymc_likelihood : callable
        ``pymc_likelihood(data, eta, params)`` adds the observed variable ``y``; ``params`` maps
        the extra parameters' names to their PyMC variables.
    stan_family : int
        Id of the family switch in ``models/gradient_explicit.stan``.
    marginalisable : bool
        Practice effects can be integrated out analytically (``models/gradient_gaussian.stan``).
    needs_denominator : bool
        The outcome needs a denominator (counts = ``round(p * denominator)``).
    derived : callable
        ``derived(posterior, weights) -> {name: DataArray}``: family-specific quantities (the
        posterior already holds ``sii``, ``level`` and ``national_sii``).
    report_var : str
        Variable of the headline summaries (``national_<report_var>``).
    """

    name: str
    scale: Scale
    description: str
    extra: tuple[ExtraParam, ...]
    pymc_likelihood: Callable[[GradientData, Any, Mapping[str, Any]], None]
    stan_family: int
    marginalisable: bool
    needs_denominator: bool
    derived: Callable[[xr.Dataset, xr.DataArray], dict[str, xr.DataArray]]
    report_var: str = "sii"

    @property
    def on_counts(self) -> bool:
        """The likelihood is on the counts (binomial, beta-binomial), not a continuous response."""
        return self.needs_denominator and not self.marginalisable

    def marginal_method(self, marginalise: bool | str) -> str | None:
        """How the practice effects are handled for the option ``marginalise``.

        Parameters
        ----------
        marginalise : bool or "laplace"
            True: integrate them out where that is exact (Gaussian likelihoods, sufficient
            statistics); ``"laplace"``: also for the count families, by the Laplace
            approximation (:mod:`hepcausal.models.laplace`); False: explicit practice effects.

        Returns
        -------
        str or None
            ``"exact"``, ``"laplace"`` or None (explicit practice effects).

        Raises
        ------
        ValueError
            For another value of ``marginalise``.
        """
        if marginalise not in (True, False, "laplace"):
            raise ValueError(f"marginalise must be True, False or 'laplace', got {marginalise!r}")
        if marginalise is False:
            return None
        if self.marginalisable:
            return "exact"
        return "laplace" if marginalise == "laplace" and self.on_counts else None

    @property
    def extra_names(self) -> tuple[str, ...]:
        """Names of the extra parameters."""
        return tuple(p.name for p in self.extra)

    def effect_units(self, outcome: str) -> str:
        """Units of the headline summaries for ``outcome``.

        Parameters
        ----------
        outcome : str
            Outcome column.

        Returns
        -------
        str
            ``outcome`` (identity scale), ``"log <outcome>"`` or ``"probability"``.
        """
        if self.report_var == "sii_prob":
            return "probability"
        return f"log {outcome}" if self.scale == "log" else outcome


# ----------------------------------------------------------------------------- extra parameters


def _half_normal(name: str) -> Callable[[float], Any]:
    def make(scale: float) -> Any:
        import pymc as pm

        return pm.HalfNormal(name, scale)

    return make


def _nu(scale: float) -> Any:
    import pymc as pm

    return pm.Gamma("nu", alpha=2.0, beta=1.0 / scale)


SIGMA = ExtraParam("sigma", "sigma", "HalfNormal(sigma) residual SD", _half_normal("sigma"))
NU = ExtraParam(
    "nu",
    "nu_scale",
    "Gamma(shape 2, scale nu_scale) degrees of freedom (Juarez & Steel 2010; Stan wiki)",
    _nu,
)
OVERDISPERSION = ExtraParam(
    "overdispersion",
    "overdispersion",
    "HalfNormal(overdispersion) on 1/sqrt(phi)",
    _half_normal("overdispersion"),
)


# ----------------------------------------------------------------------------- likelihoods


def _normal(data: GradientData, eta: Any, params: Mapping[str, Any]) -> None:
    import pymc as pm

    pm.Normal("y", eta, params["sigma"], observed=data.z)


def _student_t(data: GradientData, eta: Any, params: Mapping[str, Any]) -> None:
    import pymc as pm

    pm.StudentT("y", nu=params["nu"], mu=eta, sigma=params["sigma"], observed=data.z)


def _binomial(data: GradientData, eta: Any, params: Mapping[str, Any]) -> None:
    import pymc as pm

    pm.Binomial("y", n=data.trials, logit_p=eta, observed=data.successes)


def _beta_binomial(data: GradientData, eta: Any, params: Mapping[str, Any]) -> None:
    """Beta-binomial counts with mean ``expit(eta)`` and precision ``phi``.

    The log-pmf is PyMC's ``BetaBinomial`` written so that a gradient costs four ``gammaln``
    per row instead of six: with ``a = p phi`` and ``b = phi - a``, the terms that depend only on
    ``phi`` and ``n`` (``gammaln(n + phi) - gammaln(phi)``) are evaluated once per distinct
    denominator (QOF: two) and the binomial coefficient is a precomputed constant.  The same
    density, value for value (``tests/test_families.py``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    assert data.successes is not None and data.trials is not None
    n_uniq, n_inv = np.unique(data.trials, return_inverse=True)
    phi = 1.0 / pt.sqr(params["overdispersion"])
    p = pm.math.invlogit(eta)

    const = _log_binom(data.trials, data.successes)

    def logp(value: Any, a: Any, phi: Any) -> Any:
        b = phi - a
        per_n = pt.gammaln(n_uniq + phi) - pt.gammaln(phi)
        return (
            const
            + pt.gammaln(value + a)
            - pt.gammaln(a)
            + pt.gammaln(data.trials - value + b)
            - pt.gammaln(b)
            - per_n[n_inv]
        )

    def random(a: Any, phi: Any, rng: Any = None, size: Any = None) -> Any:
        return rng.binomial(data.trials, rng.beta(a, phi - a, size=size), size=size)

    pm.CustomDist(
        "y",
        p * phi,
        phi,
        logp=logp,
        random=random,
        observed=data.successes,
        class_name="BetaBinomialCounts",
    )


def _log_binom(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return np.asarray(gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0))


# ----------------------------------------------------------------------------- derived quantities


def _no_derived(post: xr.Dataset, w: xr.DataArray) -> dict[str, xr.DataArray]:
    return {}


def _ratio(post: xr.Dataset, w: xr.DataArray) -> dict[str, xr.DataArray]:
    """Lognormal: ``rii = exp(sii)``, the least- over most-deprived ratio (geometric means)."""
    rii = cast(xr.DataArray, np.exp(post["sii"]))
    return {"rii": rii, "national_rii": cast(xr.DataArray, np.exp(post["national_sii"]))}


def _probability_sii(post: xr.Dataset, w: xr.DataArray) -> dict[str, xr.DataArray]:
    """Binomial families: ``sii_prob = expit(level + sii/2) - expit(level - sii/2)``."""
    lv, s = post["level"], post["sii"]
    sp = cast(xr.DataArray, 1 / (1 + np.exp(-(lv + s / 2))) - 1 / (1 + np.exp(-(lv - s / 2))))
    return {"sii_prob": sp, "national_sii_prob": (sp * w).sum("icb")}


# ----------------------------------------------------------------------------- the table

_ROWS = (
    Family(
        name="gaussian",
        scale="identity",
        description="Normal on the standardised outcome",
        extra=(SIGMA,),
        pymc_likelihood=_normal,
        stan_family=1,
        marginalisable=True,
        needs_denominator=False,
        derived=_no_derived,
    ),
    Family(
        name="lognormal",
        scale="log",
        description="Normal on the standardised log outcome (positive outcomes)",
        extra=(SIGMA,),
        pymc_likelihood=_normal,
        stan_family=1,
        marginalisable=True,
        needs_denominator=False,
        derived=_ratio,
    ),
    Family(
        name="student_t",
        scale="identity",
        description="Student-t on the standardised outcome (heavy-tailed noise)",
        extra=(SIGMA, NU),
        pymc_likelihood=_student_t,
        stan_family=2,
        marginalisable=False,
        needs_denominator=False,
        derived=_no_derived,
    ),
    Family(
        name="binomial",
        scale="logit",
        description="Binomial counts, logit link",
        extra=(),
        pymc_likelihood=_binomial,
        stan_family=3,
        marginalisable=False,
        needs_denominator=True,
        derived=_probability_sii,
        report_var="sii_prob",
    ),
    Family(
        name="beta_binomial",
        scale="logit",
        description="Beta-binomial counts (mean-precision, phi), logit link",
        extra=(OVERDISPERSION,),
        pymc_likelihood=_beta_binomial,
        stan_family=4,
        marginalisable=False,
        needs_denominator=True,
        derived=_probability_sii,
        report_var="sii_prob",
    ),
    Family(
        name="logit_normal",
        scale="logit",
        description=(
            "Normal on the standardised empirical logit log((s + 0.5) / (n - s + 0.5)) of a "
            "proportion (fast approximation of the beta-binomial for large denominators: the "
            "practice effects are integrated out analytically)"
        ),
        extra=(SIGMA,),
        pymc_likelihood=_normal,
        stan_family=1,
        marginalisable=True,
        needs_denominator=True,
        derived=_probability_sii,
        report_var="sii_prob",
    ),
)

FAMILIES: Final[Mapping[str, Family]] = MappingProxyType({f.name: f for f in _ROWS})
"""Every family of the gradient model, by name."""


def get_family(name: str) -> Family:
    """The family called ``name``.

    Parameters
    ----------
    name : str
        Family name.

    Returns
    -------
    Family
        The table row.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the families).
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown likelihood family {name!r}; valid: {list(FAMILIES)}") from None
