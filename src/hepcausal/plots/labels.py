"""Human-readable axis labels (with units) for outcomes and ICB codes."""

from __future__ import annotations

from hepcausal import schema as s

OUTCOME_LABELS: dict[str, str] = {
    s.GP_FTE: "GP FTE per 1,000 weighted patients",
    s.NURSE_FTE: "Nurse FTE per 1,000 weighted patients",
    s.DPC_FTE: "Direct patient care FTE per 1,000 weighted patients",
    s.ADMIN_FTE: "Admin FTE per 1,000 weighted patients",
    s.QOF: "QOF achievement (proportion of points)",
    s.GPPS_OVERALL: "GPPS good overall experience (proportion)",
}

OUTCOME_SHORT: dict[str, str] = {
    s.GP_FTE: "GP FTE",
    s.NURSE_FTE: "nurse FTE",
    s.DPC_FTE: "DPC FTE",
    s.ADMIN_FTE: "admin FTE",
    s.QOF: "QOF achievement",
    s.GPPS_OVERALL: "GPPS overall experience",
}

_FTE_UNITS = "per 1,000 weighted patients"
OUTCOME_UNITS: dict[str, str] = {
    s.GP_FTE: _FTE_UNITS,
    s.NURSE_FTE: _FTE_UNITS,
    s.DPC_FTE: _FTE_UNITS,
    s.ADMIN_FTE: _FTE_UNITS,
    s.QOF: "proportion of points",
    s.GPPS_OVERALL: "proportion good",
}


def outcome_label(outcome: str | None) -> str:
    """Axis label for an outcome column (falls back to the column name)."""
    if not outcome:
        return "outcome"
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " "))


def outcome_units(outcome: str | None) -> str:
    """Short units of an outcome ('' when unknown)."""
    return OUTCOME_UNITS.get(outcome or "", "")


def outcome_short(outcome: str | None) -> str:
    """Short name of an outcome for titles and axis labels."""
    if not outcome:
        return ""
    return OUTCOME_SHORT.get(outcome, outcome.replace("_", " "))


def sii_axis_label(outcome: str | None = None, units: str = "", prefix: str = "SII") -> str:
    """Two-line y label of an SII-scale axis: 'SII of GP FTE' / '(per 1,000 weighted patients)'."""
    u = units or outcome_units(outcome)
    base = f"{prefix} of {outcome_short(outcome)}" if outcome else prefix
    return f"{base}\n({u})" if u else base


def icb_label(code: str, names: dict[str, str] | None = None) -> str:
    """'LLR (QK1)' for the treated ICB, else the given name or the code."""
    if code == s.LLR_ICB:
        return f"LLR ({code})"
    if names and code in names:
        return f"{names[code]} ({code})"
    return str(code)
