"""Run one experiment: build the data, fit the configured estimator, store the run.

Runs are cached by content: the hash of the resolved config plus the data fingerprint names the
run directory, and an unchanged config on unchanged data returns the stored result without
refitting, provided every stored file still has the sha256 recorded in its ``run.json`` (a
damaged run is refitted with a warning).

Everything that can be checked before fitting is checked first (:func:`preflight`, which
``hepcausal check`` runs too): the output folder, the run folder's name, the treated and
comparator ICBs and the start year against the panel, the outcome column, and the memory of
the stored posterior against :data:`MAX_POSTERIOR_BYTES`.  A treated ICB with few practices
gets a warning.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hepcausal import schema
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.experiments.config import Config, ConfigError, ConfigLike, as_config
from hepcausal.experiments.inputs import RunData, prepare_data
from hepcausal.experiments.provenance import environment, now_iso
from hepcausal.experiments.registry import call_estimator, get_entry
from hepcausal.experiments.store import (
    RunResult,
    clean_stale,
    is_complete,
    load_run,
    read_json,
    run_dir_name,
    save_run,
    verify_run,
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
        Treated ICB, comparators, start year, rank column, covariates, weights and the pool.
    """
    a = cfg.analysis
    return Design(
        treated=a.treated_icb,
        comparators="all" if a.comparators == "all" else a.comparator_codes(),
        start_year=a.start_year,
        rank_col=a.rank_col,
        covariates=tuple(a.covariates),
        weights=a.weights,
        pool=a.pool_design,  # type: ignore[arg-type]
        exclude=tuple(a.exclude),
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
        backend=cfg.estimator.backend,
        settings=cfg.sampler_settings(cores=cores),
        priors=dict(cfg.priors),
        rope="auto" if rope is None else None if rope == "none" else rope,  # type: ignore[arg-type]
        hdi_prob=cfg.summary.hdi_prob,
    )


MAX_POSTERIOR_BYTES = 8 * 1024**3
"""Upper bound of the estimated memory of a run's stored posterior (8 GiB)."""


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def stored_parameters(cfg: Config, panel: Any) -> int:
    """A generous estimate of the values stored per posterior draw.

    One per practice (practice-level effects), four per ICB and year (group-year effects and
    their interactions with the rank), plus 100 scalars.

    Parameters
    ----------
    cfg : Config
        The run configuration (unused today; estimators may refine the estimate).
    panel : pandas.DataFrame
        The panel the run would fit.

    Returns
    -------
    int
        The estimated number of stored values per draw.
    """
    del cfg
    n_practices = panel[schema.PRACTICE].nunique() if schema.PRACTICE in panel else len(panel)
    n_cells = (
        panel[schema.ICB].nunique() * panel[schema.YEAR].nunique()
        if schema.ICB in panel and schema.YEAR in panel
        else 0
    )
    return int(n_practices + 4 * n_cells + 100)


def posterior_bytes(cfg: Config, panel: Any) -> int:
    """Estimated memory of the stored posterior: draws x chains x stored values x 8 bytes.

    Parameters
    ----------
    cfg : Config
        The run configuration.
    panel : pandas.DataFrame
        The panel the run would fit.

    Returns
    -------
    int
        Bytes.
    """
    s = cfg.sampler
    return int(s.draws * s.chains * stored_parameters(cfg, panel) * 8)


def check_output(out_dir: str | Path, cfg: Config) -> None:
    """Error unless the run folder of ``cfg`` can be written under ``out_dir`` (before fitting).

    Parameters
    ----------
    out_dir : str or Path
        The folder of run directories (``--out``).
    cfg : Config
        The run configuration (its name forms the run folder's name).

    Raises
    ------
    ConfigError
        Naming ``--out`` when it is an existing file or cannot be created or written, or
        ``name`` when the run folder's name is too long.
    """
    out = Path(out_dir)
    if "\x00" in str(out):
        raise ConfigError(f"--out {str(out)!r}: a path must not contain a NUL byte")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is an existing file, not a folder of run directories")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"--out {out}: {probe} is a file, so the folder cannot be created")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: {probe} is not writable")
    folder = run_dir_name(cfg.name, "0" * 64)
    if len(folder.encode()) > 255:
        raise ConfigError(f"'name' = {cfg.name[:40]!r}...: the run folder name is too long")


def preflight(cfg: Config, data: RunData) -> list[str]:
    """Check a config against the data it would fit, before any fitting.

    Parameters
    ----------
    cfg : Config
        The run configuration.
    data : RunData
        Its data (the NHS panel is built here if it was not yet).

    Returns
    -------
    list of str
        Warnings (a treated ICB with few practices); empty when all is well.

    Raises
    ------
    ConfigError
        Naming the key: ``analysis.outcome`` not a panel column, ``analysis.treated_icb`` or
        ``analysis.comparators`` ICBs absent from the panel, ``analysis.start_year`` without
        pre- and post-treatment years in the panel, or ``sampler.draws`` whose stored posterior
        would exceed :data:`MAX_POSTERIOR_BYTES` (with the estimate).
    """
    from hepcausal.data.validate import practices_per_icb_warnings

    panel, a = data.panel, cfg.analysis
    where = f"{cfg.source}: " if cfg.source else ""
    try:  # what the estimator will be called with
        design_of(cfg)
        inference_of(cfg)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}{exc}") from exc
    entry = get_entry(cfg.estimator.name)
    uses = entry.uses(entry.parse_options(cfg.estimator.options))
    if a.outcome not in panel:
        raise ConfigError(f"{where}'analysis.outcome': column {a.outcome!r} is not in the panel")
    if not panel[a.outcome].notna().any():
        raise ConfigError(
            f"{where}'analysis.outcome': column {a.outcome!r} has no observed values in the panel"
        )
    icbs = {str(c) for c in panel[schema.ICB].dropna().unique()} if schema.ICB in panel else set()
    years = sorted(int(y) for y in panel[schema.YEAR].dropna().unique())
    if "treated" in uses and a.treated_icb not in icbs:
        raise ConfigError(
            f"{where}'analysis.treated_icb' = {a.treated_icb!r} is not an ICB of the panel "
            f"({len(icbs)} ICBs: {', '.join(sorted(icbs)[:12])}{'...' if len(icbs) > 12 else ''})"
        )
    if "comparators" in uses and a.comparators != "all":
        missing = [c for c in a.comparator_codes() if c not in icbs]
        if missing:
            raise ConfigError(
                f"{where}'analysis.comparators': ICB(s) {missing} are not in the panel "
                f"(panel ICBs: {', '.join(sorted(icbs))})"
            )
    if "start_year" in uses and years:
        if not years[0] < a.start_year <= years[-1]:
            raise ConfigError(
                f"{where}'analysis.start_year' = {a.start_year} needs panel years before and "
                f"from it; the panel has years {years[0]}-{years[-1]}"
            )
    need = posterior_bytes(cfg, panel)
    if need > MAX_POSTERIOR_BYTES:
        s = cfg.sampler
        raise ConfigError(
            f"{where}'sampler.draws' = {s.draws:,} x 'sampler.chains' = {s.chains} would store "
            f"about {_size(need)} of posterior ({stored_parameters(cfg, panel):,} values per "
            f"draw), above the upper bound of {_size(MAX_POSTERIOR_BYTES)}: lower the draws"
        )
    treated = [a.treated_icb] if "treated" in uses else None
    return practices_per_icb_warnings(panel, treated)


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
    With ``force=True`` the run is refitted even when a cached result exists.

    Parameters
    ----------
    config : Config or str or path-like
        The experiment: a validated :class:`Config` or the path of a TOML file.
    out_dir : str or Path, default "runs"
        Parent folder; the run is stored in ``<out_dir>/<name>-<hash>/``, the hash covering
        the resolved config and the data fingerprint.
    force : bool, default False
        Refit (and overwrite) even when a finished run with the same hash exists.
    overrides : mapping of str to object or None, default None
        Dotted config keys to replace before validation, e.g. ``{"sampler.draws": 200}``.
    cores : int or None, default None
        Processes for the sampler's chains; None: the sampler settings' default.
    figures : bool, default True
        Draw the result's figures into the run directory.
    store : {"compact", "full"}, default "compact"
        ``idata.nc`` content: ``"compact"`` (no warmup draws, no practice-level effects) or
        ``"full"``; a cached compact run is refitted when ``"full"`` is asked for. The HTML
        report is written into the run directory.

    Returns
    -------
    RunResult
        The fit, its config and run directory; ``cached`` is True when loaded from cache.

    Raises
    ------
    ConfigError
        When the config or an override is invalid.
    TypeError
        When the estimator does not return a :class:`~hepcausal.results.FitResult`.

    Warns
    -----
    ConvergenceWarning
        When the fit (fresh or cached) failed its convergence checks.
    """
    cfg = as_config(config)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    cfg = cfg.without_sweep()
    out = Path(out_dir)
    check_output(out, cfg)
    clean_stale(out)
    t0 = time.perf_counter()
    data = prepare_data(cfg)
    key = cfg.hash(data.fingerprint)
    run_dir = out / run_dir_name(cfg.name, key)
    stored = read_json(run_dir / "run.json").get("store") if is_complete(run_dir) else None
    if not force and is_complete(run_dir) and (store == "compact" or stored == "full"):
        problem = verify_run(run_dir)
        if problem is None:
            try:
                cached = load_run(run_dir, cached=True, verify=False)  # verified above
            except Exception as exc:  # an unreadable entry is refitted
                problem = f"{run_dir} cannot be read ({type(exc).__name__}: {exc})"
            else:
                log.info(
                    "%s: cached (unchanged config and data), not refitted: %s", cfg.name, run_dir
                )
                _warn_if_failed(cfg.name, cached.result)
                return cached
        warnings.warn(
            f"run {cfg.name!r}: the cached run is damaged ({problem}); refitting",
            stacklevel=2,
        )
        force = True  # replace the damaged folder
    for message in preflight(cfg, data):
        warnings.warn(f"run {cfg.name!r}: {message}", stacklevel=2)
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
