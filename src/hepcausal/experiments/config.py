"""Typed experiment configuration, loaded from TOML and validated key by key.

A config file has the sections ``[data]`` (with ``[data.synthetic]`` and ``[data.inclusion]``),
``[analysis]``, ``[estimator]``, ``[priors]``, ``[sampler]``, ``[summary]`` and ``[sweep]``.
Every key is checked: an unknown or misspelt key is an error naming the full dotted key and the
file, with the nearest valid key suggested; a wrong type or invalid value names the key too.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepcausal import schema
from hepcausal.sampling import SamplerSettings

NHS_DATA_ENV = "HEPCAUSAL_NHS_DATA"

OUTCOME_ALIASES: dict[str, str] = {
    "gp": schema.GP_FTE,
    "nurse": schema.NURSE_FTE,
    "dpc": schema.DPC_FTE,
    "admin": schema.ADMIN_FTE,
    "qof": schema.QOF,
    "gpps": schema.GPPS_OVERALL,
}
RANK_COLUMNS: dict[str, str] = {
    "deprivation": schema.DEPRIVATION_RANK,
    "need": schema.NEED_RANK,
}
DATA_SOURCES = ("synthetic", "nhs", "file")
BACKENDS = ("pymc", "stan")
SWEEP_MODES = ("grid", "one_at_a_time")
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


class ConfigError(ValueError):
    """An invalid experiment configuration; the message names the file and the dotted key."""


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def suggest(key: str, valid: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the nearest valid key, or '' when nothing is close."""
    valid = list(valid)
    leaf = key.rsplit(".", 1)[-1]
    match = difflib.get_close_matches(leaf, valid, n=1, cutoff=0.5)
    if not match:
        return f"; valid keys: {', '.join(sorted(valid))}" if valid else ""
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    return f"; did you mean '{prefix}{match[0]}'?"


def _check_keys(table: Mapping[str, Any], valid: Iterable[str], prefix: str, source: str) -> None:
    valid = list(valid)
    for key in table:
        if key not in valid:
            dotted = f"{prefix}{key}"
            raise ConfigError(f"{_where(source)}unknown key '{dotted}'{suggest(dotted, valid)}")


def _typed(value: Any, types: tuple[type, ...], key: str, source: str, what: str) -> Any:
    # bool is an int subclass: never accept it where a number is meant
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        raise ConfigError(
            f"{_where(source)}'{key}' must be {what}, got {type(value).__name__} {value!r}"
        )
    if float in types and isinstance(value, int):
        return float(value)
    return value


def _require(cond: bool, key: str, source: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{_where(source)}'{key}' {message}")


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _validate_against_dataclass(
    table: Mapping[str, Any],
    cls: type,
    prefix: str,
    source: str,
    factory: Callable[..., Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check a free table against the fields of ``cls`` and construct it to validate values.

    ``extra`` are additional allowed keys (passed through unchecked); ``factory(**table)``
    builds the object (default ``cls``).
    """
    names = [f.name for f in dataclasses.fields(cls)] + list(extra or {})
    _check_keys(table, names, prefix, source)
    out: dict[str, Any] = {}
    defaults = {f.name: _default(f) for f in dataclasses.fields(cls)}
    for key, value in table.items():
        if key not in defaults:
            out[key] = value
            continue
        default = defaults[key]
        if isinstance(default, bool):
            value = _typed(value, (bool,), prefix + key, source, "true or false")
        elif isinstance(default, float):
            value = _typed(value, (int, float), prefix + key, source, "a number")
        elif isinstance(default, int):
            value = _typed(value, (int,), prefix + key, source, "an integer")
        elif isinstance(default, str):
            value = _typed(value, (str,), prefix + key, source, "a string")
        out[key] = value
    try:
        obj = (factory or cls)(**{k: _tuples(v) for k, v in out.items()})
        if hasattr(obj, "validate"):
            obj.validate()
    except (TypeError, ValueError, KeyError) as exc:
        table_name = prefix.rstrip(".")
        raise ConfigError(f"{_where(source)}invalid [{table_name}] settings: {exc}") from exc
    return out


SYNTHETIC_PRESETS = ("small", "national")


def _simulation_factory(preset: str = "national", **kw: Any) -> Any:
    """Build a SimulationConfig: ``preset = 'small'`` uses ``SimulationConfig.small`` (fast)."""
    cls = _simulation_config_class()
    if preset not in SYNTHETIC_PRESETS:
        raise ValueError(f"'preset' must be one of {SYNTHETIC_PRESETS}, got {preset!r}")
    return cls.small(**kw) if preset == "small" else cls(**kw)


def _simulation_config_class() -> type:
    from hepcausal.data.synthetic import SimulationConfig

    return SimulationConfig


def _inclusion_rules_class() -> type:
    from hepcausal.data.inclusion import InclusionRules

    return InclusionRules


# ---------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class DataConfig:
    """Where the panel comes from: the built-in simulator, the real NHS files or a panel file."""

    source: str = "synthetic"
    data_dir: str | None = None  # NHS files; default: $HEPCAUSAL_NHS_DATA
    path: str | None = None  # panel file (csv/parquet) when source = 'file'
    synthetic: dict[str, Any] = field(default_factory=dict)  # SimulationConfig fields
    inclusion: dict[str, Any] = field(default_factory=dict)  # InclusionRules fields
    gpps_dir: str | None = None  # folder of GPPS_<year>_Practice_data*.csv files (NHS data)

    KEYS = ("source", "data_dir", "path", "synthetic", "inclusion", "gpps_dir")

    def resolved_data_dir(self) -> Path:
        """The NHS data folder (config value, else $HEPCAUSAL_NHS_DATA); an error if unset."""
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

    def simulation_config(self) -> Any:
        """The ``SimulationConfig`` of the synthetic generator."""
        return _simulation_factory(**{k: _tuples(v) for k, v in self.synthetic.items()})

    def inclusion_rules(self) -> Any:
        """The ``InclusionRules`` for the NHS panel."""
        return _inclusion_rules_class()(**{k: _tuples(v) for k, v in self.inclusion.items()})


@dataclass(frozen=True)
class AnalysisConfig:
    """What is estimated: outcome, rank measure, treated ICB, start year, comparators."""

    outcome: str = schema.GP_FTE
    rank: str = "deprivation"
    treated_icb: str = schema.LLR_ICB
    start_year: int = schema.HEP_START_YEAR
    comparators: str | tuple[str, ...] = "published"

    KEYS = ("outcome", "rank", "treated_icb", "start_year", "comparators")

    @property
    def rank_col(self) -> str:
        """Panel column of the relative rank (``deprivation_rank`` or ``need_rank``)."""
        return RANK_COLUMNS[self.rank]

    def comparator_codes(self, available: Iterable[str] | None = None) -> tuple[str, ...]:
        """ICB codes of the comparators; 'all' needs the ICBs available in the panel."""
        if self.comparators == "published":
            return tuple(schema.PUBLISHED_COMPARATORS)
        if self.comparators == "all":
            if available is None:
                raise ValueError("comparators = 'all' needs the ICB codes of the panel")
            return tuple(sorted({str(c) for c in available} - {self.treated_icb}))
        return tuple(self.comparators)


@dataclass(frozen=True)
class EstimatorConfig:
    """Which estimator, which backend, and its method-specific keyword options."""

    name: str = "ddd"
    backend: str = "pymc"
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, **self.options}


@dataclass(frozen=True)
class SamplerConfig:
    """MCMC settings (``hepcausal.sampling.SamplerSettings``)."""

    # Defaults come from SamplerSettings, the one source of truth for sampler defaults.
    draws: int = SamplerSettings.draws
    tune: int = SamplerSettings.tune
    chains: int = SamplerSettings.chains
    target_accept: float = SamplerSettings.target_accept
    seed: int = SamplerSettings.seed
    sampler: str = SamplerSettings.sampler
    mass_matrix: str = "auto"  # auto (the estimator's choice) | diag | low_rank (nutpie)

    KEYS = ("draws", "tune", "chains", "target_accept", "seed", "sampler", "mass_matrix")

    def settings(self, **extra: Any) -> SamplerSettings:
        kw = dataclasses.asdict(self)
        kw["mass_matrix"] = None if self.mass_matrix == "auto" else self.mass_matrix
        return SamplerSettings(**kw, **extra)


@dataclass(frozen=True)
class SummaryConfig:
    """How estimands are summarised: HDI probability and region of practical equivalence."""

    hdi_prob: float = 0.95
    rope: float | tuple[float, float] | str | dict[str, Any] | None = None

    KEYS = ("hdi_prob", "rope")

    def rope_for(self, outcome: str) -> float | tuple[float, float] | str | None:
        """The ROPE of an outcome (``rope`` may be a table outcome -> half-width/interval).

        ``None`` means unset (the estimator's default applies); ``'auto'`` and ``'none'`` are
        passed on (``'none'`` as ``None``: no ROPE).
        """
        if isinstance(self.rope, dict):
            return self.rope.get(outcome)
        return self.rope


@dataclass(frozen=True)
class SweepConfig:
    """A sensitivity sweep: dotted keys -> lists of values.

    ``mode = 'grid'`` runs the Cartesian product; ``'one_at_a_time'`` varies each key alone
    from the base config (the base run included).  ``labels`` optionally names the values of a
    key for readable run names (same length as its list).
    """

    grid: dict[str, list[Any]] = field(default_factory=dict)
    mode: str = "grid"
    labels: dict[str, list[str]] = field(default_factory=dict)

    KEYS = ("grid", "mode", "labels")


@dataclass(frozen=True)
class Config:
    """A complete, validated experiment configuration."""

    name: str = "experiment"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    priors: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    sweep: SweepConfig | None = None
    source: str = field(default="", compare=False)  # file it was loaded from

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON-serialisable, ``None`` values omitted)."""
        d: dict[str, Any] = {"name": self.name}
        if self.description:
            d["description"] = self.description
        data = {k: getattr(self.data, k) for k in DataConfig.KEYS}
        d["data"] = {k: copy.deepcopy(v) for k, v in data.items() if v is not None and v != {}}
        d["analysis"] = {k: getattr(self.analysis, k) for k in AnalysisConfig.KEYS}
        if isinstance(d["analysis"]["comparators"], tuple):
            d["analysis"]["comparators"] = list(d["analysis"]["comparators"])
        d["estimator"] = self.estimator.to_dict()
        d["priors"] = copy.deepcopy(self.priors)
        d["sampler"] = dataclasses.asdict(self.sampler)
        summ: dict[str, Any] = {"hdi_prob": self.summary.hdi_prob}
        if self.summary.rope is not None:
            rope = self.summary.rope
            summ["rope"] = rope
        d["summary"] = summ
        if self.sweep is not None and self.sweep.grid:
            d["sweep"] = {"grid": copy.deepcopy(self.sweep.grid), "mode": self.sweep.mode}
            if self.sweep.labels:
                d["sweep"]["labels"] = copy.deepcopy(self.sweep.labels)
        return _jsonify(d)

    def hash(self, data_fingerprint: str = "") -> str:
        """Stable sha256 of everything that changes the numbers (+ the data fingerprint).

        Name, description, the sweep table and the NHS folder's location are excluded; the data
        content enters through ``data_fingerprint``.
        """
        d = {k: v for k, v in self.to_dict().items() if k not in _UNHASHED}
        d["data"] = {
            k: v for k, v in d["data"].items() if k not in ("data_dir", "path", "gpps_dir")
        }
        d["data_fingerprint"] = data_fingerprint
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_overrides(self, overrides: Mapping[str, Any], *, name: str | None = None) -> Config:
        """A new validated config with dotted keys replaced (e.g. ``{'sampler.draws': 200}``)."""
        d = self.to_dict()
        for key, value in overrides.items():
            set_dotted(d, key, value, source=self.source)
        if name is not None:
            d["name"] = name
        return config_from_dict(d, source=self.source)

    def without_sweep(self) -> Config:
        return dataclasses.replace(self, sweep=None)

    def sampler_settings(self, **extra: Any) -> SamplerSettings:
        return self.sampler.settings(**extra)

    def to_toml(self) -> str:
        """The resolved config as TOML text."""
        return dumps_toml(self.to_dict())


def _jsonify(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonify(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_jsonify(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ---------------------------------------------------------------------------- parsing


def _section(d: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = d.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_where(source)}'{key}' must be a table ([{key}]), got {value!r}")
    return dict(value)


def _parse_data(t: dict[str, Any], source: str) -> DataConfig:
    _check_keys(t, DataConfig.KEYS, "data.", source)
    src = _typed(t.get("source", "synthetic"), (str,), "data.source", source, "a string")
    _require(
        src in DATA_SOURCES, "data.source", source, f"must be one of {DATA_SOURCES}, got {src!r}"
    )
    data_dir = t.get("data_dir")
    if data_dir is not None:
        data_dir = _typed(data_dir, (str,), "data.data_dir", source, "a path string")
    path = t.get("path")
    if path is not None:
        path = _typed(path, (str,), "data.path", source, "a path string")
    if src == "file":
        _require(path is not None, "data.path", source, "is required when data.source = 'file'")
    path, data_dir = _relative_to(path, source), _relative_to(data_dir, source)
    gpps_dir = t.get("gpps_dir")
    if gpps_dir is not None:
        gpps_dir = _typed(gpps_dir, (str,), "data.gpps_dir", source, "a path string")
    gpps_dir = _relative_to(gpps_dir, source)
    if "synthetic" in t and not isinstance(t["synthetic"], Mapping):
        raise ConfigError(f"{_where(source)}'data.synthetic' must be a table")
    synthetic = dict(t.get("synthetic", {}))
    if synthetic:
        preset = synthetic.get("preset", "national")
        _require(
            preset in SYNTHETIC_PRESETS,
            "data.synthetic.preset",
            source,
            f"must be one of {SYNTHETIC_PRESETS}, got {preset!r}",
        )
        synthetic = _validate_against_dataclass(
            synthetic,
            _simulation_config_class(),
            "data.synthetic.",
            source,
            factory=_simulation_factory,
            extra={"preset": "national"},
        )
    inclusion = dict(t.get("inclusion", {}))
    if "inclusion" in t and not isinstance(t["inclusion"], Mapping):
        raise ConfigError(f"{_where(source)}'data.inclusion' must be a table")
    if inclusion:
        inclusion = _validate_against_dataclass(
            inclusion, _inclusion_rules_class(), "data.inclusion.", source
        )
    return DataConfig(src, data_dir, path, synthetic, inclusion, gpps_dir)


def _relative_to(path: str | None, source: str) -> str | None:
    """A relative path in a config file is relative to the file's folder when it exists there."""
    if path is None or Path(path).expanduser().is_absolute() or not source:
        return path
    cand = Path(source).parent / path
    return str(cand) if cand.exists() else path


def _parse_analysis(t: dict[str, Any], source: str) -> AnalysisConfig:
    _check_keys(t, AnalysisConfig.KEYS, "analysis.", source)
    out = AnalysisConfig()
    outcome = _typed(t.get("outcome", out.outcome), (str,), "analysis.outcome", source, "a string")
    outcome = OUTCOME_ALIASES.get(outcome, outcome)
    if outcome not in schema.OUTCOMES:
        valid = [*OUTCOME_ALIASES, *schema.OUTCOMES]
        raise ConfigError(
            f"{_where(source)}'analysis.outcome' must be one of {valid}, got {outcome!r}"
            + (
                f"; did you mean '{m[0]}'?"
                if (m := difflib.get_close_matches(outcome, valid, n=1, cutoff=0.5))
                else ""
            )
        )
    rank = _typed(t.get("rank", out.rank), (str,), "analysis.rank", source, "a string")
    _require(
        rank in RANK_COLUMNS,
        "analysis.rank",
        source,
        f"must be one of {tuple(RANK_COLUMNS)}, got {rank!r}",
    )
    treated = _typed(
        t.get("treated_icb", out.treated_icb),
        (str,),
        "analysis.treated_icb",
        source,
        "an ICB code string",
    )
    start = _typed(
        t.get("start_year", out.start_year),
        (int,),
        "analysis.start_year",
        source,
        "an integer fiscal-year end (2022 = FY2021/22)",
    )
    _require(
        2000 < start < 2100,
        "analysis.start_year",
        source,
        f"must be a fiscal-year end such as 2022, got {start}",
    )
    comps = t.get("comparators", out.comparators)
    if isinstance(comps, str):
        _require(
            comps in ("published", "all"),
            "analysis.comparators",
            source,
            f"must be 'published', 'all' or a list of ICB codes, got {comps!r}",
        )
    elif isinstance(comps, list | tuple) and comps and all(isinstance(c, str) for c in comps):
        comps = tuple(comps)
        _require(
            treated not in comps,
            "analysis.comparators",
            source,
            f"must not contain the treated ICB {treated!r}",
        )
    else:
        raise ConfigError(
            f"{_where(source)}'analysis.comparators' must be 'published', 'all' or a non-empty "
            f"list of ICB code strings, got {comps!r}"
        )
    return AnalysisConfig(outcome, rank, treated, start, comps)


def _parse_estimator(t: dict[str, Any], source: str) -> EstimatorConfig:
    from hepcausal.experiments.registry import estimator_options, known_estimators

    name = _typed(t.get("name", "ddd"), (str,), "estimator.name", source, "a string")
    known = known_estimators()
    if name not in known and ":" not in name:
        m = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"; did you mean '{m[0]}'?" if m else ""
        raise ConfigError(
            f"{_where(source)}'estimator.name' must be one of {known} (or 'module:function'), "
            f"got {name!r}{hint}"
        )
    backend = _typed(t.get("backend", "pymc"), (str,), "estimator.backend", source, "a string")
    _require(
        backend in BACKENDS,
        "estimator.backend",
        source,
        f"must be one of {BACKENDS}, got {backend!r}",
    )
    options = {k: v for k, v in t.items() if k not in ("name", "backend")}
    if options:
        try:
            valid = estimator_options(name)
        except ImportError as exc:
            raise ConfigError(
                f"{_where(source)}estimator {name!r} cannot be imported to check its options: {exc}"
            ) from exc
        _check_keys(options, [*valid, "name", "backend"], "estimator.", source)
    return EstimatorConfig(name, backend, options)


def _parse_sampler(t: dict[str, Any], source: str) -> SamplerConfig:
    _check_keys(t, SamplerConfig.KEYS, "sampler.", source)
    d = SamplerConfig()
    kw: dict[str, Any] = {}
    for key in ("draws", "tune", "chains", "seed"):
        kw[key] = _typed(
            t.get(key, getattr(d, key)), (int,), f"sampler.{key}", source, "an integer"
        )
    _require(kw["draws"] >= 1, "sampler.draws", source, f"must be >= 1, got {kw['draws']}")
    _require(kw["tune"] >= 0, "sampler.tune", source, f"must be >= 0, got {kw['tune']}")
    _require(kw["chains"] >= 1, "sampler.chains", source, f"must be >= 1, got {kw['chains']}")
    ta = _typed(
        t.get("target_accept", d.target_accept),
        (int, float),
        "sampler.target_accept",
        source,
        "a number",
    )
    _require(0.5 <= ta < 1, "sampler.target_accept", source, f"must be in [0.5, 1), got {ta}")
    kw["target_accept"] = ta
    sampler = _typed(t.get("sampler", d.sampler), (str,), "sampler.sampler", source, "a string")
    _require(
        sampler in ("nutpie", "pymc", "numpyro"),
        "sampler.sampler",
        source,
        f"must be 'nutpie', 'pymc' or 'numpyro', got {sampler!r}",
    )
    kw["sampler"] = sampler
    mm = _typed(
        t.get("mass_matrix", d.mass_matrix), (str,), "sampler.mass_matrix", source, "a string"
    )
    _require(
        mm in ("auto", "diag", "low_rank"),
        "sampler.mass_matrix",
        source,
        f"must be 'auto', 'diag' or 'low_rank', got {mm!r}",
    )
    _require(
        mm != "low_rank" or sampler == "nutpie",
        "sampler.mass_matrix",
        source,
        "'low_rank' needs sampler = 'nutpie'",
    )
    kw["mass_matrix"] = mm
    return SamplerConfig(**kw)


def _parse_rope(rope: Any, key: str, source: str) -> float | tuple[float, float] | str:
    if isinstance(rope, str):
        _require(
            rope in ("auto", "none"),
            key,
            source,
            f"must be a number, [low, high], 'auto' or 'none', got {rope!r}",
        )
        return rope
    if isinstance(rope, list) and len(rope) == 2:
        pair = tuple(_typed(r, (int, float), key, source, "a number or [low, high]") for r in rope)
        _require(pair[0] <= pair[1], key, source, "must be [low, high] with low <= high")
        return pair  # type: ignore[return-value]
    value = _typed(
        rope,
        (int, float),
        key,
        source,
        "a half-width number, a [low, high] pair or a table outcome -> rope",
    )
    _require(value > 0, key, source, f"half-width must be > 0, got {value}")
    return value


def _parse_summary(t: dict[str, Any], source: str) -> SummaryConfig:
    _check_keys(t, SummaryConfig.KEYS, "summary.", source)
    hdi = _typed(t.get("hdi_prob", 0.95), (int, float), "summary.hdi_prob", source, "a number")
    _require(0 < hdi < 1, "summary.hdi_prob", source, f"must be in (0, 1), got {hdi}")
    rope = t.get("rope")
    if isinstance(rope, Mapping):
        per: dict[str, Any] = {}
        for name, value in rope.items():
            col = OUTCOME_ALIASES.get(name, name)
            if col not in schema.OUTCOMES:
                raise ConfigError(
                    f"{_where(source)}unknown key 'summary.rope.{name}' (not an outcome)"
                    f"{suggest('summary.rope.' + name, [*OUTCOME_ALIASES, *schema.OUTCOMES])}"
                )
            per[col] = _parse_rope(value, f"summary.rope.{name}", source)
        rope = per
    elif rope is not None:
        rope = _parse_rope(rope, "summary.rope", source)
    return SummaryConfig(hdi, rope)


def _parse_sweep(t: dict[str, Any], source: str) -> SweepConfig:
    _check_keys(t, SweepConfig.KEYS, "sweep.", source)
    grid = t.get("grid", {})
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(
            f"{_where(source)}'sweep.grid' must be a non-empty table of dotted keys -> lists, "
            'e.g. "analysis.comparators" = ["published", "all"]'
        )
    mode = _typed(t.get("mode", "grid"), (str,), "sweep.mode", source, "a string")
    _require(
        mode in SWEEP_MODES, "sweep.mode", source, f"must be one of {SWEEP_MODES}, got {mode!r}"
    )
    out: dict[str, list[Any]] = {}
    for key, values in _flatten_grid(grid).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{_where(source)}'sweep.grid.\"{key}\"' must be a non-empty list of values, "
                f"got {values!r}"
            )
        out[key] = list(values)
    labels = t.get("labels", {})
    if not isinstance(labels, Mapping):
        raise ConfigError(f"{_where(source)}'sweep.labels' must be a table")
    labels = _flatten_grid(labels)
    for key, lab in labels.items():
        if key not in out:
            raise ConfigError(
                f"{_where(source)}unknown key 'sweep.labels.\"{key}\"' (not in sweep.grid)"
                f"{suggest(key, out)}"
            )
        if (
            not isinstance(lab, list)
            or len(lab) != len(out[key])
            or not all(isinstance(s, str) for s in lab)
        ):
            raise ConfigError(
                f"{_where(source)}'sweep.labels.\"{key}\"' must be a list of {len(out[key])} "
                "strings, one per grid value"
            )
    return SweepConfig(out, mode, dict(labels))


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


def config_from_dict(d: Mapping[str, Any], *, source: str = "") -> Config:
    """Validate a nested dict (as read from TOML) into a ``Config``."""
    d = copy.deepcopy(dict(d))
    _check_keys(d, TOP_LEVEL_KEYS, "", source)
    default_name = Path(source).stem if source else "experiment"
    name = _typed(d.get("name", default_name), (str,), "name", source, "a string")
    _require(
        bool(name) and "/" not in name and "\\" not in name,
        "name",
        source,
        f"must be a non-empty string without slashes, got {name!r}",
    )
    desc = _typed(d.get("description", ""), (str,), "description", source, "a string")
    priors = _section(d, "priors", source)
    sweep = _parse_sweep(_section(d, "sweep", source), source) if "sweep" in d else None
    cfg = Config(
        name=name,
        description=desc,
        data=_parse_data(_section(d, "data", source), source),
        analysis=_parse_analysis(_section(d, "analysis", source), source),
        estimator=_parse_estimator(_section(d, "estimator", source), source),
        priors=priors,
        sampler=_parse_sampler(_section(d, "sampler", source), source),
        summary=_parse_summary(_section(d, "summary", source), source),
        sweep=sweep,
        source=source,
    )
    if sweep is not None:
        base = cfg.to_dict()
        for key in sweep.grid:  # every swept key must name a real config key
            check_dotted(base, key, source)
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML experiment config."""
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

_FREE_TABLES = ("priors", "data.synthetic", "data.inclusion", "estimator")


def check_dotted(d: Mapping[str, Any], key: str, source: str = "") -> None:
    """Error unless ``key`` is a settable dotted key of a config dict."""
    parts = key.split(".")
    if parts[0] not in TOP_LEVEL_KEYS or parts[0] == "sweep":
        valid = [k for k in TOP_LEVEL_KEYS if k != "sweep"]
        raise ConfigError(f"{_where(source)}unknown key '{key}'{suggest(parts[0], valid)}")
    sections = {
        "data": DataConfig.KEYS,
        "analysis": AnalysisConfig.KEYS,
        "sampler": SamplerConfig.KEYS,
        "summary": SummaryConfig.KEYS,
    }
    if len(parts) >= 2 and parts[0] in sections and parts[1] not in sections[parts[0]]:
        raise ConfigError(
            f"{_where(source)}unknown key '{key}'"
            f"{suggest(parts[0] + '.' + parts[1], sections[parts[0]])}"
        )


def set_dotted(d: dict[str, Any], key: str, value: Any, *, source: str = "") -> None:
    """Set ``d['a']['b'] = value`` for ``key = 'a.b'`` (creating tables as needed)."""
    check_dotted(d, key, source)
    parts = key.split(".")
    node = d
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{_where(source)}cannot set '{key}': '{part}' is not a table")
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (the value as TOML, else as a plain string)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. sampler.draws=500")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


# ---------------------------------------------------------------------------- TOML writer


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dumps_toml(d: Mapping[str, Any]) -> str:
    """Minimal TOML writer for config dicts (scalars, lists, nested tables)."""
    lines: list[str] = []

    def emit(table: Mapping[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
        tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
        if prefix and (scalars or not tables):
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in tables.items():
            emit(v, f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k))

    emit(d, "")
    return "\n".join(lines).lstrip("\n") + "\n"


ConfigLike = Config | str | os.PathLike[str]


def as_config(config: ConfigLike) -> Config:
    """A ``Config`` from a config object or a TOML path."""
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
    "dumps_toml",
    "load_config",
    "parse_override",
    "set_dotted",
]
