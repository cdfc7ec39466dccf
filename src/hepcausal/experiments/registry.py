"""Estimator registry: the closed table of a config's ``estimator.name`` -> estimator entry.

Every estimator is called as ``fit(panel, outcome, design, inference, **options)`` with a
:class:`~hepcausal.spec.Design` and an :class:`~hepcausal.spec.Inference` built from the config,
and returns a :class:`hepcausal.results.FitResult`.  Each :class:`EstimatorEntry` declares

* ``options``: a pydantic model of the estimator-specific ``[estimator]`` keys (types checked,
  unknown keys named);
* ``uses``: which :class:`~hepcausal.spec.Design` / :class:`~hepcausal.spec.Inference` fields it
  reads (a config key the estimator does not use is an error naming the key);
* ``priors``: its prior names and the validator of ``[priors]`` overrides;
* ``backends``: the sampling backends it supports.

Priors follow one convention for every estimator: each ``[priors]`` key overrides a field of the
estimator's prior dataclass and is a scale on the *standardised* outcome (outcome SD = 1; the
logit scale for binomial families).

The table is closed: there is no import of arbitrary ``module:function`` paths (a config cannot
make hepcausal import or run code), and an unknown name is an error listing the valid names and
the nearest one.  Optional plug-ins come only from *installed* distributions that declare an
entry point in the group :data:`ENTRY_POINT_GROUP` (``hepcausal.estimators``), whose name is the
estimator name and whose object is an :class:`EstimatorEntry` (or a callable returning one),
e.g. in the plug-in's ``pyproject.toml``::

    [project.entry-points."hepcausal.estimators"]
    my_did = "my_package.estimators:MY_DID_ENTRY"

A plug-in is loaded only when a config names it; a name that is neither shipped nor installed
is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from hepcausal import schema
from hepcausal.models.priors import Priors

EstimatorFn = Callable[..., Any]

# Design / Inference fields an entry may use (the config maps its keys onto these).
DESIGN_FIELDS = ("treated", "comparators", "start_year", "rank_col", "covariates", "weights")
INFERENCE_FIELDS = ("rope", "hdi_prob")


class UnknownEstimatorError(KeyError):
    """An ``estimator.name`` that is not in the registry (the message lists the valid names)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PriorError(ValueError):
    """Invalid ``[priors]`` overrides; ``key`` is the offending prior name (None: several)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


# ---------------------------------------------------------------------------- options


class ReplicationOptions(BaseModel):
    """Options of :func:`hepcausal.inequality.replication.fit_replication` (published SII)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    fix_year: int = 2022
    n_quantiles: int = 5
    min_per_quantile: int = 5
    n_boot: int = 1000
    seed: int = 20211
    payment_validity: bool = True


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DidOptions(_Options):
    """Options of :func:`hepcausal.causal.did.fit_did`."""

    icb_year_effects: bool = True
    group_trends: bool = False
    error_model: Literal["prepost", "rows"] = "prepost"
    ics_scales: bool = True
    family: Literal["gaussian", "student_t"] = "student_t"
    marginalise: bool = True
    placebo: bool = False


class DddOptions(DidOptions):
    """Options of :func:`hepcausal.causal.did.fit_ddd` (the same as the DiD's)."""


class EventStudyOptions(_Options):
    """Options of :func:`hepcausal.causal.event_study.fit_event_study`."""

    target: Literal["gradient", "level"] = "gradient"
    reference_year: int | None = None
    icb_year_effects: bool = True
    ics_scales: bool = False
    family: Literal["gaussian", "student_t"] = "gaussian"
    marginalise: bool = True
    placebo: bool = False


class DoseOptions(_Options):
    """Options of :func:`hepcausal.causal.dose.fit_dose_response`."""

    dose_col: str = schema.HEP_DOSE
    icb_year_effects: bool = True
    marginalise: bool = True


class GradientOptions(_Options):
    """Options of :func:`hepcausal.models.gradient.fit_gradient` (via the adapter)."""

    likelihood: str = "auto"
    years: list[int] | None = None
    marginalise: bool = True
    centring: dict[str, bool] | str | None = "auto"
    standardise: list[float] | None = None
    treated_term: bool = True


class SyntheticControlOptions(_Options):
    """Options of the synthetic-control adapter (:func:`adapters.synthetic_control`)."""

    series: Literal["sii", "mean", "sii_posterior"] = "sii"
    sii_method: Literal["unit", "phe", "quintile_bootstrap"] = "unit"
    method: Literal["bayesian_bootstrap", "dirichlet", "horseshoe"] = "bayesian_bootstrap"
    intercept: bool = False
    predictors: list[Literal["list_size", "deprivation", "staffing_mix"]] | None = None
    outcome_lags: list[int] | None = None


class SdidOptions(_Options):
    """Options of the synthetic-DiD adapter (:func:`adapters.sdid`)."""

    series: Literal["sii", "mean"] = "sii"
    sii_method: Literal["unit", "phe", "quintile_bootstrap"] = "unit"
    variant: Literal["sdid", "sc", "did"] = "sdid"
    replications: int = 200


class FundingSiiOptions(_Options):
    """Options of :func:`hepcausal.inequality.funding_fits.fit_funding_sii`."""

    method: Literal["unit", "phe", "quintile_bootstrap"] = "unit"
    england: bool = True
    n_draws: int = 4000
    seed: int = 20211


class PcnRegressionOptions(_Options):
    """Options of :func:`hepcausal.inequality.funding_fits.fit_pcn_funding`."""

    model: Literal["bayesian", "classical"] = "bayesian"
    lines_recorded_only: bool = False
    centring: Literal["auto", "centred", "non_centred"] = "auto"


# ---------------------------------------------------------------------------- priors


@dataclass(frozen=True)
class PriorSpec:
    """The priors of an estimator: a :class:`hepcausal.models.priors.Priors` subclass.

    Every estimator's priors are scales on the standardised outcome (outcome SD = 1; the logit
    scale for binomial families): see :mod:`hepcausal.models.priors`.

    Parameters
    ----------
    load : callable
        ``load() -> type[Priors]``, imported on demand (the registry stays cheap to import).
    """

    load: Callable[[], type[Priors]]

    def names(self) -> list[str]:
        """The valid prior keys."""
        return [f.name for f in dataclasses.fields(self.load())]  # type: ignore[arg-type]

    def validate(self, priors: Mapping[str, Any]) -> object:
        """The validated priors; ``ValueError`` naming an unknown key or a bad value."""
        return self.load().from_any(dict(priors))


def _panel_priors() -> type[Priors]:
    from hepcausal.models.panel_effects import PanelPriors

    return PanelPriors


def _gradient_priors() -> type[Priors]:
    from hepcausal.models.gradient_data import GradientPriors

    return GradientPriors


def _sc_priors() -> type[Priors]:
    from hepcausal.models.synthetic_control import SyntheticControlPriors

    return SyntheticControlPriors


def _sdid_priors() -> type[Priors]:
    from hepcausal.causal.sdid import SdidPriors

    return SdidPriors


def _replication_priors() -> type[Priors]:
    from hepcausal.inequality.replication import ReplicationPriors

    return ReplicationPriors


def _funding_sii_priors() -> type[Priors]:
    from hepcausal.inequality.funding_fits import FundingSiiPriors

    return FundingSiiPriors


def _pcn_priors() -> type[Priors]:
    from hepcausal.inequality.funding import PcnPriors

    return PcnPriors


PANEL_PRIORS = PriorSpec(_panel_priors)
FUNDING_SII_PRIORS = PriorSpec(_funding_sii_priors)
PCN_PRIORS = PriorSpec(_pcn_priors)
SDID_PRIORS = PriorSpec(_sdid_priors)
REPLICATION_PRIORS = PriorSpec(_replication_priors)
GRADIENT_PRIORS = PriorSpec(_gradient_priors)
SYNTHETIC_CONTROL_PRIORS = PriorSpec(_sc_priors)


# ---------------------------------------------------------------------------- entries


def _fit_did() -> EstimatorFn:
    from hepcausal.causal.did import fit_did

    return fit_did


def _fit_ddd() -> EstimatorFn:
    from hepcausal.causal.did import fit_ddd

    return fit_ddd


def _fit_event_study() -> EstimatorFn:
    from hepcausal.causal.event_study import fit_event_study

    return fit_event_study


def _fit_dose_response() -> EstimatorFn:
    from hepcausal.causal.dose import fit_dose_response

    return fit_dose_response


def _fit_gradient() -> EstimatorFn:
    from hepcausal.experiments.adapters import gradient

    return gradient


def _fit_replication() -> EstimatorFn:
    from hepcausal.inequality.replication import fit_replication

    return fit_replication


def _fit_synthetic_control() -> EstimatorFn:
    from hepcausal.experiments.adapters import synthetic_control

    return synthetic_control


def _fit_sdid() -> EstimatorFn:
    from hepcausal.experiments.adapters import sdid

    return sdid


def _fit_funding_sii() -> EstimatorFn:
    from hepcausal.inequality.funding_fits import fit_funding_sii

    return fit_funding_sii


def _fit_pcn_funding() -> EstimatorFn:
    from hepcausal.inequality.funding_fits import fit_pcn_funding

    return fit_pcn_funding


_PANEL_USES = frozenset(
    {
        "treated",
        "comparators",
        "start_year",
        "rank_col",
        "covariates",
        "weights",
        "rope",
        "hdi_prob",
    }
)


def _static(fields: frozenset[str]) -> Callable[[BaseModel], frozenset[str]]:
    return lambda _options: fields


def _did_uses(options: BaseModel) -> frozenset[str]:
    assert isinstance(options, DidOptions)
    base = _PANEL_USES if isinstance(options, DddOptions) else _PANEL_USES - {"rank_col"}
    # only the pre/post model has a spread of ICB changes for the pool to inform
    return base | {"pool", "exclude"} if options.error_model == "prepost" else base


def _event_study_uses(options: BaseModel) -> frozenset[str]:
    assert isinstance(options, EventStudyOptions)
    return _PANEL_USES if options.target == "gradient" else _PANEL_USES - {"rank_col"}


def _gradient_uses(options: BaseModel) -> frozenset[str]:
    assert isinstance(options, GradientOptions)
    base = frozenset({"treated", "comparators", "rank_col", "weights"})
    return base | {"start_year"} if options.treated_term else base


def _synthetic_control_uses(options: BaseModel) -> frozenset[str]:
    assert isinstance(options, SyntheticControlOptions)
    base = frozenset({"treated", "comparators", "start_year", "rope", "hdi_prob"})
    if options.series == "sii_posterior":
        return base | {"rank_col", "weights"}
    return base | {"rank_col"} if options.series == "sii" else base


def _sdid_uses(options: BaseModel) -> frozenset[str]:
    assert isinstance(options, SdidOptions)
    base = frozenset({"treated", "comparators", "start_year", "rope", "hdi_prob"})
    return base | {"rank_col"} if options.series == "sii" else base


@dataclass(frozen=True)
class EstimatorEntry:
    """One registered estimator.

    Parameters
    ----------
    name : str
        The config's ``estimator.name``.
    load : callable
        ``load() -> fit``: imports the fitting function on first use (keeps the registry
        cheap to import); ``fit(panel, outcome, design, inference, **options)``.
    options : type
        Pydantic model of the estimator-specific options.
    uses : callable
        ``uses(options) -> frozenset`` of the Design / Inference fields the estimator reads,
        among :data:`DESIGN_FIELDS` and :data:`INFERENCE_FIELDS` (backend, sampler settings and
        priors are always used).
    priors : PriorSpec
        Names and validator of the estimator's priors.
    backends : tuple of str
        Supported sampling backends.
    """

    name: str
    load: Callable[[], EstimatorFn]
    options: type[BaseModel]
    uses: Callable[[BaseModel], frozenset[str]]
    priors: PriorSpec
    backends: tuple[str, ...] = ("pymc", "stan")

    @property
    def function(self) -> EstimatorFn:
        """The fitting function."""
        return self.load()

    def parse_options(self, options: Mapping[str, Any]) -> BaseModel:
        """Validate the estimator-specific options.

        Parameters
        ----------
        options : mapping
            The ``[estimator]`` keys other than ``name`` and ``backend``.

        Returns
        -------
        pydantic.BaseModel
            The validated options (an instance of ``self.options``).

        Raises
        ------
        pydantic.ValidationError
            Naming unknown keys and values of the wrong type.
        """
        return self.options.model_validate(dict(options))

    def validate_priors(self, priors: Mapping[str, Any]) -> None:
        """Check ``[priors]`` overrides against the estimator's prior class.

        Parameters
        ----------
        priors : mapping
            Prior name -> scale (standardised outcome scale).

        Raises
        ------
        PriorError
            Naming the first unknown or invalid key (``.key``) and, for an unknown one, the
            nearest valid name.
        """
        names = self.priors.names()
        for key, value in priors.items():
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
                hint = f"; did you mean 'priors.{close[0]}'?" if close else ""
                raise PriorError(
                    f"unknown key 'priors.{key}': not a prior of estimator {self.name!r} "
                    f"(valid: {', '.join(names)}){hint}",
                    key,
                )
            try:
                self.priors.validate({key: value})
            except (ValueError, KeyError, TypeError) as exc:
                raise PriorError(f"'priors.{key}' = {value!r} is invalid: {exc}", key) from exc
        try:
            self.priors.validate(priors)
        except (ValueError, KeyError, TypeError) as exc:
            raise PriorError(f"invalid [priors] for estimator {self.name!r}: {exc}") from exc


ESTIMATORS: dict[str, EstimatorEntry] = {
    e.name: e
    for e in (
        EstimatorEntry(
            "gradient",
            _fit_gradient,
            GradientOptions,
            _gradient_uses,
            GRADIENT_PRIORS,
        ),
        EstimatorEntry(
            "did",
            _fit_did,
            DidOptions,
            _did_uses,
            PANEL_PRIORS,
        ),
        EstimatorEntry("ddd", _fit_ddd, DddOptions, _did_uses, PANEL_PRIORS),
        EstimatorEntry(
            "event_study", _fit_event_study, EventStudyOptions, _event_study_uses, PANEL_PRIORS
        ),
        EstimatorEntry(
            "dose_response", _fit_dose_response, DoseOptions, _static(_PANEL_USES), PANEL_PRIORS
        ),
        EstimatorEntry(
            "synthetic_control",
            _fit_synthetic_control,
            SyntheticControlOptions,
            _synthetic_control_uses,
            SYNTHETIC_CONTROL_PRIORS,
            backends=("pymc",),
        ),
        EstimatorEntry("sdid", _fit_sdid, SdidOptions, _sdid_uses, SDID_PRIORS, ("pymc",)),
        EstimatorEntry(
            "replication",
            _fit_replication,
            ReplicationOptions,
            _static(frozenset({"treated", "comparators", "start_year", "hdi_prob"})),
            REPLICATION_PRIORS,
        ),
        EstimatorEntry(
            "funding_sii",
            _fit_funding_sii,
            FundingSiiOptions,
            _static(
                frozenset(
                    {"treated", "comparators", "start_year", "rank_col", "weights", "hdi_prob"}
                )
            ),
            FUNDING_SII_PRIORS,
        ),
        EstimatorEntry(
            "pcn_regression",
            _fit_pcn_funding,
            PcnRegressionOptions,
            _static(frozenset({"hdi_prob"})),
            PCN_PRIORS,
            backends=("pymc",),
        ),
    )
}
"""The closed table of estimators (a config's ``estimator.name``)."""


ENTRY_POINT_GROUP = "hepcausal.estimators"
"""Entry-point group of installed estimator plug-ins."""


def _plugin_entry_points() -> dict[str, metadata.EntryPoint]:
    """The installed plug-in entry points (name -> entry point; nothing is imported)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load_plugin(ep: metadata.EntryPoint) -> EstimatorEntry:
    """Import an installed plug-in's entry and check it is a well-formed EstimatorEntry."""
    dist = getattr(ep, "dist", None)
    origin = f"entry point {ep.name!r} = {ep.value!r}" + (
        f" of the installed distribution {dist.name!r}" if dist is not None else ""
    )
    try:
        obj = ep.load()
    except Exception as exc:
        raise UnknownEstimatorError(
            f"estimator plug-in {origin} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    entry = obj if isinstance(obj, EstimatorEntry) else obj() if callable(obj) else obj
    if not isinstance(entry, EstimatorEntry):
        raise UnknownEstimatorError(
            f"estimator plug-in {origin} is a {type(entry).__name__}, not an EstimatorEntry"
        )
    if entry.name != ep.name:
        raise UnknownEstimatorError(
            f"estimator plug-in {origin} declares the name {entry.name!r}; they must agree"
        )
    return entry


def known_estimators() -> list[str]:
    """The registered estimator names (shipped, then installed plug-ins)."""
    return [*ESTIMATORS, *(n for n in sorted(_plugin_entry_points()) if n not in ESTIMATORS)]


def get_entry(name: str) -> EstimatorEntry:
    """The registry entry of an estimator name.

    Parameters
    ----------
    name : str
        A registered name (e.g. ``"ddd"``).

    Returns
    -------
    EstimatorEntry
        The entry.

    Raises
    ------
    UnknownEstimatorError
        For any other name (no import paths; installed plug-ins only through their entry
        points); the message lists the valid names and the nearest one.
    """
    if name in ESTIMATORS:
        return ESTIMATORS[name]
    plugin = _plugin_entry_points().get(name) if isinstance(name, str) else None
    if plugin is not None:
        return _load_plugin(plugin)
    close = difflib.get_close_matches(str(name), known_estimators(), n=1, cutoff=0.5)
    raise UnknownEstimatorError(
        f"unknown estimator {name!r}; valid: {known_estimators()}"
        + (f"; did you mean {close[0]!r}?" if close else "")
    )


def call_estimator(
    name: str, panel: Any, outcome: str, design: Any, inference: Any, options: Mapping[str, Any]
) -> Any:
    """Call a registered estimator.

    Parameters
    ----------
    name : str
        Registered estimator name.
    panel : pandas.DataFrame
        The panel.
    outcome : str
        Outcome column.
    design : Design
        The design.
    inference : Inference
        Backend, settings, priors, ROPE, HDI probability.
    options : mapping
        Estimator-specific options (validated against the entry's options model; only these
        keys are passed, so the function's own defaults apply to the others).

    Returns
    -------
    FitResult
        What the estimator returns.
    """
    entry = get_entry(name)
    entry.parse_options(options)
    if inference.backend not in entry.backends:
        raise ValueError(
            f"estimator {name!r} has no {inference.backend!r} backend (backends: "
            f"{', '.join(entry.backends)})"
        )
    return entry.function(panel, outcome, design, inference, **dict(options))


__all__ = [
    "DESIGN_FIELDS",
    "ENTRY_POINT_GROUP",
    "ESTIMATORS",
    "INFERENCE_FIELDS",
    "EstimatorEntry",
    "PriorError",
    "PriorSpec",
    "UnknownEstimatorError",
    "ValidationError",
    "call_estimator",
    "get_entry",
    "known_estimators",
]
