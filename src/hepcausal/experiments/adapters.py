"""Adapters giving estimators with other inputs the runner's ``(panel, outcome, **kw)`` form.

The synthetic control works on a wide ``year x ICB`` table; this adapter builds that table from
the practice panel (per-ICB-year SII, or population-weighted means) and passes the rest through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from hepcausal import schema
from hepcausal.sampling import SamplerSettings


def synthetic_control(
    panel: pd.DataFrame,
    outcome: str,
    *,
    rank_col: str = schema.DEPRIVATION_RANK,
    treated: str = schema.LLR_ICB,
    comparators: Any = schema.PUBLISHED_COMPARATORS,
    start_year: int = schema.HEP_START_YEAR,
    backend: str = "pymc",
    settings: SamplerSettings | None = None,
    priors: Mapping[str, Any] | None = None,
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    series: Literal["sii", "mean"] = "sii",
    sii_method: Literal["unit", "phe", "quintile_bootstrap"] = "unit",
    method: Literal["dirichlet", "horseshoe"] = "dirichlet",
    intercept: bool = False,
) -> Any:
    """Bayesian synthetic control of the treated ICB's yearly series against the comparators.

    ``series='sii'``: the classical SII of ``outcome`` on ``rank_col`` per ICB-year
    (:func:`hepcausal.inequality.classical.sii_table`, ``sii_method``), with its standard errors
    passed as measurement error; ``'mean'``: population-weighted ICB means
    (:func:`hepcausal.causal.panels.ics_series`).  Donors are the comparators.  ``method`` /
    ``intercept`` / ``priors`` as :func:`hepcausal.causal.synthetic_control.fit_synthetic_control`
    (PyMC only).
    """
    from hepcausal.causal.panels import ics_series
    from hepcausal.causal.synthetic_control import fit_synthetic_control
    from hepcausal.inequality.classical import sii_table

    if backend != "pymc":
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
        seed = settings.seed if settings is not None else None
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
    from hepcausal.causal.panel_fit import outcome_units

    fit = fit_synthetic_control(
        wide,
        treated,
        start_year,
        method=method,
        intercept=intercept,
        donors=donors,
        outcome_se=outcome_se,
        settings=settings,
        priors=priors,
        hdi_prob=hdi_prob,
        rope=rope,
        units=outcome_units(outcome),
    )
    fit.meta.setdefault("series", series)
    fit.meta.setdefault("outcome", outcome)
    return fit
