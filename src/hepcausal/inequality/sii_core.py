"""Shared pieces of the classical SII estimators: result type, links, weighted line, validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

ValueType = Literal["other", "rate", "proportion"]
VALUE_TYPES: tuple[str, ...] = ("other", "rate", "proportion")
TRANSFORM_NAMES = {"other": "none", "rate": "log", "proportion": "logit"}


class SIIInputError(ValueError):
    """Invalid input to an SII estimator (the message names the argument/column and rows)."""


@dataclass(frozen=True)
class SIIResult:
    """A classical slope (and optionally relative) index of inequality with its intervals.

    ``sii`` is the fitted value at the least deprived end (rank 1) minus the most deprived end
    (rank 0), on the natural scale of the indicator (back-transformed when ``transform``).
    ``sii_lower``/``sii_upper`` are the limits at ``confidence[0]``; ``sii_ci`` holds every
    requested level.  ``rii`` = fitted value at rank 1 / fitted value at rank 0.

    Attributes
    ----------
    sii : float
        Slope index of inequality: fitted value at rank 1 (least deprived) minus at rank 0
        (most deprived), natural scale.
    sii_lower, sii_upper : float
        Confidence limits of the SII at the first level of ``confidence``.
    confidence : tuple of float
        The requested confidence levels, as fractions (e.g. ``(0.95, 0.998)``).
    sii_ci : dict of float to tuple of float
        Level -> ``(lower, upper)`` of the SII for every requested level.
    method : str
        The estimator that produced the result (e.g. PHE simulation, bootstrap, unit-level).
    value_type : str, default "other"
        ``"other"``, ``"rate"`` or ``"proportion"``.
    transform : bool, default False
        True when the line was fitted on the log/logit scale and back-transformed.
    intercept : float, default nan
        Fitted value at rank 0 (most deprived), natural scale.
    rii : float or None, default None
        Relative index of inequality (fitted value at rank 1 / at rank 0), when requested.
    rii_lower, rii_upper : float or None, default None
        Limits of the RII at the first level.
    rii_ci : dict of float to tuple of float or None, default None
        Level -> ``(lower, upper)`` of the RII.
    se : float or None, default None
        Standard error of the SII (sandwich, or SD of bootstrap replicates / simulation draws).
    n_quantiles : int or None, default None
        Number of quantiles of a quantile-based SII.
    n_units : int or None, default None
        Number of units (e.g. practices) used.
    reliability : dict of str to float or None, default None
        PHE reliability statistics (mean absolute differences of repeated limits, e.g.
        ``sii_mad95_0``), when requested.
    replicates : numpy.ndarray or None, default None
        Bootstrap replicates or simulated SIIs behind the interval.
    notes : tuple of str, default ()
        Notes on the computation (transform, interval method, dropped replicates, ...).
    meta : dict of str to object, default {}
        Further details of the estimator (e.g. BCa ``z0`` and acceleration).
    """

    sii: float
    sii_lower: float
    sii_upper: float
    confidence: tuple[float, ...]
    sii_ci: dict[float, tuple[float, float]]
    method: str
    value_type: str = "other"
    transform: bool = False
    intercept: float = float("nan")  # fitted value at rank 0 (natural scale)
    rii: float | None = None
    rii_lower: float | None = None
    rii_upper: float | None = None
    rii_ci: dict[float, tuple[float, float]] | None = None
    se: float | None = None  # standard error of the SII (sandwich, or SD of replicates/draws)
    n_quantiles: int | None = None
    n_units: int | None = None
    reliability: dict[str, float] | None = None  # PHE mean absolute differences (sii_mad95_0 ...)
    replicates: np.ndarray | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Flat dict (one key per limit and level) for tables."""
        out: dict[str, Any] = {"sii": self.sii, "lower": self.sii_lower, "upper": self.sii_upper}
        for level, (lo, hi) in self.sii_ci.items():
            tag = level_tag(level)
            out[f"sii_lower{tag}"], out[f"sii_upper{tag}"] = lo, hi
        if self.rii is not None:
            out["rii"] = self.rii
            for level, (lo, hi) in (self.rii_ci or {}).items():
                tag = level_tag(level)
                out[f"rii_lower{tag}"], out[f"rii_upper{tag}"] = lo, hi
        out.update(
            se=self.se, method=self.method, n_quantiles=self.n_quantiles, n_units=self.n_units
        )
        return out


def level_tag(level: float) -> str:
    """PHE-style column suffix: 0.95 -> '95_0', 0.998 -> '99_8'."""
    return f"{level * 100:.1f}".replace(".", "_")


def parse_confidence(confidence: float | Sequence[float], *, low: float = 0.9) -> tuple[float, ...]:
    """Confidence levels as fractions; accepts PHE's [0.9, 1) or [90, 100) forms, or a list."""
    levels: list[float] = (
        [float(confidence)] if isinstance(confidence, int | float) else list(confidence)
    )
    if not levels:
        raise SIIInputError("confidence must contain at least one level")
    out = []
    for c in levels:
        c = float(c)
        if c >= low * 100 and c < 100:
            c /= 100.0
        if not (low <= c < 1):
            raise SIIInputError(
                f"confidence levels must lie in [{low}, 1) or [{low * 100:g}, 100); got {c}"
            )
        out.append(c)
    return tuple(out)


def link(x: np.ndarray, value_type: str) -> np.ndarray:
    """log for rates, logit for proportions, identity otherwise."""
    if value_type == "rate":
        return np.log(x)
    if value_type == "proportion":
        return np.log(x / (1.0 - x))
    return x


def inverse_link(x: np.ndarray, value_type: str) -> np.ndarray:
    """Inverse of :func:`link` (exp / expit / identity)."""
    if value_type == "rate":
        return np.exp(x)
    if value_type == "proportion":
        return 1.0 / (1.0 + np.exp(-x))
    return x


def check_value_type(value_type: str, transform: bool) -> None:
    if value_type not in VALUE_TYPES:
        raise SIIInputError(f"value_type must be one of {VALUE_TYPES}; got {value_type!r}")
    if transform and value_type == "other":
        raise SIIInputError("transform=True needs value_type 'rate' (log) or 'proportion' (logit)")


def check_values(
    values: np.ndarray, value_type: str, *, name: str = "values", linked: bool = False
) -> None:
    """Finite values in the indicator's range; ``linked`` also requires the log/logit to exist."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise SIIInputError(
            f"{name} has missing/non-finite entries at positions {bad[:10].tolist()}"
        )
    if value_type == "rate":
        bad = np.flatnonzero(values <= 0 if linked else values < 0)
        if bad.size:
            rule = "> 0 (log transform)" if linked else ">= 0"
            raise SIIInputError(f"rate {name} must be {rule}; bad positions {bad[:10].tolist()}")
    elif value_type == "proportion":
        bad = np.flatnonzero((values < 0) | (values > 1))
        if bad.size:
            raise SIIInputError(
                f"proportion {name} must lie in [0, 1]; bad positions {bad[:10].tolist()}"
            )
        if linked:
            bad = np.flatnonzero((values <= 0) | (values >= 1))
            if bad.size:
                raise SIIInputError(
                    f"proportion {name} equal to 0 or 1 cannot be logit-transformed; positions "
                    f"{bad[:10].tolist()}"
                )


def check_weights(weights: np.ndarray, *, name: str = "populations") -> None:
    bad = np.flatnonzero(~np.isfinite(weights) | (weights <= 0))
    if bad.size:
        raise SIIInputError(
            f"{name} must be positive and non-missing; bad positions {bad[:10].tolist()}"
        )


def weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares intercept and slope of ``y`` on ``x`` along the last axis.

    Identical to PHE's ``lm(sqrt(a) * y ~ sqrt(a) + sqrt(a) * b - 1)`` with ``a = w / sum(w)``.
    Broadcasts over leading axes (replicates).
    """
    w = np.asarray(w, dtype=float)
    sw = w.sum(axis=-1, keepdims=True)
    xbar = (w * x).sum(axis=-1, keepdims=True) / sw
    ybar = (w * y).sum(axis=-1, keepdims=True) / sw
    dx = x - xbar
    slope = (w * dx * (y - ybar)).sum(axis=-1) / (w * dx * dx).sum(axis=-1)
    intercept = ybar[..., 0] - slope * xbar[..., 0]
    return intercept, slope


def back_transformed_sii(
    intercept: np.ndarray, slope: np.ndarray, value_type: str, transform: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SII, RII, fitted value at rank 0) on the natural scale from a fitted line."""
    if transform:
        y0 = inverse_link(intercept, value_type)
        y1 = inverse_link(intercept + slope, value_type)
        return y1 - y0, y1 / y0, y0
    return slope, (intercept + slope) / intercept, intercept


def interval_from_draws(draws: np.ndarray, level: float) -> tuple[float, float]:
    """PHE order-statistic limits: the round(n*(1-c'))-th and round(n*c')-th sorted draws.

    ``c' = level + (1 - level) / 2``; positions are 1-based as in PHE ``SimulationFunc``.
    """
    n = draws.shape[-1]
    upper_q = level + (1.0 - level) / 2.0
    pos_lower = max(round(n * (1.0 - upper_q)), 1)
    pos_upper = min(round(n * upper_q), n)
    srt = np.sort(draws, axis=-1)
    return float(srt[..., pos_lower - 1]), float(srt[..., pos_upper - 1])


def quantile_of_rank(rank: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Quantile index 1..n (1 = most deprived) of relative ranks in (0, 1): ``floor(rank*n) + 1``.

    With equal weights and ``N`` divisible by ``n`` this gives equal-count groups; with population
    weights it gives (approximately) equal-population groups.  Tied scores share a rank and hence
    a quantile.
    """
    rank = np.asarray(rank, dtype=float)
    return np.minimum(np.floor(rank * n_quantiles).astype(int), n_quantiles - 1) + 1


def column_array(df: Any, col: str, *, source: str = "data") -> np.ndarray:
    """Float values of ``df[col]``; a clear error naming the column and the first bad rows."""
    if col not in df.columns:
        raise SIIInputError(f"{source}: column {col!r} not found (have {list(df.columns)[:20]})")
    try:
        arr = df[col].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise SIIInputError(f"{source}: column {col!r} is not numeric") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = df.index[bad][:10].tolist()
        raise SIIInputError(
            f"{source}: column {col!r} has {int(bad.sum())} missing/non-finite values "
            f"(rows {rows}); drop them first (sii_table counts and reports such rows)"
        )
    return arr
