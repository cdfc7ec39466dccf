"""Axis labels that are not outcome data: ICB names and the SII axis title.

Outcome names, labels and units live in the outcome table (:mod:`hepcausal.outcomes`:
:func:`~hepcausal.outcomes.label_of`, :func:`~hepcausal.outcomes.short_of`,
:func:`~hepcausal.outcomes.units_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hepcausal import schema as s
from hepcausal.outcomes import OUTCOMES, short_of, units_of

# Thin names still imported by plots/dispatch.py and plots/synthetic_control.py (owned by another
# branch of issue 9); remove once those import hepcausal.outcomes directly.
outcome_units = units_of
outcome_short = short_of
OUTCOME_LABELS: Mapping[str, str] = MappingProxyType({c: o.label for c, o in OUTCOMES.items()})


def sii_axis_label(outcome: str | None = None, units: str = "", prefix: str = "SII") -> str:
    """Two-line y label of an SII-scale axis: 'SII of GP FTE' / '(FTE per 1,000 weighted ...)'.

    Parameters
    ----------
    outcome : str or None
        Panel column or alias of the outcome (None: just ``prefix``).
    units : str
        Units for the second line; default the outcome's ``units`` in the outcome table.
    prefix : str
        First word of the label.

    Returns
    -------
    str
        The label, with the units in parentheses on a second line when known.
    """
    u = units or units_of(outcome)
    base = f"{prefix} of {short_of(outcome)}" if outcome else prefix
    return f"{base}\n({u})" if u else base


def icb_label(code: str, names: dict[str, str] | None = None) -> str:
    """'LLR (QK1)' for the treated ICB, else the given name or the code.

    Parameters
    ----------
    code : str
        ICB ODS code.
    names : dict of str to str or None
        ICB code -> name.

    Returns
    -------
    str
        The label.
    """
    if code == s.LLR_ICB:
        return f"LLR ({code})"
    if names and code in names:
        return f"{names[code]} ({code})"
    return str(code)
