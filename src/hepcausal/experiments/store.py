"""The results store: one directory per run, written atomically and read back as a RunResult.

A run directory ``<out>/<name>-<hash12>/`` holds::

    idata.nc               posterior (ArviZ InferenceData, netCDF); "compact" by default: no
                           warmup draws, no practice-level effects (``store="full"`` keeps all)
    sii_classical.csv      classical (PHE) SII of every ICS and year of the analysed data (panel
                           designs with a rank), with the method and notes
    parameters.csv/.tex    ArviZ-style table of every stored parameter (mean, sd, HDI, ESS, R-hat)
    summary.csv            effects table (one row per estimand; the first is the headline)
    diagnostics.json       R-hat, ESS, divergences, ok flag and problems
    config.resolved.toml   the fully resolved config
    provenance.json        versions, git commit, data hashes, seed, timestamps, config hash
    meta.json              the estimator's FitResult.meta
    inclusion.csv/.txt     inclusion report (when rules were applied), inclusion_dropped.csv
    truth.json             true value per estimand term (synthetic data; FitResult.truth)
    figures/               figures from hepcausal.plots
    report.html            the self-contained HTML report (hepcausal.report)
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
STORE_MODES = ("compact", "full")
# dimensions of practice-level parameters (one value per practice): left out of a compact idata
PRACTICE_DIMS = frozenset({"unit", "practice"})
FILE_MODE = 0o644  # every file of a run directory (mkstemp would give JSON files 0600)


def _left_out(var: str, dims: Any) -> bool:
    """A variable a compact idata leaves out: practice-level, a non-centred raw draw (``z_*``;
    the scaled effects it builds are stored) or PyMC's transformed copy (``*__``)."""
    return bool(PRACTICE_DIMS & set(map(str, dims))) or var.startswith("z_") or var.endswith("__")


def compact_idata(idata: az.InferenceData) -> az.InferenceData:
    """The InferenceData of a compact run folder: no warmup groups, no practice-level variables.

    Parameters
    ----------
    idata : arviz.InferenceData
        The sampler's output.

    Returns
    -------
    arviz.InferenceData
        A new object without the ``warmup_*`` groups and without the variables of every group
        that have a practice dimension (``unit``, ``practice``; e.g. ``unit_raw``), the
        non-centred standard-normal draws (``z_*``, e.g. ``z_cell``) and PyMC's transformed
        copies (``*__``).
        The names of the dropped variables are listed in the posterior's ``dropped_vars``
        attribute.
    """
    groups: dict[str, Any] = {}
    dropped: list[str] = []
    for g in idata.groups():
        if g.startswith("warmup"):
            continue
        ds = idata[g]
        drop = [str(v) for v, da in ds.data_vars.items() if _left_out(str(v), da.dims)]
        if g == "posterior":
            dropped += drop
        ds = ds.drop_vars(drop)
        ds = ds.drop_dims(
            [
                d
                for d in PRACTICE_DIMS
                if d in ds.dims and not any(d in da.dims for da in ds.data_vars.values())
            ]
        )
        groups[g] = ds
    out = az.InferenceData(**groups)
    if "posterior" in groups:
        out.posterior.attrs["store"] = "compact"
        out.posterior.attrs["dropped_vars"] = ",".join(dropped)
    return out


CLASSICAL_SII = "sii_classical.csv"


def _write_classical_sii(run_dir: Path, result: FitResult) -> None:
    """``sii_classical.csv`` for a panel design with a rank (the data the fit saw)."""
    design = getattr(result, "design", None)
    rank_col = result.meta.get("rank_col")
    if design is None or not rank_col or rank_col not in design.data.columns:
        return
    from hepcausal.plots.panel import classical_sii

    table, method = classical_sii(design.data, design.outcome, str(rank_col))
    table.assign(method=method).to_csv(run_dir / CLASSICAL_SII, index=False)


def sii_before(run_dir: str | Path, treated: str | None, start_year: Any) -> float | None:
    """The treated ICS's mean classical SII over the years before the start (None without
    ``sii_classical.csv``).

    Parameters
    ----------
    run_dir : str or Path
        A run directory.
    treated : str, optional
        Treated ICB code.
    start_year : int, optional
        First treated year.

    Returns
    -------
    float or None
        The mean pre-period SII.
    """
    path = Path(run_dir) / CLASSICAL_SII
    if not path.is_file() or treated is None or start_year is None:
        return None
    t = pd.read_csv(path)
    pre = t[(t["icb_code"].astype(str) == str(treated)) & (t["year"] < int(start_year))]["sii"]
    pre = pre.dropna()
    return float(pre.mean()) if len(pre) else None


def parameter_table(idata: az.InferenceData, hdi_prob: float = 0.95) -> pd.DataFrame:
    """ArviZ summary of every stored posterior parameter (one row per element).

    Parameters
    ----------
    idata : arviz.InferenceData
        The (compact) posterior.
    hdi_prob : float
        Probability of the highest-density interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter, mean, sd, hdi_low, hdi_high, mcse_mean, ess_bulk, ess_tail,
        r_hat``; PyMC's transformed copies (``*__``) are left out.
    """
    names = [str(v) for v in idata.posterior.data_vars if not str(v).endswith("__")]
    t = az.summary(idata, var_names=names, hdi_prob=hdi_prob, kind="all", round_to="none")
    lo, hi = (c for c in t.columns if c.startswith("hdi_"))
    t = t.rename(columns={lo: "hdi_low", hi: "hdi_high"})
    t = t[["mean", "sd", "hdi_low", "hdi_high", "mcse_mean", "ess_bulk", "ess_tail", "r_hat"]]
    return t.rename_axis("parameter").reset_index()


def parameter_latex(table: pd.DataFrame, caption: str = "") -> str:
    """The parameter table as a LaTeX ``table`` (pandas Styler, booktabs rules).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`parameter_table` output.
    caption : str
        Table caption.

    Returns
    -------
    str
        LaTeX source: 3 significant digits for estimates, integer ESS, R-hat to 3 decimals.
    """
    t = table.copy()
    t["parameter"] = t["parameter"].str.replace("_", r"\_", regex=False)
    styler = t.style.hide(axis="index").format(
        {
            **{c: "{:.3g}" for c in ("mean", "sd", "hdi_low", "hdi_high", "mcse_mean")},
            "ess_bulk": "{:.0f}",
            "ess_tail": "{:.0f}",
            "r_hat": "{:.3f}",
        },
        na_rep="--",
    )
    styler = styler.relabel_index(
        ["Parameter", "Mean", "SD", "HDI low", "HDI high", "MCSE", "ESS bulk", "ESS tail", "R-hat"],
        axis="columns",
    )
    return styler.to_latex(caption=caption or None, hrules=True, position="htbp")


def run_dir_name(name: str, config_hash: str) -> str:
    return f"{name}-{config_hash[:12]}"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(_jsonable(obj), fh, indent=2, sort_keys=False, allow_nan=True)
        fh.write("\n")
    os.chmod(tmp, FILE_MODE)  # as every other file (mkstemp creates 0600)
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> Any:
    with Path(path).open() as fh:
        return json.load(fh)


def is_complete(run_dir: str | Path) -> bool:
    """True when the directory holds a finished run."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_MARKER).is_file() or not (run_dir / "idata.nc").is_file():
        return False
    try:
        return read_json(run_dir / RUN_MARKER).get("status") == "complete"
    except (OSError, ValueError):
        return False


@dataclass
class RunResult:
    """A finished run: the fit, its config, where it is stored, and whether it came from cache."""

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
        """Headline sentence (the estimand in words and what its sign means), the true value on
        synthetic data, diagnostics line and run directory (what the CLI prints)."""
        from hepcausal.summaries import estimand_words, sign_reading

        h, m = self.headline, self.result.meta
        term = self.result.headline_term
        words = estimand_words(
            term,
            outcome=m.get("outcome"),
            treated=m.get("treated"),
            start_year=m.get("start_year"),
            rank_col=m.get("rank_col"),
        )
        reading = sign_reading(
            term,
            h.mean,
            outcome=m.get("outcome"),
            rank_col=m.get("rank_col"),
            sii_before=sii_before(self.run_dir, m.get("treated"), m.get("start_year")),
        )
        lines = [h.sentence(words, reading)]
        truth = (self.result.truth or {}).get(term)
        if truth is not None:
            inside = h.hdi_low <= truth <= h.hdi_high
            lines.append(
                f"Synthetic data: estimate {h.mean:.3g} vs true value {truth:.3g} "
                f"({'inside' if inside else 'OUTSIDE'} the {h.hdi_prob:.0%} HDI)."
            )
        lines.append(f"Diagnostics: {self.diagnostics}")
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
    store: str = "compact",
    report_html: Any = None,
) -> RunResult:
    """Write a run directory atomically and return it as a RunResult.

    ``figures`` is an optional callable ``(result, figures_dir) -> list[Path]`` run inside the
    temporary directory; its failure is recorded in ``run.json`` and warned about, not raised.
    ``store`` is ``"compact"`` (:func:`compact_idata`) or ``"full"`` (the sampler's whole
    output).  ``report_html`` is an optional callable ``(run_dir) -> Path`` run last (the HTML
    report); its failure is warned about, not raised.
    """
    import warnings

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / run_dir_name(name, config_hash)
    tmp = out_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if store not in STORE_MODES:
            raise ValueError(f"store must be one of {STORE_MODES}, got {store!r}")
        idata = result.idata if store == "full" else compact_idata(result.idata)
        idata.to_netcdf(str(tmp / "idata.nc"))
        hdi = result.headline.hdi_prob if result.effects else 0.95
        params = parameter_table(idata, hdi_prob=hdi)
        params.to_csv(tmp / "parameters.csv", index=False)
        (tmp / "parameters.tex").write_text(
            parameter_latex(params, caption=f"Posterior of every stored parameter of run {name}.")
        )
        result.summary().to_csv(tmp / "summary.csv", index=False)
        try:
            _write_classical_sii(tmp, result)
        except Exception as exc:  # a descriptive table must never lose a finished fit
            warnings.warn(f"classical SII of run {name!r} failed: {exc}", stacklevel=2)
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
            "store": store,
        }
        write_json(tmp / RUN_MARKER, marker)
        for p in tmp.rglob("*"):
            p.chmod(FILE_MODE if p.is_file() else 0o755)
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
    if report_html is not None:
        try:
            report = Path(report_html(final))
            report.chmod(FILE_MODE)
        except Exception as exc:  # the report must never lose a finished fit
            warnings.warn(f"report for run {name!r} failed: {exc}", stacklevel=2)
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
    """Read a finished run directory back (posterior, effects, diagnostics, config)."""
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
