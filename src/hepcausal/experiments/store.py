"""The results store: one directory per run, written atomically and read back as a RunResult.

A run directory ``<out>/<name>-<hash12>/`` holds::

    idata.nc               posterior (ArviZ InferenceData, netCDF)
    summary.csv            effects table (one row per estimand; the first is the headline)
    diagnostics.json       R-hat, ESS, divergences, ok flag and problems
    config.resolved.toml   the fully resolved config
    provenance.json        versions, git commit, data hashes, seed, timestamps, config hash
    meta.json              the estimator's FitResult.meta
    inclusion.csv/.txt     inclusion report (when rules were applied), inclusion_dropped.csv
    truth.json             true value per estimand term (synthetic data; FitResult.truth)
    figures/               figures from hepcausal.plots
    run.json               completion marker: name, hash, headline, status

It is first written to a hidden temporary sibling and renamed into place, so a directory with
``run.json`` is always complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import tomllib
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import arviz as az
import pandas as pd

from hepcausal.diagnostics import Diagnostics
from hepcausal.experiments.config import Config, config_from_dict
from hepcausal.experiments.inputs import _jsonable
from hepcausal.results import FitResult
from hepcausal.summaries import EffectSummary

RUN_MARKER = "run.json"

__all__ = [
    "RUN_MARKER",
    "RunResult",
    "is_complete",
    "load_diagnostics",
    "load_run",
    "read_json",
    "run_dir_name",
    "save_run",
    "write_json",
]


def run_dir_name(name: str, config_hash: str) -> str:
    """Directory name of a run: ``<name>-<first 12 characters of the hash>``.

    Parameters
    ----------
    name : str
        The run's name.
    config_hash : str
        Content hash of the resolved config and data fingerprint.

    Returns
    -------
    str
        The directory name (not a path).
    """
    return f"{name}-{config_hash[:12]}"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON atomically (temp file in the same folder, then rename).

    Parameters
    ----------
    path : str or Path
        Target file; parent folders are created.
    obj : object
        Data to write; dataclasses, numpy values and pandas objects are converted, other
        objects are written as ``str``, NaN as ``NaN``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(_jsonable(obj), fh, indent=2, sort_keys=False, allow_nan=True)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> Any:
    """Read a JSON file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    object
        The decoded data.

    Raises
    ------
    OSError
        When the file cannot be read.
    ValueError
        When it is not valid JSON (``json.JSONDecodeError``).
    """
    with Path(path).open() as fh:
        return json.load(fh)


def is_complete(run_dir: str | Path) -> bool:
    """True when the directory holds a finished run.

    Parameters
    ----------
    run_dir : str or Path
        Candidate run directory.

    Returns
    -------
    bool
        True when ``run.json`` (with ``status == "complete"``) and ``idata.nc`` exist; False
        otherwise, including when ``run.json`` is unreadable.
    """
    run_dir = Path(run_dir)
    if not (run_dir / RUN_MARKER).is_file() or not (run_dir / "idata.nc").is_file():
        return False
    try:
        return read_json(run_dir / RUN_MARKER).get("status") == "complete"
    except (OSError, ValueError):
        return False


@dataclass
class RunResult:
    """A finished run: the fit, its config, where it is stored, and whether it came from cache.

    Attributes
    ----------
    name : str
        The run's name (the config's ``name``, or a sweep point's name).
    run_dir : pathlib.Path
        The run directory, ``<out_dir>/<name>-<hash[:12]>/``.
    config : Config
        The resolved, validated configuration of the run.
    config_hash : str
        Content hash of the resolved config and the data fingerprint (the cache key).
    result : FitResult
        The fit: posterior, estimands, effect summaries, diagnostics and truth.
    cached : bool, default False
        True when the run was loaded from an existing directory rather than fitted.
    provenance : dict of str to object, default {}
        Contents of ``provenance.json``: seed, sampler settings, data provenance, timings and
        software environment.
    figures : list of pathlib.Path, default []
        Figure files written for the run.
    """

    name: str
    run_dir: Path
    config: Config
    config_hash: str
    result: FitResult
    cached: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    @property
    def headline(self) -> EffectSummary:
        return self.result.headline

    @property
    def diagnostics(self) -> Diagnostics:
        return self.result.diagnostics

    def summary(self) -> pd.DataFrame:
        return self.result.summary()

    def describe(self) -> str:
        """Headline sentence, diagnostics line and run directory (what the CLI prints)."""
        lines = [self.headline.sentence(), f"Diagnostics: {self.diagnostics}"]
        state = " (cached: unchanged config and data, not refitted)" if self.cached else ""
        lines.append(f"Run directory: {self.run_dir}{state}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"RunResult({self.name!r}, {str(self.run_dir)!r}, cached={self.cached})"


def _write_report(run_dir: Path, report: Any) -> None:
    if report is None:
        return
    if hasattr(report, "table"):
        report.table().to_csv(run_dir / "inclusion.csv", index=False)
    dropped = getattr(report, "dropped", None)
    if isinstance(dropped, pd.DataFrame):
        dropped.to_csv(run_dir / "inclusion_dropped.csv", index=False)
    (run_dir / "inclusion.txt").write_text(str(report) + "\n")


def save_run(
    out_dir: Path,
    name: str,
    config: Config,
    config_hash: str,
    result: FitResult,
    provenance: dict[str, Any],
    *,
    report: Any = None,
    truth: Any = None,
    figures: Any = None,
    force: bool = False,
) -> RunResult:
    """Write a run directory atomically and return it as a RunResult.

    ``figures`` is an optional callable ``(result, figures_dir) -> list[Path]`` run inside the
    temporary directory; its failure is recorded in ``run.json`` and warned about, not raised.

    Parameters
    ----------
    out_dir : pathlib.Path
        Parent folder of the run directory (created if missing).
    name : str
        The run's name.
    config : Config
        The resolved config, written as ``config.resolved.toml``.
    config_hash : str
        Content hash of config and data (the cache key; part of the directory name).
    result : FitResult
        The fit to store (posterior, effects, diagnostics, meta).
    provenance : dict of str to object
        Written as ``provenance.json``.
    report : InclusionReport or None, keyword-only, default None
        Inclusion report, written as ``inclusion.csv``, ``inclusion_dropped.csv`` and
        ``inclusion.txt``.
    truth : object or None, keyword-only, default None
        True values per estimand term (synthetic data), written as ``truth.json``.
    figures : callable or None, keyword-only, default None
        ``(result, figures_dir) -> list[Path]``, drawing the run's figures.
    force : bool, keyword-only, default False
        Replace an existing finished run with the same directory name; otherwise an existing
        finished run is kept and loaded instead.

    Returns
    -------
    RunResult
        The stored run (``cached`` is True when another process had finished it first).

    Warns
    -----
    UserWarning
        When ``figures`` raises (the fit is stored anyway).
    """
    import warnings

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / run_dir_name(name, config_hash)
    tmp = out_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        result.save(tmp / "idata.nc")
        result.summary().to_csv(tmp / "summary.csv", index=False)
        write_json(tmp / "diagnostics.json", result.diagnostics.to_dict())
        (tmp / "config.resolved.toml").write_text(config.to_toml())
        write_json(tmp / "meta.json", result.meta)
        _write_report(tmp, report)
        if truth is not None:
            write_json(tmp / "truth.json", truth)
        fig_paths: list[Path] = []
        fig_error = None
        if figures is not None:
            try:
                fig_paths = [Path(p) for p in (figures(result, tmp / "figures") or [])]
            except Exception as exc:  # figures must never lose a finished fit
                fig_error = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"figures for run {name!r} failed: {fig_error}", stacklevel=2)
        rel_figs = [str(p.relative_to(tmp)) if p.is_relative_to(tmp) else str(p) for p in fig_paths]
        write_json(tmp / "provenance.json", provenance)
        marker = {
            "status": "complete",
            "name": name,
            "config_hash": config_hash,
            "estimator": config.estimator.name,
            "headline": result.headline.to_dict(),
            "diagnostics_ok": result.diagnostics.ok,
            "figures": rel_figs,
            "figures_error": fig_error,
        }
        write_json(tmp / RUN_MARKER, marker)
        if final.exists():
            if not force and is_complete(final):
                shutil.rmtree(tmp)  # another process finished the same run first
                return load_run(final, cached=True)
            old = out_dir / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    figs = [final / p for p in rel_figs]
    return RunResult(name, final, config, config_hash, result, False, provenance, figs)


def _none(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _effects_from_csv(path: Path) -> dict[str, EffectSummary]:
    table = pd.read_csv(path, keep_default_na=True)
    names = {f.name for f in fields(EffectSummary)}
    effects: dict[str, EffectSummary] = {}
    for row in table.to_dict(orient="records"):
        lo, hi = _none(row.pop("rope_low", None)), _none(row.pop("rope_high", None))
        kw = {k: _none(v) for k, v in row.items() if k in names}
        kw["rope"] = (float(lo), float(hi)) if lo is not None and hi is not None else None
        kw["units"] = kw.get("units") or ""
        kw["name"] = str(kw["name"])
        kw["n_draws"] = int(kw["n_draws"])
        effects[str(row.get("term") or kw["name"])] = EffectSummary(**kw)
    return effects


def load_diagnostics(path: str | Path) -> Diagnostics:
    """Read ``diagnostics.json`` back into :class:`~hepcausal.diagnostics.Diagnostics`.

    Parameters
    ----------
    path : str or Path
        A ``diagnostics.json`` written by :func:`save_run`.

    Returns
    -------
    Diagnostics
        The stored diagnostics; missing R-hat or ESS values become NaN.
    """
    d = read_json(path)
    names = {f.name for f in fields(Diagnostics)}
    kw = {k: v for k, v in d.items() if k in names}
    kw["problems"] = tuple(kw.get("problems", ()))
    for k in ("max_rhat", "min_ess_bulk", "min_ess_tail"):
        kw[k] = float("nan") if kw.get(k) is None else float(kw[k])
    return Diagnostics(**kw)


def _load_truth(path: Path) -> dict[str, float] | None:
    """``FitResult.truth`` from ``truth.json`` (numeric entries; None when absent or empty)."""
    raw = read_json(path) if path.is_file() else {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)} or None


def load_run(run_dir: str | Path, *, cached: bool = True) -> RunResult:
    """Read a finished run directory back (posterior, effects, diagnostics, config).

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`save_run` (with a complete ``run.json`` and
        ``idata.nc``).
    cached : bool, default True
        Value of the returned ``RunResult.cached``.

    Returns
    -------
    RunResult
        The stored fit, config, provenance and figure paths.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` is not a finished run.
    """
    run_dir = Path(run_dir)
    if not is_complete(run_dir):
        raise FileNotFoundError(f"{run_dir} is not a finished hepcausal run (no complete run.json)")
    marker = read_json(run_dir / RUN_MARKER)
    idata = az.from_netcdf(str(run_dir / "idata.nc"))
    meta = read_json(run_dir / "meta.json") if (run_dir / "meta.json").is_file() else {}
    result = FitResult(
        idata=idata,
        diagnostics=load_diagnostics(run_dir / "diagnostics.json"),
        effects=_effects_from_csv(run_dir / "summary.csv"),
        meta=meta,
        truth=_load_truth(run_dir / "truth.json"),
    )
    with (run_dir / "config.resolved.toml").open("rb") as fh:
        config = config_from_dict(tomllib.load(fh), source=str(run_dir / "config.resolved.toml"))
    prov = read_json(run_dir / "provenance.json")
    figs = [run_dir / p for p in marker.get("figures", [])]
    return RunResult(
        marker["name"], run_dir, config, marker["config_hash"], result, cached, prov, figs
    )
