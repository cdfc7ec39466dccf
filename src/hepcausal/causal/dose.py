"""Dose-response: the effect per unit of HEP top-up funding (GBP per weighted patient)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hepcausal import schema
from hepcausal.causal.design import (
    Comparators,
    DesignError,
    EffectColumn,
    PanelColumns,
    build_design,
)
from hepcausal.causal.panel_fit import CausalFit, Rope, run_panel_fit
from hepcausal.models.panel_effects import Backend, ModelOptions, PanelPriors
from hepcausal.sampling import SamplerSettings

__all__ = ["fit_dose_response"]


def fit_dose_response(
    panel: pd.DataFrame,
    outcome: str,
    *,
    dose_col: str = schema.HEP_DOSE,
    rank_col: str | None = schema.DEPRIVATION_RANK,
    treated: str = schema.LLR_ICB,
    comparators: Comparators = schema.PUBLISHED_COMPARATORS,
    start_year: Any = schema.HEP_START_YEAR,
    covariates: Sequence[str] = (),
    icb_year_effects: bool = True,
    backend: Backend = "pymc",
    settings: SamplerSettings | None = None,
    priors: PanelPriors | dict[str, float] | None = None,
    rope: Rope = "auto",
    hdi_prob: float = 0.95,
    unit_col: str = schema.PRACTICE,
    group_col: str = schema.ICB,
    time_col: str = schema.YEAR,
) -> CausalFit:
    """Effect on ``outcome`` per unit of ``dose_col`` among treated-ICB and comparator practices.

    Panel-effects model (practice, year and ICB x year effects) with effect columns ``dose``
    (headline, outcome units per GBP per weighted patient), ``delta_level`` (treated ICB x post)
    and, with ``rank_col``, ``delta_gradient`` (treated x post x (r - 0.5)) plus the gradient
    block.  The controls absorb ICB-wide changes in the treated ICB, so ``dose`` is identified
    from which practices got how much funding; without them any ICB-wide change (or change in
    its deprivation gradient, when funding follows need) would be credited to the dose.  Rows
    with a missing dose are dropped and counted; comparators should have dose 0.
    """
    if dose_col not in panel.columns:
        raise DesignError(f"dose column {dose_col!r} is not in the panel")
    dose_all = pd.to_numeric(panel[dose_col], errors="coerce")
    if dose_all.isna().all():
        raise DesignError(f"dose column {dose_col!r} is entirely missing (all NaN)")
    if (dose_all < 0).any():
        bad = panel.index[(dose_all < 0).to_numpy(bool)][:5].tolist()
        raise DesignError(f"dose column {dose_col!r} has negative values (rows {bad})")

    def effects(data: pd.DataFrame, D: np.ndarray, rank_c: np.ndarray | None) -> list[EffectColumn]:
        dose = data[dose_col].to_numpy(float)
        pos = dose[dose > 0]
        if pos.size == 0:
            raise DesignError(
                f"dose column {dose_col!r} is zero on every analysed row: nothing to estimate"
            )
        cols = [
            EffectColumn("dose", dose, scale=float(pos.std()) or float(pos.mean()), kind="dose"),
            EffectColumn("delta_level", D, kind="level"),
        ]
        if rank_c is not None:
            cols.append(EffectColumn("delta_gradient", D * rank_c, kind="gradient"))
        return cols

    design = build_design(
        panel,
        outcome,
        treated=treated,
        comparators=comparators,
        start_year=start_year,
        columns=PanelColumns(unit=unit_col, group=group_col, time=time_col),
        rank_col=rank_col,
        covariates=covariates,
        extra_required=(dose_col,),
        effects=effects,
    )
    options = ModelOptions(
        cell_effects=icb_year_effects,
        gradient=rank_col is not None,
        cell_gradient=icb_year_effects,
    )
    return run_panel_fit(
        design,
        estimator="dose_response",
        options=options,
        headline=["dose"],
        backend=backend,
        settings=settings,
        priors=priors,
        rope=rope,
        hdi_prob=hdi_prob,
        extra_meta={"dose_col": dose_col},
    )
