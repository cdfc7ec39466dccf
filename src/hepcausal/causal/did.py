"""Difference-in-differences on the level and triple differences (DDD) on the deprivation gradient.

Both fit the practice-level panel-effects model of :mod:`hepcausal.models.panel_effects`: practice
random intercepts around ICB means, year effects, ICB x year shocks (so that with one treated ICB
the uncertainty reflects how much ICB-years vary, not the number of practices) and the treatment
indicator ``D = treated ICB x (year >= start_year)``.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

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


def fit_did(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    icb_year_effects: bool = True,
    group_trends: bool = False,
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
        ICB-specific linear trends.

    Returns
    -------
    CausalFit
        The fit; effects ``delta``.
    """
    return _fit(panel, outcome, design, inference, icb_year_effects, group_trends, gradient=False)


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
        ``icb_year_effects`` (ICB x year level and gradient shocks) and ``group_trends``, as
        :func:`fit_did` (:class:`DidKeywords`).

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
    opts = {**(fit_did.__kwdefaults__ or {}), **options}
    return _fit(
        panel, outcome, design, inference, opts["icb_year_effects"], opts["group_trends"], True
    )


def _fit(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None,
    inference: Inference | None,
    icb_year_effects: bool,
    group_trends: bool,
    gradient: bool,
) -> CausalFit:
    """The DiD (``gradient=False``) or the DDD (``gradient=True``)."""
    if gradient and design is not None and design.rank_col is None:
        raise DesignError("the DDD needs a rank: set Design.rank_col (e.g. 'deprivation_rank')")
    pd_design = build_design(
        panel, outcome, design, use_rank=gradient, effects=_ddd_effects if gradient else None
    )
    gradient_block = {"gradient": True, "cell_gradient": icb_year_effects} if gradient else {}
    options = ModelOptions(
        cell_effects=icb_year_effects, group_trends=group_trends, **gradient_block
    )
    return run_panel_fit(
        pd_design,
        inference,
        estimator="ddd" if gradient else "did",
        options=options,
        headline=["delta_gradient", "delta_level"] if gradient else ["delta"],
    )


for _fit_function in (fit_did, fit_ddd):
    estimator_parameters(_fit_function)  # the shared Parameters entries
