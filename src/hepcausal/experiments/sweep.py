"""Sensitivity sweeps: expand a config's ``[sweep]`` grid, run every point, tabulate headlines.

Points run in parallel on local processes (``spawn`` context) or on a Dask distributed cluster;
finished runs are cached, and a manifest (``sweep.json``) is rewritten atomically after every run
so an interrupted sweep resumes without refitting what finished.  On resume the manifest is made
true again: every point is re-derived from the run folders (finished -> ``complete``, otherwise
``pending``), whatever the previous, possibly killed, process wrote.  Local workers exit when
their parent process dies (:func:`_watch_parent`), so a killed sweep leaves no orphans.  The
sweep folder is checked to lie inside ``out_dir``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import multiprocessing as mp
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hepcausal.experiments.config import (
    Config,
    ConfigError,
    ConfigLike,
    as_config,
    config_from_dict,
    set_dotted,
)
from hepcausal.experiments.inputs import prepare_data
from hepcausal.experiments.provenance import now_iso
from hepcausal.experiments.runner import check_output
from hepcausal.experiments.store import (
    clean_stale,
    is_complete,
    load_run,
    read_json,
    run_dir_name,
    verify_run,
    write_json,
)

log = logging.getLogger("hepcausal.experiments")

MANIFEST = "sweep.json"
HEADLINE_COLUMNS = (
    "name",
    "mean",
    "median",
    "sd",
    "hdi_low",
    "hdi_high",
    "hdi_prob",
    "p_direction",
    "p_positive",
    "rope_low",
    "rope_high",
    "p_rope",
    "units",
)


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its name, full config, the values varied from the base config and
    a readable label of every swept key's value at this point."""

    name: str
    config: Config
    varied: dict[str, Any]
    labels: dict[str, str]


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        text = "+".join(_short(v) for v in value) if len(value) <= 3 else ""
    elif isinstance(value, dict):
        text = ",".join(f"{k}={_short(v)}" for k, v in value.items()) if value else "default"
    else:
        text = str(value)
    if not text or len(text) > 40:
        blob = json.dumps(value, sort_keys=True, default=str).encode()
        text = f"v{hashlib.sha256(blob).hexdigest()[:6]}"
    return re.sub(r"[^A-Za-z0-9.+=,_-]", "-", text)


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _label(sweep_labels: dict[str, list[str]], key: str, index: int | str, value: Any) -> str:
    if isinstance(index, str):  # leave_one_out points carry their label
        return index
    labels = sweep_labels.get(key)
    return labels[index] if labels else _short(value)


def _resolved(base: dict[str, Any], key: str, value: Any, source: str) -> str:
    """Canonical resolved value of ``key`` when set to ``value`` (aliases resolved)."""
    d = copy.deepcopy(base)
    set_dotted(d, key, value, source=source)
    try:
        return _canonical(_get_dotted(config_from_dict(d, source=source).to_dict(), key))
    except ConfigError:
        return _canonical(value)


def _base_index(cfg: Config, key: str) -> int | None:
    """Index of the grid value of ``key`` that equals the base config's value, if any."""
    assert cfg.sweep is not None
    base = cfg.without_sweep().to_dict()
    current = _canonical(_get_dotted(base, key))
    for i, value in enumerate(cfg.sweep.grid[key]):
        if _resolved(base, key, value, cfg.source) == current:
            return i
    return None


def _combinations(cfg: Config) -> Iterator[dict[str, tuple[int | str, Any]]]:
    """Dicts key -> (index, value) for every point of the sweep."""
    assert cfg.sweep is not None
    grid = cfg.sweep.grid
    if cfg.sweep.mode == "grid":
        keys = list(grid)
        for combo in itertools.product(*(list(enumerate(grid[k])) for k in keys)):
            yield dict(zip(keys, combo, strict=True))
        return
    # one at a time: the base config, then each alternative value of each key alone
    yield {}
    for key, values in grid.items():
        base_i = _base_index(cfg, key)
        for i, value in enumerate(values):
            if i != base_i:
                yield {key: (i, value)}
    if cfg.sweep.mode not in ("leave_one_out", "placebo"):
        return
    base = cfg.without_sweep().analysis
    comps = base.comparator_codes()
    if cfg.sweep.mode == "leave_one_out":  # then each base comparator dropped in turn
        for c in comps:
            yield {"analysis.comparators": (f"without-{c}", [x for x in comps if x != c])}
    if cfg.sweep.mode == "placebo":  # each comparator as pseudo-treated, the treated left out
        # ... also out of the pool of the pre/post DiD / DDD (analysis.exclude)
        uses_pool = "analysis.exclude" not in cfg.without_sweep().unused_keys
        exclude = {"analysis.exclude": ("", [*base.exclude, base.treated_icb])} if uses_pool else {}
        for c in comps:
            yield {
                "analysis.treated_icb": (f"{PLACEBO_PREFIX}{c}", c),
                "analysis.comparators": ("", [x for x in comps if x != c]),
                **exclude,
            }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _get_dotted(d: dict[str, Any], key: str) -> Any:
    node: Any = d
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def expand_sweep(config: ConfigLike) -> list[SweepPoint]:
    """The sweep's points (a config without ``[sweep]`` is a single point).

    Parameters
    ----------
    config : Config or str or path-like
        A sweep config (with a ``[sweep]`` table) or the path of its TOML file.

    Returns
    -------
    list of SweepPoint
        One validated config per grid point, named ``<name>__<key>=<label>...``.

    Raises
    ------
    ConfigError
        When a point's config is invalid (the message names the point and its values).
    """
    cfg = as_config(config)
    if cfg.sweep is None:
        return [SweepPoint(cfg.name, cfg, {}, {})]
    base = cfg.without_sweep().to_dict()
    start = cfg.without_sweep().to_dict(explicit_only=True)  # defaults may change with a point
    points: list[SweepPoint] = []
    seen: dict[str, int] = {}
    base_index = {key: _base_index(cfg, key) for key in cfg.sweep.grid}
    for combo in _combinations(cfg):
        d = copy.deepcopy(start)
        varied = {k: v for k, (_, v) in combo.items()}
        labels = {k: _label(cfg.sweep.labels, k, i, v) for k, (i, v) in combo.items()}
        for key, value in varied.items():
            set_dotted(d, key, value, source=cfg.source)
        parts = [f"{_leaf(k)}={lab}" for k, lab in labels.items() if lab] or ["base"]
        for key, values in cfg.sweep.grid.items():  # label every swept key (base values too)
            if key not in labels:
                i = base_index[key]
                labels[key] = (
                    _label(cfg.sweep.labels, key, i, values[i])
                    if i is not None
                    else _short(_get_dotted(base, key))
                )
        name = f"{cfg.name}__" + "__".join(parts)
        if name in seen:
            seen[name] += 1
            name = f"{name}__{seen[name]}"
        else:
            seen[name] = 0
        d["name"] = name
        try:
            point_cfg = config_from_dict(d, source=cfg.source)
        except ConfigError as exc:
            raise ConfigError(f"sweep point {name} ({varied}): {exc}") from exc
        points.append(SweepPoint(name, point_cfg, varied, labels))
    return points


# ---------------------------------------------------------------------------- running


def _run_point(
    config: dict[str, Any],
    source: str,
    runs_dir: str,
    force: bool,
    cores: int | None,
    figures: bool = True,
) -> dict[str, Any]:
    """Worker entry point (module level so that spawned processes and Dask can import it)."""
    from hepcausal.experiments.runner import run_experiment

    cfg = config_from_dict(config, source=source)
    res = run_experiment(cfg, out_dir=runs_dir, force=force, cores=cores, figures=figures)
    return {"run_dir": str(res.run_dir), "cached": res.cached}


def cached_run_dir(cfg: Config, runs_dir: Path) -> Path | None:
    """The finished, intact run directory of ``cfg`` under ``runs_dir``, or None (no fit).

    Parameters
    ----------
    cfg : Config
        A point's config.
    runs_dir : Path
        The sweep's run folder.

    Returns
    -------
    Path or None
        The run directory when it is complete and every file has its recorded sha256.
    """
    data = prepare_data(cfg)
    run_dir = runs_dir / run_dir_name(cfg.name, cfg.hash(data.fingerprint))
    return run_dir if is_complete(run_dir) and verify_run(run_dir) is None else None


PARENT_POLL_SECONDS = 1.0


def _watch_parent(parent_pid: int) -> None:
    """Worker initializer: exit this process as soon as the sweep process is gone.

    On Linux the kernel sends SIGTERM on the parent's death (``prctl(PR_SET_PDEATHSIG)``); on
    every platform a daemon thread also polls :func:`os.getppid` and exits when the parent
    changed (the worker was re-parented).

    Parameters
    ----------
    parent_pid : int
        The sweep process's pid.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - unusual libc
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="hepcausal-parent-watch", daemon=True).start()


def _row(point: SweepPoint, run_dir: Path, cached: bool) -> dict[str, Any]:
    marker = read_json(run_dir / "run.json")
    diag = read_json(run_dir / "diagnostics.json")
    head = marker["headline"]
    row: dict[str, Any] = {"run": point.name}
    row.update(point.labels)
    row["estimand"] = head.get("name")
    a = point.config.analysis
    if a.outcome_role is not None:  # declared primary: the others are secondary
        row["outcome_role"] = a.outcome_role
        row["name"] = f"{point.name} [{row['outcome_role']}]"  # forest-plot row label
    row.update({k: head.get(k) for k in HEADLINE_COLUMNS if k != "name"})
    row.update(
        diagnostics_ok=bool(diag.get("ok")),
        max_rhat=diag.get("max_rhat"),
        min_ess_bulk=diag.get("min_ess_bulk"),
        n_divergences=diag.get("n_divergences"),
        cached=cached,
        config_hash=marker["config_hash"],
        run_dir=str(run_dir),
    )
    return row


@dataclass
class SweepResult:
    """A finished (or partly failed) sweep: the headline table and where everything is.

    Attributes
    ----------
    name : str
        The sweep config's ``name``.
    sweep_dir : pathlib.Path
        ``<out_dir>/<name>/``: the runs (under ``runs/``), ``sweep.json`` and the tables.
    table : pandas.DataFrame
        One row per finished point: ``run``, one label column per swept key, the headline
        estimand and its summary (mean, HDI, probability of direction, ...), diagnostics,
        ``cached``, ``config_hash`` and ``run_dir``.
    points : list of SweepPoint
        Every point of the sweep, finished or not, in grid order.
    failed : dict of str to str, default {}
        Point name -> ``"ExceptionType: message"`` for the points that failed.
    files : dict of str to pathlib.Path, default {}
        The files written: ``"csv"``, ``"tex"`` and ``"forest"`` (when drawn).
    """

    name: str
    sweep_dir: Path
    table: pd.DataFrame
    points: list[SweepPoint]
    failed: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def run(self, name: str) -> Any:
        """Load one point's RunResult by its name."""
        rows = self.table[self.table["run"] == name]
        if rows.empty:
            raise KeyError(f"no finished run {name!r} in sweep {self.name!r}")
        return load_run(rows["run_dir"].iloc[0])

    def __repr__(self) -> str:
        return (
            f"SweepResult({self.name!r}, {len(self.table)} runs, "
            f"{len(self.failed)} failed, {str(self.sweep_dir)!r})"
        )


class _Manifest:
    def __init__(self, path: Path, cfg: Config, points: list[SweepPoint]) -> None:
        self.path = path
        old = read_json(path) if path.is_file() else {}
        self.data: dict[str, Any] = {
            "name": cfg.name,
            "source": cfg.source,
            "mode": cfg.sweep.mode if cfg.sweep else "single",
            "created": old.get("created", now_iso()),
            "updated": now_iso(),
            "points": [  # statuses are re-derived from the run folders by run_sweep
                {
                    "name": p.name,
                    "varied": p.varied,
                    "status": "pending",
                    "run_dir": None,
                    "error": None,
                }
                for p in points
            ],
        }
        self.write()

    def update(self, name: str, **fields_: Any) -> None:
        for p in self.data["points"]:
            if p["name"] == name:
                p.update(fields_)
        self.data["updated"] = now_iso()
        self.write()

    def write(self) -> None:
        write_json(self.path, self.data)


def _executor(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=_watch_parent,
        initargs=(os.getpid(),),
    )


def run_sweep(
    config: ConfigLike,
    *,
    out_dir: str | Path = "runs",
    workers: int = 2,
    scheduler: Any = None,
    force: bool = False,
    progress: bool = True,
    cores: int | None = None,
    figures: bool = True,
    on_run_done: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run every point of a sweep config and write the headline table (CSV + LaTeX).

    Output goes to ``<out_dir>/<sweep name>/`` (runs under ``runs/``, ``sweep.json``,
    ``sweep_summary.csv``, ``sweep_summary.tex`` and a forest plot when ``hepcausal.plots``
    provides one).  ``workers`` local processes run the points (``workers=1``: in this process);
    ``scheduler`` is a Dask distributed address (or ``distributed.Client``) to run them on a
    cluster instead.  ``figures=False`` skips each run's figures (the sweep forest plot is
    still drawn).  Finished runs are never refitted unless ``force``; ``on_run_done(row)`` is
    called after each run is recorded (e.g. for custom progress reporting).

    Parameters
    ----------
    config : Config or str or path-like
        The sweep config or the path of its TOML file.
    out_dir : str or Path, default "runs"
        Parent folder of the sweep directory.
    workers : int, default 2
        Local worker processes (``<= 1``: run in this process).
    scheduler : str or distributed.Client or None, default None
        Dask distributed scheduler to run the points on instead of local processes.
    force : bool, default False
        Refit every point even when a finished run exists.
    progress : bool, default True
        Show a progress bar.
    cores : int or None, default None
        Sampler processes per run; None with local workers shares the CPUs between them.
    figures : bool, default True
        Draw each run's figures.
    on_run_done : callable or None, default None
        Called with each finished point's table row (a dict).

    Returns
    -------
    SweepResult
        The headline table, the points, the failures and the files written.

    Raises
    ------
    ConfigError
        When the config or a point's config is invalid.

    Warns
    -----
    UserWarning
        When some points failed (they are listed in ``failed``, not raised).
    """
    cfg = as_config(config)
    points = expand_sweep(cfg)
    check_output(out_dir, cfg)
    sweep_dir = Path(out_dir) / cfg.name
    if not sweep_dir.resolve().is_relative_to(Path(out_dir).resolve()):
        raise ConfigError(f"'name' = {cfg.name!r}: the sweep folder would be outside {out_dir}")
    runs_dir = sweep_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(sweep_dir / MANIFEST, cfg, points)
    if cores is None and scheduler is None:  # share this machine's cores between workers
        cores = max(1, (os.cpu_count() or 1) // max(1, workers))

    rows: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(points), desc=f"sweep {cfg.name}", unit="run", disable=not progress)

    def record(point: SweepPoint, run_dir: Path, cached: bool) -> None:
        row = _row(point, run_dir, cached)
        rows[point.name] = row
        manifest.update(point.name, status="complete", run_dir=str(run_dir), error=None)
        bar.update(1)
        bar.set_postfix_str(point.name[-40:])
        if on_run_done is not None:
            on_run_done(row)

    def record_failure(point: SweepPoint, exc: BaseException) -> None:
        msg = f"{type(exc).__name__}: {exc}"
        failed[point.name] = msg
        manifest.update(point.name, status="failed", error=msg)
        bar.update(1)
        log.error("sweep point %s failed: %s", point.name, msg)

    clean_stale(runs_dir)
    todo: list[SweepPoint] = []
    for point in points:  # resume: finished runs are recorded without a worker
        done = None if force else cached_run_dir(point.config, runs_dir)
        if done is not None:
            record(point, done, True)
        else:
            todo.append(point)

    args = {
        p.name: (p.config.to_dict(), p.config.source, str(runs_dir), force, cores, figures)
        for p in todo
    }
    try:
        if scheduler is not None:
            _run_dask(scheduler, todo, args, record, record_failure)
        elif workers <= 1 or len(todo) <= 1:
            for point in todo:
                try:
                    out = _run_point(*args[point.name])
                except Exception as exc:
                    record_failure(point, exc)
                    continue
                record(point, Path(out["run_dir"]), bool(out["cached"]))
        else:
            _run_local(workers, todo, args, record, record_failure)
    finally:
        bar.close()

    table = pd.DataFrame([rows[p.name] for p in points if p.name in rows])
    files = write_sweep_table(table, sweep_dir, list(cfg.sweep.grid) if cfg.sweep else [])
    if cfg.sweep is not None and cfg.sweep.mode == "placebo":
        files.update(write_placebo_calibration(table, points, sweep_dir))
    result = SweepResult(cfg.name, sweep_dir, table, points, failed, files)
    if failed:
        warnings.warn(
            f"sweep {cfg.name!r}: {len(failed)} run(s) failed: {sorted(failed)}; "
            f"see {manifest.path}",
            stacklevel=2,
        )
    return result


PLACEBO_PREFIX = "placebo-"


def placebo_calibration(table: pd.DataFrame, points: list[SweepPoint]) -> pd.DataFrame:
    """The placebo calibration of a ``mode = 'placebo'`` sweep's base run.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`SweepResult.table` (one row per finished point).
    points : list of SweepPoint
        The sweep's points (the base point is the one with nothing varied).

    Returns
    -------
    pandas.DataFrame
        One row: the base run's treated ICB and headline, and the calibration of
        :func:`hepcausal.causal.placebo_panel.calibration_from` (placebo z SD and RMS, number
        of placebo HDIs excluding 0, rank by ``|z|``, exact randomisation p-value and its floor,
        calibrated interval), with ``n_placebo_missing`` placebo runs that did not finish.

    Raises
    ------
    ValueError
        When the base run or every placebo run is missing.
    """
    from hepcausal.causal.placebo_panel import calibration_from

    by_name = table.set_index("run") if not table.empty else table
    base = [p for p in points if not p.varied]
    placebos = [
        p
        for p in points
        if str(p.labels.get("analysis.treated_icb", "")).startswith(PLACEBO_PREFIX)
    ]
    if not base or base[0].name not in by_name.index:
        raise ValueError("placebo calibration: the base run did not finish")
    head = by_name.loc[base[0].name]
    rows = []
    for p in placebos:
        if p.name not in by_name.index:
            continue
        r = by_name.loc[p.name]
        rows.append(
            {
                "group": p.varied["analysis.treated_icb"],
                "mean": float(r["mean"]),
                "sd": float(r["sd"]),
                "z": float(r["mean"]) / float(r["sd"]),
                "hdi_low": float(r["hdi_low"]),
                "hdi_high": float(r["hdi_high"]),
                "excludes_zero": not (float(r["hdi_low"]) <= 0 <= float(r["hdi_high"])),
                "converged": bool(r["diagnostics_ok"]),
            }
        )
    if not rows:
        raise ValueError("placebo calibration: no placebo run finished")
    cal = calibration_from(
        float(head["mean"]),
        float(head["sd"]),
        float(head["hdi_low"]),
        float(head["hdi_high"]),
        pd.DataFrame(rows),
        str(head["estimand"]),
    )
    treated = base[0].config.analysis.treated_icb
    out = {"run": base[0].name, "treated": treated, "mean": float(head["mean"]), **cal}
    out["n_placebo_missing"] = len(placebos) - len(rows)
    out["placebos"] = ", ".join(f"{r['group']} z={r['z']:+.2f}" for r in rows)
    return pd.DataFrame([out])


def write_placebo_calibration(
    table: pd.DataFrame, points: list[SweepPoint], sweep_dir: Path
) -> dict[str, Path]:
    """Write ``placebo_calibration.csv`` of a placebo sweep (nothing when it cannot be formed).

    Parameters
    ----------
    table : pandas.DataFrame
        The sweep table.
    points : list of SweepPoint
        The sweep's points.
    sweep_dir : Path
        The sweep folder.

    Returns
    -------
    dict of str to Path
        ``{"placebo": path}`` when written, else empty (a warning says why).
    """
    try:
        cal = placebo_calibration(table, points)
    except ValueError as exc:
        warnings.warn(str(exc), stacklevel=2)
        return {}
    path = sweep_dir / "placebo_calibration.csv"
    cal.to_csv(path, index=False)
    return {"placebo": path}


def _run_local(
    workers: int,
    todo: list[SweepPoint],
    args: dict[str, tuple[Any, ...]],
    record: Callable[..., None],
    record_failure: Callable[..., None],
) -> None:
    with _executor(workers) as pool:
        futures = {pool.submit(_run_point, *args[p.name]): p for p in todo}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    point = futures[fut]
                    exc = fut.exception()
                    if exc is not None:
                        record_failure(point, exc)
                    else:
                        out = fut.result()
                        record(point, Path(out["run_dir"]), bool(out["cached"]))
        except BaseException:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _run_dask(
    scheduler: Any,
    todo: list[SweepPoint],
    args: dict[str, tuple[Any, ...]],
    record: Callable[..., None],
    record_failure: Callable[..., None],
) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            "a Dask scheduler needs 'distributed' (pip install hepcausal[cluster])"
        ) from exc
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futures = {
            client.submit(_run_point, *args[p.name], pure=False, key=f"hepcausal-{p.name}"): p
            for p in todo
        }
        for fut in as_completed(list(futures)):
            point = futures[fut]
            try:
                out = fut.result()
            except Exception as exc:
                record_failure(point, exc)
                continue
            record(point, Path(out["run_dir"]), bool(out["cached"]))
    finally:
        if own:
            client.close()


# ---------------------------------------------------------------------------- outputs


def _latex_table(table: pd.DataFrame, varied: list[str]) -> str:
    cols = ["run", *[k for k in varied if k in table.columns]]
    out = table[cols].copy()
    out["run"] = out["run"].str.split("__", n=1).str[-1]
    out["mean"] = table["mean"].map(lambda v: f"{v:.3g}")
    prob = table["hdi_prob"].iloc[0] if len(table) else 0.95
    out[f"{prob:.0%} HDI"] = [
        f"[{lo:.3g}, {hi:.3g}]" for lo, hi in zip(table["hdi_low"], table["hdi_high"], strict=True)
    ]
    out["P(direction)"] = table["p_direction"].map(lambda v: f"{v:.2f}")
    if table["p_rope"].notna().any():
        out["P(ROPE)"] = table["p_rope"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    out["converged"] = table["diagnostics_ok"].map(lambda v: "yes" if v else "NO")
    out.columns = [c.rsplit(".", 1)[-1] for c in out.columns]
    return out.to_latex(index=False, escape=True)


def _forest(table: pd.DataFrame, path: Path) -> Path | None:
    try:
        from hepcausal import plots
    except ImportError:
        return None
    fn = getattr(plots, "plot_sweep_forest", None)
    if fn is None:
        return None
    try:
        out = fn(table, path)
    except Exception as exc:  # a figure must not lose the table
        warnings.warn(f"sweep forest plot failed: {type(exc).__name__}: {exc}", stacklevel=3)
        return None
    return Path(out) if out else path


def write_sweep_table(table: pd.DataFrame, sweep_dir: Path, varied: list[str]) -> dict[str, Path]:
    """Write ``sweep_summary.csv``, ``sweep_summary.tex`` and the forest plot (if available)."""
    files: dict[str, Path] = {}
    if table.empty:
        return files
    csv = sweep_dir / "sweep_summary.csv"
    tmp = csv.with_name(csv.name + ".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(csv)
    files["csv"] = csv
    tex = sweep_dir / "sweep_summary.tex"
    tex.write_text(_latex_table(table, varied))
    files["tex"] = tex
    forest = _forest(table, sweep_dir / "forest.png")
    if forest is not None:
        files["forest"] = forest
    return files
