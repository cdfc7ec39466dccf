"""Hierarchical Bayesian gradient model: the ICS x year slope index of inequality (SII).

For practice i in ICB g and year t with rank r (0 = most deprived, 1 = least deprived)::

    y_it = alpha_gt + beta_gt * (r_it - 0.5) + u_i + e_it,     u_i ~ N(0, tau)

with ``alpha``/``beta`` partially pooled across ICBs, years and ICB x year cells (non-centred,
sum-to-zero effects, no redundant intercepts; see :mod:`hepcausal.models.gradient_pymc`).
``beta_gt`` is the ICB-year SII on the model scale (posterior variable ``sii`` (icb, year)) and
``alpha_gt`` the level at the mid rank (``level``).

Likelihoods and scales:

* ``gaussian`` (default for FTE per 1,000 weighted patients): identity scale, SII in outcome
  units. The practice effects are integrated out analytically and the likelihood uses sufficient
  statistics, so a log-density evaluation costs O(cells), not O(rows).
* ``lognormal``: the same model for ``log y`` (SII on the log scale); ``rii = exp(sii)`` is the
  ratio of the least- to the most-deprived end (geometric-mean scale).
* ``binomial`` / ``beta_binomial`` (default for proportions with a denominator,
  :data:`hepcausal.schema.PROPORTION_DENOMINATORS`): logit scale with explicit non-centred
  practice effects; counts are ``round(p * denominator)``.  ``sii_prob`` is the probability-scale
  SII of a typical practice (``u = 0``): ``expit(level + sii/2) - expit(level - sii/2)``.

National SII: ``national_sii`` (year) is the population-weighted mean of the ICB gradients,
weights = the ICBs' shares of the fitted practices' ``list_size`` in that year (equal practice
weights when the panel has no ``list_size``).  It is the within-ICB national gradient, not the
gradient of one national regression (which would also include between-ICB differences).

Priors (weakly informative, on the standardised scale ``z = (y - mean) / sd``; for the logit
scale ``sd = 1`` and the centre is the pooled log-odds): ``mu ~ N(0, 2.5)``, ``b0 ~ N(0, 2.5)``,
ICB SDs ``~ HalfNormal(1)``, fixed year-effect scales 1, interaction SDs ``~ HalfNormal(0.5)``,
``tau, sigma ~ HalfNormal(1)``, beta-binomial ``1/sqrt(phi) ~ HalfNormal(0.5)``.  Override any
of :data:`PRIOR_DEFAULTS` via ``priors={key: scale}`` given in outcome units (model scale).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal import schema as S
from hepcausal.diagnostics import check_convergence
from hepcausal.models.gradient_data import (
    CENTRING_BLOCKS,
    PRIOR_DEFAULTS,
    GradientData,
    prepare_gradient_data,
    resolve_centring,
    resolve_priors,
    zero_sum_basis,
)
from hepcausal.results import ESTIMAND, TERM, FitResult, stack_terms
from hepcausal.sampling import SamplerSettings
from hepcausal.summaries import EffectSummary, summarise_effect

__all__ = ["PRIOR_DEFAULTS", "GradientFit", "fit_gradient", "gradient_stan_data"]

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
)
NATIONAL = "England"


BINOMIAL_LIKELIHOODS = ("binomial", "beta_binomial")


@dataclass
class GradientFit(FitResult):
    """Result of :func:`fit_gradient`; posterior holds ``sii``/``level`` (icb, year).

    Estimands (``posterior["estimand"]``, term): the change in the national SII from the first
    to the last year (headline) and the national SII of every year, on the probability scale
    for binomial families (``national_sii_prob_*``), else on the model scale
    (``national_sii_*``).  ``meta["likelihood"]`` names the family.
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
    backend: str = "pymc",
    settings: SamplerSettings | None = None,
    priors: Mapping[str, float] | None = None,
    icbs: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    marginalise: bool = True,
    centring: Mapping[str, bool] | str | None = "auto",
    standardise: tuple[float, float] | None = None,
) -> GradientFit:
    """Fit the hierarchical ICB x year gradient model and return a :class:`GradientFit`.

    ``backend``: 'pymc' (sampled by :func:`hepcausal.sampling.sample_pymc`, nutpie by default)
    or 'stan' (``models/gradient_gaussian.stan`` / ``gradient_binomial.stan`` via
    :func:`hepcausal.stan.sample_stan`).  ``marginalise=False`` (PyMC, gaussian/lognormal only)
    keeps explicit practice effects, for checking the marginalisation.  ``centring``: 'auto'
    (see :func:`~hepcausal.models.gradient_data.choose_centring`) or a dict ``{block: bool}``
    over blocks a, b (ICB level / SII effects) and d, f (ICB x year).  ``standardise=(loc,
    scale)`` fixes the model-scale centring instead of using the data's mean and SD.
    Rows with a missing outcome, rank or denominator are dropped and counted in ``meta``.
    """
    if backend not in ("pymc", "stan"):
        raise ValueError(f"backend must be 'pymc' or 'stan', got {backend!r}")
    settings = settings or SamplerSettings()
    data = prepare_gradient_data(
        panel,
        outcome,
        rank_col=rank_col,
        likelihood=likelihood,
        icbs=icbs,
        years=years,
        standardise=standardise,
    )
    pr = resolve_priors(priors, data.scale)
    cen = resolve_centring(data, centring)
    t0 = time.perf_counter()
    if backend == "pymc":
        from hepcausal.models.gradient_pymc import build_pymc_model
        from hepcausal.sampling import sample_pymc

        model = build_pymc_model(data, pr, marginalise=marginalise, centring=cen)
        idata = sample_pymc(model, settings)
    else:
        if not marginalise:
            raise ValueError("marginalise=False is only available with backend='pymc'")
        from hepcausal.stan import sample_stan

        program, stan_data = gradient_stan_data(data, pr, cen)
        idata = sample_stan(
            program, stan_data, settings, coords=_stan_coords(data), dims=_STAN_DIMS
        )
        idata = _tidy_stan(idata)
    elapsed = time.perf_counter() - t0
    add_derived(idata, data)
    sampled = [v for v in (*SAMPLED, *_extra_params(data.likelihood)) if v in idata.posterior]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        diagnostics = check_convergence(idata, [*sampled, "sii", "level"])
    effects = _national_effects(idata, data)
    meta = {
        "estimator": "hierarchical_gradient",
        "outcome": outcome,
        "rank_col": rank_col,
        "likelihood": data.likelihood,
        "backend": backend,
        "centring": cen,
        "marginalised": bool(marginalise and data.likelihood in ("gaussian", "lognormal")),
        "settings": settings.to_dict(),
        "priors": {k: (v if k == "overdispersion" else v * data.scale) for k, v in pr.items()},
        "model_scale": {"gaussian": "identity", "lognormal": "log"}.get(data.likelihood, "logit"),
        "loc": data.loc,
        "scale": data.scale,
        "n_obs": data.n_obs,
        "n_practices": data.n_practice,
        "icbs": data.icbs,
        "years": data.years,
        "dropped": data.dropped,
        "n_counts_rounded": data.n_rounded,
        "national_weights": data.weight_source,
        "sampling_seconds": elapsed,
    }
    return GradientFit(idata=idata, diagnostics=diagnostics, effects=effects, meta=meta)


def _extra_params(likelihood: str) -> tuple[str, ...]:
    return {
        "gaussian": ("sigma",),
        "lognormal": ("sigma",),
        "beta_binomial": ("overdispersion",),
    }.get(likelihood, ())


def add_derived(idata: az.InferenceData, data: GradientData) -> None:
    """Add ``national_sii`` and the scale-specific contrasts (``rii``, ``sii_prob``) in place."""
    post = idata.posterior
    w = xr.DataArray(
        data.weights,
        dims=("icb", "year"),
        coords={"icb": post["icb"].values, "year": post["year"].values},
    )
    new = {"national_sii": (post["sii"] * w).sum("icb")}
    if data.likelihood == "lognormal":
        new["rii"] = np.exp(post["sii"])
        new["national_rii"] = np.exp(new["national_sii"])
    elif data.likelihood in ("binomial", "beta_binomial"):
        lv, s = post["level"], post["sii"]
        sp = 1 / (1 + np.exp(-(lv + s / 2))) - 1 / (1 + np.exp(-(lv - s / 2)))
        new["sii_prob"] = sp
        new["national_sii_prob"] = (sp * w).sum("icb")
    idata.posterior = post.assign(new)


def _national_effects(idata: az.InferenceData, data: GradientData) -> dict[str, EffectSummary]:
    """Write the national estimands into ``posterior["estimand"]`` (term) and summarise them.

    Terms: ``<var>_change_<first>_<last>`` (headline) and ``<var>_<year>``, where ``var`` is
    ``national_sii_prob`` (binomial families) or ``national_sii``.
    """
    var = "national_sii_prob" if "national_sii_prob" in idata.posterior else "national_sii"
    nat = idata.posterior[var]
    first, last = data.years[0], data.years[-1]
    units = {"gaussian": data.outcome, "lognormal": f"log {data.outcome}"}.get(
        data.likelihood, "probability"
    )
    change = f"{var}_change_{first}_{last}"
    draws = {change: nat.sel(year=last) - nat.sel(year=first)}
    labels = {change: f"change in national SII {first}->{last}"}
    for year in data.years:
        draws[f"{var}_{year}"] = nat.sel(year=year)
        labels[f"{var}_{year}"] = f"national SII {year}"
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


def _stan_coords(data: GradientData) -> dict[str, list]:
    return {
        "icb": list(data.icbs),
        "year": list(data.years),
        "icb_zs": list(range(data.n_icb - 1)),
        "year_zs": list(range(data.n_year - 1)),
        "practice": list(data.practices),
    }


def gradient_stan_data(
    data: GradientData, pr: dict[str, float], centring: Mapping[str, bool]
) -> tuple[str, dict]:
    """The Stan program name and its data for ``data`` (same parameterisation as PyMC)."""
    base = {
        "G": data.n_icb,
        "T": data.n_year,
        "B_G": zero_sum_basis(data.n_icb),
        "B_T": zero_sum_basis(data.n_year),
        "loc": data.loc,
        "scale": data.scale,
        "centred": [int(centring[k]) for k in CENTRING_BLOCKS],
        **{f"prior_{k}": v for k, v in pr.items()},
    }
    if data.likelihood in ("gaussian", "lognormal"):
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
        return "gradient_gaussian", base
    base.update(
        {
            "N": data.n_obs,
            "P": data.n_practice,
            "pidx": data.practice_idx + 1,
            "cell": data.cell_idx + 1,
            "rc": data.rc,
            "succ": data.successes,
            "trials": data.trials,
            "is_bb": int(data.likelihood == "beta_binomial"),
        }
    )
    return "gradient_binomial", base


def _tidy_stan(idata: az.InferenceData) -> az.InferenceData:
    post = idata.posterior
    if "overdispersion" in post:
        od = post["overdispersion"]
        extra = [d for d in od.dims if d not in ("chain", "draw")]
        post = post.drop_vars("overdispersion")
        if extra and od.sizes[extra[0]] == 1:
            post = post.assign(overdispersion=od.squeeze(extra, drop=True))
    idata.posterior = post
    return idata
