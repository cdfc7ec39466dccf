"""Adapters giving estimators with other inputs the runner's ``(panel, outcome, **kw)`` form.

The synthetic control works on a wide ``year x ICB`` table; this adapter builds that table from
the practice panel (per-ICB-year SII, or population-weighted means) and passes the rest through.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from hepcausal import schema
from hepcausal.causal.design import DesignError
from hepcausal.spec import Design, Inference


def _no_weights(design: Design, estimator: str) -> None:
    if design.weights is not None:
        raise DesignError(
            f"weights ({design.weights!r}) are not supported by the {estimator} yet; "
            "leave Design.weights unset"
        )


def gradient(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    **options: Any,
) -> Any:
    """The hierarchical ICB x year gradient model in the registry's form.

    Parameters
    ----------
    panel : pandas.DataFrame
        Long practice x year panel.
    outcome : str
        Outcome column.
    design : Design, optional
        Uses ``rank_col`` and the ICBs to model: the treated ICB and the comparators (all ICBs
        when ``comparators == "all"``).  No start year: the model is descriptive.
    inference : Inference, optional
        Backend, sampler settings and prior overrides (ROPE and HDI are not used).
    **options
        ``likelihood``, ``years``, ``marginalise``, ``centring``, ``standardise`` of
        :func:`hepcausal.models.gradient.fit_gradient`.

    Returns
    -------
    GradientFit
        The fit.
    """
    from hepcausal.models.gradient import fit_gradient

    spec = design if design is not None else Design()
    inf = inference if inference is not None else Inference()
    _no_weights(spec, "gradient model")
    if spec.rank_col is None:
        raise DesignError("the gradient model needs a rank: set Design.rank_col")
    icbs = None if spec.comparators == "all" else [spec.treated, *spec.comparators]
    if "standardise" in options and options["standardise"] is not None:
        options["standardise"] = tuple(options["standardise"])
    return fit_gradient(
        panel,
        outcome,
        rank_col=spec.rank_col,
        backend=inf.backend,
        settings=inf.settings,
        priors=inf.priors,
        icbs=icbs,
        **options,
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

    Parameters
    ----------
    panel : pandas.DataFrame
        Long practice x year panel.
    outcome : str
        Outcome column.
    design : Design, optional
        Treated ICB, comparators (the donors) and start year; ``rank_col`` for
        ``series='sii'``.
    inference : Inference, optional
        Sampler settings, prior overrides, ROPE (``"auto"``: none) and HDI probability; PyMC
        only.
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

    spec = design if design is not None else Design()
    inf = inference if inference is not None else Inference()
    _no_weights(spec, "synthetic control")
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
