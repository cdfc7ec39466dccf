"""Experiment configs (TOML), the runner, sensitivity sweeps and the results store.

``load_config(path)`` -> :class:`Config`; ``run_experiment(config, out_dir=...)`` ->
:class:`RunResult` (cached by config + data hash); ``run_sweep(config, out_dir=..., workers=...)``
-> :class:`SweepResult`.  Submodules: ``config``, ``registry``, ``inputs``, ``runner``, ``store``,
``sweep``, ``provenance``.  Names are imported lazily (importing a submodule stays cheap).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Config": "config",
    "ConfigError": "config",
    "load_config": "config",
    "run_experiment": "runner",
    "RunResult": "store",
    "load_run": "store",
    "SweepResult": "sweep",
    "expand_sweep": "sweep",
    "run_sweep": "sweep",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"hepcausal.experiments.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'hepcausal.experiments' has no attribute {name!r}")
