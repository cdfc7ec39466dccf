"""Difference-in-differences on the level and triple differences (DDD) on the deprivation gradient.

Both fit the practice-level panel-effects model of :mod:`hepcausal.models.panel_effects`: practice
random intercepts around ICB means, year effects, ICB x year shocks (so that with one treated ICB
the uncertainty reflects how much ICB-years vary, not the number of practices) and the treatment
indicator ``D = treated ICB x (year >= start_year)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hepcausal import schema
from hepcausal.causal.design import (
    Comparators,
    EffectColumn,
    PanelColumns,
    build_design,
)
from hepcausal.causal.panel_fit import CausalFit, Rope, run_panel_fit
from hepcausal.models.panel_effects import Backend, ModelOptions, PanelPriors
from hepcausal.sampling import SamplerSettings

__all__ = ["CausalFit", "fit_ddd", "fit_did"]


def _columns(unit_col: str, group_col: str, time_col: str, treat_col: str | None) -> PanelColumns:
    return PanelColumns(unit=unit_col, group=group_col, time=time_col, treat=treat_col)


def fit_did(
    panel: pd.DataFrame,
    outcome: str,
    *,
    treated: str = schema.LLR_ICB,
    comparators: Comparators = schema.PUBLISHED_COMPARATORS,
    start_year: Any = schema.HEP_START_YEAR,
    covariates: Sequence[str] = (),
    icb_year_effects: bool = True,
    group_trends: bool = False,
    backend: Backend = "pymc",
    settings: SamplerSettings | None = None,
    priors: PanelPriors | dict[str, float] | None = None,
    rope: Rope = "auto",
    hdi_prob: float = 0.95,
    unit_col: str = schema.PRACTICE,
    group_col: str = schema.ICB,
    time_col: str = schema.YEAR,
    treat_col: str | None = None,
) -> CausalFit:
    """Practice-level Bayesian DiD: the change in the treated ICB's level relative to comparators.

    Headline ``delta``: the coefficient of ``D = treated x post`` (outcome units).  ``comparators``
    is a list of group codes or ``"all"``; ``covariates`` are standardised before fitting.
    ``icb_year_effects=False`` drops the ICB x year shocks (overconfident with one treated ICB;
    for sensitivity analyses only); ``group_trends=True`` adds ICB-specific linear trends.
    ``rope``: half-width, (low, high), ``"auto"`` (0.1 outcome SD) or None.
    ``treat_col`` replaces ``treated x post`` by a 0/1 column.
    """
    design = build_design(
        panel,
        outcome,
        treated=treated,
        comparators=comparators,
        start_year=start_year,
        columns=_columns(unit_col, group_col, time_col, treat_col),
        covariates=covariates,
    )
    options = ModelOptions(cell_effects=icb_year_effects, group_trends=group_trends)
    return run_panel_fit(
        design,
        estimator="did",
        options=options,
        headline=["delta"],
        backend=backend,
        settings=settings,
        priors=priors,
        rope=rope,
        hdi_prob=hdi_prob,
    )


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
    *,
    rank_col: str = schema.DEPRIVATION_RANK,
    treated: str = schema.LLR_ICB,
    comparators: Comparators = schema.PUBLISHED_COMPARATORS,
    start_year: Any = schema.HEP_START_YEAR,
    covariates: Sequence[str] = (),
    icb_year_effects: bool = True,
    group_trends: bool = False,
    backend: Backend = "pymc",
    settings: SamplerSettings | None = None,
    priors: PanelPriors | dict[str, float] | None = None,
    rope: Rope = "auto",
    hdi_prob: float = 0.95,
    unit_col: str = schema.PRACTICE,
    group_col: str = schema.ICB,
    time_col: str = schema.YEAR,
    treat_col: str | None = None,
) -> CausalFit:
    """Triple differences on the deprivation gradient (SII) of ``outcome``.

    Model: practice effects + year effects + ICB x year level shocks + (ICB gradient + year
    gradient + ICB x year gradient shocks) * (r - 0.5) + delta_level * D + delta_gradient * D *
    (r - 0.5).  Headline ``delta_gradient``: the change in the treated ICB's SII after
    ``start_year`` minus the change in the comparators' SII (the estimand of
    ``SimulationTruth.ddd``); ``delta_level`` is the level change at the mid rank.  ``rank_col`` is
    any relative rank in [0, 1] (e.g. ``need_rank``).  Other arguments as :func:`fit_did`.
    """
    design = build_design(
        panel,
        outcome,
        treated=treated,
        comparators=comparators,
        start_year=start_year,
        columns=_columns(unit_col, group_col, time_col, treat_col),
        rank_col=rank_col,
        covariates=covariates,
        effects=_ddd_effects,
    )
    options = ModelOptions(
        cell_effects=icb_year_effects,
        gradient=True,
        cell_gradient=icb_year_effects,
        group_trends=group_trends,
    )
    return run_panel_fit(
        design,
        estimator="ddd",
        options=options,
        headline=["delta_gradient", "delta_level"],
        backend=backend,
        settings=settings,
        priors=priors,
        rope=rope,
        hdi_prob=hdi_prob,
    )
