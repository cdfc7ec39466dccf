"""``plot_result``: every figure relevant to a result, written as PDF + SVG + PNG.

:func:`result_figures` is a :func:`functools.singledispatch` function: one implementation per
result type (every :class:`~hepcausal.results.FitResult`, then the estimator-specific fits and
the placebo results), reading estimands from the fit's labelled ``estimands`` / ``draws`` and its
typed attributes.  Register a new result type with ``@result_figures.register``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from hepcausal.causal.event_study import EventStudyFit
from hepcausal.causal.panel_fit import CausalFit
from hepcausal.causal.placebo import LeaveOneOutResult, PlaceboInTimeResult, PlaceboResult
from hepcausal.causal.sdid import SdidFit
from hepcausal.causal.synthetic_control import SyntheticControlFit
from hepcausal.inequality.funding_fits import FundingSiiFit, PcnRegressionFit
from hepcausal.inequality.replication import ReplicationFit
from hepcausal.models.gradient import NATIONAL, GradientFit
from hepcausal.outcomes import OUTCOMES, label_of, units_of
from hepcausal.plots.checks import (
    element_label,
    plot_effect_posterior,
    plot_ppc,
    plot_trace_rank,
    worst_element,
)
from hepcausal.plots.event_study import plot_event_study
from hepcausal.plots.forest import plot_forest
from hepcausal.plots.inequality import plot_sii_trajectories
from hepcausal.plots.labels import icb_label, outcome_short
from hepcausal.plots.panel import (
    classical_sii,
    descriptive_event_table,
    england_level,
    england_sii,
    icb_year_table,
    plot_descriptive_event,
    plot_icb_series,
)
from hepcausal.plots.style import DEFAULT_FORMATS, fiscal_year_label, save_figure
from hepcausal.plots.synthetic_control import (
    plot_donor_weights,
    plot_placebo_gaps,
    plot_placebo_ratios,
    plot_sdid,
    plot_synthetic_control,
)
from hepcausal.results import ESTIMAND, TERM, FitResult
from hepcausal.schema import HEP_START_YEAR, ICB, LLR_ICB
from hepcausal.summaries import estimand_words

log = logging.getLogger(__name__)

Figures = list[tuple[str, Figure, str]]  # (file stem, figure, caption)
TRACE_ROWS = 6  # rows of the trace/rank figure


# ----------------------------------------------------------------------------- helpers
def _outcome(result: FitResult) -> str | None:
    out = result.meta.get("outcome")
    return str(out) if out else None


def _treatment_year(result: FitResult) -> int:
    return int(result.meta.get("start_year") or HEP_START_YEAR)


def _treated(result: FitResult) -> str:
    return str(result.meta.get("treated") or LLR_ICB)


def pretty_units(units: str) -> str:
    """Replace an outcome column name inside a units string by its readable label.

    Parameters
    ----------
    units
        Units string of an effect (the gradient model states them as the outcome column).

    Returns
    -------
    str
        ``units`` with the first outcome column found replaced by the outcome's label.
    """
    for col, o in OUTCOMES.items():
        if col in units:
            return units.replace(col, o.label)
    return units


def _effect_figure(result: FitResult) -> Figures:
    """Posterior density of the headline estimand (from ``result.draws``)."""
    if not result.effects:
        return []
    term = result.headline_term
    try:
        draws = result.draws(term)
    except KeyError:  # a stored run without posterior estimands: no density to draw
        return []
    if draws.size < 2:
        return []
    e = result.headline
    words = _words(result, term)
    truth = (result.truth or {}).get(term)
    fig = plot_effect_posterior(
        draws,
        name=str(e.name),
        xlabel=_short_words(result, term),
        units=pretty_units(e.units),
        hdi_prob=e.hdi_prob,
        rope=e.rope,
        truth=truth,
    )
    return [
        (
            "effect_posterior",
            fig,
            f"Posterior of the headline estimand ({e.name}: {words or e.name}) with its "
            f"{e.hdi_prob:.0%} HDI"
            + (", the region of practical equivalence (shaded)" if e.rope else "")
            + (f", the true value {truth:.3g} (synthetic data)" if truth is not None else "")
            + " and the probability of direction.",
        )
    ]


def _words(result: FitResult, term: str) -> str | None:
    m = result.meta
    return estimand_words(
        term,
        outcome=m.get("outcome"),
        treated=m.get("treated"),
        start_year=m.get("start_year"),
        rank_col=m.get("rank_col"),
    )


def _short_words(result: FitResult, term: str) -> str:
    """X-axis label of an effect: short words (no code names)."""
    if term == "delta_gradient":
        return "Change in the SII relative to comparators"
    if term in ("delta_level", "delta"):
        return "Change in the mean relative to comparators"
    return term.replace("_", " ")


def _trace_selection(result: FitResult) -> list[tuple[str, dict[str, Any]]]:
    """(variable, element) rows of the trace/rank figure: the headline estimand, the elements
    with the largest R-hat and the smallest bulk ESS, then scalar parameters."""
    idata = result.idata
    post = idata.posterior
    rows: list[tuple[str, dict[str, Any]]] = []

    def add(var: str, sel: dict[str, Any]) -> None:
        if (var, sel) not in rows:
            rows.append((var, sel))

    if ESTIMAND in post and result.effects and result.headline_term in result.terms:
        add(ESTIMAND, {TERM: result.headline_term})
    diag = result.diagnostics
    for var, stat in ((diag.worst_rhat_var, "rhat"), (diag.worst_ess_var, "ess")):
        if var and var in post:
            add(var, worst_element(idata, var, stat))  # show where convergence is worst
    for v, da in post.data_vars.items():
        if da.ndim == 2 and not str(v).endswith("__"):
            add(str(v), {})
    if not rows:  # no scalars: the first element of the first variables
        for v in list(post.data_vars)[:TRACE_ROWS]:
            add(str(v), worst_element(idata, str(v), "rhat"))
    return rows[:TRACE_ROWS]


def _diagnostic_figures(result: FitResult) -> Figures:
    idata = result.idata
    rows = _trace_selection(result)
    names = list(dict.fromkeys(v for v, _ in rows))
    elements = {v: [sel for w, sel in rows if w == v] for v in names}
    out: Figures = []
    fig = plot_trace_rank(idata, names, elements=elements, max_vars=TRACE_ROWS)
    labels = [element_label(v, sel) for v, sel in rows]
    out.append(
        (
            "trace_rank",
            fig,
            "MCMC traces per chain and rank plots (flat when chains agree) of "
            + ", ".join(labels)
            + f" (the headline estimand, the elements with the largest R-hat and the smallest "
            f"bulk ESS, then scalar parameters). Diagnostics: {result.diagnostics}.",
        )
    )
    for group in ("prior", "posterior"):
        pp = getattr(idata, f"{group}_predictive", None)
        obs = getattr(idata, "observed_data", None)
        if pp is not None and obs is not None and any(v in pp for v in obs.data_vars):
            try:
                fig = plot_ppc(idata, group=group)
            except Exception as exc:  # a predictive check must not lose the other figures
                log.warning("%s predictive check failed: %s", group, exc)
                continue
            out.append(
                (
                    f"{group}_predictive_check",
                    fig,
                    f"{group.capitalize()} predictive check: simulated data sets against "
                    "the observed outcome.",
                )
            )
    return out


# ----------------------------------------------------------------------------- dispatch
@functools.singledispatch
def result_figures(result: object) -> Figures:
    """``(stem, figure, caption)`` for every figure relevant to ``result`` (not saved).

    Parameters
    ----------
    result
        A registered result type: any :class:`~hepcausal.results.FitResult` (estimator-specific
        figures for ``GradientFit``, ``EventStudyFit`` and ``SyntheticControlFit``), a
        ``PlaceboResult`` or a ``PlaceboInTimeResult``.

    Returns
    -------
    list of (str, Figure, str)
        File stem, figure and caption of each figure.

    Raises
    ------
    TypeError
        For a type with no registered figures (the message lists the registered types).
    """
    known = sorted(c.__name__ for c in result_figures.registry if c is not object)
    raise TypeError(f"no figures for a {type(result).__name__}; registered types: {known}")


@result_figures.register
def _fit_figures(result: FitResult) -> Figures:
    return _effect_figure(result) + _diagnostic_figures(result)


def _panel_figures(result: CausalFit) -> Figures:
    """Time-axis figures of a DiD / DDD / event-study fit from the data it saw."""
    design = result.design
    if design is None:
        return []
    data, outcome = design.data, design.outcome
    treated, ty = design.treated, int(design.start_year)
    label, units = label_of(outcome) or outcome, units_of(outcome)
    u = f" ({units})" if units else ""
    out: Figures = []
    source = _england_source(design)
    eng_level = None if source is None else _safe_england(england_level, source, outcome)
    eng_words = (
        "; England (every practice of the panel) in blue with its 95% CI"
        if eng_level is not None
        else ""
    )
    level = icb_year_table(data, outcome)
    out.append(
        (
            "outcome_by_icb",
            plot_icb_series(
                level,
                treated=treated,
                treatment_year=ty,
                ylabel=f"{outcome_short(outcome) or label}\n{u.strip()}",
                title=f"{label}: practice average by ICS",
                reference=eng_level,
            ),
            f"{label}: mean over practices (each weighted equally) by ICS and fiscal year; "
            f"{icb_label(treated)} highlighted with its 95% CI, comparator ICSs in grey and "
            f"their average dashed{eng_words}; shading marks the treatment period.",
        )
    )
    rank_col = result.meta.get("rank_col") or data.attrs.get("rank_col")
    if not rank_col or rank_col not in data.columns:
        return out
    try:
        sii, method = classical_sii(data, outcome, str(rank_col))
    except Exception as exc:  # the classical table must not lose the other figures
        log.warning("classical SII table failed: %s", exc)
        return out
    if not sii["sii"].notna().any():
        log.warning("classical SII: no ICS-year with enough practices; no figure")
        return out
    how = (
        "PHE method: quintile means"
        if method == "phe"
        else "practice-level regression on the rank (too few practices per quintile for PHE)"
    )
    sii = sii.rename(columns={"sii": "value"})
    eng_sii = (
        None
        if source is None or rank_col not in source
        else _safe_england(england_sii, source, outcome, str(rank_col), method)
    )
    what = "deprivation" if "depriv" in str(rank_col) else "need"
    adj = "deprived" if what == "deprivation" else "in need"
    out.append(
        (
            "sii_by_icb",
            plot_icb_series(
                sii,
                treated=treated,
                treatment_year=ty,
                ylabel=f"SII of {outcome_short(outcome) or label}\n{u.strip()}",
                title=f"Slope index of inequality by ICS ({what} rank)",
                reference=None if eng_sii is None else eng_sii.rename(columns={"sii": "value"}),
            ),
            f"Classical ({how}) slope index of inequality of {label} by ICS and fiscal "
            f"year: the fitted difference between the least and the most {adj} end of the "
            f"practice {what} rank (positive = more in less {adj} practices); "
            f"{icb_label(treated)} "
            "highlighted with its 95% CI, comparators in grey and their average dashed"
            + (
                "; England (every practice of the panel, same method) in blue with its 95% CI"
                if eng_sii is not None
                else ""
            )
            + "; shading marks the treatment period.",
        )
    )
    try:
        ev = descriptive_event_table(
            sii.rename(columns={"value": "sii"}), treated=treated, treatment_year=ty
        )
    except ValueError as exc:
        log.warning("descriptive event view skipped: %s", exc)
        return out
    est = None
    if "delta_gradient" in result.effects:
        e = result.effects["delta_gradient"]
        est = (e.mean, e.hdi_low, e.hdi_high)
    truth = (result.truth or {}).get("delta_gradient")
    out.append(
        (
            "event_view",
            plot_descriptive_event(
                ev,
                ylabel=f"SII difference vs comparators\n{u.strip()}",
                title="Event view (descriptive, classical SII)",
                estimate=est,
                truth=truth,
            ),
            f"Descriptive event view: {icb_label(treated)}'s classical SII minus the comparator "
            f"average, relative to {fiscal_year_label(ty - 1, short=False)} (the year before the "
            "start; fixed at zero), with 95% "
            "CIs treating ICS-years as independent. Not a model estimate"
            + ("; the band is the fitted DDD change (posterior mean, 95% HDI)" if est else "")
            + ("; the dotted line is the true change (synthetic data)" if truth is not None else "")
            + ".",
        )
    )
    return out


def _england_source(design: Any) -> pd.DataFrame | None:
    """The panel a design was cut from when it holds ICBs beyond the design's own, else None.

    (A panel of just the design's ICBs is not England: no reference line is drawn.)
    """
    src = getattr(design, "source", None)
    if src is None or ICB not in src or src[ICB].nunique() <= len(design.groups):
        return None
    return src


def _safe_england(fn: Any, *args: Any) -> pd.DataFrame | None:
    """An England table, or None (logged) when it fails: the figure keeps the rest."""
    try:
        out: pd.DataFrame | None = fn(*args)
    except Exception as exc:
        log.warning("England reference line skipped: %s", exc)
        return None
    return out


PPC_DRAWS = 100  # posterior draws simulated for the predictive check


def _panel_ppc(result: CausalFit) -> Figures:
    """Posterior predictive check of a panel-effects fit: the PyMC model is rebuilt from the
    design and simulated at ``PPC_DRAWS`` posterior draws (before the run folder is compacted)."""
    design = result.design
    post = result.idata.posterior
    if design is None or "model" not in result.meta or "effect" not in post:
        return []
    import dataclasses

    import arviz as az
    import numpy as np
    import pymc as pm
    import xarray as xr

    from hepcausal.models.panel_effects import (
        ModelOptions,
        PanelPriors,
        build_pymc_model,
        build_pymc_prepost,
        prepost_data,
    )
    from hepcausal.models.panel_marginal import draw_unit_effects

    options = ModelOptions(**result.meta["model"])
    prepost = options.error_model == "prepost"
    # a marginalised row-level fit has no practice intercepts: they are drawn from their
    # conditional normal at the thinned draws (needs the z_* draws, absent once compacted)
    marginal = not prepost and bool(result.meta.get("marginalised"))
    if not prepost and "unit_raw" not in post and not marginal:
        return []  # a compacted row-level posterior: the practice effects are not stored
    n = int(post.sizes["chain"] * post.sizes["draw"])
    step = max(1, n // PPC_DRAWS)
    thin = post.stack(sample=("chain", "draw")).isel(sample=slice(None, None, step))
    thin = thin.drop_vars([c for c in ("sample", "chain", "draw") if c in thin.coords])
    thin = thin.rename({"sample": "draw"}).expand_dims(chain=[0])
    thin = thin.transpose("chain", "draw", ...)
    if marginal and "unit_raw" not in thin:
        try:
            thin = thin.assign(unit_raw=draw_unit_effects(thin, design, options, seed=20211))
        except KeyError:
            return []  # a block's raw draws were not stored
    # the simulation needs the explicit row-level model (its observed ``y``)
    options = dataclasses.replace(options, marginalise=False)
    build = build_pymc_prepost if prepost else build_pymc_model
    model = build(design, PanelPriors.from_any(result.meta.get("priors")), options)
    with model:
        pp = pm.sample_posterior_predictive(
            thin, var_names=["y"], random_seed=20211, progressbar=False
        )
    if prepost:  # the fitted data are practice post-minus-pre changes (no mean to add back)
        sim = pp.posterior_predictive["y"] * design.y_sd
        obs = np.asarray(prepost_data(design).d) * design.y_sd
    else:
        sim = pp.posterior_predictive["y"] * design.y_sd + design.y_mean
        obs = np.asarray(design.y) * design.y_sd + design.y_mean
    dim = next(d for d in sim.dims if d not in ("chain", "draw"))
    check = az.InferenceData(
        posterior_predictive=xr.Dataset({"y": sim}),
        observed_data=xr.Dataset({"y": xr.DataArray(obs, dims=[dim])}),
    )
    outcome = design.outcome
    units = units_of(outcome)
    what = f"{outcome_short(outcome) or label_of(outcome)}"
    if prepost:
        what = f"Change in {what}"  # the caption says: post-minus-pre practice means
    fig = plot_ppc(check, xlabel=what + (f" ({units})" if units else ""))
    over = (
        "practices' post-minus-pre mean changes (the data the pre/post model fits)"
        if prepost
        else "practice-years"
    )
    return [
        (
            "posterior_predictive_check",
            fig,
            f"Posterior predictive check: the distribution of {label_of(outcome)} over "
            f"{over}, observed (black) and simulated from {thin.sizes['draw']} "
            "posterior draws of the fitted model (blue; their mean dashed orange).",
        )
    ]


def _safe_panel_ppc(result: CausalFit) -> Figures:
    try:
        return _panel_ppc(result)
    except Exception as exc:  # a predictive check must not lose the other figures
        log.warning("posterior predictive check failed: %s", exc)
        return []


@result_figures.register
def _causal_figures(result: CausalFit) -> Figures:
    return (
        _panel_figures(result)
        + _fit_figures(result)
        + _safe_panel_ppc(result)
        + _dose_need_figure(result)
    )


def _dose_need_figure(result: CausalFit) -> Figures:
    """The need check of the observed candidate funding dose (dose-response runs only)."""
    from hepcausal.inequality.funding import DOSE_COL
    from hepcausal.plots.funding import plot_dose_need

    if result.meta.get("dose_col") != DOSE_COL or result.design is None:
        return []
    treated = _treated(result)
    return [
        (
            "dose_need_check",
            plot_dose_need(result.design.data, dose_col=DOSE_COL, icb=treated),
            f"Is the candidate dose (rise in local incentive payments per weighted patient over "
            f"FY2020/21; not documented to carry the Health Equity Payments) related to need? "
            f"{treated} practices' dose against their IMD 2019 score per year, OLS line; "
            "Spearman correlation and slope per 10 IMD points (95% HC1 interval) in the titles. "
            "A scheme aimed at need would give a positive slope.",
        )
    ]


@result_figures.register
def _gradient_figures(result: GradientFit) -> Figures:
    table = result.sii_table(result.sii_var, hdi_prob=0.95)
    icbs = table[table[ICB] != NATIONAL]
    outcome = _outcome(result)
    name = outcome_short(outcome) or "the outcome"
    treated = _treated(result)
    ty = _treatment_year(result)
    out: Figures = [
        (
            "sii_trajectories",
            plot_sii_trajectories(icbs, outcome=outcome, treatment_year=ty, highlight=treated),
            f"Slope index of inequality of {name} by ICS and fiscal year (posterior mean and 95% "
            f"HDI); {icb_label(treated)} highlighted, comparators in grey; shading marks the HEP "
            "period.",
        ),
        (
            "sii_small_multiples",
            plot_sii_trajectories(
                icbs, outcome=outcome, treatment_year=ty, highlight=treated, layout="grid"
            ),
            f"SII of {name} by ICS (one panel each, 95% HDI), with the {icb_label(treated)} "
            "posterior mean repeated as a dashed reference line.",
        ),
    ]
    return out + _fit_figures(result)


def event_pretrend_text(pretrend: dict[str, Any] | None) -> str | None:
    """Annotation of an event study's joint pre-trend check (``EventStudyFit.pretrend``).

    Parameters
    ----------
    pretrend
        The ``pretrend`` dict of an :class:`~hepcausal.causal.event_study.EventStudyFit`.

    Returns
    -------
    str or None
        The box text, or None without a check.
    """
    if not pretrend:
        return None
    if not pretrend.get("n_pre"):
        return str(pretrend.get("note") or "Pre-trends untestable")
    text = (
        f"Pre-trend check ({pretrend['n_pre']} years): joint p = "
        f"{float(pretrend.get('p_joint', float('nan'))):.2g}, max |z| = "
        f"{float(pretrend.get('max_abs_z', float('nan'))):.2f}"
    )
    if pretrend.get("flag"):
        text += "\nFLAGGED: parallel trends doubtful"
    return text


@result_figures.register
def _event_study_figures(result: EventStudyFit) -> Figures:
    start = _treatment_year(result)
    ref_year = result.reference_year
    ref = int(ref_year) - start if ref_year is not None else -1
    main = result.target
    pre = event_pretrend_text(result.pretrend)
    # a gradient event study also estimates the per-year level differences
    targets = ["gradient", "level"] if main == "gradient" else ["level"]
    out: Figures = []
    for target in targets:
        table = result.event_table(target)  # type: ignore[arg-type]
        what = "the SII (deprivation gradient)" if target == "gradient" else "the mean level"
        fig = plot_event_study(
            table,
            reference=ref,
            outcome=_outcome(result),
            pretrend=pre if target == main and pre else "auto",
        )
        if target == "level":
            fig.axes[0].set_ylabel(
                fig.axes[0].get_ylabel().replace("Effect on SII", "Effect on level")
            )
        out.append(
            (
                "event_study" if target == main else f"event_study_{target}",
                fig,
                f"Event study: effect on {what} by year relative to HEP start (posterior mean and "
                f"HDI), relative to the reference year {ref_year if ref_year is not None else ''}"
                " (fixed at zero); the box reports the pre-trend check.",
            )
        )
    if result.pretrend.get("breakdown") and result.design is not None:
        from hepcausal.causal.sensitivity import trend_sensitivity
        from hepcausal.plots.null_result import plot_sensitivity

        sens = trend_sensitivity(result)
        out.append(
            (
                "pretrend_sensitivity",
                plot_sensitivity(sens),
                "Parallel-trends sensitivity: robust 95% interval of the average post-period "
                "effect when post-period violations may reach Mbar times the largest pre-period "
                "change (left) or bend by up to M per year squared (right). " + sens.sentence(),
            )
        )
    return _panel_figures(result) + out + _fit_figures(result) + _safe_panel_ppc(result)


@result_figures.register
def _replication_figures(result: ReplicationFit) -> Figures:
    from hepcausal.plots.null_result import plot_replication

    return [
        (
            "replication",
            plot_replication(result.table, start_year=_treatment_year(result)),
            "The published SII method by year: LLR and England with 95% BCa intervals, the "
            "comparators in grey with their average (dashed), HEP start (July 2021) dotted.",
        )
    ]


@result_figures.register
def _funding_sii_figures(result: FundingSiiFit) -> Figures:
    from hepcausal.plots.funding import plot_funding_quintiles
    from hepcausal.plots.null_result import plot_replication

    outcome = str(result.meta.get("outcome"))
    table = result.table.assign(outcome=outcome)
    return [
        (
            "funding_sii",
            plot_replication(table, start_year=_treatment_year(result)),
            "Classical SII of funding per ICS and year (rank 0 = most deprived; a negative SII "
            "means more money per patient to more deprived practices): LLR and England (national "
            "ranks) with 95% intervals, the comparators in grey with their average (dashed).",
        ),
        (
            "funding_by_quintile",
            plot_funding_quintiles(result.quintiles, outcome),
            "Funding per weighted patient by deprivation quintile (within ICS x year, weighted "
            "by the weighted list) and year: LLR beside the pooled comparators; HEP start "
            "marked.",
        ),
    ]


@result_figures.register
def _pcn_regression_figures(result: PcnRegressionFit) -> Figures:
    from hepcausal.inequality.funding import PUBLISHED_SLOPES
    from hepcausal.plots.funding import plot_pcn_regression

    model = str(result.meta.get("model", "bayesian"))
    return [
        (
            "pcn_regression",
            plot_pcn_regression(
                result.pcns, result.table, outcome=result.pcn_outcome, published=PUBLISHED_SLOPES
            ),
            f"PCN funding per weighted patient against the PCN's list-weighted IMD 2019 score, "
            f"one panel per contract year; solid line: the {model} slope per 10 IMD points "
            "(within ICS for the Bayesian model; 95% interval in the title), dashed: OLS "
            "across England (HC1). The published slopes "
            "(Warwick-Giles et al. 2024) are per 10% income deprivation, a measure these files "
            "do not have: shown for direction only.",
        ),
        *(_fit_figures(result) if model == "bayesian" else []),
    ]


@result_figures.register
def _synthetic_control_figures(result: SyntheticControlFit) -> Figures:
    series = result.series
    start = result.start if result.start is not None else _treatment_year(result)
    out: Figures = [
        (
            "synthetic_control",
            plot_synthetic_control(
                series.index.to_numpy(dtype=float),
                series["observed"].to_numpy(dtype=float),
                result.counterfactual,
                treatment_year=int(start),
                outcome=_outcome(result),
                treated_label=icb_label(result.treated),
            ),
            "Synthetic control: (a) observed series and synthetic counterfactual (posterior "
            "mean, 95% HDI), (b) gap, (c) cumulative gap over the treatment period.",
        )
    ]
    if not result.weights.empty:
        out.append(
            (
                "donor_weights",
                plot_donor_weights(result.weights),
                "Synthetic-control donor weights (posterior mean and 95% HDI).",
            )
        )
    return out + _fit_figures(result)


@result_figures.register
def _sdid_figures(result: SdidFit) -> Figures:
    w = result.unit_weights
    fig = plot_sdid(
        result.series,
        result.time_weights,
        treatment_year=int(result.start),
        treated_label=", ".join(icb_label(t) for t in result.treated),
    )
    return [
        ("sdid", fig, "Synthetic DiD: (a) treated and counterfactual series, (b) time weights."),
        (
            "sdid_unit_weights",
            plot_donor_weights(w[w > 0], top=20),
            "Synthetic-DiD unit weights (omega; point values).",
        ),
        *_effect_figure(result),
    ]


@result_figures.register
def _placebo_figures(result: PlaceboResult) -> Figures:
    treated = result.treated
    return [
        (
            "placebo_gaps",
            plot_placebo_gaps(
                result.gaps,
                treated=treated,
                treatment_year=int(result.start),
                excluded=list(result.excluded),
                treated_label=icb_label(treated),
            ),
            "In-space placebo test: gap between observed and synthetic series of the treated "
            "unit (highlighted) and of every placebo unit (grey; dotted = excluded for poor "
            "pre-period fit).",
        ),
        (
            "placebo_rmspe",
            plot_placebo_ratios(result.ratios, treated=treated, p_value=result.p_value),
            "In-space placebo test: post/pre RMSPE ratio of each unit; the treated unit is "
            "highlighted and the exact permutation p-value is its rank over the units.",
        ),
    ]


@result_figures.register
def _leave_one_out_figures(result: LeaveOneOutResult) -> Figures:
    fig = plot_placebo_gaps(
        result.gaps,
        treated="none",
        treatment_year=int(result.start),
        treated_label=f"{icb_label(result.treated)}, all donors",
    )
    return [
        (
            "leave_one_out",
            fig,
            "Leave-one-out donors: gap with all donors (highlighted) and dropping each donor with "
            "a positive weight in turn (grey).",
        )
    ]


@result_figures.register
def _placebo_in_time_figures(result: PlaceboInTimeResult) -> Figures:
    if result.table.empty:
        return []
    t = result.table.reset_index()
    t["name"] = [
        f"fake start {fiscal_year_label(int(v), short=False)}"
        if str(v).isdigit()
        else f"fake start {v}"
        for v in t["fake_start"]
    ]
    fig = plot_forest(t, xlabel="Fake average post-period effect")
    return [
        (
            "placebo_in_time",
            fig,
            "In-time placebo test: average 'effect' estimated at fake start years using only "
            "pre-treatment data (posterior mean and 95% HDI); these should cover zero.",
        )
    ]


def plot_result(
    result: object, out_dir: str | Path, formats: Sequence[str] = DEFAULT_FORMATS
) -> list[Path]:
    """Write every figure relevant to ``result`` into ``out_dir`` (PDF, SVG, PNG) with captions.

    Returns the written paths.  Captions go to ``out_dir/captions.json`` for the HTML report.

    Parameters
    ----------
    result : object
        A result type registered with :func:`result_figures` (any
        :class:`~hepcausal.results.FitResult`, a ``PlaceboResult`` or a
        ``PlaceboInTimeResult``); its own class and base classes select the figures.
    out_dir : str or Path
        Output folder (created if missing).
    formats : sequence of str, default DEFAULT_FORMATS
        File formats of every figure (e.g. ``("pdf", "svg", "png")``).

    Returns
    -------
    list of pathlib.Path
        The files written, every format of every figure.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for stem, fig, caption in result_figures(result):
        try:
            paths += save_figure(fig, out / stem, formats, caption=caption)
        finally:
            plt.close(fig)
    return paths


def plot_sweep_forest(table: pd.DataFrame, path: str | Path) -> Path:
    """Forest plot of a sweep's headline table (``hepcausal.experiments.sweep`` layout).

    Accepts the sweep table (``run``, ``diagnostics_ok``, ``mean``, ``hdi_low`` ...) or the
    plain forest layout (``name``, ``ok``).  Writes PDF, SVG and PNG; returns the PNG path.

    Parameters
    ----------
    table : pandas.DataFrame
        The sweep table (``run``, ``diagnostics_ok``, ``mean``, ``hdi_low``, ``hdi_high``, and
        optionally ``estimand``, ``units``, ``hdi_prob``, ``p_direction``, ``p_rope``) or the
        forest layout of :func:`plot_forest`.
    path : str or Path
        Output path; its suffix is replaced by each format's.

    Returns
    -------
    pathlib.Path
        The PNG file.
    """
    t = table.copy()
    if "name" not in t.columns and "run" in t.columns:
        t["name"] = t["run"].astype(str)
    if "ok" not in t.columns and "diagnostics_ok" in t.columns:
        t["ok"] = t["diagnostics_ok"]
    estimand = (
        str(t["estimand"].dropna().iloc[0])
        if "estimand" in t.columns and t["estimand"].notna().any()
        else "headline effect"
    )
    units = (
        str(t["units"].dropna().iloc[0])
        if "units" in t.columns and t["units"].notna().any()
        else ""
    )
    prob = (
        float(t["hdi_prob"].dropna().iloc[0])
        if "hdi_prob" in t.columns and t["hdi_prob"].notna().any()
        else 0.95
    )
    xlabel = estimand + (f" ({units})" if units else "")
    path = Path(path)
    fig = plot_forest(
        t, path, xlabel=xlabel, hdi_prob=prob, title=f"Sensitivity of the {estimand} across runs"
    )
    plt.close(fig)
    return path.with_suffix(".png")
