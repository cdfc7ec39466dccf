"""Dose-response: the effect per unit of HEP top-up funding (GBP per weighted patient)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hepcausal import schema
from hepcausal.causal.design import DesignError, EffectColumn, build_design
from hepcausal.causal.panel_fit import CausalFit, run_panel_fit
from hepcausal.models.panel_effects import ModelOptions
from hepcausal.spec import Design, Inference, estimator_parameters

__all__ = ["fit_dose_response"]


def fit_dose_response(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    dose_col: str = schema.HEP_DOSE,
    icb_year_effects: bool = True,
    marginalise: bool = True,
) -> CausalFit:
    """Effect on ``outcome`` per unit of ``dose_col`` among treated-ICB and comparator practices.

    Panel-effects model (practice, year and ICB x year effects) with effect columns ``dose``
    (headline, outcome units per GBP per weighted patient), ``delta_level`` (treated ICB x post)
    and, with ``design.rank_col``, ``delta_gradient`` (treated x post x (r - 0.5)) plus the
    gradient block (``rank_col=None``: level only).  The controls absorb ICB-wide changes in the
    treated ICB, so ``dose`` is identified from which practices got how much funding; without
    them any ICB-wide change (or change in its deprivation gradient, when funding follows need)
    would be credited to the dose.  Rows with a missing dose are dropped and counted;
    comparators should have dose 0.  ``design.treat_col`` is not supported; ROPE ``"auto"`` of
    the dose is 0.1 outcome SD per mean positive dose.

    Parameters
    ----------
    {estimator parameters}
    dose_col : str
        Dose column (GBP per weighted patient; 0 when untreated).
    icb_year_effects : bool
        ICB x year shocks (False: sensitivity analyses only).
    marginalise : bool
        Row-level model with Gaussian residuals on an unweighted design: integrate the practice
        intercepts out analytically (:mod:`hepcausal.models.panel_marginal`; the same posterior
        at a cost that does not grow with the number of rows); False keeps them explicit.

    Returns
    -------
    CausalFit
        The fit; effects ``dose`` (headline), ``delta_level`` and maybe ``delta_gradient``.
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

    pd_design = build_design(
        panel,
        outcome,
        design,
        use_treat_col=False,
        extra_required=(dose_col,),
        effects=effects,
    )
    options = ModelOptions(
        cell_effects=icb_year_effects,
        gradient=pd_design.rank_c is not None,
        cell_gradient=icb_year_effects,
        marginalise=marginalise,
    )
    return run_panel_fit(
        pd_design,
        inference,
        estimator="dose_response",
        options=options,
        headline=["dose"],
        extra_meta={"dose_col": dose_col},
    )


estimator_parameters(fit_dose_response)  # the shared Parameters entries
