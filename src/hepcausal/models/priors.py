"""The priors convention shared by every model, and the base of the prior dataclasses.

Convention: every model's prior parameters are scales on the STANDARDISED outcome (outcome SD =
1, centred on the outcome mean; for the binomial families the logit scale, centred on the pooled
log-odds), so one set of numbers means the same thing for every outcome and every estimator.
Each model has a frozen dataclass of its prior scales (:class:`~hepcausal.models.gradient_data.
GradientPriors`, :class:`~hepcausal.models.panel_effects.PanelPriors`,
:class:`~hepcausal.models.synthetic_control.SyntheticControlPriors`) built on :class:`Priors`:
``from_any`` accepts an instance, a dict of overrides or None and raises ``ValueError`` naming an
unknown key (with the valid keys) or a non-positive value; ``to_dict`` gives the values back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, fields, replace
from typing import Any, TypeVar

P = TypeVar("P", bound="Priors")

__all__ = ["Priors"]


def _positive(value: Any) -> bool:
    if isinstance(value, tuple | list):
        return len(value) > 0 and all(_positive(v) for v in value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and v > 0


def _coerce(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return tuple(float(v) for v in value)
    if hasattr(value, "tolist") and not isinstance(value, int | float):
        return _coerce(value.tolist())
    return float(value)


class Priors:
    """Base of the frozen prior dataclasses (see the module docstring for the convention)."""

    @classmethod
    def from_any(cls: type[P], priors: P | Mapping[str, Any] | None) -> P:
        """The priors from an instance, a dict of overrides of the defaults, or None.

        Parameters
        ----------
        priors : instance, mapping or None
            None gives the defaults; a mapping overrides some of them (standardised scale).

        Returns
        -------
        Priors
            A validated instance.

        Raises
        ------
        ValueError
            Naming an unknown key (and listing the valid keys), or a value that is not a
            positive finite number.
        """
        if priors is None:
            return cls()
        if isinstance(priors, cls):
            out = priors
        elif isinstance(priors, Mapping):
            valid = sorted(f.name for f in fields(cls))  # type: ignore[arg-type]
            unknown = sorted(str(k) for k in set(priors) - set(valid))
            if unknown:
                raise ValueError(
                    f"unknown prior key(s) {unknown} for {cls.__name__}; valid keys: {valid}"
                )
            bad = [k for k, v in priors.items() if not _positive(v)]
            if bad:
                raise ValueError(
                    f"prior {bad[0]!r} must be a positive finite scale, got {priors[bad[0]]!r}"
                )
            out = replace(cls(), **{k: _coerce(v) for k, v in priors.items()})  # type: ignore[type-var]
        else:
            raise TypeError(
                f"priors must be a {cls.__name__}, a dict or None, got {type(priors).__name__}"
            )
        bad = [k for k, v in asdict(out).items() if not _positive(v)]  # type: ignore[call-overload]
        if bad:
            raise ValueError(f"prior {bad[0]!r} must be a positive finite scale")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The prior values as a dict (field name -> value).

        Returns
        -------
        dict
            One entry per field.
        """
        return asdict(self)  # type: ignore[call-overload]
