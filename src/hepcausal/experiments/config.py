"""Typed experiment configuration, loaded from TOML and validated by pydantic models.

A config file has the sections ``[data]`` (with ``[data.synthetic]`` and ``[data.inclusion]``),
``[analysis]``, ``[estimator]``, ``[priors]``, ``[sampler]``, ``[summary]`` and ``[sweep]``, each
declared once below as a pydantic model with ``extra="forbid"``.  Every key is checked: an
unknown or misspelt key is an error naming the file and the full dotted key, with the nearest
valid key suggested; a wrong type or invalid value names the key too.

The estimator (``estimator.name``, a name of the closed registry
:data:`hepcausal.experiments.registry.ESTIMATORS`) decides which keys mean something: its
options are checked against its options model, ``[priors]`` against its prior class (scales on
the standardised outcome), and an ``[analysis]`` or ``[summary]`` key set in the file that the
estimator does not use is an error naming the key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from hepcausal import schema
from hepcausal.outcomes import UnknownOutcomeError, get_outcome, outcome_names
from hepcausal.sampling import SamplerSettings

NHS_DATA_ENV = "HEPCAUSAL_NHS_DATA"

RANK_COLUMNS: dict[str, str] = {
    "deprivation": schema.DEPRIVATION_RANK,
    "need": schema.NEED_RANK,
    "deprivation_national": "deprivation_rank_national",  # inequality.ranks.NATIONAL_RANK
}
DATA_SOURCES = ("synthetic", "nhs", "file")
SWEEP_MODES = ("grid", "one_at_a_time", "leave_one_out", "placebo")
SYNTHETIC_PRESETS = ("small", "national", "published_design")
TOP_LEVEL_KEYS = (
    "name",
    "description",
    "data",
    "analysis",
    "estimator",
    "priors",
    "sampler",
    "summary",
    "sweep",
)
# keys that do not change a run's numbers (excluded from the content hash)
_UNHASHED = ("name", "description", "sweep")
_UNHASHED_DATA = ("data_dir", "path", "gpps_dir")  # locations: the content enters the fingerprint

# config key -> the Design / Inference field it sets (see registry.EstimatorEntry.uses)
USE_OF_KEY: dict[str, str] = {
    "analysis.treated_icb": "treated",
    "analysis.comparators": "comparators",
    "analysis.start_year": "start_year",
    "analysis.rank": "rank_col",
    "analysis.covariates": "covariates",
    "analysis.weights": "weights",
    "analysis.pool": "pool",
    "analysis.exclude": "exclude",
    "summary.rope": "rope",
    "summary.hdi_prob": "hdi_prob",
}


MAX_DRAWS = 1_000_000
"""Largest ``sampler.draws`` (per chain)."""
MAX_TUNE = 1_000_000
"""Largest ``sampler.tune`` (per chain)."""
MAX_CHAINS = 64
"""Largest ``sampler.chains``."""
MAX_NAME_LENGTH = 200
"""Longest run name (a run folder is ``<name>-<hash12>``, within the 255-byte file-name limit)."""


def _icb_codes(v: Any, words: tuple[str, ...], *, non_empty: bool) -> Any:
    """A config value that is one of ``words`` or a list of ICB code strings (as a tuple)."""
    options = ", ".join(repr(w) for w in words)
    if isinstance(v, str):
        if v not in words:
            raise ValueError(f"must be {options} or a list of ICB codes, got {v!r}")
        return v
    if isinstance(v, list | tuple) and (v or not non_empty) and all(isinstance(c, str) for c in v):
        return tuple(v)
    kind = "non-empty list" if non_empty else "list"
    raise ValueError(f"must be {options} or a {kind} of ICB code strings, got {v!r}")


class ConfigError(ValueError):
    """An invalid experiment configuration; the message names the file and the dotted key."""


class _KeyedError(ValueError):
    """A validator error about a sub-key (``key`` is appended to the location); with ``valid``
    it is an unknown key and the message suggests the nearest of ``valid``."""

    def __init__(self, message: str, key: str, valid: Iterable[str] | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.valid = None if valid is None else list(valid)


def check_run_name(name: str) -> None:
    """Error unless ``name`` can name a run folder (``<name>-<hash12>``) inside the output folder.

    Parameters
    ----------
    name : str
        The run (or sweep) name.

    Raises
    ------
    ValueError
        For an empty name, ``.``/``..`` or a leading dot (hidden folders are the store's
        temporary folders), a slash or backslash, a NUL or other control character, or more than
        :data:`MAX_NAME_LENGTH` characters (bytes in UTF-8).
    """
    if not name:
        raise ValueError("must be a non-empty string")
    if name.startswith("."):
        raise ValueError(f"must not start with '.' (got {name!r}): it would escape or hide the run")
    bad = sorted({c for c in name if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise ValueError(
            f"must not contain slashes, NUL or other control characters, got {name!r} "
            f"(characters {', '.join(repr(c) for c in bad)})"
        )
    if len(name.encode()) > MAX_NAME_LENGTH:
        raise ValueError(
            f"must be at most {MAX_NAME_LENGTH} bytes long (a run folder name is limited to 255), "
            f"got {len(name.encode())}: {name[:40]!r}..."
        )


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def suggest(key: str, valid: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the nearest valid key, or the valid keys when nothing is close.

    Parameters
    ----------
    key : str
        The dotted key as written.
    valid : iterable of str
        The valid leaf names at that level.

    Returns
    -------
    str
        The suggestion text ('' when there are no valid keys).
    """
    valid = list(valid)
    leaf = key.rsplit(".", 1)[-1]
    match = difflib.get_close_matches(leaf, valid, n=1, cutoff=0.5)
    if not match:
        return f"; valid keys: {', '.join(sorted(valid))}" if valid else ""
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    return f"; did you mean '{prefix}{match[0]}'?"


def _unknown(dotted: str, valid: Iterable[str], source: str) -> ConfigError:
    return ConfigError(f"{_where(source)}unknown key '{dotted}'{suggest(dotted, valid)}")


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _relative_to(path: str | None, source: str) -> str | None:
    """A relative path in a config file is relative to the file's folder when it exists there."""
    if path is None or Path(path).expanduser().is_absolute() or not source:
        return path
    cand = Path(source).parent / path
    return str(cand) if cand.exists() else path


# ---------------------------------------------------------------------------- free tables


def _simulation_factory(preset: str = "national", **kw: Any) -> Any:
    """Build a SimulationConfig from a preset: ``'small'`` (fast), ``'published_design'`` (LLR and
    the 10 published comparators) or ``'national'`` (the default)."""
    from hepcausal.data.synthetic import SimulationConfig

    if preset not in SYNTHETIC_PRESETS:
        raise ValueError(f"'preset' must be one of {SYNTHETIC_PRESETS}, got {preset!r}")
    if preset == "small":
        return SimulationConfig.small(**kw)
    if preset == "published_design":
        return SimulationConfig.published_design(**kw)
    return SimulationConfig(**kw)


def _field_type(f: dataclasses.Field[Any]) -> Any:
    """The checked type of a dataclass field, from its default (compound values: unchecked)."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return Any
    for t in (bool, float, int, str):  # bool first: it is an int subclass
        if isinstance(default, t):
            return t
    return Any


@cache
def _table_model(kind: Literal["synthetic", "inclusion"]) -> type[BaseModel]:
    """A pydantic model of ``[data.synthetic]`` (SimulationConfig fields + ``preset``) or
    ``[data.inclusion]`` (InclusionRules fields)."""
    fields: dict[str, Any] = {}
    if kind == "synthetic":
        from hepcausal.data.synthetic import SimulationConfig as cls

        fields["preset"] = (Literal["small", "national"], "national")
    else:
        from hepcausal.data.inclusion import InclusionRules as cls  # type: ignore[assignment]
    for f in dataclasses.fields(cls):
        fields[f.name] = (_field_type(f), None)
    return create_model(
        f"{kind.title()}Table",
        __config__=ConfigDict(extra="forbid", strict=True),
        **fields,
    )


def _validate_table(value: Any, kind: Literal["synthetic", "inclusion"]) -> dict[str, Any]:
    """Check a free table against its dataclass and build the object to validate the values."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table, got {value!r}")
    if not value:
        return {}
    model = _table_model(kind)
    try:
        out = model.model_validate(dict(value)).model_dump(exclude_unset=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise _KeyedError("unknown key", key, model.model_fields) from None
        raise _KeyedError(f"{err['msg']}, got {err.get('input')!r}", key) from None
    kw = {k: _tuples(v) for k, v in out.items()}
    try:
        if kind == "synthetic":
            _simulation_factory(**kw).validate()
        else:
            from hepcausal.data.inclusion import InclusionRules

            InclusionRules(**kw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"invalid [data.{kind}] settings: {exc}") from exc
    return out


# ---------------------------------------------------------------------------- value checks


def _one_of(*choices: str) -> AfterValidator:
    """Validator: the value is one of ``choices`` ("must be 'a', 'b' or 'c', got 'x'")."""
    words = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"

    def check(v: str) -> str:
        if v not in choices:
            raise ValueError(f"must be {words}, got {v!r}")
        return v

    return AfterValidator(check)


def _where_true(test: Callable[[Any], bool], requirement: str) -> AfterValidator:
    """Validator: ``test(value)`` holds ("<requirement>, got <value>")."""

    def check(v: Any) -> Any:
        if not test(v):
            raise ValueError(f"{requirement}, got {v!r}")
        return v

    return AfterValidator(check)


# ---------------------------------------------------------------------------- sections


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataConfig(_Section):
    """Where the panel comes from: the built-in simulator, the real NHS files or a panel file.

    Parameters
    ----------
    source : {"synthetic", "nhs", "file"}
        Data source.
    data_dir : str, optional
        Folder of NHS files (default: ``$HEPCAUSAL_NHS_DATA``).
    gpps_dir : str, optional
        Folder of GP Patient Survey files (needed for GPPS outcomes on NHS data).
    path : str, optional
        Panel file (csv/parquet) when ``source = 'file'``.
    synthetic : dict
        ``SimulationConfig`` fields (plus ``preset``) of the synthetic generator.
    inclusion : dict
        ``InclusionRules`` fields for the NHS panel.
    allow_list_size_fallback : bool
        NHS data: a panel year without a payments file takes its list sizes from the workforce
        file (counted in the inclusion table) instead of being an error.
    allow_missing_qof : bool
        NHS data: a panel year without a QOF file has QOF missing (counted in the inclusion
        table) instead of being an error.
    payment_validity : list of two floats, optional
        NHS data: ``[low, high]`` GBP per registered patient; practice-years whose total NHS
        payments per registered patient lie outside get their funding outcomes set missing
        (counted in the inclusion table; the published evaluation used ``[80, 550]``).
    """

    source: Annotated[str, _one_of(*DATA_SOURCES)] = "synthetic"
    data_dir: str | None = None
    gpps_dir: str | None = None
    path: str | None = None
    synthetic: dict[str, Any] = Field(default_factory=dict)
    inclusion: dict[str, Any] = Field(default_factory=dict)
    allow_list_size_fallback: bool = False
    allow_missing_qof: bool = False
    payment_validity: list[float] | None = None

    @field_validator("payment_validity")
    @classmethod
    def _validity(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not (len(v) == 2 and 0 <= v[0] < v[1]):
            raise ValueError(f"must be [low, high] GBP per registered patient, got {v}")
        return v

    @field_validator("data_dir", "gpps_dir", "path")
    @classmethod
    def _paths(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _relative_to(v, (info.context or {}).get("source", ""))

    @field_validator("synthetic", mode="before")
    @classmethod
    def _synthetic(cls, v: Any) -> dict[str, Any]:
        return _validate_table(v, "synthetic")

    @field_validator("inclusion", mode="before")
    @classmethod
    def _inclusion(cls, v: Any) -> dict[str, Any]:
        return _validate_table(v, "inclusion")

    @model_validator(mode="after")
    def _file_needs_path(self) -> DataConfig:
        if self.source == "file" and self.path is None:
            raise _KeyedError("is required when data.source = 'file'", "path")
        return self

    def resolved_data_dir(self) -> Path:
        """The NHS data folder (config value, else $HEPCAUSAL_NHS_DATA).

        Returns
        -------
        pathlib.Path
            The folder.

        Raises
        ------
        ConfigError
            When neither is set or the folder does not exist.
        """
        value = self.data_dir or os.environ.get(NHS_DATA_ENV)
        if not value:
            raise ConfigError(
                f"'data.data_dir' is not set and ${NHS_DATA_ENV} is empty: point one of them at "
                "the folder of NHS files"
            )
        path = Path(value).expanduser()
        if not path.is_dir():
            raise ConfigError(f"'data.data_dir': NHS data folder {path} does not exist")
        return path

    def resolved_gpps_dir(self) -> Path | None:
        """The GP Patient Survey folder, or None when ``data.gpps_dir`` is unset.

        Returns
        -------
        pathlib.Path or None
            The folder.

        Raises
        ------
        ConfigError
            When it is set but does not exist.
        """
        if self.gpps_dir is None:
            return None
        path = Path(self.gpps_dir).expanduser()
        if not path.is_dir():
            raise ConfigError(f"'data.gpps_dir': GPPS data folder {path} does not exist")
        return path

    def simulation_config(self) -> Any:
        """The ``SimulationConfig`` of the synthetic generator."""
        return _simulation_factory(**{k: _tuples(v) for k, v in self.synthetic.items()})

    def inclusion_rules(self) -> Any:
        """The ``InclusionRules`` for the NHS panel."""
        from hepcausal.data.inclusion import InclusionRules

        return InclusionRules(**{k: _tuples(v) for k, v in self.inclusion.items()})


class AnalysisConfig(_Section):
    """What is estimated: outcome, rank measure, treated ICB, start year, comparators.

    Parameters
    ----------
    outcome : str
        Outcome alias or panel column (resolved to the column).
    rank : {"deprivation", "need", "deprivation_national"}
        Rank measure of the gradient estimands (``deprivation``: IMD rank within ICB x year;
        ``deprivation_national``: IMD rank over all practices of the panel per year).
    primary_outcome : str, optional
        The declared primary outcome; runs of other outcomes are labelled secondary in sweep
        tables and forest plots.
    treated_icb : str
        Treated ICB code.
    start_year : int
        First treated fiscal-year end (2022 = FY2021/22).
    comparators : "published", "all" or list of str
        Comparator ICBs.
    pool : "all", "none" or list of str
        ICBs that inform only the spread of the ICBs' changes in the pre/post DiD / DDD
        (:attr:`hepcausal.spec.Design.pool`; ``"all"``: every other ICB of the panel; default
        ``"none"``).
    exclude : list of str
        ICBs never in the pool (placebo sweeps leave the real treated ICB out this way).
    covariates : list of str
        Panel columns adjusted for (panel estimators).
    weights : str, optional
        Analysis weights column (no estimator supports weights yet).
    """

    outcome: str = schema.GP_FTE
    rank: Annotated[str, _one_of(*RANK_COLUMNS)] = "deprivation"
    treated_icb: str = schema.LLR_ICB
    start_year: Annotated[
        int, _where_true(lambda v: 2000 < v < 2100, "must be a fiscal-year end such as 2022")
    ] = schema.HEP_START_YEAR
    comparators: str | tuple[str, ...] = "published"
    pool: str | tuple[str, ...] = "none"
    exclude: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    primary_outcome: str | None = None

    @property
    def outcome_role(self) -> str | None:
        """``"primary"`` or ``"secondary"`` when a primary outcome is declared, else None.

        Returns
        -------
        str or None
            Whether :attr:`outcome` is the declared :attr:`primary_outcome`.
        """
        if self.primary_outcome is None:
            return None
        return "primary" if self.outcome == self.primary_outcome else "secondary"

    @field_validator("outcome", "primary_outcome")
    @classmethod
    def _outcome(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            return get_outcome(v).column
        except UnknownOutcomeError as exc:
            raise ValueError(f"must be an outcome of the table: {exc}") from None

    @field_validator("comparators", mode="before")
    @classmethod
    def _comparators(cls, v: Any) -> Any:
        return _icb_codes(v, ("published", "all"), non_empty=True)

    @field_validator("pool", mode="before")
    @classmethod
    def _pool(cls, v: Any) -> Any:
        return _icb_codes(v, ("all", "none"), non_empty=False)

    @field_validator("covariates", "exclude", mode="before")
    @classmethod
    def _covariates(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    @model_validator(mode="after")
    def _treated_not_comparator(self) -> AnalysisConfig:
        if isinstance(self.comparators, tuple) and self.treated_icb in self.comparators:
            raise _KeyedError(
                f"must not contain the treated ICB {self.treated_icb!r}", "comparators"
            )
        if isinstance(self.pool, tuple) and self.treated_icb in self.pool:
            raise _KeyedError(f"must not contain the treated ICB {self.treated_icb!r}", "pool")
        return self

    @property
    def pool_design(self) -> tuple[str, ...] | str:
        """:attr:`pool` as :attr:`hepcausal.spec.Design.pool` (``"none"`` -> no groups)."""
        return () if self.pool == "none" else self.pool

    @property
    def rank_col(self) -> str:
        """Panel column of the relative rank (``deprivation_rank`` or ``need_rank``)."""
        return RANK_COLUMNS[self.rank]

    def comparator_codes(self, available: Iterable[str] | None = None) -> tuple[str, ...]:
        """ICB codes of the comparators.

        Parameters
        ----------
        available : iterable of str, optional
            ICB codes of the panel (needed for ``comparators = 'all'``).

        Returns
        -------
        tuple of str
            The comparator codes.
        """
        if self.comparators == "published":
            return tuple(schema.PUBLISHED_COMPARATORS)
        if self.comparators == "all":
            if available is None:
                raise ValueError("comparators = 'all' needs the ICB codes of the panel")
            return tuple(sorted({str(c) for c in available} - {self.treated_icb}))
        return tuple(self.comparators)


class EstimatorConfig(BaseModel):
    """Which estimator, which backend, and its estimator-specific options (the other keys).

    Parameters
    ----------
    name : str
        A registered estimator name.
    backend : {"pymc", "stan"}
        Sampling backend.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    name: str = "ddd"
    backend: Literal["pymc", "stan"] = "pymc"

    @property
    def options(self) -> dict[str, Any]:
        """The estimator-specific options (every key besides ``name`` and ``backend``)."""
        return dict(self.model_extra or {})

    def to_dict(self) -> dict[str, Any]:
        """``name``, ``backend`` and the options as one table."""
        return {"name": self.name, "backend": self.backend, **copy.deepcopy(self.options)}


class SamplerConfig(_Section):
    """MCMC settings (``hepcausal.sampling.SamplerSettings``; defaults from there).

    ``mass_matrix = 'auto'`` and an unset ``target_accept`` leave the choice to the estimator's
    model (:class:`~hepcausal.sampling.SamplerSettings`).  Upper bounds: ``draws`` and
    ``tune`` at most :data:`MAX_DRAWS` / :data:`MAX_TUNE`, ``chains`` at most
    :data:`MAX_CHAINS`, ``0 <= seed < 2**32``; the memory of the stored posterior is checked
    against the data by :func:`hepcausal.experiments.runner.preflight`.
    """

    draws: Annotated[int, Field(ge=1)] = SamplerSettings.draws
    tune: Annotated[int, Field(ge=0, le=MAX_TUNE)] = SamplerSettings.tune
    chains: Annotated[int, Field(ge=1, le=MAX_CHAINS)] = SamplerSettings.chains
    # unset: the model's choice (0.9, or 0.95 for the pre/post panel model)
    target_accept: (
        Annotated[float, _where_true(lambda v: 0.5 <= v < 1, "must be in [0.5, 1)")] | None
    ) = None
    seed: Annotated[int, Field(ge=0, lt=2**32)] = SamplerSettings.seed
    sampler: Annotated[str, _one_of("nutpie", "pymc", "numpyro")] = SamplerSettings.sampler
    mass_matrix: Annotated[str, _one_of("auto", "diag", "low_rank")] = "auto"
    # the sampler's progress bar; unset = on when stderr is a terminal (not hashed)
    progressbar: bool | None = None

    @model_validator(mode="after")
    def _draws_bounded(self) -> SamplerConfig:
        if self.draws > MAX_DRAWS:
            gb = self.draws * self.chains * 8 * 1000 / 1e9
            raise _KeyedError(
                f"= {self.draws:,} is above the upper bound of {MAX_DRAWS:,} draws per chain: "
                f"{self.draws:,} draws x {self.chains} chains would need about {gb:,.0f} GB of "
                "memory for every 1,000 stored parameters",
                "draws",
            )
        return self

    @model_validator(mode="after")
    def _low_rank_needs_nutpie(self) -> SamplerConfig:
        if self.mass_matrix == "low_rank" and self.sampler != "nutpie":
            raise _KeyedError("'low_rank' needs sampler = 'nutpie'", "mass_matrix")
        return self

    def settings(self, **extra: Any) -> SamplerSettings:
        """The :class:`SamplerSettings` (``extra``: further fields such as ``cores``)."""
        kw = self.model_dump()
        kw["mass_matrix"] = None if self.mass_matrix == "auto" else self.mass_matrix
        if kw["progressbar"] is None:
            kw["progressbar"] = sys.stderr.isatty()
        return SamplerSettings(**{**kw, **extra})


RopeValue = float | tuple[float, float] | str


def _parse_rope(rope: Any) -> RopeValue:
    if isinstance(rope, str):
        if rope not in ("auto", "none"):
            raise ValueError(f"must be a number, [low, high], 'auto' or 'none', got {rope!r}")
        return rope
    if isinstance(rope, list | tuple) and len(rope) == 2:
        if not all(isinstance(r, int | float) and not isinstance(r, bool) for r in rope):
            raise ValueError(f"must be a number or [low, high], got {rope!r}")
        lo, hi = float(rope[0]), float(rope[1])
        if lo > hi:
            raise ValueError("must be [low, high] with low <= high")
        return (lo, hi)
    if isinstance(rope, bool) or not isinstance(rope, int | float):
        raise ValueError(
            "must be a half-width number, a [low, high] pair or a table outcome -> rope, "
            f"got {type(rope).__name__} {rope!r}"
        )
    if not rope > 0:
        raise ValueError(f"half-width must be > 0, got {rope}")
    return float(rope)


class SummaryConfig(_Section):
    """How estimands are summarised: HDI probability and region of practical equivalence.

    Parameters
    ----------
    hdi_prob : float
        HDI probability, in (0, 1).
    rope : number, [low, high], "auto", "none", table outcome -> rope, or unset
        ROPE (outcome units); unset: the estimator's default; ``'none'``: no ROPE.
    """

    hdi_prob: Annotated[float, _where_true(lambda v: 0 < v < 1, "must be in (0, 1)")] = 0.95
    rope: RopeValue | dict[str, RopeValue] | None = None

    @field_validator("rope", mode="before")
    @classmethod
    def _rope(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, Mapping):
            return _parse_rope(v)
        per: dict[str, RopeValue] = {}
        for name, value in v.items():
            try:
                col = get_outcome(name).column
            except UnknownOutcomeError:
                raise _KeyedError("unknown key (not an outcome)", name, outcome_names()) from None
            try:
                per[col] = _parse_rope(value)
            except ValueError as exc:
                raise _KeyedError(str(exc), name) from None
        return per

    def rope_for(self, outcome: str) -> RopeValue | None:
        """The ROPE of an outcome (``rope`` may be a table outcome -> half-width/interval).

        Parameters
        ----------
        outcome : str
            Outcome column.

        Returns
        -------
        float, (low, high), "auto", "none" or None
            ``None`` means unset (the estimator's default applies).
        """
        if isinstance(self.rope, dict):
            return self.rope.get(outcome)
        return self.rope


def _flatten_grid(grid: Mapping[str, Any]) -> dict[str, Any]:
    """Allow both ``"analysis.rank" = [...]`` and nested ``[sweep.grid.analysis] rank = [...]``."""
    out: dict[str, Any] = {}
    for key, value in grid.items():
        if isinstance(value, Mapping) and key in TOP_LEVEL_KEYS and key != "priors":
            for sub, v in _flatten_grid(value).items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
    return out


class SweepConfig(_Section):
    """A sensitivity sweep: dotted keys -> lists of values.

    ``mode = 'grid'`` runs the Cartesian product; ``'one_at_a_time'`` varies each key alone
    from the base config (the base run included); ``'leave_one_out'`` does the same and then
    drops each base comparator in turn (run names ``...__comparators=without-QJ2``);
    ``'placebo'`` does the same and then refits the base config with each base comparator as
    pseudo-treated against the other comparators (the treated ICB left out; run names
    ``...__treated_icb=placebo-QJ2``), and the sweep writes the placebo calibration of the base
    run (``placebo_calibration.csv``: placebo z SD, rank, exact p-value, calibrated interval).
    ``grid`` may be empty (``grid = {}``) in the ``leave_one_out`` and ``placebo`` modes.
    ``labels`` optionally names the values of a key for readable run names (same length as its
    list).
    """

    grid: dict[str, list[Any]]
    mode: Annotated[str, _one_of(*SWEEP_MODES)] = "grid"
    labels: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("grid", mode="before")
    @classmethod
    def _grid(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            raise ValueError(
                "must be a non-empty table of dotted keys -> lists, "
                'e.g. "analysis.comparators" = ["published", "all"]'
            )
        out = _flatten_grid(v)
        for key, values in out.items():
            if key in ("name", "description"):
                raise _KeyedError(
                    "cannot be swept (the sweep names its runs itself; use sweep.labels)",
                    f'"{key}"',
                )
            if not isinstance(values, list) or not values:
                raise _KeyedError(f"must be a non-empty list of values, got {values!r}", f'"{key}"')
        return out

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            raise ValueError("must be a table")
        return _flatten_grid(v)

    @model_validator(mode="after")
    def _labels_match(self) -> SweepConfig:
        if not self.grid and self.mode not in ("leave_one_out", "placebo"):
            raise _KeyedError(
                "must be a non-empty table of dotted keys -> lists, "
                'e.g. "analysis.comparators" = ["published", "all"] (an empty grid only with '
                "mode = 'leave_one_out' or 'placebo')",
                '"grid"',
            )
        for key, lab in self.labels.items():
            if key not in self.grid:
                raise _KeyedError("unknown key (not in sweep.grid)", f'labels."{key}"', self.grid)
            if len(lab) != len(self.grid[key]):
                raise _KeyedError(
                    f"must be a list of {len(self.grid[key])} strings, one per grid value",
                    f'labels."{key}"',
                )
            for text in lab:
                try:
                    check_run_name(text)
                except ValueError as exc:  # a label is part of the run folder's name
                    raise _KeyedError(f"label {text!r} {exc}", f'labels."{key}"') from None
        return self


class Config(BaseModel):
    """A complete, validated experiment configuration (build it with :func:`config_from_dict`
    or :func:`load_config`).

    Unknown keys are errors and the model is frozen (use ``with_overrides`` for a changed copy).

    Attributes
    ----------
    name : str, default "experiment"
        Experiment name, non-empty and without slashes (part of the run directory's name).
    description : str, default ""
        Free text.
    data : DataConfig
        ``[data]``: where the panel comes from (synthetic, NHS files or a panel file).
    analysis : AnalysisConfig
        ``[analysis]``: outcome, treated ICS, years and the other design choices.
    estimator : EstimatorConfig
        ``[estimator]``: the registry entry's name and its options.
    priors : dict of str to object, default {}
        ``[priors]``: overrides of the estimator's priors (validated by its ``Priors`` class).
    sampler : SamplerConfig
        ``[sampler]``: backend and MCMC settings.
    summary : SummaryConfig
        ``[summary]``: HDI probability and ROPE of the effect summaries.
    sweep : SweepConfig or None, default None
        ``[sweep]``: the grid of a sensitivity sweep; None for a single run.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = "experiment"
    description: str = ""
    data: DataConfig = Field(default_factory=DataConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    priors: dict[str, Any] = Field(default_factory=dict)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    summary: SummaryConfig = Field(default_factory=SummaryConfig)
    sweep: SweepConfig | None = None
    _source: str = PrivateAttr(default="")
    _explicit: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        check_run_name(v)
        return v

    @property
    def source(self) -> str:
        """The file the config was loaded from ('' when built from a dict)."""
        return self._source

    def _unused(self) -> set[str]:
        """Dotted ``[analysis]`` / ``[summary]`` keys the estimator does not use."""
        from hepcausal.experiments.registry import get_entry

        entry = get_entry(self.estimator.name)
        uses = entry.uses(entry.parse_options(self.estimator.options))
        return {key for key, use in USE_OF_KEY.items() if use not in uses}

    @property
    def unused_keys(self) -> frozenset[str]:
        """The dotted ``[analysis]`` / ``[summary]`` keys the estimator does not use."""
        return frozenset(self._unused())

    @property
    def explicit_keys(self) -> frozenset[str]:
        """The dotted ``[analysis]`` / ``[summary]`` keys set in the file or dict (not defaults)."""
        return self._explicit

    def to_dict(self, *, explicit_only: bool = False) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON-serialisable; ``None`` values, empty optional tables
        and the keys the estimator does not use omitted).

        Parameters
        ----------
        explicit_only : bool
            Also omit the ``[analysis]`` / ``[summary]`` keys left at their defaults (the dict to
            change and validate again, e.g. with another estimator).

        Returns
        -------
        dict
            The resolved config.
        """
        unused = self._unused()
        if explicit_only:
            implicit = {f"analysis.{k}" for k in AnalysisConfig.model_fields}
            implicit |= {f"summary.{k}" for k in SummaryConfig.model_fields}
            unused |= implicit - self._explicit
        d: dict[str, Any] = {"name": self.name}
        if self.description:
            d["description"] = self.description
        # unset options (None, empty tables, False switches) are left out: same hash as before
        d["data"] = {
            k: v
            for k, v in self.data.model_dump().items()
            if v is not None and v != {} and v is not False
        }
        analysis = self.analysis.model_dump(exclude={"covariates", "weights", "pool", "exclude"})
        if self.analysis.covariates:
            analysis["covariates"] = list(self.analysis.covariates)
        pool = self.analysis.pool
        analysis["pool"] = pool if isinstance(pool, str) else list(pool)
        if self.analysis.exclude:
            analysis["exclude"] = list(self.analysis.exclude)
        if self.analysis.weights is not None:
            analysis["weights"] = self.analysis.weights
        d["analysis"] = {k: v for k, v in analysis.items() if f"analysis.{k}" not in unused}
        d["estimator"] = self.estimator.to_dict()
        d["priors"] = copy.deepcopy(self.priors)
        d["sampler"] = self.sampler.model_dump()
        summ: dict[str, Any] = {"hdi_prob": self.summary.hdi_prob, "rope": self.summary.rope}
        d["summary"] = {k: v for k, v in summ.items() if f"summary.{k}" not in unused}
        if self.sweep is not None:
            d["sweep"] = {"grid": copy.deepcopy(self.sweep.grid), "mode": self.sweep.mode}
            if self.sweep.labels:
                d["sweep"]["labels"] = copy.deepcopy(self.sweep.labels)
        return _jsonify(d)

    def hash(self, data_fingerprint: str = "") -> str:
        """Stable sha256 of everything that changes the numbers (+ the data fingerprint).

        Name, description, the sweep table and the data folders' locations are excluded; the
        data content enters through ``data_fingerprint``.

        Parameters
        ----------
        data_fingerprint : str
            Fingerprint of the data the config is run on.

        Returns
        -------
        str
            Hex digest.
        """
        d = {k: v for k, v in self.to_dict().items() if k not in _UNHASHED}
        d["data"] = {k: v for k, v in d["data"].items() if k not in _UNHASHED_DATA}
        d["sampler"] = {k: v for k, v in d["sampler"].items() if k != "progressbar"}
        d["data_fingerprint"] = data_fingerprint
        # the estimator's resolved options and priors, defaults included: a change of a package
        # default (e.g. the DDD's error model) changes the hash, so a stale cached run is refitted
        from hepcausal.experiments.registry import get_entry

        entry = get_entry(self.estimator.name)
        priors = entry.priors.validate(self.priors)
        d["resolved"] = {
            "options": entry.parse_options(self.estimator.options).model_dump(mode="json"),
            "priors": priors.to_dict() if hasattr(priors, "to_dict") else dict(self.priors),
        }
        blob = json.dumps(_jsonify(d), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_overrides(self, overrides: Mapping[str, Any], *, name: str | None = None) -> Config:
        """A new validated config with dotted keys replaced.

        Parameters
        ----------
        overrides : mapping
            Dotted key -> value (e.g. ``{'sampler.draws': 200}``).
        name : str, optional
            New config name.

        Returns
        -------
        Config
            The new config (same source file).
        """
        d = self.to_dict(explicit_only=True)
        for key, value in overrides.items():
            set_dotted(d, key, value, source=self.source)
        if name is not None:
            d["name"] = name
        return config_from_dict(d, source=self.source)

    def without_sweep(self) -> Config:
        """This config without its ``[sweep]`` table."""
        out = self.model_copy(update={"sweep": None})
        out._source, out._explicit = self._source, self._explicit
        return out

    def sampler_settings(self, **extra: Any) -> SamplerSettings:
        """The sampler settings (``extra``: further fields such as ``cores``)."""
        return self.sampler.settings(**extra)

    def to_toml(self) -> str:
        """The resolved config as TOML text (written with tomli-w)."""
        return tomli_w.dumps(self.to_dict())


def _jsonify(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonify(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_jsonify(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ---------------------------------------------------------------------------- parsing


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class at a location of :class:`Config` (None for free tables)."""
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        cand = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not cand:
            return None
        model = cand[0]
    return model


def _translate(exc: ValidationError, source: str) -> ConfigError:
    """The first pydantic error as a ConfigError naming the file and the dotted key."""
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _KeyedError):
        loc = (*loc, cause.key)
        dotted = ".".join(loc)
        if cause.valid is not None:
            return _unknown(dotted, cause.valid, source)
        return ConfigError(f"{_where(source)}'{dotted}' {cause}")
    dotted = ".".join(loc)
    if err["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        valid = list(model.model_fields) if model is not None else []
        return _unknown(dotted, valid, source)
    if isinstance(cause, ValueError):
        return ConfigError(f"{_where(source)}'{dotted}' {cause}")
    got = err.get("input")
    bounds = {
        "greater_than_equal": ("ge", ">="),
        "less_than_equal": ("le", "<="),
        "less_than": ("lt", "<"),
        "greater_than": ("gt", ">"),
    }
    if err["type"] in bounds:
        ctx_key, op = bounds[err["type"]]
        bound = (err.get("ctx") or {}).get(ctx_key)
        if isinstance(bound, int) and abs(bound) >= 10_000:
            bound = f"{bound:,}"
        return ConfigError(f"{_where(source)}'{dotted}' must be {op} {bound}, got {got!r}")
    msg = str(err["msg"])
    return ConfigError(f"{_where(source)}'{dotted}': {msg[0].lower()}{msg[1:]}, got {got!r}")


def _check_estimator(cfg: Config, source: str) -> None:
    """Cross-section checks: estimator name, options, backend, priors and unused keys."""
    from hepcausal.experiments.registry import PriorError, UnknownEstimatorError, get_entry

    try:
        entry = get_entry(cfg.estimator.name)
    except UnknownEstimatorError as exc:
        raise ConfigError(f"{_where(source)}'estimator.name': {exc}") from None
    try:
        options = entry.parse_options(cfg.estimator.options)
    except ValidationError as exc:
        err = exc.errors()[0]
        dotted = "estimator." + ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            valid = [*entry.options.model_fields, "name", "backend"]
            raise _unknown(dotted, valid, source) from None
        msg = str(err["msg"])
        raise ConfigError(
            f"{_where(source)}'{dotted}': {msg[0].lower()}{msg[1:]}, got {err.get('input')!r}"
        ) from None
    if cfg.estimator.backend not in entry.backends:
        raise ConfigError(
            f"{_where(source)}'estimator.backend' = {cfg.estimator.backend!r} is not available "
            f"for estimator {entry.name!r} (backends: {', '.join(entry.backends)})"
        )
    try:
        entry.validate_priors(cfg.priors)
    except PriorError as exc:
        raise ConfigError(f"{_where(source)}{exc}") from None
    uses = entry.uses(options)
    for key in sorted(cfg.explicit_keys):
        if key in USE_OF_KEY and USE_OF_KEY[key] not in uses:
            raise ConfigError(
                f"{_where(source)}'{key}' is not used by estimator {entry.name!r}; remove it"
            )


def config_from_dict(d: Mapping[str, Any], *, source: str = "") -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`.

    Parameters
    ----------
    d : mapping
        The config tables.
    source : str
        The file the dict came from (named in error messages; relative paths resolve
        against its folder).

    Returns
    -------
    Config
        The validated config.

    Raises
    ------
    ConfigError
        Naming the file, the full dotted key and, for unknown keys, the nearest valid one.
    """
    raw = copy.deepcopy(dict(d))
    if "name" not in raw:
        raw["name"] = Path(source).stem if source else "experiment"
    try:
        cfg = Config.model_validate(raw, context={"source": source})
    except ValidationError as exc:
        raise _translate(exc, source) from None
    cfg._source = source
    cfg._explicit = frozenset(
        [f"analysis.{k}" for k in cfg.analysis.model_fields_set]
        + [f"summary.{k}" for k in cfg.summary.model_fields_set]
    )
    _check_estimator(cfg, source)
    if cfg.sweep is not None:
        for key in cfg.sweep.grid:  # every swept key must name a real config key
            check_dotted(key, source)
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML experiment config.

    Parameters
    ----------
    path : str or path-like
        The TOML file.

    Returns
    -------
    Config
        The validated config.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        with p.open("rb") as fh:
            d = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    return config_from_dict(d, source=str(p))


# ---------------------------------------------------------------------------- dotted keys


def check_dotted(key: str, source: str = "") -> None:
    """Error unless ``key`` is a settable dotted key of a config.

    Parameters
    ----------
    key : str
        The dotted key (``section.key``; free tables such as ``priors`` take any sub-key).
    source : str
        File named in the error.

    Raises
    ------
    ConfigError
        For an unknown section or key, with the nearest valid one.
    """
    parts = key.split(".")
    if parts[0] not in TOP_LEVEL_KEYS or parts[0] == "sweep":
        valid = [k for k in TOP_LEVEL_KEYS if k != "sweep"]
        raise ConfigError(f"{_where(source)}unknown key '{key}'{suggest(parts[0], valid)}")
    model = _model_at((parts[0],)) if len(parts) >= 2 else None
    if model is not None and model.model_config.get("extra") == "forbid":
        if parts[1] not in model.model_fields:
            raise _unknown(f"{parts[0]}.{parts[1]}", model.model_fields, source)


def set_dotted(d: dict[str, Any], key: str, value: Any, *, source: str = "") -> None:
    """Set ``d['a']['b'] = value`` for ``key = 'a.b'`` (creating tables as needed).

    Parameters
    ----------
    d : dict
        A config dict (changed in place).
    key : str
        The dotted key.
    value : object
        The new value.
    source : str
        File named in errors.
    """
    check_dotted(key, source)
    parts = key.split(".")
    node = d
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{_where(source)}cannot set '{key}': '{part}' is not a table")
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (the value as TOML, else as a plain string).

    Parameters
    ----------
    text : str
        ``key=value``.

    Returns
    -------
    tuple
        The key and the parsed value.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. sampler.draws=500")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


ConfigLike = Config | str | os.PathLike[str]


def as_config(config: ConfigLike) -> Config:
    """A ``Config`` from a config object or a TOML path.

    Parameters
    ----------
    config : Config, str or path-like
        The config or its file.

    Returns
    -------
    Config
        The config.
    """
    return config if isinstance(config, Config) else load_config(config)


__all__: list[str] = [
    "AnalysisConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EstimatorConfig",
    "SamplerConfig",
    "SummaryConfig",
    "SweepConfig",
    "as_config",
    "config_from_dict",
    "load_config",
    "parse_override",
    "set_dotted",
]
