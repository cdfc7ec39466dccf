"""hepcausal: Bayesian causal inference for inequality in English general practice."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The scripting API (hepcausal.api) is re-exported lazily: ``import hepcausal`` stays cheap.
_API = (
    "Config",
    "ConfigError",
    "RunResult",
    "SweepResult",
    "build_nhs_panel",
    "expand_sweep",
    "load_config",
    "load_run",
    "run_experiment",
    "run_sweep",
    "simulate_panel",
    "write_report",
)


def __getattr__(name: str) -> Any:
    if name in _API:
        from hepcausal import api

        return getattr(api, name)
    raise AttributeError(f"module 'hepcausal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
