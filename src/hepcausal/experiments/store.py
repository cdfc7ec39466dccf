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

It is first written to a hidden temporary sibling (``.tmp-<run>-<host>-<pid>-<random>``) and
renamed into place, so a directory with ``run.json`` is always complete.  ``run.json`` records the
sha256 of every file of the run (``files``): a cached run is reused only when every file is
present with its recorded hash (:func:`verify_run`), otherwise it is refitted with a warning;
:func:`load_run` checks the same hashes and raises :class:`RunIntegrityError` naming the file.
Temporary folders left by a killed process are removed by the next run in the same folder
(:func:`clean_stale`) and are never read as runs.  Every file is written with mode ``0666``
minus the umask (JSON included).  When saving a finished fit fails, its posterior is written to
a rescue file (:func:`rescue_idata`) and the error says where.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
import time
import tomllib
import uuid
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import arviz as az
import pandas as pd

from hepcausal.diagnostics import Diagnostics
from hepcausal.experiments.config import Config, config_from_dict
from hepcausal.experiments.inputs import _jsonable
from hepcausal.experiments.provenance import sha256_file
from hepcausal.results import FitResult
from hepcausal.summaries import EffectSummary

RUN_MARKER = "run.json"
STORE_MODES = ("compact", "full")
# dimensions of practice-level parameters (one value per practice): left out of a compact idata
PRACTICE_DIMS = frozenset({"unit", "practice"})


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


__all__ = [
    "RUN_MARKER",
    "RunIntegrityError",
    "RunResult",
    "is_complete",
    "load_diagnostics",
    "load_run",
    "read_json",
    "run_dir_name",
    "save_run",
    "verify_run",
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


TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
STALE_SECONDS = 24 * 3600
"""A temporary folder of another host (or of unknown origin) older than this is stale."""


def file_mode() -> int:
    """The mode of a new file under the current umask (``0666 & ~umask``, usually 0644).

    Returns
    -------
    int
        The permission bits.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON atomically (temp file in the same folder, then rename), mode 0666 - umask.

    Parameters
    ----------
    path : str or Path
        Destination.
    obj : object
        JSON-serialisable after :func:`hepcausal.experiments.inputs._jsonable`.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_jsonable(obj), fh, indent=2, sort_keys=False, allow_nan=True)
            fh.write("\n")
        os.chmod(tmp, file_mode())  # mkstemp creates 0600: same mode as every other output
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    """True when the directory holds a finished run (its marker says so; hashes not checked).

    Parameters
    ----------
    run_dir : str or Path
        A run folder.

    Returns
    -------
    bool
        Whether ``run.json`` says complete and ``idata.nc`` exists.
    """
    run_dir = Path(run_dir)
    if run_dir.name.startswith("."):  # temporary or replaced folders are never runs
        return False
    if not (run_dir / RUN_MARKER).is_file() or not (run_dir / "idata.nc").is_file():
        return False
    try:
        return read_json(run_dir / RUN_MARKER).get("status") == "complete"
    except (OSError, ValueError):
        return False


def content_hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of every file of a run folder but ``run.json`` (relative path -> hash).

    Parameters
    ----------
    run_dir : Path
        A (temporary) run folder.

    Returns
    -------
    dict of str to str
        Relative POSIX path -> sha256.
    """
    return {
        p.relative_to(run_dir).as_posix(): sha256_file(p)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != RUN_MARKER
    }


class RunIntegrityError(ValueError):
    """A run folder's file is missing or differs from the sha256 recorded in its ``run.json``."""


def verify_run(run_dir: str | Path) -> str | None:
    """Why a finished run folder cannot be reused, or None when it is intact.

    Every file recorded in ``run.json``'s ``files`` must exist with its sha256; a run written
    before hashes were recorded must at least hold the files that :func:`load_run` reads.

    Parameters
    ----------
    run_dir : str or Path
        A run folder.

    Returns
    -------
    str or None
        The problem (naming the file), or None.
    """
    run_dir = Path(run_dir)
    if not is_complete(run_dir):
        return f"{run_dir} holds no complete run.json and idata.nc"
    marker = read_json(run_dir / RUN_MARKER)
    recorded = marker.get("files")
    if not isinstance(recorded, dict):
        required = ("idata.nc", "summary.csv", "diagnostics.json", "config.resolved.toml")
        missing = [f for f in (*required, "provenance.json") if not (run_dir / f).is_file()]
        return f"{run_dir}: missing {', '.join(missing)}" if missing else None
    for rel, digest in recorded.items():
        path = run_dir / rel
        if not path.is_file():
            return f"{path} is missing"
        if sha256_file(path) != digest:
            return f"{path} is damaged (its sha256 differs from the one recorded in run.json)"
    return None


def _tmp_name(final: Path) -> str:
    host = socket.gethostname().replace("-", "_")
    return f"{TMP_PREFIX}{final.name}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(folder: Path, now: float) -> bool:
    """A temporary folder whose writer is gone: same host and a dead pid, or older than a day."""
    parts = folder.name.rsplit("-", 3)
    if len(parts) == 4 and parts[1] == socket.gethostname().replace("-", "_"):
        try:
            return not _pid_alive(int(parts[2]))
        except ValueError:
            pass
    try:
        return now - folder.stat().st_mtime > STALE_SECONDS
    except OSError:
        return False


def clean_stale(out_dir: str | Path) -> list[Path]:
    """Remove the temporary run folders that a killed process left in ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        A folder of run directories.

    Returns
    -------
    list of Path
        The removed folders (those of running processes are kept).
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    now, removed = time.time(), []
    for folder in out_dir.iterdir():
        if not folder.is_dir() or not folder.name.startswith((TMP_PREFIX, OLD_PREFIX)):
            continue
        if _is_stale(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def rescue_idata(result: FitResult, name: str, config_hash: str) -> Path | None:
    """Write a finished fit's posterior where it cannot be lost (after a failed save).

    Parameters
    ----------
    result : FitResult
        The fit.
    name : str
        Run name (sanitised into the file name).
    config_hash : str
        The run's config hash.

    Returns
    -------
    Path or None
        ``$HEPCAUSAL_RESCUE_DIR`` (default: the system temporary folder) /
        ``hepcausal-rescue-<name>-<hash12>-<time>.nc``, or None if that failed too.
    """
    folder = Path(os.environ.get("HEPCAUSAL_RESCUE_DIR") or tempfile.gettempdir())
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80].lstrip(".")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = folder / f"hepcausal-rescue-{safe or 'run'}-{config_hash[:12]}-{stamp}.nc"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        result.save(path)
    except Exception:  # the caller reports the original error
        return None
    return path


def outcome_role_sentence(role: str | None, primary: str | None) -> str:
    """The run's outcome role in words ("" when no primary outcome is declared).

    Parameters
    ----------
    role : {"primary", "secondary"} or None
        :attr:`~hepcausal.experiments.config.AnalysisConfig.outcome_role`.
    primary : str or None
        The declared primary outcome (``analysis.primary_outcome``).

    Returns
    -------
    str
        E.g. "Outcome role: secondary (the declared primary outcome is gp_fte_per_1k); read
        it as supporting, not confirmatory."
    """
    if role is None:
        return ""
    if role == "primary":
        return "Outcome role: primary (the declared analysis.primary_outcome)."
    named = f" (the declared primary outcome is {primary})" if primary else ""
    return f"Outcome role: secondary{named}; read it as supporting, not confirmatory."


def _with_role(summary: pd.DataFrame, config: Config) -> pd.DataFrame:
    role = config.analysis.outcome_role
    return summary if role is None else summary.assign(outcome_role=role)


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
        return _with_role(self.result.summary(), self.config)

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
        estimand = (m.get("estimands") or {}).get(term) or m.get("estimand")
        if isinstance(estimand, str) and estimand:
            lines.append(f"Estimand: {estimand}.")
        placebo = placebo_line(m, h.hdi_prob)
        if placebo:
            lines.append(placebo)
        truth = (self.result.truth or {}).get(term)
        if truth is not None:
            inside = h.hdi_low <= truth <= h.hdi_high
            lines.append(
                f"Synthetic data: estimate {h.mean:.3g} vs true value {truth:.3g} "
                f"({'inside' if inside else 'OUTSIDE'} the {h.hdi_prob:.0%} HDI)."
            )
        a = self.config.analysis
        role = outcome_role_sentence(a.outcome_role, a.primary_outcome)
        if role:
            lines.append(role)
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


def placebo_line(meta: dict[str, Any], hdi_prob: float) -> str:
    """The headline's placebo-calibration line (or why there is none).

    Parameters
    ----------
    meta : dict
        The fit's metadata (``meta["placebo"]`` from
        :func:`hepcausal.causal.placebo_panel.placebo_calibrate`).
    hdi_prob : float
        Probability of the headline HDI.

    Returns
    -------
    str
        The treated unit's placebo rank with the exact randomisation p-value and its floor, the
        placebo z spread and the calibrated interval; for a DiD / DDD / event study fitted
        without placebos, how to get them; ``""`` for other estimators.
    """
    from hepcausal.causal.placebo_panel import PLACEBO_ESTIMATORS

    cal = meta.get("placebo")
    if isinstance(cal, dict) and "rank" in cal:
        n = int(cal["n_placebo"])
        bad = int(cal.get("n_not_converged", 0))
        return (
            f"Placebo calibration ({n} comparators as pseudo-treated): rank {cal['rank']} of "
            f"{n + 1} by |z| (randomisation p = {cal['p_value']:.2f}, floor {cal['p_floor']:.2f}); "
            f"placebo z SD {cal['z_sd']:.2f}, {cal['n_excluding_zero']} of {n} placebo HDIs "
            f"exclude 0; placebo-calibrated {hdi_prob:.0%} interval "
            f"[{cal['calibrated_low']:.3g}, {cal['calibrated_high']:.3g}] "
            f"(HDI widened by {cal['scale']:.2f})"
            + (f"; {bad} placebo fit(s) failed the convergence check" if bad else "")
            + "."
        )
    if meta.get("estimator") in PLACEBO_ESTIMATORS:
        return (
            "Placebo calibration: not run (estimator option placebo = true refits every "
            "comparator as pseudo-treated and gives the rank, p-value and calibrated interval)."
        )
    return ""


class SaveError(OSError):
    """Saving a finished fit failed; ``rescued`` is where its posterior was written (or None)."""

    def __init__(self, message: str, rescued: Path | None) -> None:
        super().__init__(message)
        self.rescued = rescued

    def __str__(self) -> str:
        return str(self.args[0])


def _save_failed(
    result: FitResult, name: str, config_hash: str, out_dir: Path, exc: Exception
) -> SaveError:
    rescued = rescue_idata(result, name, config_hash)
    where = (
        f"the posterior was saved to {rescued} (load it with arviz.from_netcdf)"
        if rescued is not None
        else "the posterior could not be rescued either"
    )
    return SaveError(
        f"run {name!r}: the fit finished but saving it under {out_dir} failed "
        f"({type(exc).__name__}: {exc}); {where}",
        rescued,
    )


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

    Parameters
    ----------
    out_dir : Path
        Folder that holds run directories.
    name : str
        Run name (validated before fitting).
    config : Config
        The resolved configuration (written as ``config.resolved.toml``).
    config_hash : str
        Content hash of the config and data; the run directory is ``<name>-<hash[:12]>``.
    result : FitResult
        The finished fit.
    provenance : dict
        Versions, data fingerprint and timings (``provenance.json``).
    report : object, optional
        Inclusion report of the NHS panel (written as ``inclusion.*``), or None.
    truth : object, optional
        True values per estimand term on synthetic data (``truth.json``), or None.
    figures : callable, optional
        ``(result, figures_dir) -> list[Path]``, run inside the temporary directory; its failure
        is recorded in ``run.json`` and warned about, not raised.
    force : bool
        Replace an existing complete run of the same name and hash.
    store : {"compact", "full"}
        ``"compact"`` (:func:`compact_idata`: no warmup draws, no practice-level effects) or
        ``"full"`` (the sampler's whole output) in ``idata.nc``.
    report_html : callable, optional
        ``(run_dir) -> Path`` run last (the HTML report); its failure is warned about, not
        raised.

    Returns
    -------
    RunResult
        The stored run.

    Raises
    ------
    SaveError
        When writing fails; the posterior is first written to a rescue file, which the
        message names, so a finished fit is never lost.
    """
    final = out_dir / run_dir_name(name, config_hash)
    tmp = out_dir / _tmp_name(final)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
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
        _with_role(result.summary(), config).to_csv(tmp / "summary.csv", index=False)
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
            "files": content_hashes(tmp),
            "store": store,
        }
        write_json(tmp / RUN_MARKER, marker)
        for p in tmp.rglob("*"):
            p.chmod(file_mode() if p.is_file() else 0o755)
        if final.exists():
            if not force and verify_run(final) is None:
                shutil.rmtree(tmp)  # another process finished the same run first
                return load_run(final, cached=True, verify=False)
            old = out_dir / f"{OLD_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except Exception as exc:  # a finished fit is never lost: rescue its posterior first
        shutil.rmtree(tmp, ignore_errors=True)
        raise _save_failed(result, name, config_hash, out_dir, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if report_html is not None:
        try:
            report = Path(report_html(final))
            report.chmod(file_mode())
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
        kw["draws_kind"] = kw.get("draws_kind") or "posterior"
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


def load_run(run_dir: str | Path, *, cached: bool = True, verify: bool = True) -> RunResult:
    """Read a finished run directory back (posterior, effects, diagnostics, config).

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`save_run` (with a complete ``run.json`` and
        ``idata.nc``).
    cached : bool, default True
        Value of the returned ``RunResult.cached``.
    verify : bool, default True
        Check every file against the sha256 recorded in ``run.json`` first
        (:func:`verify_run`), so that a changed or damaged file is never read as the run's
        result; False skips the check (the caller has just verified the folder).

    Returns
    -------
    RunResult
        The stored fit, config, provenance and figure paths.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` is not a finished run.
    RunIntegrityError
        With ``verify``: when a recorded file is missing or its content changed (the message
        names the file).
    """
    run_dir = Path(run_dir)
    if not is_complete(run_dir):
        raise FileNotFoundError(f"{run_dir} is not a finished hepcausal run (no complete run.json)")
    problem = verify_run(run_dir) if verify else None
    if problem is not None:
        raise RunIntegrityError(f"{problem}; refit the run or pass verify=False to read it anyway")
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
