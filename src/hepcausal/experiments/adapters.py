"""Adapters giving estimators with other inputs the registry's
``fit(panel, outcome, design, inference, **options)`` form.

The gradient model takes the ICBs to model and its own keyword arguments; the synthetic control
works on a wide ``year x ICB`` table, which its adapter builds from the practice panel
(per-ICB-year SII, or population-weighted means).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from hepcausal import schema
from hepcausal.causal.design import DesignError
from hepcausal.spec import Design, Inference, estimator_parameters


def _specs(
    design: Design | None, inference: Inference | None, estimator: str, *, weights: bool = False
) -> tuple[Design, Inference]:
    """The design and inference (defaults for None); ``weights``: the estimator supports them."""
    spec = design if design is not None else Design()
    if spec.weights is not None and not weights:
        raise DesignError(
            f"weights ({spec.weights!r}) are not supported by the {estimator} yet; "
            "leave Design.weights unset"
        )
    return spec, inference if inference is not None else Inference()


def gradient(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    years: Sequence[int] | None = None,
    likelihood: str = "auto",
    marginalise: bool = True,
    centring: Mapping[str, bool] | str | None = "auto",
    standardise: Sequence[float] | None = None,
    treated_term: bool = True,
) -> Any:
    """The hierarchical ICB x year gradient model in the registry's form.

    Uses ``design.rank_col``, ``design.start_year`` (with ``treated_term``),
    ``design.weights`` (None: practice-average SII; ``"list_size"``:
    population-weighted SII) and the ICBs to model: the treated ICB and the comparators (all
    ICBs when ``comparators == "all"``); no start year (the model is descriptive).  Uses the
    backend, sampler settings and prior overrides of ``inference`` (not its ROPE or HDI).

    Parameters
    ----------
    {estimator parameters}
    years : sequence of int, optional
        Years to model (default: all).
    likelihood : str
        Likelihood family or ``"auto"`` (from the outcome).
    marginalise : bool
        Practice effects marginalised analytically (False: explicit; PyMC only).
    centring : dict, str or None
        ``"auto"`` or ``{block: bool}`` over blocks a, b, d, f.
    standardise : (loc, scale), optional
        Fixed model-scale centring instead of the data's mean and SD.
    treated_term : bool
        True (default): the treated ICB's SII change from ``design.start_year`` is an unpooled
        term (``delta_treated``), so it is not shrunk toward the other ICBs' (issue 10: the
        pooled model pulled a true change 35% toward 0 on the realistic scenario); False: the
        descriptive model (every ICB x year deviation pooled).

    Returns
    -------
    GradientFit
        The fit.
    """
    from hepcausal.models.gradient import fit_gradient

    spec, inf = _specs(design, inference, "gradient model", weights=True)
    if spec.rank_col is None:
        raise DesignError("the gradient model needs a rank: set Design.rank_col")
    loc_scale = None if standardise is None else (float(standardise[0]), float(standardise[1]))
    return fit_gradient(
        panel,
        outcome,
        rank_col=spec.rank_col,
        likelihood=likelihood,
        backend=inf.backend,
        settings=inf.settings,
        priors=inf.priors,
        icbs=None if spec.comparators == "all" else [spec.treated, *spec.comparators],
        years=years,
        marginalise=marginalise,
        centring=centring,
        standardise=loc_scale,
        weights=spec.weights,
        treated=spec.treated if treated_term else None,
        start_year=spec.start_year if treated_term else None,
    )


def _sc_series(
    panel: pd.DataFrame,
    outcome: str,
    spec: Design,
    seed: int,
    series: str,
    sii_method: Literal["unit", "phe", "quintile_bootstrap"],
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str] | None]:
    """The wide ``year x ICB`` series, its standard errors (SII) and the donors."""
    from hepcausal.causal.panels import ics_series
    from hepcausal.inequality.classical import sii_table

    treated, comparators = spec.treated, spec.comparators
    if series not in ("sii", "mean"):
        raise ValueError(f"series must be 'sii' or 'mean', got {series!r}")
    donors = None if comparators == "all" else [str(c) for c in comparators]
    units = None if donors is None else [treated, *donors]
    outcome_se = None
    if series == "mean":
        return ics_series(panel, outcome, units=units), None, donors
    sub = panel if units is None else panel[panel[schema.ICB].isin(units)]
    if spec.rank_col is None:
        raise DesignError("series='sii' needs a rank: set Design.rank_col")
    tab = sii_table(sub, outcome, method=sii_method, rank_col=spec.rank_col, seed=seed)
    wide = tab.pivot(index=schema.YEAR, columns=schema.ICB, values="sii").sort_index()
    outcome_se = tab.pivot(index=schema.YEAR, columns=schema.ICB, values="se").sort_index()
    bad = [str(c) for c in wide.columns if wide[c].isna().any()]
    if treated in bad:
        raise ValueError(
            f"the treated ICB {treated} has years without an SII: "
            f"{tab.loc[tab[schema.ICB] == treated, 'note'].dropna().tolist()}"
        )
    if bad:  # donors without a complete series cannot be used; say which
        import warnings

        warnings.warn(
            f"synthetic control: donors without a complete SII series dropped: {bad}",
            UserWarning,
            stacklevel=3,
        )
        wide, outcome_se = wide.drop(columns=bad), outcome_se.drop(columns=bad)
        donors = None if donors is None else [d for d in donors if d not in bad]
    wide.columns = [str(c) for c in wide.columns]
    outcome_se.columns = [str(c) for c in outcome_se.columns]
    return wide, outcome_se, donors


PredictorName = Literal["list_size", "deprivation", "staffing_mix"]
STAFF_COLUMNS = (schema.GP_FTE, schema.NURSE_FTE, schema.DPC_FTE, schema.ADMIN_FTE)


def ics_predictors(
    panel: pd.DataFrame, names: Sequence[str], units: Sequence[str] | None = None
) -> pd.DataFrame:
    """ICB-year predictors of the synthetic control (long format: ``unit``, ``time``, one column
    per predictor).

    ``list_size``: mean practice list size; ``deprivation``: population-weighted mean IMD score;
    ``staffing_mix``: GP share of the population-weighted FTE per 1,000 of GPs, nurses, direct
    patient care and admin staff.

    Parameters
    ----------
    panel : pandas.DataFrame
        Practice-year panel.
    names : sequence of {"list_size", "deprivation", "staffing_mix"}
        Predictors.
    units : sequence of str, optional
        ICBs to keep.

    Returns
    -------
    pandas.DataFrame
        The long predictor table.
    """
    from hepcausal.causal.panels import ics_series

    units = None if units is None else list(units)
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        if name == "list_size":
            wide = ics_series(panel, schema.LIST_SIZE, stat="unweighted_mean", units=units)
        elif name == "deprivation":
            wide = ics_series(panel, schema.IMD, units=units)
        elif name == "staffing_mix":
            missing = [c for c in STAFF_COLUMNS if c not in panel.columns]
            if missing:
                raise KeyError(f"predictor 'staffing_mix' needs panel columns {missing}")
            parts = {c: ics_series(panel, c, units=units) for c in STAFF_COLUMNS}
            wide = parts[schema.GP_FTE] / sum(parts.values())
        else:
            raise ValueError(
                f"unknown predictor {name!r}; valid: list_size, deprivation, staffing_mix"
            )
        out[name] = wide
    long = (
        pd.concat({k: v.stack() for k, v in out.items()}, axis=1)
        .rename_axis(["time", "unit"])
        .reset_index()
    )
    long["unit"] = long["unit"].astype(str)
    return long


def _sii_posterior(
    panel: pd.DataFrame, outcome: str, spec: Design, inf: Inference, units: list[str] | None
) -> tuple[pd.DataFrame, Any, Any]:
    """Fit the gradient model; its ICB x year SII posterior mean (wide) and joint draws."""
    import inspect

    from hepcausal.models.gradient import fit_gradient

    if spec.rank_col is None:
        raise DesignError("series='sii_posterior' needs a rank: set Design.rank_col")
    extra: dict[str, Any] = {}
    if spec.weights is not None:
        if "weights" not in inspect.signature(fit_gradient).parameters:
            raise DesignError(
                f"Design.weights = {spec.weights!r}: the gradient model of this version has no "
                "population weights, so series='sii_posterior' cannot be population-weighted; "
                "leave Design.weights unset"
            )
        extra["weights"] = spec.weights
    g = fit_gradient(
        panel,
        outcome,
        rank_col=spec.rank_col,
        backend=inf.backend,
        settings=inf.settings,
        icbs=units,
        **extra,
    )
    da = g.idata.posterior[g.sii_var]
    da = da.assign_coords(icb=[str(c) for c in da.coords["icb"].values])
    mean = da.mean(("chain", "draw")).transpose("year", "icb").to_pandas()
    mean.columns = [str(c) for c in mean.columns]
    return mean.sort_index(), da, g


def synthetic_control(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    series: Literal["sii", "mean", "sii_posterior"] = "sii",
    sii_method: Literal["unit", "phe", "quintile_bootstrap"] = "unit",
    method: Literal["bayesian_bootstrap", "dirichlet", "horseshoe"] = "bayesian_bootstrap",
    intercept: bool = False,
    predictors: Sequence[PredictorName] | None = None,
    outcome_lags: Sequence[int] | None = None,
) -> Any:
    """Bayesian synthetic control of the treated ICB's yearly series against the comparators.

    Uses the treated ICB, the comparators (the donors), the start year and, for
    ``series='sii'``, the rank of ``design``; PyMC only; ROPE ``"auto"`` means none.

    Parameters
    ----------
    {estimator parameters}
    series : {"sii", "mean", "sii_posterior"}
        ``'sii'``: the classical SII of ``outcome`` on the rank per ICB-year
        (:func:`hepcausal.inequality.classical.sii_table`, ``sii_method``), with its standard
        errors passed as measurement error; ``'mean'``: population-weighted ICB means
        (:func:`hepcausal.causal.panels.ics_series`); ``'sii_posterior'``: the gradient model
        (:func:`hepcausal.models.gradient.fit_gradient`, same sampler settings) is fitted and
        its joint posterior draws of the ICB x year SII are propagated (population-weighted
        when ``Design.weights`` is set and the gradient model supports it).
    sii_method : {"unit", "phe", "quintile_bootstrap"}
        SII method of the ``'sii'`` series.
    method : {"bayesian_bootstrap", "dirichlet", "horseshoe"}
        Weight posterior, as :func:`hepcausal.causal.synthetic_control.fit_synthetic_control`.
    intercept : bool
        Intercept of the Dirichlet synthetic control.
    predictors : sequence of {"list_size", "deprivation", "staffing_mix"}
        ICB-year predictors matched as Abadie et al. (:func:`ics_predictors`).
    outcome_lags : sequence of int
        Pre-period years whose series values are predictors.

    Returns
    -------
    SyntheticControlFit
        The fit.
    """
    from hepcausal.causal.synthetic_control import fit_synthetic_control
    from hepcausal.outcomes import units_of

    spec = design if design is not None else Design()
    inf = inference if inference is not None else Inference()
    if spec.weights is not None and series != "sii_posterior":
        spec, inf = _specs(design, inference, f"synthetic control on series={series!r}")
    if inf.backend != "pymc":
        raise ValueError(
            "the synthetic control has a PyMC backend only: set estimator.backend = 'pymc'"
        )
    draws = None
    gradient_meta: dict[str, Any] = {}
    if series == "sii_posterior":
        donors = None if spec.comparators == "all" else [str(c) for c in spec.comparators]
        units = None if donors is None else [spec.treated, *donors]
        wide, draws, gfit = _sii_posterior(panel, outcome, spec, inf, units)
        outcome_se = None
        likelihood = str(getattr(gfit, "likelihood", "gaussian"))
        gradient_meta = {
            "gradient_diagnostics": gfit.diagnostics.to_dict(),
            "sii_var": gfit.sii_var,
            "gradient_likelihood": likelihood,
        }
    else:
        wide, outcome_se, donors = _sc_series(
            panel, outcome, spec, inf.settings.seed, series, sii_method
        )
    covariates = None
    if predictors:
        covariates = ics_predictors(panel, predictors, [str(c) for c in wide.columns])
    fit = fit_synthetic_control(
        wide,
        spec.treated,
        spec.start_year,
        method=method,
        intercept=intercept,
        donors=donors,
        outcome_se=outcome_se,
        outcome_draws=draws,
        covariates=covariates,
        outcome_lags=tuple(outcome_lags or ()),
        settings=inf.settings,
        priors=inf.priors,
        hdi_prob=inf.hdi_prob,
        rope=None if inf.rope == "auto" else inf.rope,
        units=(
            units_of(outcome)
            if gradient_meta.get("gradient_likelihood", "gaussian") in ("gaussian", "student_t")
            else f"{gradient_meta['sii_var']} on the {gradient_meta['gradient_likelihood']} scale"
        ),
    )
    fit.meta.setdefault("series", series)
    fit.meta.setdefault("outcome", outcome)
    fit.meta.update(gradient_meta)
    return fit


def sdid(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    series: Literal["sii", "mean"] = "sii",
    sii_method: Literal["unit", "phe", "quintile_bootstrap"] = "unit",
    variant: Literal["sdid", "sc", "did"] = "sdid",
    replications: int = 200,
) -> Any:
    """Synthetic difference-in-differences of the treated ICB's yearly series.

    The series is built as for :func:`synthetic_control` (the SII's standard errors are not
    used: the placebo variance is the paper's); uses the seed of the sampler settings.

    Parameters
    ----------
    {estimator parameters}
    series : {"sii", "mean"}
        As :func:`synthetic_control`.
    sii_method : {"unit", "phe", "quintile_bootstrap"}
        SII method of the ``'sii'`` series.
    variant : {"sdid", "sc", "did"}
        Headline estimator (the other two are reported in ``comparison``).
    replications : int
        Placebo replications of the variance.

    Returns
    -------
    SdidFit
        The fit.
    """
    from hepcausal.causal.sdid import fit_sdid
    from hepcausal.outcomes import units_of

    spec, inf = _specs(design, inference, "synthetic DiD")
    wide, _se, donors = _sc_series(panel, outcome, spec, inf.settings.seed, series, sii_method)
    fit = fit_sdid(
        wide,
        spec.treated,
        spec.start_year,
        estimator=variant,
        donors=donors,
        replications=replications,
        priors=inf.priors,
        seed=inf.settings.seed,
        hdi_prob=inf.hdi_prob,
        rope=None if inf.rope == "auto" else inf.rope,
        units=units_of(outcome),
    )
    fit.meta.setdefault("series", series)
    fit.meta.setdefault("outcome", outcome)
    return fit


for _fit_function in (gradient, synthetic_control, sdid):
    estimator_parameters(_fit_function)  # the shared Parameters entries
