"""Hierarchical Bayesian gradient model: the ICS x year slope index of inequality (SII).

For practice i in ICB g and year t with rank r (0 = most deprived, 1 = least deprived)::

    y_it = alpha_gt + beta_gt * (r_it - 0.5) + u_i + e_it,     u_i ~ N(0, tau)

with ``alpha``/``beta`` partially pooled across ICBs, years and ICB x year cells (non-centred,
sum-to-zero effects, no redundant intercepts; see :mod:`hepcausal.models.gradient_pymc`).
``beta_gt`` is the ICB-year SII on the model scale (posterior variable ``sii`` (icb, year)) and
``alpha_gt`` the level at the mid rank (``level``).

Likelihood families (one row each in :data:`hepcausal.models.families.FAMILIES`; the default per
outcome is :attr:`hepcausal.outcomes.Outcome.family`):

* ``gaussian`` (default for FTE per 1,000 weighted patients): identity scale, SII in outcome
  units. The practice effects are integrated out analytically and the likelihood uses sufficient
  statistics, so a log-density evaluation costs O(cells), not O(rows).
* ``lognormal``: the same model for ``log y`` (SII on the log scale); ``rii = exp(sii)`` is the
  ratio of the least- to the most-deprived end (geometric-mean scale).
* ``student_t``: identity scale with Student-t noise (``nu ~ Gamma(2, 0.1)``), robust to
  outlying practice-years; explicit non-centred practice effects (no analytic marginalisation).
* ``binomial`` / ``beta_binomial`` (default for proportions with a denominator,
  :attr:`hepcausal.outcomes.Outcome.denominator`): logit scale with explicit practice effects,
  hierarchically centred on each practice's mean linear predictor when the data pin the
  practices down (``centring`` block ``u``, chosen by
  :func:`~hepcausal.models.gradient_data.choose_centring`; QOF: hundreds of points per
  practice-year), else non-centred; counts are ``round(p * denominator)``.  With
  ``marginalise="laplace"`` the practice effects are integrated out by the Laplace approximation
  instead (:mod:`hepcausal.models.laplace`; PyMC only; error per practice measured against
  quadrature: about 1e-3 binomial, 5e-3 beta-binomial at QOF-like denominators).
  ``sii_prob`` is the probability-scale SII of a typical practice (``u = 0``):
  ``expit(level + sii/2) - expit(level - sii/2)``.
* ``logit_normal`` (proportions; a fast approximation of the beta-binomial): the marginalised
  Gaussian model on the standardised empirical logit ``log((s + 0.5) / (n - s + 0.5))``, the
  practice effects integrated out on sufficient statistics (cost O(cells), like ``gaussian``);
  the binomial and overdispersion noise are absorbed by ``sigma`` (good for large, similar
  denominators such as QOF points).  ``sii`` is on the logit scale and ``sii_prob`` as above.

Estimands (``meta["estimand"]`` names them for every fit): with ``weights=None`` (the default)
``sii`` is the **practice-average** SII (every practice counts equally: the gradient across the
practices that HEP funds and that the panel models compare); with ``weights="list_size"``
(``Design.weights`` in the registry) each practice's marginal likelihood contribution is
weighted by its mean list size (normalised to Kish's effective sample size) and ``sii`` is the
**population-weighted** SII of PHE (the weighted least-squares gradient on the rank; tested
against :func:`hepcausal.inequality.classical.sii_unit` with list-size weights).  The
practice-average default keeps the unit of analysis of the causal models (practices) and the
published baseline; the population-weighted estimand is one switch away and the two differ
in sign for LLR on the real data (issue 10), so every output names its estimand.

Treated contrast (issue 10): with ``treated``/``start_year`` (on by default in the registry's
gradient entry, option ``treated_term``) the treated ICB's post-period SII change is an unpooled
term ``delta_treated * D`` (D = the double-centred treated x post indicator, prior
``N(0, slope_sd)``), not one of the ICB x year deviations pooled by ``sigma_int_slope``.  Chosen
over a wider or heavier-tailed interaction prior because the interaction scale is learnt from
the 10 untreated ICBs, so any pooled prior pulls the one large treated deviation toward them.
Measured (``benchmarks/shrinkage_gradient.py``, realistic scenario, published design, true
change -0.168, 2 panels): the treated contrast (:func:`treated_change`) was shrunk 36.7% toward
0 relative to the unpooled per-cell least-squares contrast without the term and 0.3% with it.

National SII: ``national_sii`` (year) is the population-weighted mean of the ICB gradients,
weights = the ICBs' shares of the fitted practices' ``list_size`` in that year (equal practice
weights when the panel has no ``list_size``).  It is the within-ICB national gradient, not the
gradient of one national regression (which would also include between-ICB differences).

Priors (weakly informative; the package convention of :mod:`hepcausal.models.priors`: every
scale is on the standardised outcome ``z = (y - mean) / sd``, and for the logit scale ``sd = 1``
with the centre at the pooled log-odds): ``mu ~ N(0, 2.5)``, ``b0 ~ N(0, 2.5)``, ICB SDs
``~ HalfNormal(1)``, fixed year-effect scales 1, interaction SDs ``~ HalfNormal(0.5)``,
``tau, sigma ~ HalfNormal(1)``, beta-binomial ``1/sqrt(phi) ~ HalfNormal(0.5)``, Student-t
``nu ~ Gamma(2, scale 10)``.  Override any field of :class:`GradientPriors` via
``priors={key: scale}`` (standardised scale, like every other model).

Backends (:mod:`hepcausal.models.backend`): PyMC (``gradient_pymc``) and Stan
(``models/gradient_gaussian.stan`` for the marginalised Gaussian families,
``models/gradient_explicit.stan`` with a family switch otherwise), same parameterisation.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal import schema as S
from hepcausal.diagnostics import check_convergence
from hepcausal.models.backend import (
    Backend,
    ModelSpec,
    check_backend,
    sample_model,
    zero_sum_basis,
)
from hepcausal.models.gradient_data import (
    CENTRING_BLOCKS,
    PRACTICE_BLOCK,
    GradientData,
    GradientPriors,
    prepare_gradient_data,
    resolve_centring,
)
from hepcausal.results import ESTIMAND, TERM, FitResult, stack_terms
from hepcausal.sampling import SamplerSettings
from hepcausal.summaries import EffectSummary, summarise_effect

__all__ = [
    "GradientFit",
    "GradientPriors",
    "fit_gradient",
    "gradient_stan_data",
    "model_spec",
    "treated_change",
]

SAMPLED = (
    "mu",
    "b0",
    "sigma_icb",
    "sigma_icb_slope",
    "sigma_int",
    "sigma_int_slope",
    "z_a",
    "z_b",
    "z_c",
    "z_e",
    "z_d",
    "z_f",
    "tau",
    "delta_treated",
)
NATIONAL = "England"


BINOMIAL_LIKELIHOODS = ("binomial", "beta_binomial", "logit_normal")


@dataclass
class GradientFit(FitResult):
    """Result of :func:`fit_gradient`; posterior holds ``sii``/``level`` (icb, year).

    Estimands (``posterior["estimand"]``, term): the change in the national SII from the first
    to the last year (headline) and the national SII of every year, on the probability scale
    for binomial families (``national_sii_prob_*``), else on the model scale
    (``national_sii_*``).  ``meta["likelihood"]`` names the family.

    Parameters
    ----------
    idata, diagnostics, effects, meta, truth
        As in :class:`~hepcausal.results.FitResult`: posterior (with ``estimand``), convergence
        diagnostics, ordered effect summaries (headline first), provenance and known truth.
    """

    @property
    def likelihood(self) -> str:
        """The likelihood family that was fitted (``meta["likelihood"]``)."""
        return str(self.meta.get("likelihood", "gaussian"))

    @property
    def sii_var(self) -> str:
        """The posterior SII variable on the reporting scale: ``sii_prob`` for binomial
        families (probability scale), else ``sii`` (model scale)."""
        return "sii_prob" if self.likelihood in BINOMIAL_LIKELIHOODS else "sii"

    def sii_table(
        self, var: str = "sii", *, hdi_prob: float = 0.9, national: bool = True
    ) -> pd.DataFrame:
        """Posterior mean, SD and HDI of ``var`` per ICB and year, plus the national rows.

        ``var`` is ``sii`` (model scale), ``sii_prob`` (binomial: probability scale) or ``rii``
        (lognormal: ratio).  National rows (``icb_code == 'England'``) use ``national_<var>``.
        """
        post = self.idata.posterior
        if var not in post:
            raise KeyError(f"{var!r} not in the posterior; available: {list(post.data_vars)}")
        rows = []
        da = post[var]
        hdi = az.hdi(da, hdi_prob=hdi_prob)[var]
        mean, sd = da.mean(("chain", "draw")), da.std(("chain", "draw"))
        for icb in da["icb"].values:
            for year in da["year"].values:
                sel = {"icb": icb, "year": year}
                rows.append(
                    (
                        str(icb),
                        int(year),
                        float(mean.sel(sel)),
                        float(sd.sel(sel)),
                        float(hdi.sel(sel).sel(hdi="lower")),
                        float(hdi.sel(sel).sel(hdi="higher")),
                    )
                )
        if national and f"national_{var}" in post:
            nd = post[f"national_{var}"]
            nh = az.hdi(nd, hdi_prob=hdi_prob)[f"national_{var}"]
            for year in nd["year"].values:
                x = nd.sel(year=year)
                rows.append(
                    (
                        NATIONAL,
                        int(year),
                        float(x.mean()),
                        float(x.std()),
                        float(nh.sel(year=year, hdi="lower")),
                        float(nh.sel(year=year, hdi="higher")),
                    )
                )
        return pd.DataFrame(rows, columns=[S.ICB, S.YEAR, "mean", "sd", "hdi_low", "hdi_high"])


def fit_gradient(
    panel: pd.DataFrame,
    outcome: str,
    *,
    rank_col: str = S.DEPRIVATION_RANK,
    likelihood: str = "auto",
    backend: Backend = "pymc",
    settings: SamplerSettings | None = None,
    priors: GradientPriors | Mapping[str, float] | None = None,
    icbs: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    marginalise: bool | str = True,
    centring: Mapping[str, bool] | str | None = "auto",
    standardise: tuple[float, float] | None = None,
    weights: str | None = None,
    treated: str | None = None,
    start_year: int | None = None,
) -> GradientFit:
    """Fit the hierarchical ICB x year gradient model and return a :class:`GradientFit`.

    Rows with a missing outcome, rank or denominator are dropped and counted in ``meta``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Practice-year panel with the outcome, rank, ICB, practice and year columns.
    outcome : str
        Outcome column.
    rank_col : str
        Rank column in [0, 1] (0 = most deprived).
    likelihood : str
        ``"auto"`` (the outcome's default family) or a family of
        :data:`~hepcausal.models.families.FAMILIES`.
    backend : {"pymc", "stan"}
        PyMC (nutpie by default) or Stan (``models/gradient_gaussian.stan`` when marginalised,
        else ``models/gradient_explicit.stan``).
    settings : SamplerSettings or None
        Sampler settings (default ``SamplerSettings()``).
    priors : GradientPriors, dict or None
        Prior scales on the standardised outcome (dict: overrides of the defaults).
    icbs, years : sequence or None
        Restrict the fit to these ICBs / years.
    marginalise : bool or "laplace"
        True: integrate the practice effects out where that is exact (Gaussian, lognormal,
        logit_normal); ``"laplace"``: also for the count families (binomial, beta-binomial) by
        the Laplace approximation of :mod:`hepcausal.models.laplace` (PyMC backend); False:
        explicit practice effects (for checking the marginalisation).
    centring : dict, "auto" or None
        'auto' (:func:`~hepcausal.models.gradient_data.choose_centring`) or ``{block: bool}``
        over blocks a, b (ICB level / SII effects), d, f (ICB x year) and u (the explicit
        practice effects of the count families: hierarchically centred or non-centred).
    standardise : (float, float) or None
        Fixed model-scale ``(loc, scale)`` instead of the data's mean and SD.
    weights : str or None
        The estimand of the ICB-year SII (see "Estimands" in the module docstring): None (the
        default) the practice-average SII (every practice counts equally); a column such as
        ``"list_size"`` the population-weighted SII of PHE (practice likelihood contributions
        weighted by list size, normalised to the effective sample size).  Marginalisable
        families only.
    treated, start_year : str and int, or None
        Give both to add the unpooled treated-ICB x post-period SII term ``delta_treated``
        (see :mod:`~hepcausal.models.gradient_pymc`): the treated ICB's SII change from
        ``start_year`` is then not shrunk toward the other ICBs' by the interaction scale, and
        the estimand ``sii_treated_change`` (the DDD contrast of :func:`treated_change`) is
        reported.  None: the descriptive model (every ICB x year deviation pooled).

    Returns
    -------
    GradientFit
        Posterior (``sii``, ``level``, ``national_sii`` and the family's derived quantities),
        diagnostics, headline effects and metadata.
    """
    check_backend(backend, model="gradient")
    settings = settings or SamplerSettings()
    data = prepare_gradient_data(
        panel,
        outcome,
        rank_col=rank_col,
        likelihood=likelihood,
        icbs=icbs,
        years=years,
        standardise=standardise,
        weights=weights,
    )
    if (treated is None) != (start_year is None):
        raise ValueError("give both treated and start_year (or neither) for the treated term")
    if treated is not None and start_year is not None:
        data = data.with_treated_period(treated, int(start_year))
    fam = data.family
    if weights is not None and not marginalise:
        raise ValueError(
            f"weights={weights!r} needs the marginalised likelihood (marginalise=True): the "
            "weighted pseudo-likelihood weights each practice's marginal contribution"
        )
    pr = GradientPriors.from_any(priors)
    cen = resolve_centring(data, centring)
    marginal = fam.marginal_method(marginalise)
    marginalised = marginal is not None
    spec = model_spec(data, pr, cen, marginalise=marginalise)
    t0 = time.perf_counter()
    idata = sample_model(spec, backend, settings)
    elapsed = time.perf_counter() - t0
    idata.posterior.attrs["hepcausal_practice_effects"] = marginal or "explicit"
    add_derived(idata, data)
    sampled = [v for v in (*SAMPLED, *fam.extra_names) if v in idata.posterior]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        diagnostics = check_convergence(idata, [*sampled, "sii", "level"])
    effects = _national_effects(idata, data, treated, start_year)
    meta = {
        "estimator": "hierarchical_gradient",
        "outcome": outcome,
        "rank_col": rank_col,
        "likelihood": data.likelihood,
        "backend": backend,
        "centring": cen,
        "marginalised": marginalised,
        # how the practice effects were handled: "exact" (Gaussian, analytic), "laplace"
        # (count families, :mod:`hepcausal.models.laplace`) or "explicit" (sampled)
        "practice_effects": marginal or "explicit",
        "settings": settings.to_dict(),
        "priors": pr.to_dict(),
        "priors_scale": "standardised",
        "model_scale": fam.scale,
        "loc": data.loc,
        "scale": data.scale,
        "n_obs": data.n_obs,
        "n_practices": data.n_practice,
        "icbs": data.icbs,
        "years": data.years,
        "dropped": data.dropped,
        "n_counts_rounded": data.n_rounded,
        "national_weights": data.weight_source,
        "weights": weights,
        "treated": treated,
        "start_year": start_year,
        "estimand": estimand_description(data),
        "sampling_seconds": elapsed,
    }
    return GradientFit(idata=idata, diagnostics=diagnostics, effects=effects, meta=meta)


def treated_change(
    fit: GradientFit, treated: str, start_year: int, var: str = "sii"
) -> xr.DataArray:
    """Posterior draws of the treated ICB's SII change against the other ICBs (a DDD contrast).

    ``(mean SII of ``treated`` in years >= start_year - mean before) - the same change averaged
    over the other modelled ICBs`` (unweighted over years and ICBs).

    Parameters
    ----------
    fit : GradientFit
        A gradient fit.
    treated : str
        The treated ICB code.
    start_year : int
        First treated year.
    var : str
        Posterior (icb, year) variable (default ``sii``).

    Returns
    -------
    xarray.DataArray
        Draws (chain, draw).
    """
    da = fit.idata.posterior[var]
    icbs = [str(c) for c in da["icb"].values]
    if treated not in icbs:
        raise ValueError(f"treated ICB {treated!r} is not in the fit ({icbs})")
    years = da["year"].values.astype(int)
    post, pre = years >= start_year, years < start_year
    if not post.any() or not pre.any():
        raise ValueError(f"start_year {start_year} leaves no pre or no post years in {years}")
    change = da.isel(year=post).mean("year") - da.isel(year=pre).mean("year")
    others = [c for c in icbs if c != treated]
    return change.sel(icb=treated, drop=True) - change.sel(icb=others).mean("icb")


def estimand_description(data: GradientData) -> dict[str, str]:
    """Which estimand every output of the gradient model is (``meta["estimand"]``).

    Parameters
    ----------
    data : GradientData
        The prepared panel (its ``weights_col`` and ``weight_source``).

    Returns
    -------
    dict
        ``weighting`` ("practice-average" or "population-weighted (<column>)"), ``rank`` (the
        rank column), ``sii`` (the ICB-year SII), ``national_sii`` and ``headline``.
    """
    if data.weights_col is None:
        weighting = "practice-average"
        cell = (
            "ICB-year SII: slope on the rank across practices, every practice weighted equally "
            "(practice-average)"
        )
    else:
        weighting = f"population-weighted ({data.weights_col})"
        cell = (
            f"ICB-year SII: slope on the rank across practices weighted by {data.weights_col} "
            "(population-weighted, the PHE SII estimand)"
        )
    nat = (
        f"national SII: mean of the ICB-year SIIs weighted by the ICBs' {data.weight_source} "
        "shares in each year (within-ICB national gradient)"
    )
    return {
        "weighting": weighting,
        "rank": data.rank_col,
        "scale": data.family.scale,
        "sii": cell,
        "national_sii": nat,
        "headline": f"change in the national SII, first to last year ({weighting} ICB SIIs)",
    }


def model_spec(
    data: GradientData,
    pr: GradientPriors,
    centring: Mapping[str, bool],
    *,
    marginalise: bool | str = True,
) -> ModelSpec:
    """The gradient model for both backends (see :mod:`hepcausal.models.backend`).

    Parameters
    ----------
    data : GradientData
        The prepared panel.
    pr : GradientPriors
        Prior scales.
    centring : mapping
        Centred blocks (keys a, b, d, f).
    marginalise : bool or "laplace"
        Integrate the practice effects out (:meth:`Family.marginal_method
        <hepcausal.models.families.Family.marginal_method>`).

    Returns
    -------
    ModelSpec
        PyMC builder and the Stan program with its data.
    """
    from hepcausal.models.gradient_pymc import build_pymc_model, pymc_data

    method = data.family.marginal_method(marginalise)
    exact = method == "exact"
    # the marginalised model's data are all containers: its compiled graph depends only on the
    # family, ICBs, years, priors, centring and whether the treated term is on
    key = (
        (
            data.likelihood,
            tuple(data.icbs),
            tuple(data.years),
            tuple(sorted(pr.to_dict().items())),
            tuple(sorted(dict(centring).items())),
            data.treat_cells is not None,
        )
        if exact
        else None
    )
    return ModelSpec(
        name="gradient",
        build_pymc=lambda: build_pymc_model(
            data, pr, marginalise=marginalise, centring=dict(centring)
        ),
        stan_program=_stan_program(exact),
        stan_data=lambda: gradient_stan_data(data, pr, centring, marginalise=marginalise)[1],
        coords=_stan_coords(data),
        dims=_STAN_DIMS,
        stan_scalars=(*data.family.extra_names, "delta_treated"),
        cache_key=key,
        pymc_data=(lambda: pymc_data(data)) if exact else None,
    )


def add_derived(idata: az.InferenceData, data: GradientData) -> None:
    """Add ``national_sii`` and the family's derived quantities (``rii``, ``sii_prob``) in place.

    Parameters
    ----------
    idata : arviz.InferenceData
        Posterior with ``sii`` and ``level`` (icb, year); modified in place.
    data : GradientData
        The prepared panel (population weights and family).
    """
    post = idata.posterior
    w = xr.DataArray(
        data.weights,
        dims=("icb", "year"),
        coords={"icb": post["icb"].values, "year": post["year"].values},
    )
    post = post.assign(national_sii=(post["sii"] * w).sum("icb"))
    idata.posterior = post.assign(data.family.derived(post, w))


def _national_effects(
    idata: az.InferenceData,
    data: GradientData,
    treated: str | None = None,
    start_year: int | None = None,
) -> dict[str, EffectSummary]:
    """Write the national estimands into ``posterior["estimand"]`` (term) and summarise them.

    Terms: ``<var>_change_<first>_<last>`` (headline) and ``<var>_<year>``, where ``var`` is
    ``national_<family.report_var>`` (``national_sii_prob`` for binomial families, else
    ``national_sii``).
    """
    var = f"national_{data.family.report_var}"
    nat = idata.posterior[var]
    first, last = data.years[0], data.years[-1]
    units = data.family.effect_units(data.outcome)
    change = f"{var}_change_{first}_{last}"
    draws = {change: nat.sel(year=last) - nat.sel(year=first)}
    labels = {change: f"change in national SII {first}->{last}"}
    for year in data.years:
        draws[f"{var}_{year}"] = nat.sel(year=year)
        labels[f"{var}_{year}"] = f"national SII {year}"
    if treated is not None and start_year is not None:
        v = data.family.report_var
        da = idata.posterior[v]
        post = da["year"].values.astype(int) >= start_year
        change = da.isel(year=post).mean("year") - da.isel(year=~post).mean("year")
        others = [c for c in data.icbs if c != treated]
        draws[f"{v}_treated_change"] = change.sel(icb=treated, drop=True) - change.sel(
            icb=others
        ).mean("icb")
        labels[f"{v}_treated_change"] = (
            f"SII change of {treated} from {start_year} minus the other ICBs' (DDD contrast)"
        )
    est = stack_terms(draws)
    idata.posterior = idata.posterior.assign({ESTIMAND: est})
    return {
        term: summarise_effect(est.sel({TERM: term}), name=labels[term], units=units)
        for term in draws
    }


# ----------------------------------------------------------------------------- Stan backend
_STAN_DIMS = {
    "z_a": ["icb_zs"],
    "z_b": ["icb_zs"],
    "z_c": ["year_zs"],
    "z_e": ["year_zs"],
    "z_d": ["icb_zs", "year_zs"],
    "z_f": ["icb_zs", "year_zs"],
    "z_u": ["practice"],
    "sii": ["icb", "year"],
    "level": ["icb", "year"],
}


def _stan_coords(data: GradientData) -> dict[str, list[Any]]:
    return {
        "icb": list(data.icbs),
        "year": list(data.years),
        "icb_zs": list(range(data.n_icb - 1)),
        "year_zs": list(range(data.n_year - 1)),
        "practice": list(data.practices),
    }


def gradient_stan_data(
    data: GradientData,
    pr: GradientPriors,
    centring: Mapping[str, bool],
    *,
    marginalise: bool | str = True,
) -> tuple[str, dict[str, Any]]:
    """The Stan program name and its data for ``data`` (same parameterisation as PyMC).

    Parameters
    ----------
    data : GradientData
        The prepared panel.
    pr : GradientPriors
        Prior scales (passed as ``prior_<field>``).
    centring : mapping
        Centred blocks (keys a, b, d, f; u for the explicit practice effects).
    marginalise : bool or "laplace"
        Marginalisable families: use ``gradient_gaussian.stan`` (sufficient statistics); else
        ``gradient_explicit.stan`` with the family switch ``Family.stan_family``.  The Laplace
        marginal of the count families has no Stan program yet (``NotImplementedError``).

    Returns
    -------
    (str, dict)
        Program name and data.
    """
    fam = data.family
    method = fam.marginal_method(marginalise)
    if method == "laplace":
        raise NotImplementedError(
            "the Laplace marginal of the count families (marginalise='laplace') is PyMC-only; "
            "use backend='pymc', or marginalise=True for the explicit Stan program"
        )
    base: dict[str, Any] = {
        "G": data.n_icb,
        "T": data.n_year,
        "B_G": zero_sum_basis(data.n_icb),
        "B_T": zero_sum_basis(data.n_year),
        "loc": data.loc,
        "scale": data.scale,
        "centred": [int(centring[k]) for k in CENTRING_BLOCKS],
        "has_treat": int(data.treat_cells is not None),
        "D": data.treated_post_design(),
        **{f"prior_{k}": v for k, v in pr.to_dict().items()},
    }
    if method == "exact":
        st = data.gaussian_stats()
        base.update(
            {
                "J": len(st.count),
                "n_per": st.n_per,
                "count": st.count,
                "syy": st.syy,
                "sxy": st.sxy,
                "nnz": len(st.row),
                "sxx": st.sxx,
                "row_idx": st.row + 1,
                "col_idx": st.col + 1,
            }
        )
        return _stan_program(True), base
    counts = fam.on_counts
    empty_int = np.zeros(0, dtype=np.int64)
    base.update(
        {
            "N": data.n_obs,
            "P": data.n_practice,
            "pidx": data.practice_idx + 1,
            "cell": data.cell_idx + 1,
            "rc": data.rc,
            "family": fam.stan_family,
            "centred_u": int(bool(centring.get(PRACTICE_BLOCK, False))),
            "z": np.zeros(0) if counts else data.z,
            "succ": data.successes if counts else empty_int,
            "trials": data.trials if counts else empty_int,
        }
    )
    return _stan_program(False), base


def _stan_program(marginalised: bool) -> str:
    return "gradient_gaussian" if marginalised else "gradient_explicit"
