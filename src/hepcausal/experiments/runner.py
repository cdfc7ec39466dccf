"""Run one experiment: build the data, fit the configured estimator, store the run.

Runs are cached by content: the hash of the resolved config plus the data fingerprint names the
run directory, and an unchanged config on unchanged data returns the stored result without
refitting.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.experiments.config import Config, ConfigLike, as_config
from hepcausal.experiments.inputs import RunData, prepare_data
from hepcausal.experiments.provenance import environment, now_iso
from hepcausal.experiments.registry import call_estimator
from hepcausal.experiments.store import (
    RunResult,
    is_complete,
    load_run,
    read_json,
    run_dir_name,
    save_run,
)
from hepcausal.results import FitResult
from hepcausal.spec import Design, Inference

log = logging.getLogger("hepcausal.experiments")


def _figures_function() -> Callable[..., Any] | None:
    """``hepcausal.plots.plot_result(result, out_dir) -> list[Path]`` when available."""
    try:
        from hepcausal import plots
    except ImportError:
        return None
    return getattr(plots, "plot_result", None)


def _report_function() -> Callable[..., Any]:
    """``hepcausal.report.write_report(run_dir) -> Path`` (the run's HTML report)."""
    from hepcausal.report import write_report

    return write_report


def _truth_summary(data: RunData, cfg: Config) -> dict[str, float] | None:
    """True value per panel-estimator term on synthetic data (identity-scale outcomes only);
    None on real data."""
    truth, a = data.truth, cfg.analysis
    if truth is None:
        return None
    if truth.params.get(a.outcome, {}).get("scale") != "identity":
        return {}
    comps = None if a.comparators == "all" else list(a.comparator_codes())
    try:
        did, ddd = float(truth.did(a.outcome, comps)), float(truth.ddd(a.outcome, comps))
    except (ValueError, KeyError):  # e.g. comparators the simulation does not have
        return {}
    dose = float(truth.dose_effect.get(a.outcome, 0.0))
    return {"delta_gradient": ddd, "delta_level": did, "delta": did, "dose": dose}


def design_of(cfg: Config) -> Design:
    """The :class:`~hepcausal.spec.Design` of a config's ``[analysis]`` section.

    Parameters
    ----------
    cfg : Config
        The experiment config.

    Returns
    -------
    Design
        Treated ICB, comparators, start year, rank column, covariates and weights.
    """
    a = cfg.analysis
    return Design(
        treated=a.treated_icb,
        comparators="all" if a.comparators == "all" else a.comparator_codes(),
        start_year=a.start_year,
        rank_col=a.rank_col,
        covariates=tuple(a.covariates),
        weights=a.weights,
    )


def inference_of(cfg: Config, cores: int | None = None) -> Inference:
    """The :class:`~hepcausal.spec.Inference` of a config.

    Parameters
    ----------
    cfg : Config
        The experiment config.
    cores : int, optional
        CPU cores for the sampler (default: one per chain, at most the CPU count).

    Returns
    -------
    Inference
        Backend, sampler settings, prior overrides, ROPE (``"auto"`` when unset, None for
        ``'none'``) and HDI probability.
    """
    rope = cfg.summary.rope_for(cfg.analysis.outcome)
    return Inference(
        backend=cfg.estimator.backend,  # type: ignore[arg-type]
        settings=cfg.sampler_settings(cores=cores),
        priors=dict(cfg.priors),
        rope="auto" if rope is None else None if rope == "none" else rope,  # type: ignore[arg-type]
        hdi_prob=cfg.summary.hdi_prob,
    )


def _warn_if_failed(name: str, result: FitResult) -> None:
    if not result.diagnostics.ok:
        warnings.warn(
            f"run {name!r}: CONVERGENCE CHECK FAILED - do not trust these estimates: "
            f"{result.diagnostics}",
            ConvergenceWarning,
            stacklevel=3,
        )


def fit_config(cfg: Config, data: RunData, *, cores: int | None = None) -> FitResult:
    """Fit the configured estimator to the data (no caching, nothing written).

    Parameters
    ----------
    cfg : Config
        The experiment config.
    data : RunData
        The prepared panel.
    cores : int, optional
        CPU cores for the sampler.

    Returns
    -------
    FitResult
        The estimator's result.
    """
    result = call_estimator(
        cfg.estimator.name,
        data.panel,
        cfg.analysis.outcome,
        design_of(cfg),
        inference_of(cfg, cores),
        dict(cfg.estimator.options),
    )
    if not isinstance(result, FitResult):
        raise TypeError(
            f"estimator {cfg.estimator.name!r} returned {type(result).__name__}, not a FitResult"
        )
    return result


def run_experiment(
    config: ConfigLike,
    *,
    out_dir: str | Path = "runs",
    force: bool = False,
    overrides: Mapping[str, Any] | None = None,
    cores: int | None = None,
    figures: bool = True,
    store: str = "compact",
) -> RunResult:
    """Run (or load from cache) one experiment and store it under ``out_dir``.

    ``config`` is a :class:`Config` or a TOML path; ``overrides`` replaces dotted keys
    (e.g. ``{"sampler.draws": 200}``).  A config with a ``[sweep]`` table runs its base point.
    With ``force=True`` the run is refitted even when a cached result exists.  ``store`` is
    ``"compact"`` (no warmup draws, no practice-level effects in ``idata.nc``) or ``"full"``
    (a cached compact run is refitted when ``"full"`` is asked for).  The HTML report is written
    into the run directory.
    """
    cfg = as_config(config)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    cfg = cfg.without_sweep()
    out = Path(out_dir)
    t0 = time.perf_counter()
    data = prepare_data(cfg)
    key = cfg.hash(data.fingerprint)
    run_dir = out / run_dir_name(cfg.name, key)
    stored = read_json(run_dir / "run.json").get("store") if is_complete(run_dir) else None
    if not force and is_complete(run_dir) and (store == "compact" or stored == "full"):
        log.info("%s: cached (unchanged config and data), not refitted: %s", cfg.name, run_dir)
        cached = load_run(run_dir, cached=True)
        _warn_if_failed(cfg.name, cached.result)
        return cached
    started = now_iso()
    log.info("%s: fitting %s on %s data", cfg.name, cfg.estimator.name, cfg.data.source)
    result = fit_config(cfg, data, cores=cores)
    truth = _truth_summary(data, cfg)
    result.with_truth({k: v for k, v in (truth or {}).items() if k in result.effects})
    _warn_if_failed(cfg.name, result)
    prov = {
        "name": cfg.name,
        "config_hash": key,
        "config_source": cfg.source,
        "seed": cfg.sampler.seed,
        "sampler": cfg.sampler_settings(cores=cores).to_dict(),
        # what the sampler actually used where the config leaves the choice ("auto", None)
        "resolved": {
            k: result.idata.posterior.attrs.get(k)
            for k in ("mass_matrix", "cores", "nuts_sampler", "stan_engine")
            if k in result.idata.posterior.attrs
        },
        "store": store,
        "data": data.provenance(),
        "started": started,
        "finished": now_iso(),
        "seconds": round(time.perf_counter() - t0, 2),
        **environment(),
    }
    return save_run(
        out,
        cfg.name,
        cfg,
        key,
        result,
        prov,
        report=data.report,
        truth=None if truth is None else (result.truth or {}),  # truth.json: synthetic data
        figures=_figures_function() if figures else None,
        force=force,
        store=store,
        report_html=_report_function(),
    )
