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


def synthetic_control(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    series: Literal["sii", "mean"] = "sii",
    sii_method: Literal["unit", "phe", "quintile_bootstrap"] = "unit",
    method: Literal["dirichlet", "horseshoe"] = "dirichlet",
    intercept: bool = False,
) -> Any:
    """Bayesian synthetic control of the treated ICB's yearly series against the comparators.

    Uses the treated ICB, the comparators (the donors), the start year and, for
    ``series='sii'``, the rank of ``design``; PyMC only; ROPE ``"auto"`` means none.

    Parameters
    ----------
    {estimator parameters}
    series : {"sii", "mean"}
        ``'sii'``: the classical SII of ``outcome`` on the rank per ICB-year
        (:func:`hepcausal.inequality.classical.sii_table`, ``sii_method``), with its standard
        errors passed as measurement error; ``'mean'``: population-weighted ICB means
        (:func:`hepcausal.causal.panels.ics_series`).
    sii_method : {"unit", "phe", "quintile_bootstrap"}
        SII method of the ``'sii'`` series.
    method : {"dirichlet", "horseshoe"}
        Weight prior, as :func:`hepcausal.causal.synthetic_control.fit_synthetic_control`.
    intercept : bool
        Intercept of the Dirichlet synthetic control.

    Returns
    -------
    SyntheticControlFit
        The fit.
    """
    from hepcausal.causal.panels import ics_series
    from hepcausal.causal.synthetic_control import fit_synthetic_control
    from hepcausal.inequality.classical import sii_table

    spec, inf = _specs(design, inference, "synthetic control")
    treated, comparators, start_year = spec.treated, spec.comparators, spec.start_year
    rank_col = spec.rank_col
    settings = inf.settings
    if inf.backend != "pymc":
        raise ValueError(
            "the synthetic control has a PyMC backend only: set estimator.backend = 'pymc'"
        )
    if series not in ("sii", "mean"):
        raise ValueError(f"series must be 'sii' or 'mean', got {series!r}")
    donors = None if comparators == "all" else [str(c) for c in comparators]
    units = None if donors is None else [treated, *donors]
    outcome_se = None
    if series == "mean":
        wide = ics_series(panel, outcome, units=units)
    else:
        sub = panel if units is None else panel[panel[schema.ICB].isin(units)]
        if rank_col is None:
            raise DesignError("series='sii' needs a rank: set Design.rank_col")
        seed = settings.seed
        tab = sii_table(sub, outcome, method=sii_method, rank_col=rank_col, seed=seed)
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
                stacklevel=2,
            )
            wide, outcome_se = wide.drop(columns=bad), outcome_se.drop(columns=bad)
            donors = None if donors is None else [d for d in donors if d not in bad]
        wide.columns = [str(c) for c in wide.columns]
        outcome_se.columns = [str(c) for c in outcome_se.columns]
    from hepcausal.outcomes import units_of

    fit = fit_synthetic_control(
        wide,
        treated,
        start_year,
        method=method,
        intercept=intercept,
        donors=donors,
        outcome_se=outcome_se,
        settings=settings,
        priors=inf.priors,
        hdi_prob=inf.hdi_prob,
        rope=None if inf.rope == "auto" else inf.rope,
        units=units_of(outcome),
    )
    fit.meta.setdefault("series", series)
    fit.meta.setdefault("outcome", outcome)
    return fit


for _fit_function in (gradient, synthetic_control):
    estimator_parameters(_fit_function)  # the shared Parameters entries
