"""Difference-in-differences on the level and triple differences (DDD) on the deprivation gradient.

Both fit the practice-level panel-effects model of :mod:`hepcausal.models.panel_effects`: practice
random intercepts around ICB means, year effects, ICB x year shocks (so that with one treated ICB
the uncertainty reflects how much ICB-years vary, not the number of practices) and the treatment
indicator ``D = treated ICB x (year >= start_year)``.
"""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd

from hepcausal.causal.design import DesignError, EffectColumn, build_design
from hepcausal.causal.panel_fit import CausalFit, run_panel_fit
from hepcausal.models.panel_effects import ModelOptions
from hepcausal.spec import Design, Inference, estimator_parameters

__all__ = ["CausalFit", "DidKeywords", "fit_ddd", "fit_did"]


class DidKeywords(TypedDict, total=False):
    """Estimator-specific options of :func:`fit_did` and :func:`fit_ddd` (defaults: fit_did's)."""

    icb_year_effects: bool
    group_trends: bool
    error_model: str
    ics_scales: bool
    family: str
    marginalise: bool
    placebo: bool


#: The default error model of the DiD and the DDD (evidence: docs/ERROR_MODEL.md).
DEFAULT_ERROR_MODEL = "prepost"
DEFAULT_ICS_SCALES = True
DEFAULT_FAMILY = "student_t"


def fit_did(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    icb_year_effects: bool = True,
    group_trends: bool = False,
    error_model: str = DEFAULT_ERROR_MODEL,
    ics_scales: bool = DEFAULT_ICS_SCALES,
    family: str = DEFAULT_FAMILY,
    marginalise: bool = True,
    placebo: bool = False,
) -> CausalFit:
    """Practice-level Bayesian DiD: the change in the treated ICB's level relative to comparators.

    Headline ``delta``: the coefficient of ``D = treated x post`` (outcome units).  The rank of
    ``design`` is not used (level only); ``design.treat_col`` replaces ``treated x post`` by a 0/1
    column; covariates are standardised before fitting.  ROPE ``"auto"``: 0.1 outcome SD.

    Parameters
    ----------
    {estimator parameters}
    icb_year_effects : bool
        ICB x year shocks; False is overconfident with one treated ICB (sensitivity analyses
        only).
    group_trends : bool
        ICB-specific linear trends (row-level error model only).
    error_model : {"prepost", "rows"}
        ``"prepost"`` (default): each practice's change in its mean outcome from the pre to the
        post period (serial correlation within practices cannot make the posterior
        overconfident); ``"rows"``: the row-level model (independent practice-years).
    ics_scales : bool
        ICB-specific residual scales (``log sigma_g ~ N(log sigma, scale_sd)``).
    family : {"student_t", "gaussian"}
        Residual distribution (default Student-t: practice changes are heavy-tailed, kurtosis
        up to 25 on the real panel).  The default error model (pre/post, ICB scales, Student-t)
        was chosen by placebo calibration on the real data (docs/ERROR_MODEL.md).
    marginalise : bool
        Row-level model with Gaussian residuals on an unweighted design: integrate the practice
        intercepts out analytically (:mod:`hepcausal.models.panel_marginal`; the same posterior
        at a cost that does not grow with the number of rows); False keeps them explicit.
    placebo : bool
        Also run the placebo calibration (:func:`hepcausal.causal.placebo_panel.placebo_calibrate`:
        every comparator as pseudo-treated) and return its :class:`PlaceboFit`.

    Returns
    -------
    CausalFit
        The fit; effects ``delta``.
    """
    opts = dict(
        icb_year_effects=icb_year_effects,
        group_trends=group_trends,
        error_model=error_model,
        ics_scales=ics_scales,
        family=family,
        marginalise=marginalise,
    )
    fit = _fit(panel, outcome, design, inference, opts, gradient=False)
    return _with_placebo(fit, panel, outcome, design, inference, opts, placebo)


def _ddd_effects(
    data: pd.DataFrame, D: np.ndarray, rank_c: np.ndarray | None
) -> list[EffectColumn]:
    assert rank_c is not None
    return [
        EffectColumn("delta_gradient", D * rank_c, kind="gradient"),
        EffectColumn("delta_level", D, kind="level"),
    ]


def fit_ddd(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    **options: Unpack[DidKeywords],
) -> CausalFit:
    """Triple differences on the deprivation gradient (SII) of ``outcome``.

    Model: practice effects + year effects + ICB x year level shocks + (ICB gradient + year
    gradient + ICB x year gradient shocks) * (r - 0.5) + delta_level * D + delta_gradient * D *
    (r - 0.5).  Headline ``delta_gradient``: the change in the treated ICB's SII after
    ``start_year`` minus the change in the comparators' SII (the estimand of
    ``SimulationTruth.ddd``); ``delta_level`` is the level change at the mid rank.
    ``design.rank_col`` is any relative rank in [0, 1] (e.g. ``need_rank``) and must be set.

    Parameters
    ----------
    {estimator parameters}
    **options
        ``icb_year_effects`` (ICB x year level and gradient shocks), ``group_trends``,
        ``error_model``, ``ics_scales``, ``family``, ``marginalise`` and ``placebo``, as
        :func:`fit_did`
        (:class:`DidKeywords`).

    Returns
    -------
    CausalFit
        The fit; effects ``delta_gradient`` (headline) and ``delta_level``.
    """
    unknown = sorted(set(options) - set(DidKeywords.__annotations__))
    if unknown:
        raise TypeError(
            f"fit_ddd got unknown option(s) {unknown}; options: {list(DidKeywords.__annotations__)}"
        )
    opts: dict[str, Any] = {**(fit_did.__kwdefaults__ or {}), **options}
    placebo = bool(opts.pop("placebo"))
    fit = _fit(panel, outcome, design, inference, opts, True)
    return _with_placebo(fit, panel, outcome, design, inference, opts, placebo, "ddd")


def _with_placebo(
    fit: CausalFit,
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None,
    inference: Inference | None,
    opts: dict[str, Any],
    placebo: bool,
    estimator: str = "did",
) -> CausalFit:
    if not placebo:
        return fit
    from hepcausal.causal.placebo_panel import placebo_calibrate

    return placebo_calibrate(fit, panel, estimator=estimator, options=opts)


def _fit(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None,
    inference: Inference | None,
    opts: dict[str, Any],
    gradient: bool,
) -> CausalFit:
    """The DiD (``gradient=False``) or the DDD (``gradient=True``)."""
    if gradient and design is not None and design.rank_col is None:
        raise DesignError("the DDD needs a rank: set Design.rank_col (e.g. 'deprivation_rank')")
    pd_design = build_design(
        panel,
        outcome,
        design,
        use_rank=gradient,
        effects=_ddd_effects if gradient else None,
        # the pool informs only the spread of ICB changes, which only the pre/post model has
        use_pool=str(opts["error_model"]) == "prepost",
    )
    icb_year_effects = bool(opts["icb_year_effects"])
    gradient_block = {"gradient": True, "cell_gradient": icb_year_effects} if gradient else {}
    try:
        options = ModelOptions(
            cell_effects=icb_year_effects,
            group_trends=bool(opts["group_trends"]),
            error_model=str(opts["error_model"]),
            ics_scales=bool(opts["ics_scales"]),
            family=str(opts["family"]),
            marginalise=bool(opts["marginalise"]),
            **gradient_block,
        )
    except ValueError as err:
        raise DesignError(str(err)) from None
    return run_panel_fit(
        pd_design,
        inference,
        estimator="ddd" if gradient else "did",
        options=options,
        headline=["delta_gradient", "delta_level"] if gradient else ["delta"],
    )


for _fit_function in (fit_did, fit_ddd):
    estimator_parameters(_fit_function)  # the shared Parameters entries
