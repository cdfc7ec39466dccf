"""Design construction shared by the panel causal estimators (DiD, DDD, event study, dose).

A :class:`PanelDesign` holds everything the panel-effects model needs, already validated and
indexed: the analysis rows (treated group + comparators, outcome observed), unit / group / time /
group-year cell indices, the centred rank ``r - 0.5`` for gradient models, the named *effect
columns* whose coefficients are the causal estimands, and standardised covariates.  The PyMC model
and ``models/panel_effects.stan`` both consume it (see :mod:`hepcausal.models.panel_effects`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from hepcausal import schema
from hepcausal.inequality.ranks import NATIONAL_RANK, add_relative_rank
from hepcausal.spec import Design, DesignError

Comparators = Sequence[str] | Literal["all"]

#: ``Design.weights`` shorthands: "list_size" weights each practice by its registered patients
#: (the PHE population-weighted SII); any other value names a weight column of the panel.
WEIGHT_ALIASES = {"list_size": schema.LIST_SIZE, "weighted_list_size": schema.WEIGHTED_LIST_SIZE}


@dataclass(frozen=True)
class PanelColumns:
    """Column names of a long panel; NHS defaults, overridable for any unit-in-group panel."""

    unit: str = schema.PRACTICE
    group: str = schema.ICB
    time: str = schema.YEAR
    treat: str | None = None  # optional 0/1 treatment column; default: treated group x post

    def as_dict(self) -> dict[str, str | None]:
        return {"unit": self.unit, "group": self.group, "time": self.time, "treat": self.treat}


@dataclass(frozen=True)
class EffectColumn:
    """One named effect column of the design (its coefficient is a causal estimand).

    ``scale`` is what the raw column was divided by before sampling, so that the estimand on the
    outcome scale is ``coef_standardised * y_sd / scale``.
    """

    name: str
    values: np.ndarray
    scale: float = 1.0
    kind: str = "level"  # "level", "gradient" or "dose"
    time: Any = None  # event-study year (None for pooled effects)


@dataclass
class PanelDesign:
    """Validated, indexed analysis data for one panel-effects fit."""

    data: pd.DataFrame  # analysis rows (after drops), original columns + helper columns
    outcome: str
    columns: PanelColumns
    treated: str
    comparators: tuple[str, ...]
    start_year: Any
    y: np.ndarray  # standardised outcome
    y_mean: float
    y_sd: float
    unit_idx: np.ndarray  # 0-based
    unit_group: np.ndarray  # 0-based group of each unit
    group_idx: np.ndarray
    time_idx: np.ndarray
    cell_idx: np.ndarray  # group-year cell
    time_scaled: np.ndarray  # (year - mean) / sd, for group-specific trends
    rank_c: np.ndarray | None  # rank - 0.5, or None for level-only models
    effects: list[EffectColumn]
    cov: np.ndarray  # (N, P) standardised covariates
    covariates: tuple[str, ...]
    units: list[Any]
    groups: list[str]
    times: list[Any]
    cells: list[tuple[str, Any]]
    drops: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    weights: np.ndarray | None = None  # relative row weights (mean 1), None = unweighted
    weights_col: str | None = None
    pool: tuple[str, ...] = ()  # groups that inform only the spread of group changes
    # the whole panel the design was cut from (not a copy; England-wide reference figures)
    source: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def _group_indicator(self, members: set[str]) -> np.ndarray:
        return np.array([1.0 if g in members else 0.0 for g in self.groups])

    @property
    def pool_group(self) -> np.ndarray:
        """1.0 for each group of :attr:`groups` in the pool, else 0.0."""
        return self._group_indicator(set(self.pool))

    @property
    def treated_group(self) -> np.ndarray:
        """1.0 for the treated group of :attr:`groups`, else 0.0."""
        return self._group_indicator({str(self.treated)})

    @property
    def estimand(self) -> str:
        """Which average the effects are: ``population-weighted`` or ``practice-average``."""
        if self.weights_col is None:
            return "practice-average"
        if self.weights_col in WEIGHT_ALIASES.values():
            return "population-weighted"
        return f"{self.weights_col}-weighted"

    @property
    def n_obs(self) -> int:
        return int(self.y.size)

    @property
    def effect_names(self) -> list[str]:
        return [e.name for e in self.effects]

    @property
    def effect_matrix(self) -> np.ndarray:
        if not self.effects:
            return np.zeros((self.n_obs, 0))
        return np.column_stack([e.values / e.scale for e in self.effects])

    def describe(self) -> dict[str, Any]:
        """Provenance for ``FitResult.meta``."""
        d = self.data
        treated_rows = d[self.columns.group] == self.treated
        return {
            "outcome": self.outcome,
            "columns": self.columns.as_dict(),
            "treated": self.treated,
            "comparators": list(self.comparators),
            "pool": list(self.pool),
            "start_year": to_python(self.start_year),
            "n_obs": self.n_obs,
            "n_units": len(self.units),
            "n_groups": len(self.groups),
            "n_cells": len(self.cells),
            "years": [to_python(t) for t in self.times],
            "n_treated_obs": int(treated_rows.sum()),
            "n_post_obs": int((d[self.columns.time] >= self.start_year).sum()),
            "rank_col": d.attrs.get("rank_col"),
            "covariates": list(self.covariates),
            "effect_columns": self.effect_names,
            "y_mean": self.y_mean,
            "y_sd": self.y_sd,
            "weights": self.weights_col,
            "estimand": self.estimand,
            "dropped": dict(self.drops),
            "notes": list(self.notes),
        }


def to_python(value: Any) -> Any:
    """NumPy scalars -> Python scalars (JSON-friendly metadata)."""
    return value.item() if isinstance(value, np.generic) else value


def _resolve_groups(
    role: str,
    value: Sequence[str] | str,
    groups_present: set[str],
    taken: dict[str, str],
    group_col: str,
) -> tuple[str, ...]:
    """Resolve a list of group codes or ``"all"`` (every present group not in ``taken``).

    ``taken`` maps each group the list may not contain to the role it already has.
    """
    if isinstance(value, str):
        if value != "all":
            raise DesignError(f"{role} must be 'all' or a list of {group_col} codes, got {value!r}")
        return tuple(sorted(g for g in groups_present if g not in taken))
    out = tuple(dict.fromkeys(str(c) for c in value))
    clash = {c: taken[c] for c in out if c in taken}
    if clash:
        desc = ", ".join(f"{c!r} ({why})" for c, why in clash.items())
        raise DesignError(f"{role} {group_col} value(s) already used: {desc}")
    missing = [c for c in out if c not in groups_present]
    if missing:
        raise DesignError(
            f"{role} {group_col} value(s) not in the panel: {missing} "
            f"({len(groups_present)} groups present)"
        )
    return out


def _require_columns(panel: pd.DataFrame, cols: dict[str, str | None]) -> None:
    missing = {role: c for role, c in cols.items() if c is not None and c not in panel.columns}
    if missing:
        desc = ", ".join(f"{role} column {c!r}" for role, c in missing.items())
        raise DesignError(f"panel is missing {desc}")


EffectBuilder = Callable[[pd.DataFrame, np.ndarray, np.ndarray | None], list[EffectColumn]]


def build_design(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    *,
    use_rank: bool = True,
    use_treat_col: bool = True,
    extra_required: Sequence[str] = (),
    effects: EffectBuilder | None = None,
    use_pool: bool = False,
) -> PanelDesign:
    """Validate ``panel`` and build the design of a treated-group vs comparators comparison.

    Rows outside the treated, comparator and (with ``use_pool``) pool groups are excluded
    (counted in ``drops`` as ``other_groups``); rows with a missing outcome, rank, covariate or
    ``extra_required`` value are dropped and counted by reason.

    Parameters
    ----------
    panel : pandas.DataFrame
        Long panel, one row per unit and time.
    outcome : str
        Outcome column.
    design : Design, optional
        Treated group, comparators, start year, columns, rank, covariates and weights (default
        ``Design()``).  ``design.weights``: None (every practice counts equally: the
        practice-average estimand), ``"list_size"`` (registered patients: the
        population-weighted estimand of the PHE SII) or a positive weight column.
    use_rank : bool
        Whether the estimator uses ``design.rank_col`` (False: level-only, the rank is ignored).
    use_treat_col : bool
        Whether the estimator supports ``design.treat_col`` (False: setting it is an error).
    extra_required : sequence of str
        Further numeric columns that must be observed (rows missing them are dropped).
    effects : callable, optional
        ``effects(data, D, rank_c)`` returns the effect columns given the analysis rows, the 0/1
        treatment indicator and the centred rank (default: one level column ``delta = D``).
    use_pool : bool
        Keep the groups of ``design.pool`` (models that use them for the spread of group
        changes only: the pre/post model); False leaves them out.

    Returns
    -------
    PanelDesign
        The validated, indexed design.

    Raises
    ------
    DesignError
        When the panel or the comparison cannot be analysed (the message names the problem).
    """
    spec = design if design is not None else Design()
    weights_col = WEIGHT_ALIASES.get(spec.weights, spec.weights) if spec.weights else None
    if spec.treat_col is not None and not use_treat_col:
        raise DesignError(
            f"this estimator does not take a treatment column (Design.treat_col = "
            f"{spec.treat_col!r}); it builds its own treatment indicators"
        )
    treated = spec.treated
    comparators: Comparators = spec.comparators
    start_year = spec.start_year
    covariates = spec.covariates
    rank_col = spec.rank_col if use_rank else None
    cols = PanelColumns(
        unit=spec.unit_col, group=spec.group_col, time=spec.time_col, treat=spec.treat_col
    )
    if not isinstance(panel, pd.DataFrame):
        raise DesignError(f"panel must be a pandas DataFrame, got {type(panel).__name__}")
    if rank_col == NATIONAL_RANK and rank_col not in panel.columns:  # ranks over all practices
        panel = add_relative_rank(panel, schema.IMD, schema.LIST_SIZE, by=[cols.time], out=rank_col)
    _require_columns(
        panel,
        {
            "outcome": outcome,
            "unit": cols.unit,
            "group": cols.group,
            "time": cols.time,
            "treatment": cols.treat,
            "rank": rank_col,
            "weights": weights_col,
        },
    )
    missing_cov = [c for c in covariates if c not in panel.columns]
    if missing_cov:
        raise DesignError(f"covariate column(s) not in the panel: {missing_cov}")
    missing_extra = [c for c in extra_required if c not in panel.columns]
    if missing_extra:
        raise DesignError(f"required column(s) not in the panel: {missing_extra}")

    treated = str(treated)
    group_str = panel[cols.group].astype("string")
    groups_present = set(group_str.dropna().unique())
    if treated not in groups_present:
        raise DesignError(
            f"treated {cols.group} {treated!r} is not in the panel "
            f"(present: {sorted(groups_present)[:12]}{'...' if len(groups_present) > 12 else ''})"
        )
    comps = _resolve_groups(
        "comparator", comparators, groups_present, {treated: "the treated group"}, cols.group
    )
    if not comps:
        raise DesignError("no comparator groups: pass a non-empty list or 'all'")
    taken = {
        **{c: "excluded" for c in spec.exclude},
        **{c: "a comparator" for c in comps},
        treated: "the treated group",
    }
    pool = _resolve_groups("pool", spec.pool, groups_present, taken, cols.group) if use_pool else ()

    keep = group_str.isin([treated, *comps, *pool]).fillna(False).to_numpy(bool)
    drops: dict[str, int] = {"other_groups": int((~keep).sum())}
    data = panel.loc[keep].copy()
    data[cols.group] = data[cols.group].astype("string").astype(object)

    def _drop(mask: np.ndarray, reason: str) -> None:
        nonlocal data
        n = int(mask.sum())
        drops[reason] = drops.get(reason, 0) + n
        if n:
            data = data.loc[~mask]

    y_raw = pd.to_numeric(data[outcome], errors="coerce").to_numpy(float)
    _drop(~np.isfinite(y_raw), "missing_outcome")
    for c, reason in (
        (cols.time, "missing_time"),
        (cols.unit, "missing_unit"),
    ):
        _drop(data[c].isna().to_numpy(bool), reason)
    if rank_col is not None:
        r = pd.to_numeric(data[rank_col], errors="coerce").to_numpy(float)
        _drop(~np.isfinite(r), "missing_rank")
    for c in covariates:
        v = pd.to_numeric(data[c], errors="coerce").to_numpy(float)
        _drop(~np.isfinite(v), f"missing_covariate:{c}")
    for c in extra_required:
        v = pd.to_numeric(data[c], errors="coerce").to_numpy(float)
        _drop(~np.isfinite(v), f"missing:{c}")
    if weights_col is not None:
        v = pd.to_numeric(data[weights_col], errors="coerce").to_numpy(float)
        _drop(~np.isfinite(v), f"missing_weight:{weights_col}")
        v = data[weights_col].to_numpy(float)
        if np.any(v <= 0):
            bad = data.index[v <= 0][:5].tolist()
            raise DesignError(f"weight column {weights_col!r} must be positive; bad rows {bad}")
    if data.empty:
        raise DesignError(f"no analysable rows for outcome {outcome!r} after drops {drops}")

    if rank_col is not None:
        r = data[rank_col].to_numpy(float)
        if np.any((r < 0) | (r > 1)):
            bad = data.index[(r < 0) | (r > 1)][:5].tolist()
            raise DesignError(f"rank column {rank_col!r} must lie in [0, 1]; bad rows {bad}")

    time = data[cols.time]
    is_treated = (data[cols.group] == treated).to_numpy(bool)
    is_comp = data[cols.group].isin(comps).to_numpy(bool)
    post = (time >= start_year).to_numpy(bool)
    for label, mask in (("treated", is_treated), ("comparator", is_comp)):
        if not np.any(mask & ~post):
            raise DesignError(
                f"no pre-period rows ({cols.time} < {start_year}) for the {label} group(s) "
                f"with observed {outcome!r}"
            )
        if not np.any(mask & post):
            raise DesignError(
                f"no post-period rows ({cols.time} >= {start_year}) for the {label} group(s) "
                f"with observed {outcome!r}"
            )
    if cols.treat is not None:
        d_raw = pd.to_numeric(data[cols.treat], errors="coerce")
        if d_raw.isna().any() or not d_raw.isin([0, 1]).all():
            bad = data.index[~d_raw.isin([0, 1]).fillna(False).to_numpy(bool)][:5].tolist()
            raise DesignError(f"treatment column {cols.treat!r} must be 0/1; bad rows {bad}")
        D = d_raw.to_numpy(float)
    else:
        D = (is_treated & post).astype(float)
    if D.sum() == 0:
        raise DesignError("no treated post-period observations")

    # Units nested in groups: a unit that moved group is split into one unit per group.
    notes: list[str] = []
    unit_key = data[cols.unit].astype(str) + "|" + data[cols.group].astype(str)
    n_moved = int(unit_key.groupby(data[cols.unit].astype(str)).nunique().gt(1).sum())
    if n_moved:
        notes.append(f"{n_moved} unit(s) appear in more than one group; split into one per group")
    unit_codes, units = pd.factorize(unit_key, sort=True)
    group_codes, groups = pd.factorize(data[cols.group], sort=True)
    time_codes, times = pd.factorize(time, sort=True)
    cell_key = pd.MultiIndex.from_arrays([group_codes, time_codes])
    cell_codes, cells = pd.factorize(cell_key, sort=True)
    unit_group = np.zeros(len(units), dtype=int)
    unit_group[unit_codes] = group_codes

    n_dup = int(pd.DataFrame({"u": unit_codes, "t": time_codes}).duplicated().sum())
    if n_dup:
        raise DesignError(
            f"{n_dup} duplicated ({cols.unit}, {cols.time}) rows; need one row per unit and year"
        )

    yv = data[outcome].to_numpy(float)
    y_mean = float(yv.mean())
    y_sd = float(yv.std())
    if not y_sd > 0:
        raise DesignError(f"outcome {outcome!r} is constant over the analysis rows")
    tnum = pd.to_numeric(time, errors="coerce").to_numpy(float)
    if np.all(np.isfinite(tnum)) and np.std(tnum) > 0:
        time_scaled = (tnum - tnum.mean()) / tnum.std()
    else:
        time_scaled = (time_codes - time_codes.mean()) / max(time_codes.std(), 1.0)

    cov_list = []
    for c in covariates:
        v = data[c].to_numpy(float)
        sd = v.std()
        if not sd > 0:
            raise DesignError(f"covariate {c!r} is constant over the analysis rows")
        cov_list.append((v - v.mean()) / sd)
    cov = np.column_stack(cov_list) if cov_list else np.zeros((len(data), 0))

    rank_c = data[rank_col].to_numpy(float) - 0.5 if rank_col is not None else None
    data.attrs["rank_col"] = rank_col
    eff = effects(data, D, rank_c) if effects is not None else [EffectColumn("delta", D)]
    for e in eff:
        if not np.any(e.values != 0):
            raise DesignError(f"effect column {e.name!r} is identically zero on the analysis rows")
    present = {str(g) for g in groups}
    return PanelDesign(
        data=data,
        outcome=outcome,
        columns=cols,
        treated=treated,
        comparators=comps,
        start_year=start_year,
        y=(yv - y_mean) / y_sd,
        y_mean=y_mean,
        y_sd=y_sd,
        unit_idx=unit_codes.astype(int),
        unit_group=unit_group,
        group_idx=group_codes.astype(int),
        time_idx=time_codes.astype(int),
        cell_idx=cell_codes.astype(int),
        time_scaled=time_scaled,
        rank_c=rank_c,
        effects=eff,
        cov=cov,
        covariates=tuple(covariates),
        units=list(units),
        groups=[str(g) for g in groups],
        times=list(times),
        cells=[(str(groups[g]), times[t]) for g, t in cells],
        drops=drops,
        notes=notes,
        weights=None if weights_col is None else _relative(data[weights_col].to_numpy(float)),
        weights_col=weights_col,
        pool=tuple(p for p in pool if p in present),
        source=panel,
    )


def _relative(w: np.ndarray) -> np.ndarray:
    return w / w.mean()
