"""The typed estimator specification shared by every estimator: a :class:`Design` and an
:class:`Inference`.

Every estimator is called as ``fit_x(panel, outcome, design, inference, **options)``, where
``design`` says *what is compared* (treated group, comparators, start of treatment, the panel's
unit / group / time columns, the rank, covariates, weights), ``inference`` says *how it is
estimated and summarised* (backend, sampler settings, prior overrides, ROPE, HDI probability) and
``options`` are the few switches specific to that estimator.

Prior scale convention (every estimator): ``Inference.priors`` overrides the estimator's prior
dataclass, and every scale is on the *standardised* outcome (outcome SD = 1; the logit scale for
binomial families).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from hepcausal import schema
from hepcausal.sampling import SamplerSettings

Backend = Literal["pymc", "stan"]
RopeSpec = float | tuple[float, float] | Literal["auto"] | None

BACKENDS: tuple[str, ...] = ("pymc", "stan")


class SpecError(ValueError):
    """An invalid :class:`Design` or :class:`Inference` (the message names the field)."""


class DesignError(SpecError):
    """The panel or the requested comparison cannot be analysed (message names the problem)."""


@dataclass(frozen=True)
class Design:
    """What is compared: the treated group against comparators from a start year on.

    Parameters
    ----------
    treated : str
        Code of the treated group (default LLR, ``schema.LLR_ICB``).
    comparators : tuple of str or "all"
        Comparator group codes, or ``"all"`` for every other group of the panel (default the
        10 ICBs of the published evaluation).
    start_year : int
        First treated period (fiscal-year end; default ``schema.HEP_START_YEAR``).
    unit_col, group_col, time_col : str
        Panel columns of the unit (practice), group (ICB) and time (year).
    treat_col : str or None
        Optional 0/1 treatment column replacing ``treated group x (time >= start_year)``.
    rank_col : str or None
        Relative rank in [0, 1] of the gradient estimands (default ``deprivation_rank``); None
        for level-only estimators.
    covariates : tuple of str
        Columns adjusted for (standardised before fitting).
    pool : "all" or tuple of str
        Groups outside the comparison that inform only the *spread* of group-level changes in
        the pre/post error model of the DiD and DDD (``"all"``: every other group of the panel;
        default ``()``: none).  Their mean change gets its own parameter, so the estimand stays
        "treated minus comparators".  On the realistic synthetic scenario the pool did not
        improve calibration and costs ~4x the fit time (docs/ERROR_MODEL.md).  Row-level models
        and the other estimators leave the pool out.
    exclude : tuple of str
        Groups never in the pool (e.g. the real treated ICB in placebo fits).
    weights : str or None
        Column of analysis weights: None (default) gives practice-average estimands,
        ``"list_size"`` population-weighted ones (the PHE population-weighted SII).  The panel
        estimators (DiD, DDD, event study, dose) and the gradient model (families whose practice
        effects are integrated out) support weights; every output names its estimand in
        ``meta["estimand"]``; other estimators raise
        :class:`~hepcausal.causal.design.DesignError`.
    """

    treated: str = schema.LLR_ICB
    comparators: tuple[str, ...] | Literal["all"] = schema.PUBLISHED_COMPARATORS
    start_year: int = schema.HEP_START_YEAR
    unit_col: str = schema.PRACTICE
    group_col: str = schema.ICB
    time_col: str = schema.YEAR
    treat_col: str | None = None
    rank_col: str | None = schema.DEPRIVATION_RANK
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    pool: tuple[str, ...] | Literal["all"] = ()
    exclude: tuple[str, ...] = ()

    def _group_list(self, name: str, value: Any) -> tuple[str, ...] | Literal["all"]:
        """``"all"`` or a tuple of group codes without the treated group (else DesignError)."""
        if isinstance(value, str):
            if value != "all":
                raise DesignError(
                    f"Design.{name} must be 'all' or a sequence of group codes, got {value!r}"
                )
            return "all"
        codes = tuple(str(c) for c in value)
        if self.treated in codes:
            raise DesignError(f"Design.{name} contains the treated group {self.treated!r}")
        return codes

    def __post_init__(self) -> None:
        for name in ("treated", "unit_col", "group_col", "time_col"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise DesignError(f"Design.{name} must be a non-empty string, got {value!r}")
        comps = self._group_list("comparators", self.comparators)
        if not comps:
            raise DesignError("Design.comparators is empty: give group codes or 'all'")
        object.__setattr__(self, "comparators", comps)
        object.__setattr__(self, "covariates", tuple(str(c) for c in self.covariates))
        object.__setattr__(self, "pool", self._group_list("pool", self.pool))
        object.__setattr__(self, "exclude", tuple(str(c) for c in self.exclude))
        for name in ("treat_col", "rank_col", "weights"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise DesignError(f"Design.{name} must be a column name or None, got {value!r}")

    @property
    def comparator_list(self) -> list[str] | Literal["all"]:
        """The comparators as a list (or ``"all"``)."""
        return "all" if self.comparators == "all" else list(self.comparators)

    def with_(self, **changes: Any) -> Design:
        """A copy with some fields changed (validated again).

        Parameters
        ----------
        **changes
            Field names and their new values.

        Returns
        -------
        Design
            The new design.
        """
        return replace(self, **changes)


@dataclass(frozen=True)
class Inference:
    """How an estimator is fitted and summarised.

    Parameters
    ----------
    backend : {"pymc", "stan"}
        Sampling backend.
    settings : SamplerSettings
        MCMC settings (draws, tune, chains, seed, ...).
    priors : dict or None
        Overrides of the estimator's prior dataclass (scales on the standardised outcome);
        None for the defaults.
    rope : float, (low, high), "auto" or None
        Region of practical equivalence: a half-width, an interval, ``"auto"`` (the estimator's
        default, 0.1 outcome SD for the panel estimators) or None (no ROPE).
    hdi_prob : float
        Probability mass of the reported highest-density intervals, in (0, 1).
    """

    backend: Backend = "pymc"
    settings: SamplerSettings = field(default_factory=SamplerSettings)
    priors: Mapping[str, float] | None = None
    rope: RopeSpec = "auto"
    hdi_prob: float = 0.95

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SpecError(f"Inference.backend must be one of {BACKENDS}, got {self.backend!r}")
        if not isinstance(self.settings, SamplerSettings):
            raise SpecError(
                f"Inference.settings must be a SamplerSettings, got {type(self.settings).__name__}"
            )
        if not 0 < self.hdi_prob < 1:
            raise SpecError(f"Inference.hdi_prob must be in (0, 1), got {self.hdi_prob}")
        if self.priors is not None:
            if not isinstance(self.priors, Mapping):
                raise SpecError(
                    f"Inference.priors must be a dict of overrides or None, got {self.priors!r}"
                )
            object.__setattr__(self, "priors", dict(self.priors))
        object.__setattr__(self, "rope", _check_rope(self.rope))


ESTIMATOR_PARAMETERS = """\
panel : pandas.DataFrame
    Long panel, one row per unit (practice) and time (year).
outcome : str
    Outcome column.
design : Design, optional
    What is compared: treated group, comparators, start year, columns, rank, covariates
    (default ``Design()``: LLR against the 10 published comparators from 2022).
inference : Inference, optional
    How it is fitted and summarised: backend, sampler settings, prior overrides (scales on the
    standardised outcome), ROPE and HDI probability (default ``Inference()``)."""
"""The Parameters entries shared by every estimator (see :func:`estimator_parameters`)."""

_MARKER = "{estimator parameters}"
F = TypeVar("F", bound=Callable[..., Any])


def estimator_parameters(func: F) -> F:
    """Decorator: put :data:`ESTIMATOR_PARAMETERS` where the docstring has the line
    ``{estimator parameters}`` (one wording of the shared parameters for every estimator).

    Parameters
    ----------
    func : callable
        An estimator whose docstring's Parameters section holds the marker line.

    Returns
    -------
    callable
        The same function, docstring completed.
    """
    out: list[str] = []
    for line in (func.__doc__ or "").splitlines():
        if line.strip() == _MARKER:
            pad = line[: len(line) - len(line.lstrip())]
            out.extend(pad + text if text else text for text in ESTIMATOR_PARAMETERS.splitlines())
        else:
            out.append(line)
    func.__doc__ = "\n".join(out)
    return func


def _check_rope(rope: Any) -> RopeSpec:
    if rope is None:
        return None
    if isinstance(rope, str):
        if rope != "auto":
            raise SpecError(
                f"Inference.rope must be a number, (low, high), 'auto' or None; got {rope!r}"
            )
        return "auto"
    if isinstance(rope, bool):
        raise SpecError(f"Inference.rope must be a number, (low, high), 'auto' or None; got {rope}")
    if isinstance(rope, int | float):
        if not rope > 0:
            raise SpecError(f"Inference.rope half-width must be > 0, got {rope}")
        return float(rope)
    try:
        lo, hi = (float(v) for v in rope)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"Inference.rope must be a number, (low, high), 'auto' or None; got {rope!r}"
        ) from exc
    if lo > hi:
        raise SpecError(f"Inference.rope must be (low, high) with low <= high, got {rope!r}")
    return (lo, hi)


__all__ = [
    "BACKENDS",
    "ESTIMATOR_PARAMETERS",
    "Backend",
    "Design",
    "DesignError",
    "Inference",
    "RopeSpec",
    "SpecError",
    "estimator_parameters",
]
