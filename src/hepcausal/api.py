"""The scripting API: every CLI action as a Python function.

>>> from hepcausal import api
>>> cfg = api.load_config("experiments/synthetic_baseline.toml")
>>> run = api.run_experiment(cfg, out_dir="runs")          # cached when nothing changed
>>> print(run.describe()); run.summary()
>>> sweep = api.run_sweep("experiments/sensitivity_synthetic.toml", out_dir="runs", workers=2)
>>> sweep.table[["run", "mean", "hdi_low", "hdi_high", "p_direction", "diagnostics_ok"]]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hepcausal.experiments.config import Config, ConfigError, config_from_dict, load_config
from hepcausal.experiments.runner import run_experiment
from hepcausal.experiments.store import RunResult, load_run
from hepcausal.experiments.sweep import SweepResult, expand_sweep, run_sweep

__all__ = [
    "Config",
    "ConfigError",
    "RunResult",
    "SweepResult",
    "build_nhs_panel",
    "config_from_dict",
    "expand_sweep",
    "load_config",
    "load_run",
    "run_experiment",
    "run_sweep",
    "simulate_panel",
    "write_report",
]


def write_report(run_dir: str | Path, **kwargs: Any) -> Any:
    """HTML report of a stored run (``hepcausal.report.write_report``).

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`run_experiment`, or a sweep directory (then the sweep
        report is written).
    **kwargs
        Passed on: ``out`` (output file) and ``title`` (page title).

    Returns
    -------
    pathlib.Path
        The written HTML file.
    """
    from hepcausal.report import write_report as _write_report

    return _write_report(run_dir, **kwargs)


def simulate_panel(config: Any = None) -> Any:
    """Synthetic panel with known truth (``hepcausal.data.synthetic.simulate_panel``).

    Parameters
    ----------
    config : SimulationConfig or None, default None
        Generator settings; None uses the default ``SimulationConfig()``.

    Returns
    -------
    SyntheticPanel
        The practice x year panel and its :class:`~hepcausal.data.synthetic.SimulationTruth`.
    """
    from hepcausal.data.synthetic import simulate_panel as _simulate_panel

    return _simulate_panel(config)


def build_nhs_panel(data_dir: str | Path | None = None, rules: Any = None, **kwargs: Any) -> Any:
    """The real NHS panel and its inclusion report (``hepcausal.data.nhs.build_nhs_panel``).

    Parameters
    ----------
    data_dir : str or Path or None, default None
        The NHS data folder; None reads ``$HEPCAUSAL_NHS_DATA``.
    rules : InclusionRules or None, default None
        Inclusion rules; None uses the published defaults.
    **kwargs
        Passed on to :func:`hepcausal.data.nhs.build_nhs_panel` (``years``, ``gpps_paths``,
        ``options``).

    Returns
    -------
    PanelBuild
        The validated practice x fiscal-year panel, its inclusion report, unmapped practices,
        files read and fallbacks used.

    Raises
    ------
    ConfigError
        When ``data_dir`` is None and ``$HEPCAUSAL_NHS_DATA`` is unset, or the folder does not
        exist.
    """
    from hepcausal.data.nhs import build_nhs_panel as _build
    from hepcausal.experiments.config import DataConfig

    path = DataConfig(source="nhs", data_dir=None if data_dir is None else str(data_dir))
    return _build(path.resolved_data_dir(), rules, **kwargs)
