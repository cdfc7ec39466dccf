"""Result type and the shared fitting routine of the panel causal estimators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hepcausal.causal.design import PanelDesign
from hepcausal.diagnostics import check_convergence
from hepcausal.models.panel_effects import (
    ModelOptions,
    PanelPriors,
    effect_draws,
    prepost_data,
    present_check_vars,
    sample_panel_model,
)
from hepcausal.models.panel_marginal import is_marginalised
from hepcausal.outcomes import label_of, units_of
from hepcausal.results import ESTIMAND, TERM, FitResult
from hepcausal.spec import Inference
from hepcausal.summaries import summarise_effect

Rope = float | tuple[float, float] | str | None

MODEL_TERM = "effect_term"  # dim of the model's standardised coefficients ``effect``
ROPE_FRACTION = 0.1  # "auto" ROPE half-width: 0.1 SD of the outcome over the analysis rows


@dataclass(repr=False)
class CausalFit(FitResult):
    """A fitted panel causal estimator (DiD, DDD, dose response).

    The posterior holds the model parameters on the standardised outcome and ``estimand``
    (dims ``chain, draw, term``): every effect column's coefficient on the outcome scale, so
    ``draws(name)`` gives outcome-scale effect draws.

    Parameters
    ----------
    idata, diagnostics, effects, meta, truth
        As in :class:`~hepcausal.results.FitResult`: posterior (with ``estimand``), convergence
        diagnostics, ordered effect summaries (headline first), provenance and known truth.
    design : PanelDesign or None, default None
        The panel design that was fitted (effect columns, outcome scale).
    """

    design: PanelDesign | None = None

    def summary(self) -> pd.DataFrame:
        """The effects table with an ``estimand`` column naming each effect's estimand.

        Returns
        -------
        pandas.DataFrame
            :meth:`FitResult.summary` plus ``estimand`` (population-weighted or
            practice-average, which change).
        """
        df = super().summary()
        names = self.meta.get("estimands", {})
        df["estimand"] = [names.get(t, "") for t in df[TERM]]
        return df


_KIND_WORDS = {
    "gradient": "change in the slope index of inequality (SII, over {rank}) of {label}",
    "level": "change in the mean {label}",
    "dose": "change in {label} per unit of dose",
}


def estimand_names(design: PanelDesign) -> dict[str, str]:
    """Each effect column's estimand in words (weighting, what changes, which comparison).

    Parameters
    ----------
    design : PanelDesign
        The fitted design.

    Returns
    -------
    dict
        Effect name -> e.g. ``"practice-average change in the SII ... of GP FTE ...,
        QK1 minus 10 comparators, from 2022"``, with the pool named when there is one).
    """
    label = label_of(design.outcome)
    rank = design.data.attrs.get("rank_col") or "rank"
    out = {}
    n_pool = len(design.pool)
    pooled = f" (SD of the ICBs' changes also from {n_pool} other ICBs)" if n_pool else ""
    for e in design.effects:
        what = _KIND_WORDS.get(e.kind, "change in {label}").format(rank=rank, label=label)
        when = f"in {e.time}" if e.time is not None else f"from {design.start_year}"
        out[e.name] = (
            f"{design.estimand} {what}, {design.treated} minus {len(design.comparators)} "
            f"comparators, {when}{pooled}"
        )
    return out


def resolve_rope(rope: Rope, design: PanelDesign, kind: str) -> tuple[float, float] | None:
    """ROPE of one effect: explicit value, None, or ``"auto"`` (0.1 outcome SD).

    For ``dose`` effects "auto" is 0.1 outcome SD per mean positive dose.
    """
    if rope is None:
        return None
    if isinstance(rope, str):
        if rope != "auto":
            raise ValueError(f"rope must be a number, (low, high), 'auto' or None; got {rope!r}")
        half = ROPE_FRACTION * design.y_sd
        if kind == "dose":
            dose = next(e.values for e in design.effects if e.kind == "dose")
            half /= float(np.mean(dose[dose > 0]))
        return (-half, half)
    if np.isscalar(rope):
        r = abs(float(rope))  # type: ignore[arg-type]
        return (-r, r)
    lo, hi = rope  # type: ignore[misc]
    return (float(lo), float(hi))


def run_panel_fit(
    design: PanelDesign,
    inference: Inference | None = None,
    *,
    estimator: str,
    options: ModelOptions,
    headline: Sequence[str],
    result_cls: type[CausalFit] = CausalFit,
    extra_meta: dict[str, Any] | None = None,
) -> CausalFit:
    """Sample the panel-effects model, check convergence, summarise the effects.

    Parameters
    ----------
    design : PanelDesign
        The validated design (:func:`hepcausal.causal.design.build_design`).
    inference : Inference, optional
        Backend, sampler settings, :class:`PanelPriors` overrides, ROPE and HDI probability
        (default ``Inference()``).
    estimator : str
        Name recorded in ``meta["estimator"]``.
    options : ModelOptions
        Structural blocks of the panel-effects model.
    headline : sequence of str
        Effect columns to summarise first (in order); the remaining effect columns follow in
        design order.
    result_cls : type
        Result class (a :class:`CausalFit` subclass).
    extra_meta : dict, optional
        Further entries of ``meta``.

    Returns
    -------
    CausalFit
        The fit, with ``idata.posterior["estimand"]`` (dims ``term``) on the outcome scale.
    """
    inf = inference if inference is not None else Inference()
    backend, rope, hdi_prob = inf.backend, inf.rope, inf.hdi_prob
    pri = PanelPriors.from_any(None if inf.priors is None else dict(inf.priors))
    s = inf.settings
    idata = sample_panel_model(design, backend=backend, settings=s, priors=pri, options=options)
    est = effect_draws(idata, design)
    post = idata.posterior
    if TERM in post.dims:  # the model's coefficients get their own dim: "term" labels estimands,
        post = post.rename({TERM: MODEL_TERM})  # which derived ones (event study) extend
    idata.posterior = post.assign({ESTIMAND: est})
    diag = check_convergence(idata, present_check_vars(idata))
    order = list(dict.fromkeys([*headline, *design.effect_names]))
    kinds = {e.name: e.kind for e in design.effects}
    units = units_of(design.outcome)
    effects = {}
    for name in order:
        kind = kinds[name]
        u = f"{units} per unit of dose" if kind == "dose" and units else units
        effects[name] = summarise_effect(
            est.sel(term=name),
            name=name,
            hdi_prob=hdi_prob,
            rope=resolve_rope(rope, design, kind),
            units=u,
        )
    meta: dict[str, Any] = {
        "estimator": estimator,
        "backend": backend,
        "settings": s.to_dict(),
        "priors": pri.to_dict(),
        "model": options.to_dict(),
        "marginalised": is_marginalised(design, options),
        "rope": rope if not isinstance(rope, tuple) else list(rope),
        **design.describe(),
        "estimands": estimand_names(design),
        **(extra_meta or {}),
    }
    if options.error_model == "prepost":
        meta["prepost_practices_dropped"] = prepost_data(design).n_dropped
    if backend == "stan":
        meta["stan_engine"] = idata.posterior.attrs.get("stan_engine")
    return result_cls(idata=idata, diagnostics=diag, effects=effects, meta=meta, design=design)
