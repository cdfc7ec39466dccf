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
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from hepcausal import schema
from hepcausal.data.synthetic import SimulationConfig, scenario, simulate_panel
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

__all__ = ["PowerResult", "analytic_power", "design_power", "minimum_detectable"]


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


def _one(task: tuple[SimulationConfig, str, str, Design, Inference, float, int]) -> dict[str, Any]:
    cfg, outcome, estimator, design, inference, effect, sim = task
    from hepcausal.causal.did import fit_ddd, fit_did

    fits: dict[str, Callable[..., Any]] = {"ddd": fit_ddd, "did": fit_did}
    sp = simulate_panel(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short power fits: convergence recorded, not warned
        fit = fits[estimator](sp.panel, outcome, design, inference)
    h = fit.headline
    return {
        "effect": effect,
        "sim": sim,
        "mean": h.mean,
        "hdi_low": h.hdi_low,
        "hdi_high": h.hdi_high,
        "p_direction": h.p_direction,
        "max_rhat": fit.diagnostics.max_rhat,
    }


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
    n_workers = max(1, min(workers or cores, cores))
    if n_workers == 1:
        rows = [_one(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=n_workers) as ex:
            rows = list(ex.map(_one, tasks))
    sims = pd.DataFrame(rows)
    prob = inference.hdi_prob
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
    meta = {
        "outcome": outcome,
        "estimator": estimator,
        "error_scenario": error_scenario,
        "n_practices": base.n_practices,
        "workers": n_workers,
        "sampler": inference.settings.to_dict(),
    }
    return PowerResult(table=table, sims=sims, target=target, mde=mde, meta=meta)
