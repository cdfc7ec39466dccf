"""``plot_result``: every figure relevant to a fitted result, written as PDF + SVG + PNG.

Adapters match result classes by name along the MRO (no import of the estimator modules, so
plotting never fails because an estimator is missing) and read them through their public API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hepcausal.plots.checks import plot_effect_posterior, plot_ppc, plot_trace_rank
from hepcausal.plots.event_study import plot_event_study
from hepcausal.plots.forest import plot_forest
from hepcausal.plots.inequality import plot_sii_trajectories
from hepcausal.plots.labels import OUTCOME_LABELS, icb_label, outcome_short
from hepcausal.plots.style import DEFAULT_FORMATS, fiscal_year_label, save_figure
from hepcausal.plots.synthetic_control import (
    plot_donor_weights,
    plot_placebo_gaps,
    plot_placebo_ratios,
    plot_synthetic_control,
)
from hepcausal.schema import HEP_START_YEAR, ICB, LLR_ICB

log = logging.getLogger(__name__)

NATIONAL_LABEL = "England"

Figures = list[tuple[str, Figure, str]]  # (file stem, figure, caption)


# ----------------------------------------------------------------------------- helpers
def _class_names(obj: object) -> list[str]:
    return [c.__name__ for c in type(obj).__mro__]


def _meta(result: object) -> dict[str, Any]:
    return dict(getattr(result, "meta", None) or {})


def _outcome(result: object) -> str | None:
    m = _meta(result)
    return m.get("outcome") or m.get("analysis", {}).get("outcome") if m else None


def _treatment_year(result: object) -> int:
    return int(_meta(result).get("start_year") or HEP_START_YEAR)


def _treated(result: object) -> str:
    return str(_meta(result).get("treated") or LLR_ICB)


def pretty_units(units: str) -> str:
    """Replace an outcome column name inside a units string by its readable label."""
    for col, u in OUTCOME_LABELS.items():
        if col in units:
            return units.replace(col, u)
    return units


def headline_draws(result: object, key: str | None = None) -> np.ndarray | None:
    """Pooled posterior draws of an estimand (default: the headline) when they can be found.

    Tries ``result.draws(key)`` (causal fits), a posterior variable named ``key``, then the
    gradient model's ``<var>_change_<first>_<last>`` / ``<var>_<year>`` naming.
    """
    effects = getattr(result, "effects", None) or {}
    if key is None:
        if not effects:
            return None
        key = next(iter(effects))
    draws_fn = getattr(result, "draws", None)
    if callable(draws_fn):
        try:
            return np.asarray(draws_fn(key), dtype=float).ravel()
        except (KeyError, ValueError, TypeError):
            pass
    idata = getattr(result, "idata", None)
    post = getattr(idata, "posterior", None)
    if post is None:
        return None
    if key in ("post_mean", "pre_mean") and "estimand" in post:  # event study averages
        target = str(getattr(result, "target", "gradient"))
        start = _treatment_year(result)
        terms = []
        for t in (str(v) for v in post["estimand"].coords["term"].values):
            m = re.fullmatch(rf"{re.escape(target)}\[(\d{{4}})\]", t)
            if m and (int(m[1]) >= start) == (key == "post_mean"):
                terms.append(t)
        if terms:
            return np.asarray(
                post["estimand"].sel(term=terms).mean("term").values, dtype=float
            ).ravel()
    for group in (post, getattr(idata, "posterior_predictive", None)):
        if group is not None and key in group and group[key].ndim == 2:
            return np.asarray(group[key].values, dtype=float).ravel()
    m = re.fullmatch(r"(?P<var>.+)_change_(?P<a>\d{4})_(?P<b>\d{4})", key)
    if m and m["var"] in post and "year" in post[m["var"]].dims:
        da = post[m["var"]]
        d = da.sel(year=int(m["b"])) - da.sel(year=int(m["a"]))
        if d.ndim == 2:
            return np.asarray(d.values, dtype=float).ravel()
    m = re.fullmatch(r"(?P<var>.+)_(?P<y>\d{4})", key)
    if m and m["var"] in post and "year" in post[m["var"]].dims:
        d = post[m["var"]].sel(year=int(m["y"]))
        if d.ndim == 2:
            return np.asarray(d.values, dtype=float).ravel()
    return None


def _effect_figure(result: object) -> Figures:
    effects = getattr(result, "effects", None) or {}
    if not effects:
        return []
    key = next(iter(effects))
    draws = headline_draws(result, key)
    if draws is None or draws.size < 2:
        return []
    e = effects[key]
    fig = plot_effect_posterior(
        draws,
        name=str(e.name),
        units=pretty_units(str(getattr(e, "units", "") or "")),
        hdi_prob=float(getattr(e, "hdi_prob", 0.95)),
        rope=getattr(e, "rope", None),
    )
    return [
        (
            "effect_posterior",
            fig,
            f"Posterior of the headline estimand ({e.name}) with its "
            f"{float(getattr(e, 'hdi_prob', 0.95)):.0%} HDI"
            + (", the region of practical equivalence (shaded)" if e.rope else "")
            + " and the probability of direction.",
        )
    ]


def _diagnostic_figures(result: object) -> Figures:
    idata = getattr(result, "idata", None)
    if idata is None or not hasattr(idata, "posterior"):
        return []
    post = idata.posterior
    diag = getattr(result, "diagnostics", None)
    names: list[str] = []
    if "estimand" in post:
        names.append("estimand")
    for worst in (getattr(diag, "worst_rhat_var", ""), getattr(diag, "worst_ess_var", "")):
        if worst and worst in post and worst not in names:
            names.append(str(worst))  # show where convergence is worst
    names += [
        str(v)
        for v, da in post.data_vars.items()
        if da.ndim == 2 and v not in names and not str(v).endswith("__")
    ]
    if not names:
        names = [str(v) for v in post.data_vars][:4]
    out: Figures = []
    fig = plot_trace_rank(idata, names[:6])
    status = f" Diagnostics: {diag}." if diag is not None else ""
    out.append(
        (
            "trace_rank",
            fig,
            "MCMC traces per chain and rank plots (flat when chains agree) of the estimands "
            "and scalar parameters." + status,
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


# ----------------------------------------------------------------------------- adapters
def _gradient_figures(result: Any) -> Figures:
    table = result.sii_table(hdi_prob=0.95)
    var = "sii_prob" if "sii_prob" in result.idata.posterior else "sii"
    if var != "sii":
        table = result.sii_table(var, hdi_prob=0.95)
    icbs = table[table[ICB] != NATIONAL_LABEL]
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
    return out


def event_pretrend_text(pretrend: dict[str, Any] | None) -> str | None:
    """Annotation of an event study's joint pre-trend check (``EventStudyFit.pretrend``)."""
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


def _event_study_figures(result: Any) -> Figures:
    meta = _meta(result)
    start = int(meta.get("start_year") or HEP_START_YEAR)
    ref_year = getattr(result, "reference_year", None) or meta.get("reference_year")
    ref = int(ref_year) - start if ref_year is not None else -1
    main = str(getattr(result, "target", "gradient"))
    pre = event_pretrend_text(getattr(result, "pretrend", None) or meta.get("pretrend"))
    out: Figures = []
    for target in dict.fromkeys([main, "gradient", "level"]):
        try:
            table = result.event_table(target)
        except (KeyError, ValueError):
            continue
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
    return out


def _first_attr(obj: object, names: Sequence[str]) -> Any:
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v() if callable(v) and not isinstance(v, pd.DataFrame | np.ndarray) else v
    return None


def _synthetic_control_figures(result: Any) -> Figures:
    """``SyntheticControlFit``: ``series`` (index time; ``observed``), ``counterfactual``
    draws (chain, draw, time), ``weights`` (index donor; mean, hdi_low, hdi_high), ``start``."""
    series = getattr(result, "series", None)
    cf = _first_attr(result, ("counterfactual_draws", "counterfactual"))
    if isinstance(series, pd.DataFrame) and not series.empty and "observed" in series:
        years = np.asarray(series.index, dtype=float)
        observed = series["observed"].to_numpy(dtype=float)
    else:
        years, observed = _first_attr(result, ("years",)), _first_attr(result, ("observed",))
    start = getattr(result, "start", None) or _meta(result).get("start") or _treatment_year(result)
    treated = str(getattr(result, "treated", None) or _treated(result))
    out: Figures = []
    if years is not None and observed is not None and cf is not None:
        placebo = _first_attr(result, ("placebo_gaps",))
        out.append(
            (
                "synthetic_control",
                plot_synthetic_control(
                    np.asarray(years),
                    np.asarray(observed),
                    cf,
                    treatment_year=int(start),
                    placebo_gaps=placebo,
                    outcome=_outcome(result),
                    treated_label=icb_label(treated),
                ),
                "Synthetic control: (a) observed series and synthetic counterfactual (posterior "
                "mean, 95% HDI), (b) gap, (c) cumulative gap over the treatment period"
                + ("; grey lines are placebo gaps." if placebo is not None else "."),
            )
        )
    weights = _first_attr(result, ("weights_table", "weights"))
    if weights is not None and not (isinstance(weights, pd.DataFrame) and weights.empty):
        donors = _first_attr(result, ("donors",))
        out.append(
            (
                "donor_weights",
                plot_donor_weights(weights, donors=list(donors) if donors is not None else None),
                "Synthetic-control donor weights (posterior mean and 95% HDI).",
            )
        )
    return out


def _placebo_figures(result: Any) -> Figures:
    """``PlaceboResult``: ``ratios`` (Series by unit), ``gaps`` (time x unit, treated included),
    ``p_value``, ``treated``, ``start``, ``excluded``."""
    out: Figures = []
    treated = str(getattr(result, "treated", None) or _treated(result))
    start = getattr(result, "start", None) or _treatment_year(result)
    gaps = getattr(result, "gaps", None)
    if isinstance(gaps, pd.DataFrame) and treated in gaps.columns:
        out.append(
            (
                "placebo_gaps",
                plot_placebo_gaps(
                    gaps,
                    treated=treated,
                    treatment_year=int(start),
                    excluded=list(getattr(result, "excluded", []) or []),
                    treated_label=icb_label(treated),
                ),
                "In-space placebo test: gap between observed and synthetic series of the treated "
                "unit (highlighted) and of every placebo unit (grey; dotted = excluded for poor "
                "pre-period fit).",
            )
        )
    ratios = _first_attr(result, ("rmspe_ratios", "ratios"))
    if ratios is not None:
        if isinstance(ratios, pd.DataFrame):
            ratios = ratios.set_index(ratios.columns[0]).iloc[:, 0]
        out.append(
            (
                "placebo_rmspe",
                plot_placebo_ratios(
                    pd.Series(ratios), treated=treated, p_value=getattr(result, "p_value", None)
                ),
                "In-space placebo test: post/pre RMSPE ratio of each unit; the treated unit is "
                "highlighted and the exact permutation p-value is its rank over the units.",
            )
        )
    return out


def _placebo_in_time_figures(result: Any) -> Figures:
    """``PlaceboInTimeResult``: ``table`` indexed by fake start (mean, hdi_low, hdi_high ...)."""
    table = getattr(result, "table", None)
    if not isinstance(table, pd.DataFrame) or table.empty:
        return []
    t = table.reset_index()
    t["name"] = [
        f"fake start {fiscal_year_label(int(v), short=False)}"
        if str(v).isdigit()
        else f"fake start {v}"
        for v in t.iloc[:, 0]
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


ADAPTERS: dict[str, Callable[[Any], Figures]] = {
    "GradientFit": _gradient_figures,
    "EventStudyFit": _event_study_figures,
    "SyntheticControlFit": _synthetic_control_figures,
    "PlaceboResult": _placebo_figures,
    "PlaceboInTimeResult": _placebo_in_time_figures,
}


def result_figures(result: object) -> Figures:
    """``(stem, figure, caption)`` for every figure relevant to ``result`` (not saved)."""
    figs: Figures = []
    for name in _class_names(result):
        if name in ADAPTERS:
            figs += ADAPTERS[name](result)
            break
    figs += _effect_figure(result)
    figs += _diagnostic_figures(result)
    if not figs:
        raise TypeError(f"no figures for a {type(result).__name__}")
    return figs


def plot_result(
    result: object, out_dir: str | Path, formats: Sequence[str] = DEFAULT_FORMATS
) -> list[Path]:
    """Write every figure relevant to ``result`` into ``out_dir`` (PDF, SVG, PNG) with captions.

    Returns the written paths.  Captions go to ``out_dir/captions.json`` for the HTML report.
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
