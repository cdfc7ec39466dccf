"""The data of a run: synthetic, real NHS or a panel file, with a content fingerprint.

The fingerprint enters the run's cache key: for NHS data it is the sha256 of every file in the
data folder (cheap; computed before the panel is built so that a cached run never rebuilds it),
plus that of every GP Patient Survey file when ``data.gpps_dir`` is set, for a panel file its
sha256, and for synthetic data the hash of the simulated panel itself.

GPPS: the NHS panel merges the files that :func:`hepcausal.data.gpps.gpps_files` finds in
``data.gpps_dir`` (every ``GPPS_<year>_Practice_data*.csv`` directly in the folder, one per survey
year).  An analysis of an outcome whose source is the GPS survey (``source="gpps"`` in the outcome
table) on NHS data without ``data.gpps_dir`` is a :class:`ConfigError` raised by
:func:`prepare_data`, before anything is fitted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import hepcausal
from hepcausal.experiments.config import Config, ConfigError
from hepcausal.experiments.provenance import sha256_file
from hepcausal.outcomes import find_outcome


def panel_hash(panel: pd.DataFrame) -> str:
    """sha256 of a panel's columns, dtypes-independent values and row order."""
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in panel.columns]).encode())
    h.update(
        np.ascontiguousarray(pd.util.hash_pandas_object(panel, index=False).to_numpy()).tobytes()
    )
    return h.hexdigest()


def read_panel(path: str | Path) -> pd.DataFrame:
    """Read and validate a panel file written by ``hepcausal simulate`` / ``hepcausal data``.

    A CSV is read strictly (:func:`hepcausal.data.headers.check_csv_shape`).  Every panel, CSV
    or parquet, must have the schema's required columns and ``hep_treated``, and goes through
    :func:`hepcausal.data.validate.validate_panel` (the one validation path of every data
    source, with the outcome table's plausibility bounds).

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` panel (one row per practice and fiscal year).

    Returns
    -------
    DataFrame
        The validated panel with canonical dtypes and a fresh 0..n-1 index.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFileError
        If the file is empty or header-only, a CSV row has too few or too many fields (naming the
        line), or the suffix is neither ``.csv`` nor ``.parquet``.
    PanelValidationError
        Naming the file, every failing column and the offending rows (CSV: the file's line
        numbers; parquet: row numbers from 0) with their practice and year.
    """
    from hepcausal import schema
    from hepcausal.data.headers import DataFileError, check_csv_shape
    from hepcausal.data.validate import validate_panel

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"panel file {p} does not exist")
    if p.suffix == ".parquet":
        try:
            panel = pd.read_parquet(p)
        except Exception as err:  # pyarrow raises several types for damaged files
            raise DataFileError(p, f"not a readable parquet file ({err})") from err
        if panel.empty:
            raise DataFileError(p, "panel file has no rows")
        row_word = "row"
    elif p.suffix == ".csv":
        raw = p.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise DataFileError(p, f"not UTF-8 text ({err})") from err
        lines = check_csv_shape(text, source=p)
        codes = {
            c: str
            for c in (schema.PRACTICE, schema.PCN, schema.SUB_ICB, schema.ICB, schema.ICB_NAME)
        }
        panel = pd.read_csv(io.StringIO(text), dtype=codes)
        if len(panel) != len(lines):  # pragma: no cover - both readers skip blank lines
            raise DataFileError(p, f"read {len(panel)} rows but the file has {len(lines)} records")
        panel.index = pd.Index(lines)
        row_word = "line"
    else:
        raise DataFileError(p, "panel file must be .csv or .parquet")
    required = (*schema.REQUIRED_COLUMNS, schema.HEP_TREATED)
    checked = validate_panel(panel, source=f"panel file {p}", row_word=row_word, required=required)
    return checked.reset_index(drop=True)


def write_panel(panel: pd.DataFrame, path: str | Path) -> Path:
    """Write a panel to csv or parquet (by suffix), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    if p.suffix == ".parquet":
        panel.to_parquet(tmp, index=False)
    elif p.suffix == ".csv":
        panel.to_csv(tmp, index=False)
    else:
        raise ValueError(f"output {p} must end in .csv or .parquet")
    tmp.replace(p)
    return p


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, pd.Series):
        return obj.to_dict()
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    return str(obj)


@dataclass
class RunData:
    """A run's input data; the NHS panel is built lazily on first access of ``panel``."""

    config: Config
    fingerprint: str
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    generator: dict[str, Any] | None = None  # synthetic generator settings
    truth: Any = None
    report: Any = None  # InclusionReport
    _panel: pd.DataFrame | None = None

    @property
    def panel(self) -> pd.DataFrame:
        if self._panel is None:
            self._panel, self.report = _build_nhs(self.config)
        return self._panel

    def provenance(self) -> dict[str, Any]:
        """What identifies the data: file hashes or generator settings + seed."""
        out: dict[str, Any] = {"source": self.config.data.source, "fingerprint": self.fingerprint}
        if self.files:
            out["files_sha256"] = dict(self.files)
        if self.generator is not None:
            out["generator"] = _jsonable(self.generator)
            out["generator_seed"] = self.generator.get("seed")
        if self._panel is not None:
            out["panel_rows"] = len(self._panel)
            out["panel_sha256"] = panel_hash(self._panel)
        return out


def _inclusion_rules(cfg: Config) -> Any:
    rules = cfg.data.inclusion_rules()
    if "outcomes" not in cfg.data.inclusion and hasattr(rules, "outcomes"):
        # the analysis outcome must be observed, whatever the default outcome list is
        rules = dataclasses.replace(rules, outcomes=(cfg.analysis.outcome,))
    return rules


def gpps_paths(cfg: Config) -> list[Path] | None:
    """The GPPS files of an NHS-data config (None when ``data.gpps_dir`` is not set).

    Parameters
    ----------
    cfg : Config
        The run configuration.

    Returns
    -------
    list of Path or None
        The files :func:`hepcausal.data.gpps.gpps_files` finds in ``data.gpps_dir``, in survey-year
        order; None without ``data.gpps_dir``.

    Raises
    ------
    ConfigError
        Naming ``data.gpps_dir`` when the folder is missing or holds no GPPS practice file, or
        when the analysis outcome comes from the GPPS and ``data.gpps_dir`` is not set.
    """
    from hepcausal.data.gpps import gpps_files

    folder = cfg.data.gpps_dir
    if folder is None:
        row = find_outcome(cfg.analysis.outcome)
        if row is not None and row.source == "gpps":
            raise ConfigError(
                f"analysis.outcome = {cfg.analysis.outcome!r} comes from the GP Patient Survey, "
                "which is not part of the NHS data folder: set 'data.gpps_dir' to a folder of "
                "'GPPS_<year>_Practice_data_(weighted)...csv' files"
            )
        return None
    try:
        return gpps_files(folder)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"'data.gpps_dir': {err}") from err


def load_options(cfg: Config) -> Any:
    """The NHS loader options of a config (``data.allow_list_size_fallback``,
    ``data.allow_missing_qof``; both false unless set).

    Parameters
    ----------
    cfg : Config
        The run configuration.

    Returns
    -------
    NHSLoadOptions
        Options for :func:`hepcausal.data.nhs.build_nhs_panel`.
    """
    from hepcausal.data.nhs import NHSLoadOptions

    return NHSLoadOptions(
        allow_list_size_fallback=cfg.data.allow_list_size_fallback,
        allow_missing_qof=cfg.data.allow_missing_qof,
        payment_validity=(
            None
            if cfg.data.payment_validity is None
            else (float(cfg.data.payment_validity[0]), float(cfg.data.payment_validity[1]))
        ),
    )


def _build_nhs(cfg: Config) -> tuple[pd.DataFrame, Any]:
    from hepcausal.data.nhs import build_nhs_panel

    built = build_nhs_panel(
        cfg.data.resolved_data_dir(),
        _inclusion_rules(cfg),
        gpps_paths=gpps_paths(cfg),
        options=load_options(cfg),
    )
    return built.panel, built.report


def _apply_inclusion(cfg: Config, panel: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    if not cfg.data.inclusion:
        return panel, None
    from hepcausal.data.inclusion import apply_inclusion

    return apply_inclusion(panel, _inclusion_rules(cfg))


def nhs_files(data_dir: Path) -> dict[str, str]:
    """sha256 of every data file under the NHS folder (relative path -> hash).

    The folder's layout is checked first (:func:`hepcausal.data.nhs.check_nhs_layout`), so a
    wrong ``data.data_dir`` fails at once instead of after hashing an unrelated folder.

    Parameters
    ----------
    data_dir : Path
        The NHS data folder.

    Returns
    -------
    dict of str to str
        Relative path -> sha256, for every non-hidden file under ``data_dir``.

    Raises
    ------
    ConfigError
        Naming ``data.data_dir`` when the folder lacks the NHS data layout.
    """
    from hepcausal.data.nhs import check_nhs_layout

    try:
        check_nhs_layout(data_dir)
    except FileNotFoundError as err:
        raise ConfigError(f"'data.data_dir': {err}") from err
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no files in the NHS data folder {data_dir}")
    return {str(p.relative_to(data_dir)): sha256_file(p) for p in files}


def _fingerprint(parts: dict[str, Any]) -> str:
    parts = {**parts, "hepcausal": hepcausal.__version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def prepare_data(cfg: Config) -> RunData:
    """Fingerprint (and, except for NHS data, load) the data of a config.

    Parameters
    ----------
    cfg : Config
        The run configuration.

    Returns
    -------
    RunData
        The data and its fingerprint; the NHS panel is built on first access of ``panel``.

    Raises
    ------
    ConfigError
        For NHS data whose folder lacks the NHS layout or whose GPPS set-up is wrong (see
        :func:`gpps_paths`), before any fitting.
    DataFileError
        A panel file is empty, header-only or has a short or long row (naming file and line).
    PanelValidationError
        A panel file or the synthetic panel fails
        :func:`hepcausal.data.validate.validate_panel` (naming the file, columns and rows).
    """
    src = cfg.data.source
    if src == "nhs":
        files = nhs_files(cfg.data.resolved_data_dir())
        parts: dict[str, Any] = {"nhs": files}
        gpps = gpps_paths(cfg)
        if gpps is not None:
            parts["gpps"] = {p.name: sha256_file(p) for p in gpps}
            files = {**files, **{str(p): parts["gpps"][p.name] for p in gpps}}
        return RunData(cfg, _fingerprint(parts), files=files)
    if src == "file":
        path = Path(cfg.data.path or "")
        digest = sha256_file(path) if path.is_file() else None
        if digest is None:
            raise FileNotFoundError(f"'data.path': panel file {path} does not exist")
        panel, report = _apply_inclusion(cfg, read_panel(path))
        return RunData(
            cfg,
            _fingerprint({"file": digest}),
            files={str(path): digest},
            report=report,
            _panel=panel,
        )
    from hepcausal.data.synthetic import simulate_panel
    from hepcausal.data.validate import validate_panel

    sim_cfg = cfg.data.simulation_config()
    sim = simulate_panel(sim_cfg)
    validate_panel(sim.panel, source="synthetic panel (data.source = 'synthetic')")
    panel, report = _apply_inclusion(cfg, sim.panel)
    is_instance = dataclasses.is_dataclass(sim_cfg) and not isinstance(sim_cfg, type)
    generator = dataclasses.asdict(sim_cfg) if is_instance else {}
    fp = _fingerprint({"synthetic": panel_hash(sim.panel)})
    return RunData(cfg, fp, generator=generator, truth=sim.truth, report=report, _panel=panel)
