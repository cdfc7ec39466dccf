"""Design power and assurance of the DDD (gradient) design.

:func:`design_power` simulates panels from the realistic generator calibrated to the design
(:func:`hepcausal.data.synthetic.scenario` ``"realistic"`` on a preset, by default
:meth:`~hepcausal.data.synthetic.SimulationConfig.published_design`: LLR + the 10 comparators,
1,661 practices, 2018-2024) with an injected post-period change ``delta`` in the treated ICS's
gradient (SII), refits the estimator, and reports per ``delta`` the probability that the 95% HDI
excludes 0 (``power_hdi``) and that P(direction) > 0.95 (``power_pd``), with Monte Carlo SEs.
Fits run on local processes (:class:`concurrent.futures.ProcessPoolExecutor`, ``workers`` at most
the number of cores); the compiled model is reused within a process through the PyTensor / Stan
compile caches.

:func:`analytic_power` is the normal approximation from a fitted posterior's SD (the assurance
of the design as actually fitted): ``P(|delta + e| / sd > z)``, ``e ~ N(0, sd^2)``.  The
minimum detectable change (:func:`minimum_detectable`) is the smallest ``delta`` at which the
power reaches the target (linear interpolation of the curve).

:func:`posterior_predictive_power` is the power of the design *as fitted to the data*: it
draws replicated datasets from the fitted pre/post DDD's posterior predictive distribution (one
posterior draw per simulation, its ICB changes, gradient changes, residual scales and
Student-t tails) with the treated ICS's post-period gradient change set to ``delta`` (and its
level change to 0), writes each replicate into the real panel by shifting every practice's
post-period rows so that its pre-to-post change equals the replicate, refits the same estimator
with the same options, and tabulates the same columns as :func:`design_power`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from hepcausal import schema
from hepcausal.data.synthetic import SimulationConfig, scenario, simulate_panel
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

__all__ = [
    "PowerResult",
    "analytic_power",
    "design_power",
    "minimum_detectable",
    "posterior_predictive_panels",
    "posterior_predictive_power",
    "power_table",
]


@dataclass
class PowerResult:
    """Power curve of a design.

    ``table``: one row per injected change: ``effect, n_sims, power_hdi, power_pd, mc_se_hdi,
    mc_se_pd, mean_estimate, coverage`` (share of 95% HDIs covering the injected change).
    ``sims``: one row per simulation.  ``mde``: minimum detectable change at ``target``.
    """

    table: pd.DataFrame
    sims: pd.DataFrame
    target: float
    mde: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """The power table.

        Returns
        -------
        pandas.DataFrame
            :attr:`table`.
        """
        return self.table.copy()


def analytic_power(
    sd: float, effects: Sequence[float], *, hdi_prob: float = 0.95, pd_level: float = 0.95
) -> pd.DataFrame:
    """Normal-approximation power of a design whose effect posterior has standard deviation sd.

    Parameters
    ----------
    sd : float
        Posterior SD of the effect (e.g. of the real-data DDD ``delta_gradient``).
    effects : sequence of float
        True changes.
    hdi_prob : float
        HDI mass (the HDI excludes 0 when ``|estimate| > z sd``).
    pd_level : float
        P(direction) threshold.

    Returns
    -------
    pandas.DataFrame
        ``effect, power_hdi, power_pd, n_sims`` (``n_sims`` = 0: analytic).
    """
    if not sd > 0:
        raise ValueError(f"sd must be > 0; got {sd}")
    e = np.asarray(effects, dtype=float)
    z_h = stats.norm.isf((1 - hdi_prob) / 2)
    z_p = stats.norm.ppf(pd_level)
    ph = stats.norm.sf(z_h - np.abs(e) / sd) + stats.norm.cdf(-z_h - np.abs(e) / sd)
    pp = stats.norm.sf(z_p - np.abs(e) / sd) + stats.norm.cdf(-z_p - np.abs(e) / sd)
    return pd.DataFrame({"effect": e, "power_hdi": ph, "power_pd": pp, "n_sims": 0})


def minimum_detectable(
    table: pd.DataFrame, column: str = "power_hdi", target: float = 0.8
) -> float:
    """Smallest positive effect at which the power curve reaches ``target`` (interpolated).

    Parameters
    ----------
    table : pandas.DataFrame
        ``effect`` and the power column; effects of one sign (absolute values are used).
    column : str
        Power column.
    target : float
        Power level.

    Returns
    -------
    float
        The minimum detectable change (NaN when the curve never reaches ``target``).
    """
    t = table.assign(_a=table["effect"].abs()).sort_values("_a")
    a, p = t["_a"].to_numpy(float), t[column].to_numpy(float)
    above = np.flatnonzero(p >= target)
    if above.size == 0:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return float(a[0])
    return float(a[i - 1] + (target - p[i - 1]) * (a[i] - a[i - 1]) / (p[i] - p[i - 1]))


def power_table(
    rows: list[dict[str, Any]] | pd.DataFrame,
    prob: float = 0.95,
    target: float = 0.8,
    meta: dict[str, Any] | None = None,
) -> PowerResult:
    """Power table, Monte Carlo SEs and MDEs from per-simulation rows.

    Parameters
    ----------
    rows : list of dict or pandas.DataFrame
        One row per refit: ``effect, mean, hdi_low, hdi_high, p_direction`` (e.g. a
        ``power_sims.csv`` checkpoint).
    prob : float
        HDI mass, also the P(direction) threshold.
    target : float
        Power level of the minimum detectable change.
    meta : dict, optional
        Provenance kept in the result.

    Returns
    -------
    PowerResult
        The power curve.
    """
    return _summarise(rows, prob, target, meta or {})


def _summarise(
    rows: list[dict[str, Any]] | pd.DataFrame, prob: float, target: float, meta: dict[str, Any]
) -> PowerResult:
    sims = pd.DataFrame(rows).sort_values(["effect", "sim"]).reset_index(drop=True)
    sims["hdi_excludes_0"] = (sims["hdi_low"] > 0) | (sims["hdi_high"] < 0)
    sims["pd_above"] = sims["p_direction"] > prob
    sims["covers"] = (sims["hdi_low"] <= sims["effect"]) & (sims["effect"] <= sims["hdi_high"])
    g = sims.groupby("effect")
    table = pd.DataFrame(
        {
            "n_sims": g.size(),
            "power_hdi": g["hdi_excludes_0"].mean(),
            "power_pd": g["pd_above"].mean(),
            "mean_estimate": g["mean"].mean(),
            "coverage": g["covers"].mean(),
        }
    ).reset_index()
    for col in ("power_hdi", "power_pd"):
        table[f"mc_se_{col[6:]}"] = np.sqrt(table[col] * (1 - table[col]) / table["n_sims"])
    mde = {
        "power_hdi": minimum_detectable(table, "power_hdi", target),
        "power_pd": minimum_detectable(table, "power_pd", target),
    }
    return PowerResult(table=table, sims=sims, target=target, mde=mde, meta=meta)


def _run(
    fn: Callable[[Any], dict[str, Any]],
    tasks: list[Any],
    workers: int | None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> list[Any]:
    """Run the tasks; with ``checkpoint`` append each finished row to that CSV as it arrives."""
    cores = os.cpu_count() or 1
    n_workers = max(1, min(workers or cores, cores))
    rows: list[dict[str, Any]] = []

    def keep(row: dict[str, Any]) -> None:
        rows.append(row)
        if checkpoint is not None:
            pd.DataFrame([row]).to_csv(checkpoint, mode="a", header=len(rows) == 1, index=False)

    if checkpoint is not None and os.path.exists(checkpoint):
        os.remove(checkpoint)
    if n_workers == 1:
        for t in tasks:
            keep(fn(t))
        return rows
    with ProcessPoolExecutor(max_workers=n_workers) as ex:
        for fut in as_completed([ex.submit(fn, t) for t in tasks]):
            keep(fut.result())
    return rows


def _one(task: tuple[SimulationConfig, str, str, Design, Inference, float, int]) -> dict[str, Any]:
    cfg, outcome, estimator, design, inference, effect, sim = task
    panel = simulate_panel(cfg).panel
    return _refit((effect, sim, panel, outcome, estimator, design, inference, {}))


def design_power(
    effects: Sequence[float],
    *,
    n_sims: int = 20,
    outcome: str = schema.GP_FTE,
    estimator: str = "ddd",
    config: SimulationConfig | None = None,
    error_scenario: str = "realistic",
    design: Design | None = None,
    inference: Inference | None = None,
    workers: int | None = None,
    seed: int = 20211,
    target: float = 0.8,
) -> PowerResult:
    """Simulated power of the design at each injected post-period gradient change.

    Parameters
    ----------
    effects : sequence of float
        Injected changes of the treated ICS's SII (outcome units, e.g. FTE per 1,000).
    n_sims : int
        Simulations per effect (the Monte Carlo SE of a power p is sqrt(p(1-p)/n_sims)).
    outcome : str
        Simulated outcome column.
    estimator : {"ddd", "did"}
        Refitted estimator (its headline: ``delta_gradient`` / ``delta_level``).
    config : SimulationConfig, optional
        Generator preset (default the published design); ``error_scenario`` is applied to it.
    error_scenario : str
        Residual structure (:data:`hepcausal.data.synthetic.SCENARIOS`).
    design, inference : Design, Inference, optional
        As for the estimator (default: the published comparators; 2 chains x 500 draws).
    workers : int, optional
        Processes (default and maximum: the number of cores).
    seed : int
        Base seed (simulation ``i`` of effect ``j`` uses a spawned seed).
    target : float
        Power level of the minimum detectable change.

    Returns
    -------
    PowerResult
        Power table, per-simulation rows and MDEs.
    """
    if estimator not in ("ddd", "did"):
        raise ValueError(f"estimator must be 'ddd' or 'did'; got {estimator!r}")
    if n_sims < 1:
        raise ValueError(f"n_sims must be >= 1; got {n_sims}")
    base = scenario(error_scenario, config or SimulationConfig.published_design())
    design = design or Design(comparators=tuple(schema.PUBLISHED_COMPARATORS))
    inference = inference or Inference(
        settings=SamplerSettings(draws=500, tune=500, chains=2, seed=seed)
    )
    which = "gradient_effect" if estimator == "ddd" else "level_effect"
    seeds = np.random.SeedSequence(seed).generate_state(len(effects) * n_sims)
    tasks = []
    for j, eff in enumerate(effects):
        for i in range(n_sims):
            s = int(seeds[j * n_sims + i])
            cfg = base.replace(**{which: {outcome: float(eff)}, "seed": s})
            tasks.append((cfg, outcome, estimator, design, inference, float(eff), i))
    cores = os.cpu_count() or 1
    meta = {
        "outcome": outcome,
        "estimator": estimator,
        "simulation": f"generator ({error_scenario})",
        "error_scenario": error_scenario,
        "n_practices": base.n_practices,
        "workers": max(1, min(workers or cores, cores)),
        "sampler": inference.settings.to_dict(),
    }
    return _summarise(_run(_one, tasks, workers), inference.hdi_prob, target, meta)


def posterior_predictive_panels(
    fit: Any,
    panel: pd.DataFrame,
    effects: Sequence[float],
    n_sims: int,
    *,
    seed: int = 20211,
) -> list[tuple[float, int, pd.DataFrame]]:
    """Replicated panels from a fitted pre/post DiD/DDD with an injected treated change.

    For each ``(effect, simulation)`` one posterior draw is chosen at random; the model's
    headline coefficient (``delta_gradient`` of the DDD, ``delta`` of the DiD) is set to
    ``effect`` (outcome units) and every other effect column to 0; the treated ICS's own
    level and gradient changes (``z_change``, ``z_change_gradient`` and ``z_effect``) are
    drawn afresh from their hierarchical distribution (their posterior values absorbed part of
    the observed treated change, which would leak the observed effect into every replicate); a
    replicate of each practice's pre-to-post change is drawn from the model's likelihood at
    that draw, and the practice's post-period rows of ``panel`` are shifted so that its change
    equals the replicate (the pre-period rows stay the observed ones).

    Parameters
    ----------
    fit : CausalFit
        A DiD or DDD fitted with ``error_model="prepost"`` (the package default).
    panel : pandas.DataFrame
        The panel the fit was made from.
    effects : sequence of float
        Injected changes (outcome units).
    n_sims : int
        Replicates per change.
    seed : int
        Seed of the draw choice and of the replicates.

    Returns
    -------
    list of tuple
        ``(effect, simulation, panel)`` per replicate, effects outermost.
    """
    import arviz as az
    import pymc as pm
    from pymc.model.transform.optimization import freeze_dims_and_data

    from hepcausal.models.panel_effects import (
        ModelOptions,
        PanelPriors,
        build_pymc_prepost,
        prepost_data,
    )

    design = getattr(fit, "design", None)
    model_opts = fit.meta.get("model") or {}
    if design is None or model_opts.get("error_model") != "prepost":
        raise ValueError(
            "posterior-predictive power needs a DiD/DDD fitted with error_model='prepost' "
            f"(the default) and its design; got estimator {fit.meta.get('estimator')!r} with "
            f"error_model {model_opts.get('error_model')!r}"
        )
    if n_sims < 1:
        raise ValueError(f"n_sims must be >= 1; got {n_sims}")
    options = ModelOptions(**model_opts)
    priors = PanelPriors.from_any(fit.meta.get("priors"))
    model = build_pymc_prepost(design, priors, options)
    post = fit.idata.posterior.stack(sample=("chain", "draw"))
    n_total = len(effects) * n_sims
    rng = np.random.default_rng(seed)
    pick = rng.choice(post.sizes["sample"], size=n_total, replace=n_total > post.sizes["sample"])
    head = fit.headline_term
    names = design.effect_names
    scale = np.array([e.scale for e in design.effects])
    draws: dict[str, np.ndarray] = {}
    for rv in model.free_RVs:
        v = post[rv.name].transpose("sample", ...).to_numpy()[pick]
        draws[rv.name] = v[None]
    g_t = list(design.groups).index(design.treated)
    for z in ("z_change", "z_change_gradient"):  # the treated ICS's own change: a fresh draw
        if z in draws:  # (its posterior value absorbed part of the observed treated change)
            draws[z][0, :, g_t] = rng.standard_normal(n_total)
    # with the split of the treated change from the effect (``z_effect``, see
    # ``panel_effects._treated_split``) fresh too, the treated ICS's change is a fresh prior draw;
    # the effect itself is the injected value (the Deterministic ``effect`` given below)
    draws["z_effect"][0] = rng.standard_normal(draws["z_effect"][0].shape)
    eff = np.zeros((n_total, len(names)))
    eff[:, names.index(head)] = np.repeat(np.asarray(effects, dtype=float), n_sims)
    draws["effect"] = (eff * scale / design.y_sd)[None]
    with freeze_dims_and_data(model):  # else dims-shaped variables are redrawn, not reused
        pp = pm.sample_posterior_predictive(
            az.from_dict(posterior=draws),
            var_names=["y"],
            random_seed=seed,
            progressbar=False,
        )
    y_rep = pp.posterior_predictive["y"].to_numpy()[0]  # n_total x n_practices (kept)
    obs = prepost_data(design).d
    cols = design.columns
    post_rows = (design.data[cols.time] >= design.start_year).to_numpy(bool)
    u = design.unit_idx
    n_unit = len(design.units)
    keep = (np.bincount(u[~post_rows], minlength=n_unit) > 0) & (
        np.bincount(u[post_rows], minlength=n_unit) > 0
    )
    kept_units = np.asarray(design.units, dtype=object)[keep]
    panel = panel[panel[cols.group].astype(str).isin(design.groups)]  # the refit's rows only
    in_post = (panel[cols.time] >= design.start_year).to_numpy(bool)
    key = panel[cols.unit].astype(str) + "|" + panel[cols.group].astype(str)  # as build_design
    out = []
    for k in range(n_total):
        shift = pd.Series((y_rep[k] - obs) * design.y_sd, index=kept_units)
        add = key.map(shift).fillna(0.0).to_numpy(float) * in_post
        sim = panel.copy()
        sim[design.outcome] = sim[design.outcome].to_numpy(float) + add
        out.append((float(eff[k, names.index(head)]), k % n_sims, sim))
    return out


def _refit(task: tuple[Any, ...]) -> dict[str, Any]:
    effect, sim, panel, outcome, estimator, design, inference, options = task
    from hepcausal.causal.did import fit_ddd, fit_did

    fits: dict[str, Callable[..., Any]] = {"ddd": fit_ddd, "did": fit_did}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # power refits: convergence recorded, not warned
        fit = fits[estimator](panel, outcome, design, inference, **options)
    h = fit.headline
    d = fit.diagnostics
    return {
        "effect": effect,
        "sim": sim,
        "mean": h.mean,
        "hdi_low": h.hdi_low,
        "hdi_high": h.hdi_high,
        "p_direction": h.p_direction,
        "max_rhat": d.max_rhat,
        "n_divergences": d.n_divergences,
    }


def posterior_predictive_power(
    fit: Any,
    panel: pd.DataFrame,
    effects: Sequence[float],
    *,
    design: Design,
    n_sims: int = 20,
    inference: Inference | None = None,
    options: dict[str, Any] | None = None,
    workers: int | None = None,
    seed: int = 20211,
    target: float = 0.8,
    checkpoint: str | os.PathLike[str] | None = None,
) -> PowerResult:
    """Power of the design as fitted: replicate from the posterior predictive, inject, refit.

    Parameters
    ----------
    fit : CausalFit
        The DiD or DDD fitted to ``panel`` (pre/post error model).
    panel : pandas.DataFrame
        The panel it was fitted to.
    effects : sequence of float
        Injected changes of the treated ICS's post-period SII (DDD) or level (DiD).
    design : Design
        The design the fit was made with (used for the refits).
    n_sims : int
        Replicates per change (Monte Carlo SE of a power p: sqrt(p (1 - p) / n_sims)).
    inference : Inference, optional
        Inference of the refits (default: 2 chains x 500 draws).
    options : dict, optional
        Estimator options of the refits (as given to the fit; placebo is ignored).
    workers : int, optional
        Processes (default and maximum: the number of cores).
    seed : int
        Seed of the replicates.
    target : float
        Power level of the minimum detectable change.
    checkpoint : path, optional
        CSV to which each refit's row is appended as it finishes (replicates run
        replicate-major, so a run stopped early has every effect about equally often).

    Returns
    -------
    PowerResult
        Power table (``power_hdi``, ``power_pd``, Monte Carlo SEs, coverage), per-replicate
        rows and MDEs.
    """
    estimator = str(fit.meta.get("estimator"))
    if estimator not in ("ddd", "did"):
        raise ValueError(f"posterior-predictive power needs a DiD or DDD fit; got {estimator!r}")
    pd_design = fit.design
    inference = inference or Inference(
        settings=SamplerSettings(draws=500, tune=500, chains=2, seed=seed)
    )
    opts = {k: v for k, v in (options or {}).items() if k != "placebo"}
    reps = posterior_predictive_panels(fit, panel, effects, n_sims, seed=seed)
    # replicate-major order: a run stopped early (see ``checkpoint``) covers every effect
    reps.sort(key=lambda r: r[1])
    tasks = [(e, i, p, pd_design.outcome, estimator, design, inference, opts) for e, i, p in reps]
    cores = os.cpu_count() or 1
    meta = {
        "outcome": pd_design.outcome,
        "estimator": estimator,
        "simulation": "posterior predictive of the fitted model",
        "n_practices": len(pd_design.units),
        "workers": max(1, min(workers or cores, cores)),
        "sampler": inference.settings.to_dict(),
    }
    rows = _run(_refit, tasks, workers, checkpoint)
    return _summarise(rows, inference.hdi_prob, target, meta)
