"""Estimator registry: a config's ``estimator.name`` -> the fitting function.

Entries are ``"module:function"`` import strings resolved lazily, so the registry costs nothing
to import and works in spawned worker processes.  A config may also name any importable
``"package.module:function"`` directly.  Every estimator takes the panel and the outcome column
positionally and keyword arguments from the config (those it accepts among ``STANDARD_ARGS``,
plus ``[priors]`` and the method-specific ``[estimator]`` options), and returns a
``hepcausal.results.FitResult``.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

ESTIMATORS: dict[str, str] = {
    "gradient": "hepcausal.models.gradient:fit_gradient",
    "did": "hepcausal.causal.did:fit_did",
    "ddd": "hepcausal.causal.did:fit_ddd",
    "event_study": "hepcausal.causal.event_study:fit_event_study",
    "dose_response": "hepcausal.causal.dose:fit_dose_response",
    "synthetic_control": "hepcausal.experiments.adapters:synthetic_control",
}

# keyword arguments the runner fills from the config when the estimator accepts them
STANDARD_ARGS = (
    "outcome",
    "rank_col",
    "treated",
    "comparators",
    "start_year",
    "backend",
    "settings",
    "priors",
    "hdi_prob",
    "rope",
    "icbs",
)


def register_estimator(name: str, target: str | Callable[..., Any]) -> None:
    """Add (or replace) an estimator: ``target`` is ``'module:function'`` or a function.

    Functions are stored by import path so that spawned sweep workers can find them; they must
    be importable at module level.
    """
    if callable(target):
        target = f"{target.__module__}:{target.__qualname__}"
    if ":" not in target:
        raise ValueError(f"estimator target must be 'module:function', got {target!r}")
    ESTIMATORS[name] = target


def known_estimators() -> list[str]:
    return list(ESTIMATORS)


def get_estimator(name: str) -> Callable[..., Any]:
    """The fitting function for a registered name or a ``'module:function'`` path."""
    target = ESTIMATORS.get(name, name)
    if ":" not in target:
        raise KeyError(f"unknown estimator {name!r}; known: {known_estimators()}")
    module, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"estimator {name!r} lives in {module}, which is not available: {exc}"
        ) from exc
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportError(f"estimator {name!r}: {module} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _parameters(func: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(func).parameters)


def estimator_options(name: str) -> list[str]:
    """Method-specific keyword options of an estimator (its keyword parameters that the runner
    does not fill itself)."""
    params = _parameters(get_estimator(name))
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params.values() if p.kind in kinds]
    return [n for n in names[2:] if n not in STANDARD_ARGS]


def call_estimator(
    name: str, panel: Any, outcome: str, standard: dict[str, Any], options: dict[str, Any]
) -> Any:
    """Call an estimator with the standard arguments it accepts plus its options."""
    func = get_estimator(name)
    params = _parameters(func)
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in standard.items() if k in params or accepts_kwargs}
    for key, default in (("rope", None), ("hdi_prob", 0.95)):
        if key not in kwargs and key in standard and standard[key] != default:
            warnings.warn(
                f"estimator {name!r} does not take '{key}': summary.{key} = {standard[key]!r} "
                "is not applied to its effects",
                UserWarning,
                stacklevel=3,
            )
    if "priors" in standard and standard["priors"] and "priors" not in kwargs:
        raise TypeError(f"estimator {name!r} takes no priors, but [priors] is not empty")
    unknown = [k for k in options if k not in params and not accepts_kwargs]
    if unknown:
        raise TypeError(f"estimator {name!r} has no option(s) {unknown}")
    return func(panel, outcome, **kwargs, **options)
