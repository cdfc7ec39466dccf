"""Synthetic national practice x year panels with a known data-generating process.

The default configuration mimics England: the 42 ICBs of :mod:`hepcausal.data.icb_table` with their
real practice counts, list sizes and IMD 2019 distributions, ~6,500 practices in the first year,
fiscal years 2018..2024, closures and mergers, and NHS Leicester, Leicestershire and Rutland (QK1)
treated from FY 2021/22 (``year == 2022``).

Data-generating process (outcome ``k``, practice ``i`` in ICB ``g``, year ``t``)::

    r_it   = deprivation_rank: population-weighted (list_size) relative rank of imd_score within
             ICB x year (hepcausal.inequality.ranks.add_relative_rank; 0 = most deprived)
    eta_it = alpha_gt + beta_gt * (r_it - 0.5) + u_i + dose_effect * hep_dose_it + e_it
    alpha_gt = mu + a_g + c_t + d_gt           (+ level_effect    if g treated and t >= start_year)
    beta_gt  = b0 + b_g + b_t + f_gt           (+ gradient_effect if g treated and t >= start_year)
    u_i ~ N(0, tau^2),  e_it ~ N(0, sigma^2)   (iid: the default, what the panel models assume)

``a_g``, ``b_g`` sum to zero over ICBs, ``c_t``, ``b_t`` sum to zero over years and the ICB x year
deviations ``d_gt``, ``f_gt`` are double-centred (zero row and column sums), so ``mu`` and ``b0``
are the grand means a sum-to-zero model estimates.  FTE outcomes are ``y = eta`` (identity scale,
so ``beta_gt`` is the SII in FTE per 1,000 weighted patients); negative draws are clipped to 0 and
counted in :attr:`SimulationTruth.clipped`.  Proportion outcomes use ``logit p = eta`` and
``y = Binomial(n, p) / n`` (``n`` = ``qof_max_points`` or ``gpps_responses``), so their truth is on
the logit scale; :meth:`SimulationTruth.sii_probability_scale` gives the implied probability-scale
SII.

Because ranks are computed within ICB x year with population weights, the weighted mean of
``r - 0.5`` is exactly zero, so ``alpha_gt`` is the population-weighted ICB-year mean of the linear
predictor net of the practice-specific terms.  The realised (finite-sample) targets that a per
ICB-year weighted regression of the noise-free linear predictor on rank recovers are
``alpha_gt + wmean(v)`` and ``beta_gt + wslope(v on r)`` with ``v = u_i + dose_effect * hep_dose``;
both are reported (columns ``*_realised``).  A model with ICB-year intercepts/slopes and
practice random effects targets ``alpha_gt`` / ``beta_gt``; per ICB-year classical SIIs (no
practice effects) target the realised columns.  Clipping of FTE values at 0 (rare, counted) is not
reflected in either.

Practices: IMD 2019 scores drawn from each ICB's real quantile function (constant over years, as in
the real panel); registered lists lognormal around the ICB's real median with a small-practice
component (a few < 1,000), growing ~2%/yr; weighted/registered ratio ~0.9-1.15 rising with
deprivation; sub-ICBs are blocks of the deprivation order (real codes); PCNs are groups of 4-8
practices within a sub-ICB.  Each year practices close (``closure_rate``; gone from that year) or
are absorbed by a PCN neighbour (``merger_rate``; the absorber's list jumps), recorded in
``truth.events``.  ``need_score = z(IMD) + 0.5 z(log weighted/registered) + 0.5 z(list turnover)``
(higher = more need; turnover is a latent practice attribute rising with deprivation).

Calibration (``benchmarks/calibrate_synthetic.py``, real 2018-2023 vs default synthetic): list
size median 7,804 vs 7,623, p90 15,437 vs 15,919; IMD median 21.4 vs 21.3; GP FTE per 1,000
weighted patients median 0.448 vs 0.458, ICB-year SII median 0.122 vs 0.113; QOF median 0.966 vs
0.968.  Known gaps: real FTE outcomes are right-skewed with 1-15% exact zeros (DPC is
zero-inflated), which identity-scale Gaussian outcomes do not reproduce.

A generator that is not the model: :class:`ErrorStructure` (``SimulationConfig.errors``) replaces
the iid ``e_it`` by stationary AR(1) noise plus practice-specific linear drift, with ICB-specific
noise scales (the treated ICB optionally noisier), Student-t tails and spells of exact zeros
(FTE outcomes).  Named settings: :func:`scenario` / :data:`SCENARIOS` (``model`` = iid,
``realistic`` = every feature at the real magnitudes of :data:`CALIBRATED_ERRORS`, and one per
feature).  ``realistic`` reproduces the residual structure of the real published design
(:func:`hepcausal.data.residual_stats.residual_stats` after removing practice and ICB x year
means; GP FTE real vs realistic: lag-1 within-practice correlation 0.36 vs 0.36, lags 3-5
-0.39..-0.50 vs -0.42..-0.55, SD of practice post-minus-pre changes by comparator ICB
0.089-0.134 vs 0.080-0.129, treated 0.164 vs 0.159, excess kurtosis 11.9 vs 12.3, zeros 1.2% vs
1.4%; the iid ``model`` gives -0.18, -0.16..-0.17, 0.041-0.050, 0.045, 0.0 and 0.2%).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.icb_table import ICB_BY_CODE, ICB_ROWS, IMD_PROBS, IcbRow
from hepcausal.inequality.ranks import add_relative_rank
from hepcausal.outcomes import OUTCOMES, SyntheticSpec, denominator_columns, synthetic_specs

__all__ = [
    "CALIBRATED_ERRORS",
    "SCENARIOS",
    "ErrorStructure",
    "SimulationConfig",
    "SimulationTruth",
    "SyntheticPanel",
    "scenario",
    "simulate_panel",
]


# Registered list size in the first year: per practice, lognormal around the ICB's 2022 median x
# LIST_MEDIAN_FACTOR (lists grow ~2%/yr), with a share of small practices (heavier left tail).
LIST_MEDIAN_FACTOR: Final = 0.95
LIST_SIGMA: Final = 0.5
LIST_SMALL_SHARE: Final = 0.1
LIST_SMALL_MEDIAN: Final = 3000.0
LIST_SMALL_SIGMA: Final = 0.7

SMALL_ICBS: Final = (S.LLR_ICB, *S.PUBLISHED_COMPARATORS, "QWE")

# Denominator columns the generator simulates (QOF maximum points by year, GPPS responses).
_SIMULATED_DENOMINATORS: Final = (S.QOF_MAX_POINTS, S.GPPS_RESPONSES)


def _default_icbs() -> tuple[IcbRow, ...]:
    return ICB_ROWS


def _default_gradient_effect() -> dict[str, float]:
    return {S.GP_FTE: -0.04}


@dataclass(frozen=True)
class ErrorStructure:
    """Within-practice error structure of the generator beyond the iid noise the models assume.

    Every feature is off by default (the default reproduces the iid ``e_it ~ N(0, sigma^2)`` of
    the panel models bit for bit).  With any feature on, the practice-year error of outcome ``k``
    (``sigma = SyntheticSpec.sigma * noise_scale``), practice ``i`` in ICB ``g``, year ``t`` is::

        e_it = scale * sigma * m_g * s_i * (x_it + drift_sd * d_i * (t - tbar))
        x_it = rho * x_i,t-1 + sqrt(1 - rho^2) * z_it     (stationary AR(1), x_i,first = z_i,first)
        m_g  = exp(ics_noise_sd * n_g) * (treated_noise_ratio if g is the treated ICB else 1)

    with ``z_it`` the iid standard normals of the default generator (so AR(1) reuses the same
    draws), ``d_i, n_g ~ N(0, 1)`` and, with heavy tails, ``s_i = sqrt((nu - 2) / chi2_nu)``
    (per practice, so ``e_it`` is marginally Student-t with ``nu`` degrees of freedom and the
    same SD; per row with ``tail_unit="row"``), else ``s_i = 1``.  Rate (FTE) outcomes are then
    set to exactly 0 in a share ``zero_share`` of practice-years, as spells: a two-state Markov
    chain per practice with stationary share ``zero_share`` (``treated_zero_share`` in the
    treated ICB) and ``P(zero next year | zero) = zero_persistence``.  The extra draws come
    from a separate random stream (``seed``, outcome), so switching a feature on leaves every
    other column of the panel unchanged.  The truth (``alpha_gt``, ``beta_gt``) is unchanged:
    drift, AR(1) noise and zeros are noise around it (zeros bias an identity-scale fit of
    the treated ICB downwards when ``treated_zero_share`` differs, as on the real data).

    Parameters
    ----------
    rho : float
        AR(1) coefficient of the within-practice noise, in [0, 1).
    drift_sd : float
        SD of the practice-specific linear trends (random slopes in time), per year, in units
        of ``sigma``; >= 0.
    ics_noise_sd : float
        SD of the log noise multiplier ``m_g`` per ICB; >= 0.
    treated_noise_ratio : float
        Extra noise multiplier of the treated ICB; > 0.
    nu : float or None
        Student-t degrees of freedom (> 2) of the heavy tails; None = Gaussian.
    tail_unit : {"practice", "row"}
        Whether the heavy-tail scale ``s`` is drawn once per practice (volatile practices) or
        per practice-year (isolated outliers).
    zero_share : float
        Share of exact zeros of rate outcomes, in [0, 0.5).
    treated_zero_share : float or None
        Zero share in the treated ICB (None = ``zero_share``).
    zero_persistence : float
        ``P(zero next year | zero this year)``, in [0, 1); with ``zero_persistence ==
        zero_share`` zeros are independent over years.
    scale : float
        Multiplier of ``sigma`` for the within-practice error; > 0.
    """

    rho: float = 0.0
    drift_sd: float = 0.0
    ics_noise_sd: float = 0.0
    treated_noise_ratio: float = 1.0
    nu: float | None = None
    tail_unit: Literal["practice", "row"] = "practice"
    zero_share: float = 0.0
    treated_zero_share: float | None = None
    zero_persistence: float = 0.0
    scale: float = 1.0

    @property
    def is_iid(self) -> bool:
        """True when the error is the models' iid Gaussian noise (no feature on)."""
        return (
            self.rho == 0.0
            and self.drift_sd == 0.0
            and self.ics_noise_sd == 0.0
            and self.treated_noise_ratio == 1.0
            and self.nu is None
            and self.scale == 1.0
            and not self.has_zeros
        )

    @property
    def has_zeros(self) -> bool:
        """True when rate outcomes get exact zeros."""
        return self.zero_share > 0.0 or bool(self.treated_zero_share)

    def validate(self) -> None:
        """Raise ValueError naming the offending field (``SimulationConfig.errors.<field>``)."""
        checks: list[tuple[str, bool, str]] = [
            ("rho", 0.0 <= self.rho < 1.0, "in [0, 1)"),
            ("drift_sd", self.drift_sd >= 0.0, ">= 0"),
            ("ics_noise_sd", self.ics_noise_sd >= 0.0, ">= 0"),
            ("treated_noise_ratio", self.treated_noise_ratio > 0.0, "> 0"),
            ("nu", self.nu is None or self.nu > 2.0, "None or > 2"),
            ("tail_unit", self.tail_unit in ("practice", "row"), "'practice' or 'row'"),
            ("zero_share", 0.0 <= self.zero_share < 0.5, "in [0, 0.5)"),
            (
                "treated_zero_share",
                self.treated_zero_share is None or 0.0 <= self.treated_zero_share < 0.5,
                "None or in [0, 0.5)",
            ),
            ("zero_persistence", 0.0 <= self.zero_persistence < 1.0, "in [0, 1)"),
            ("scale", self.scale > 0.0, "> 0"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(
                    f"SimulationConfig.errors.{name} must be {rule}, got {getattr(self, name)!r}"
                )

    def replace(self, **changes: object) -> ErrorStructure:
        """Copy with some fields changed.

        Parameters
        ----------
        **changes
            Field values.

        Returns
        -------
        ErrorStructure
            The new error structure.
        """
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """Field values as a plain dict (recorded in the truth).

        Returns
        -------
        dict
            Field name -> value.
        """
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SimulationConfig:
    """Configuration of :func:`simulate_panel` (all effects on the model scale of each outcome).

    Attributes
    ----------
    n_practices : int, default 6500
        Practices in the first year, split over ``icbs`` proportionally to their real
        practice counts (or equally with ``equal_icb_sizes``).
    icbs : tuple of IcbRow or str, default the 42 real ICBs
        ICB rows (code, name, size, median list, sub-ICB codes, IMD quantiles).
        Pass ICB codes (str) or :class:`IcbRow` objects.
    equal_icb_sizes : bool, default False
        Give every ICB ``n_practices / len(icbs)`` practices.
    years : tuple of int, default schema.STUDY_YEARS
        Fiscal years (year end), consecutive.
    treated_icb : str, default schema.LLR_ICB
        ICB code receiving the intervention.
    start_year : int, default schema.HEP_START_YEAR
        First treated fiscal year (2022 = FY 2021/22).
    gradient_effect : mapping of str to float or float, default {schema.GP_FTE: -0.04}
        True change of ``beta_gt`` (SII on the model scale) in the treated ICB from
        ``start_year``; a mapping outcome -> value, or a scalar applied to ``effect_outcomes``.
    level_effect : mapping of str to float or float, default 0.0
        True change of ``alpha_gt`` in the treated ICB from ``start_year`` (same form).
    effect_outcomes : tuple of str, default (schema.GP_FTE,)
        Outcomes a scalar ``gradient_effect`` / ``level_effect`` / ``dose_effect`` applies to.
    dose : bool, default False
        If True, only the most under-funded half of treated-ICB practices (highest
        ``need_score`` in ``start_year``) are funded (``hep_treated``) and receive
        ``hep_dose`` GBP per weighted patient (between ``dose_range``, increasing with need);
        if False all treated-ICB practices have ``hep_treated = 1`` from ``start_year`` and
        ``hep_dose = 0``.
    dose_range : tuple of float, default (2.0, 10.0)
        (min, max) dose in GBP per weighted patient.
    dose_effect : mapping of str to float or float, default 0.0
        Change of ``eta`` per GBP per weighted patient (mapping or scalar), applied
        only when ``dose`` is True.
    closure_rate : float, default 0.007
        Annual probability that a practice closes (it disappears from later years).
    merger_rate : float, default 0.008
        Annual probability that a practice is absorbed by another practice of its PCN
        (the absorber's list jumps by the absorbed list).
    list_growth : float, default 0.02
        Mean annual growth of registered lists (log scale).
    outcome_specs : mapping of str to SyntheticSpec
        Generative constants per outcome (panel column ->
        :class:`hepcausal.outcomes.SyntheticSpec`); default every outcome of the outcome table
        with a ``synthetic`` spec.  Only these outcomes are simulated, in table order.
    noise_scale : float, default 1.0
        Multiplies ``tau``, ``sigma`` and all ICB x year deviation SDs (0 = noise-free
        linear predictor; proportion outcomes keep their binomial sampling noise).
    gpps_responses : tuple of int, default (100, 300)
        (min, max) GPPS responses per practice-year (uniform integers).
    qof_missing_years : tuple of int, default ()
        Years whose QOF is set missing (the real 2020/21 = 2021 is unpublished).
    errors : ErrorStructure or mapping or str, default ErrorStructure()
        Within-practice error structure (:class:`ErrorStructure`: AR(1), practice drift,
        ICB noise scales, heavy tails, exact zeros), one for every outcome or a mapping
        outcome -> ErrorStructure (outcomes not in it: iid); default iid Gaussian, what the
        models assume.  Also accepted (resolved on construction, e.g. from a TOML config):
        a scenario name of :data:`SCENARIOS` (``"realistic"``), a dict of ErrorStructure
        fields, or a mapping outcome -> dict of fields.
    seed : int, default 20240401
        Random seed; same config => identical panel.
    """

    n_practices: int = 6500
    icbs: tuple[IcbRow | str, ...] = field(default_factory=_default_icbs)
    equal_icb_sizes: bool = False
    years: tuple[int, ...] = S.STUDY_YEARS
    treated_icb: str = S.LLR_ICB
    start_year: int = S.HEP_START_YEAR
    gradient_effect: Mapping[str, float] | float = field(default_factory=_default_gradient_effect)
    level_effect: Mapping[str, float] | float = 0.0
    effect_outcomes: tuple[str, ...] = (S.GP_FTE,)
    dose: bool = False
    dose_range: tuple[float, float] = (2.0, 10.0)
    dose_effect: Mapping[str, float] | float = 0.0
    closure_rate: float = 0.007
    merger_rate: float = 0.008
    list_growth: float = 0.02
    outcome_specs: Mapping[str, SyntheticSpec] = field(default_factory=synthetic_specs)
    noise_scale: float = 1.0
    gpps_responses: tuple[int, int] = (100, 300)
    qof_missing_years: tuple[int, ...] = ()
    errors: ErrorStructure | Mapping[str, ErrorStructure] | str = field(
        default_factory=ErrorStructure
    )
    seed: int = 20240401

    def __post_init__(self) -> None:
        # configs (TOML) name a scenario or give plain dicts: resolve to ErrorStructure objects
        object.__setattr__(self, "errors", _resolve_errors(self.errors, self.simulated_outcomes()))

    @classmethod
    def small(cls, **overrides: object) -> SimulationConfig:
        """Fast preset for tests: QK1, the 10 published comparators and QWE, ~40 practices each."""
        base: dict[str, object] = {
            "n_practices": 480,
            "icbs": tuple(ICB_BY_CODE[c] for c in SMALL_ICBS),
            "equal_icb_sizes": True,
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    @classmethod
    def published_design(cls, **overrides: object) -> SimulationConfig:
        """The published design: QK1 and the 10 comparators, ~1,660 practices, 2018-2024.

        Practices are split over the 11 ICBs proportionally to their real practice counts; the
        real GP FTE panel of these ICBs has 1,661 practices (1,644-1,661 per year).

        Parameters
        ----------
        **overrides
            Other :class:`SimulationConfig` fields.

        Returns
        -------
        SimulationConfig
            The configuration.
        """
        base: dict[str, object] = {
            "n_practices": 1661,
            "icbs": tuple(ICB_BY_CODE[c] for c in (S.LLR_ICB, *S.PUBLISHED_COMPARATORS)),
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> SimulationConfig:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # -- resolved views --------------------------------------------------------------------------
    def icb_rows(self) -> tuple[IcbRow, ...]:
        rows = []
        for item in self.icbs:
            if isinstance(item, str):
                if item not in ICB_BY_CODE:
                    raise ValueError(f"SimulationConfig.icbs: unknown ICB code {item!r}")
                rows.append(ICB_BY_CODE[item])
            else:
                rows.append(IcbRow(*item))
        return tuple(rows)

    def effect(self, which: str, outcome: str) -> float:
        """Resolved true effect (``gradient``, ``level`` or ``dose``) for ``outcome``."""
        value = {
            "gradient": self.gradient_effect,
            "level": self.level_effect,
            "dose": self.dose_effect,
        }[which]
        if which == "dose" and not self.dose:
            return 0.0
        if isinstance(value, Mapping):
            return float(value.get(outcome, 0.0))
        return float(value) if outcome in self.effect_outcomes else 0.0

    def validate(self) -> None:
        """Raise ValueError naming the offending config key."""
        rows = self.icb_rows()
        codes = [r.code for r in rows]
        if len(set(codes)) != len(codes):
            raise ValueError("SimulationConfig.icbs: duplicate ICB codes")
        if self.treated_icb not in codes:
            raise ValueError(f"SimulationConfig.treated_icb {self.treated_icb!r} not in icbs")
        yrs = list(self.years)
        if len(yrs) < 2 or yrs != list(range(yrs[0], yrs[0] + len(yrs))):
            raise ValueError("SimulationConfig.years must be >= 2 consecutive years")
        if not yrs[0] < self.start_year <= yrs[-1]:
            raise ValueError("SimulationConfig.start_year must leave >= 1 pre and >= 1 post year")
        if self.n_practices < 3 * len(rows):
            raise ValueError("SimulationConfig.n_practices must be >= 3 per ICB")
        for key in ("closure_rate", "merger_rate"):
            v = getattr(self, key)
            if not 0.0 <= v < 0.5:
                raise ValueError(f"SimulationConfig.{key} must be in [0, 0.5), got {v}")
        if self.noise_scale < 0:
            raise ValueError("SimulationConfig.noise_scale must be >= 0")
        errors = self._errors()
        if isinstance(errors, Mapping):
            bad = sorted(set(errors) - set(self.outcome_specs))
            if bad:
                raise ValueError(f"SimulationConfig.errors: {bad} are not simulated outcomes")
            structures = list(errors.values())
        else:
            structures = [errors]
        for err in structures:
            if not isinstance(err, ErrorStructure):
                raise ValueError("SimulationConfig.errors must hold ErrorStructure objects")
            err.validate()
        lo, hi = self.dose_range
        if not 0 <= lo <= hi:
            raise ValueError("SimulationConfig.dose_range must satisfy 0 <= min <= max")
        unknown = sorted(set(self.outcome_specs) - set(OUTCOMES))
        if unknown:
            raise ValueError(
                f"SimulationConfig.outcome_specs: {unknown} are not outcome-table columns "
                f"{list(OUTCOMES)}"
            )
        simulated = self.simulated_outcomes()
        for k in simulated:
            denom = OUTCOMES[k].denominator
            if OUTCOMES[k].is_proportion and denom not in _SIMULATED_DENOMINATORS:
                raise ValueError(
                    f"SimulationConfig.outcome_specs: the generator cannot simulate {k!r} "
                    f"(denominator {denom!r} is not one of {list(_SIMULATED_DENOMINATORS)})"
                )
        for name in ("gradient_effect", "level_effect", "dose_effect"):
            v = getattr(self, name)
            if isinstance(v, Mapping) and set(v) - set(simulated):
                raise ValueError(
                    f"SimulationConfig.{name}: unknown outcomes {sorted(set(v) - set(simulated))} "
                    f"(simulated: {list(simulated)})"
                )

    def errors_for(self, outcome: str) -> ErrorStructure:
        """The error structure of one outcome.

        Parameters
        ----------
        outcome : str
            Panel column.

        Returns
        -------
        ErrorStructure
            ``errors`` itself, or its entry for ``outcome`` (iid if it has none).
        """
        errors = self._errors()
        if isinstance(errors, Mapping):
            return errors.get(outcome, ErrorStructure())
        return errors

    def _errors(self) -> ErrorStructure | Mapping[str, ErrorStructure]:
        # ``errors`` is resolved by __post_init__; this narrows its declared type
        if isinstance(self.errors, str):
            return _resolve_errors(self.errors, self.simulated_outcomes())
        return self.errors

    def simulated_outcomes(self) -> tuple[str, ...]:
        """Panel columns of the simulated outcomes, in outcome-table order.

        Returns
        -------
        tuple of str
            The outcome-table columns that have an entry in ``outcome_specs``.
        """
        return tuple(k for k in OUTCOMES if k in self.outcome_specs)


@dataclass
class SimulationTruth:
    """The known truth behind a synthetic panel.

    Attributes
    ----------
    config : SimulationConfig
        The configuration used.
    params : dict of str to dict
        Outcome -> dict with ``mu``, ``b0``, ``tau``, ``sigma`` (floats), ``a_g``, ``b_g``
        (Series by ICB), ``c_t``, ``b_t`` (Series by year), ``d_gt``, ``f_gt`` (DataFrames ICB x
        year deviations) and ``scale`` (``"identity"`` or ``"logit"``).
    sii : pandas.DataFrame
        Columns outcome, icb_code, year, sii (= beta_gt incl. treatment, model scale),
        sii_realised (beta_gt + weighted slope of the practice-specific terms on rank), scale.
    level : pandas.DataFrame
        Columns outcome, icb_code, year, level (= alpha_gt incl. treatment),
        level_realised (alpha_gt + weighted mean of the practice-specific terms), scale.
    practice_effects : pandas.DataFrame
        Columns outcome, practice_code, u.
    gradient_effect, level_effect, dose_effect : dict of str to float
        Outcome -> true effect (model scale).
    events : pandas.DataFrame
        Closures and mergers (practice_code, year = first year absent, event,
        absorbed_into).
    clipped : dict of str to int
        Outcome -> number of FTE values below 0 clipped to 0.
    zeroed : dict of str to int, default {}
        Outcome -> number of FTE values set to exactly 0 by ``errors.zero_share`` (empty
        without zeros).  ``params[outcome]`` also holds ``errors`` (the
        :class:`ErrorStructure` as a dict) and ``ics_noise`` (Series of the ICB noise
        multipliers ``m_g``; all 1 with iid errors).
    """

    config: SimulationConfig
    params: dict[str, dict[str, object]]
    sii: pd.DataFrame
    level: pd.DataFrame
    practice_effects: pd.DataFrame
    gradient_effect: dict[str, float]
    level_effect: dict[str, float]
    dose_effect: dict[str, float]
    events: pd.DataFrame
    clipped: dict[str, int]
    zeroed: dict[str, int] = field(default_factory=dict)

    def _contrast(
        self, table: pd.DataFrame, value: str, outcome: str, comparators: Sequence[str] | None
    ) -> float:
        cfg = self.config
        tab = table.loc[table["outcome"] == outcome]
        if tab.empty:
            raise KeyError(f"unknown outcome {outcome!r}")
        treated = cfg.treated_icb
        comps = (
            list(comparators) if comparators is not None else sorted(set(tab[S.ICB]) - {treated})
        )
        unknown = set(comps) - set(tab[S.ICB])
        if unknown or treated in comps or not comps:
            raise ValueError(
                f"comparators must be non-empty ICB codes other than {treated}: {comps}"
            )
        post = tab[S.YEAR] >= cfg.start_year

        def change(codes: list[str]) -> float:
            sub = tab[S.ICB].isin(codes)
            per_icb = tab.loc[sub].groupby([S.ICB, post[sub]])[value].mean().unstack()
            return float((per_icb[True] - per_icb[False]).mean())

        return change([treated]) - change(comps)

    def ddd(
        self, outcome: str, comparators: Sequence[str] | None = None, *, realised: bool = False
    ) -> float:
        """Realised DDD estimand on the gradient (model scale).

        ``[mean_post beta_Tt - mean_pre beta_Tt] - mean over comparators c of
        [mean_post beta_ct - mean_pre beta_ct]`` (comparators default to all other ICBs).  With the
        additive effect and no differential trends this equals ``gradient_effect[outcome]``
        exactly when the ICB x year gradient deviations are zero (``noise_scale=0``), and up to
        their contrast otherwise.  ``realised=True`` uses ``sii_realised`` (adds the finite-sample
        slope of the practice effects / dose terms).
        """
        return self._contrast(self.sii, "sii_realised" if realised else "sii", outcome, comparators)

    def did(
        self, outcome: str, comparators: Sequence[str] | None = None, *, realised: bool = False
    ) -> float:
        """Realised DiD estimand on the level ``alpha_gt`` (same definition as :meth:`ddd`).

        Equals ``level_effect[outcome]`` when the ICB x year intercept deviations are zero.
        """
        col = "level_realised" if realised else "level"
        return self._contrast(self.level, col, outcome, comparators)

    def sii_probability_scale(self) -> pd.DataFrame:
        """Implied probability-scale SII of the proportion outcomes per ICB-year.

        ``expit(alpha + beta/2) - expit(alpha - beta/2)``: the difference in success probability
        between the least and most deprived ends for a practice with ``u = e = 0``.
        """
        lv = self.level.set_index(["outcome", S.ICB, S.YEAR])["level"]
        out = self.sii.loc[self.sii["scale"] == "logit"].copy()
        a = lv.loc[list(zip(out["outcome"], out[S.ICB], out[S.YEAR], strict=True))].to_numpy()
        b = out["sii"].to_numpy()
        out["sii_probability"] = _expit(a + b / 2) - _expit(a - b / 2)
        return out.reset_index(drop=True)


@dataclass
class SyntheticPanel:
    """A synthetic panel (schema of :mod:`hepcausal.schema`) and its :class:`SimulationTruth`.

    Attributes
    ----------
    panel : pandas.DataFrame
        Practice x fiscal-year panel (year = fiscal-year end) with the columns of the real NHS
        panel, including treatment (``hep_treated``, ``hep_dose``) and deprivation rank.
    truth : SimulationTruth
        The parameters and true effects the panel was drawn from.
    """

    panel: pd.DataFrame
    truth: SimulationTruth


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _allocate(rows: tuple[IcbRow, ...], n: int, equal: bool) -> np.ndarray:
    w = np.ones(len(rows)) if equal else np.array([r.n_practices for r in rows], float)
    raw = n * w / w.sum()
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts))[: n - counts.sum()]] += 1
    return np.maximum(counts, 3)


def _centre(x: np.ndarray) -> np.ndarray:
    return x - x.mean()


def _double_centre(m: np.ndarray) -> np.ndarray:
    return m - m.mean(axis=0, keepdims=True) - m.mean(axis=1, keepdims=True) + m.mean()


# Random stream of the error-structure draws: (seed, _AUX_STREAM, outcome index) keeps the main
# stream, hence every other column, identical whatever the error structure.
_AUX_STREAM: Final = 7919


def _structured_errors(
    e: np.ndarray,
    err: ErrorStructure,
    aux: np.random.Generator,
    *,
    sigma: float,
    practice: np.ndarray,
    icb: np.ndarray,
    treated: int,
    t_centred: np.ndarray,
    n_practices: int,
    zeros: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply :class:`ErrorStructure` to the iid errors ``e`` (rows sorted by practice, year).

    Parameters
    ----------
    e : numpy.ndarray
        iid ``N(0, sigma^2)`` errors of the default generator, one per row.
    err : ErrorStructure
        The error structure.
    aux : numpy.random.Generator
        Separate stream for the extra draws (always drawn in the same order).
    sigma : float
        Noise SD of the outcome (after ``noise_scale``).
    practice, icb : numpy.ndarray
        Practice and ICB index of each row (rows of a practice contiguous, years ascending).
    treated : int
        Index of the treated ICB.
    t_centred : numpy.ndarray
        Year of each row minus the mean study year.
    n_practices : int
        Number of practices (``practice`` indexes ``0..n_practices - 1``).
    zeros : bool
        Whether to draw exact zeros (rate outcomes).

    Returns
    -------
    tuple of numpy.ndarray
        The new errors, the ICB noise multipliers ``m_g`` and the boolean mask of zero rows.
    """
    n_icb = int(icb.max()) + 1 if icb.size else 0
    n_g = aux.standard_normal(n_icb)
    d_i = aux.standard_normal(n_practices)
    nu = err.nu if err.nu is not None else np.inf
    chi_p = aux.chisquare(nu, n_practices) if err.nu is not None else np.full(n_practices, np.inf)
    chi_r = aux.chisquare(nu, e.size) if err.nu is not None else np.full(e.size, np.inf)
    u_zero = aux.uniform(size=e.size)

    first = np.ones(e.size, dtype=bool)
    first[1:] = practice[1:] != practice[:-1]
    start = np.flatnonzero(first)
    pos = np.arange(e.size) - start[np.cumsum(first) - 1]

    innov = e
    if err.nu is not None and err.tail_unit == "row":
        innov = e * np.sqrt((nu - 2.0) / chi_r)
    x = innov.copy()
    if err.rho:
        c = np.sqrt(1.0 - err.rho**2)
        for k in range(1, int(pos.max()) + 1 if pos.size else 1):
            idx = np.flatnonzero(pos == k)
            x[idx] = err.rho * x[idx - 1] + c * innov[idx]
    x = x + sigma * err.drift_sd * d_i[practice] * t_centred
    mult = np.exp(err.ics_noise_sd * n_g)
    mult[treated] *= err.treated_noise_ratio
    if err.nu is not None and err.tail_unit == "practice":
        x = x * np.sqrt((nu - 2.0) / chi_p)[practice]
    out = err.scale * mult[icb] * x

    zero_rows = np.zeros(e.size, dtype=bool)
    if zeros and err.has_zeros:
        share = np.full(n_icb, err.zero_share)
        if err.treated_zero_share is not None:
            share[treated] = err.treated_zero_share
        s_row = share[icb]
        b = err.zero_persistence
        enter = s_row * (1.0 - b) / (1.0 - s_row)  # stationary share s: s = enter / (1 - b + enter)
        zero_rows = np.where(first, u_zero < s_row, False)
        for k in range(1, int(pos.max()) + 1 if pos.size else 1):
            idx = np.flatnonzero(pos == k)
            p = np.where(zero_rows[idx - 1], b, enter[idx])
            zero_rows[idx] = u_zero[idx] < p
    return out, mult, zero_rows


def simulate_panel(config: SimulationConfig | None = None) -> SyntheticPanel:
    """Simulate a practice x year panel and its truth (deterministic given ``config.seed``).

    Parameters
    ----------
    config : SimulationConfig or None, default None
        Generator settings; None uses the default ``SimulationConfig()`` (national panel, GP FTE
        gradient effect of -0.04 in LLR from FY 2021/22).

    Returns
    -------
    SyntheticPanel
        The panel and its :class:`SimulationTruth`.

    Raises
    ------
    ValueError
        When ``config`` fails :meth:`SimulationConfig.validate` (unknown or duplicate ICBs,
        non-consecutive years, no pre or post period, ...).
    """
    cfg = config or SimulationConfig()
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    rows = cfg.icb_rows()
    years = np.asarray(cfg.years)
    n_years = len(years)
    counts = _allocate(rows, cfg.n_practices, cfg.equal_icb_sizes)
    n = int(counts.sum())
    icb_idx = np.repeat(np.arange(len(rows)), counts)

    # --- static practice attributes ------------------------------------------------------------
    imd = np.empty(n)
    base_list = np.empty(n)
    sub_icb = np.empty(n, dtype=object)
    pcn = np.empty(n, dtype=object)
    pcn_id = np.empty(n, dtype=int)
    pcn_counter = 0
    probs = np.asarray(IMD_PROBS)
    for g, row in enumerate(rows):
        idx = np.flatnonzero(icb_idx == g)
        m = idx.size
        imd[idx] = np.interp(rng.uniform(size=m), probs, np.asarray(row.imd_quantiles))
        # lognormal list sizes around the ICB median; ~1.5% small/atypical practices
        comp = rng.uniform(size=m)
        base_list[idx] = np.exp(
            np.where(
                comp < LIST_SMALL_SHARE,
                rng.normal(np.log(LIST_SMALL_MEDIAN), LIST_SMALL_SIGMA, m),
                rng.normal(np.log(row.median_list * LIST_MEDIAN_FACTOR), LIST_SIGMA, m),
            )
        )
        # sub-ICBs: contiguous blocks of (noisy) deprivation order so sub-ICBs differ in IMD
        order = np.argsort(imd[idx] + rng.normal(0, 6.0, m))
        k = len(row.sub_icbs)
        sub_sizes = np.diff(np.round(np.linspace(0, m, k + 1)).astype(int))
        sub_icb[idx[order]] = np.repeat(np.asarray(row.sub_icbs, dtype=object), sub_sizes)
        # PCNs: groups of 4-8 practices within each sub-ICB
        for s in row.sub_icbs:
            members = rng.permutation(idx[sub_icb[idx] == s])
            start = 0
            while start < members.size:
                size = int(rng.integers(4, 9))
                if members.size - (start + size) < 4:
                    size = members.size - start
                pcn_id[members[start : start + size]] = pcn_counter
                pcn[members[start : start + size]] = f"U{10000 + pcn_counter:05d}"
                pcn_counter += 1
                start += size
    practice_codes = np.array([f"S{i + 1:05d}" for i in range(n)], dtype=object)
    z_imd = (imd - 22.0) / 12.0
    # weighted / registered ratio: persistent, rising with deprivation (corr ~0.2 in real data)
    log_ratio_i = 0.02 * z_imd + rng.normal(0.0, 0.09, n)
    turnover = np.clip(0.08 + 0.025 * z_imd + rng.normal(0.0, 0.03, n), 0.01, None)

    # --- list sizes over time, closures and mergers --------------------------------------------
    growth_i = rng.normal(cfg.list_growth, 0.03, n)
    tt = np.arange(n_years)
    list_mat = base_list[:, None] * np.exp(
        growth_i[:, None] * tt[None, :] + rng.normal(0.0, 0.015, (n, n_years))
    )
    alive = np.ones((n, n_years), dtype=bool)
    events = []
    for j in range(1, n_years):
        live = np.flatnonzero(alive[:, j])
        u = rng.uniform(size=live.size)
        closing = live[u < cfg.closure_rate]
        merging = live[(u >= cfg.closure_rate) & (u < cfg.closure_rate + cfg.merger_rate)]
        for i in closing:
            alive[i, j:] = False
            events.append((practice_codes[i], int(years[j]), "closure", None))
        gone = set(closing.tolist())
        for i in merging:
            partners = [
                p
                for p in np.flatnonzero((pcn_id == pcn_id[i]) & alive[:, j])
                if p != i and p not in gone and p not in set(merging.tolist())
            ]
            if not partners:
                continue
            p = int(rng.choice(partners))
            list_mat[p, j:] += list_mat[i, j:]
            alive[i, j:] = False
            gone.add(int(i))
            events.append((practice_codes[i], int(years[j]), "merger", practice_codes[p]))
    ev = pd.DataFrame(events, columns=[S.PRACTICE, S.YEAR, "event", "absorbed_into"])

    pi, ti = np.nonzero(alive)
    df = pd.DataFrame(
        {
            S.PRACTICE: practice_codes[pi],
            S.YEAR: years[ti].astype("int64"),
            S.PCN: pcn[pi],
            S.SUB_ICB: sub_icb[pi],
            S.ICB: np.array([r.code for r in rows], dtype=object)[icb_idx[pi]],
            S.ICB_NAME: np.array([r.name for r in rows], dtype=object)[icb_idx[pi]],
            S.LIST_SIZE: np.round(list_mat[pi, ti], 1),
        }
    )
    ratio = np.exp(log_ratio_i[pi] + rng.normal(0.0, 0.01, pi.size))
    df[S.WEIGHTED_LIST_SIZE] = np.round(df[S.LIST_SIZE].to_numpy() * ratio, 1)
    df[S.IMD] = np.round(imd[pi], 3)
    df[S.IMD2015] = np.round(imd[pi] * np.exp(rng.normal(0.0, 0.06, n))[pi], 3)
    df = add_relative_rank(df, S.IMD, S.LIST_SIZE, by=[S.ICB, S.YEAR], out=S.DEPRIVATION_RANK)
    need = z_imd + (log_ratio_i / 0.09) * 0.5 + (turnover - 0.08) / 0.03 * 0.5
    df[S.NEED_SCORE] = np.round(need[pi], 4)
    df = add_relative_rank(df, S.NEED_SCORE, S.LIST_SIZE, by=[S.ICB, S.YEAR], out=S.NEED_RANK)

    # --- treatment and dose ----------------------------------------------------------------------
    g_idx = icb_idx[pi]
    treated_g = [r.code for r in rows].index(cfg.treated_icb)
    in_treated = g_idx == treated_g
    post = years[ti] >= cfg.start_year
    dose_i = np.zeros(n)
    if cfg.dose:
        start_j = int(np.flatnonzero(years == cfg.start_year)[0])
        cand = np.flatnonzero((icb_idx == treated_g) & alive[:, start_j])
        ranked = cand[np.argsort(-need[cand], kind="stable")]
        funded = ranked[: int(np.ceil(ranked.size / 2))]
        if funded.size:
            nr = need[funded]
            scale = (nr - nr.min()) / (np.ptp(nr) if np.ptp(nr) > 0 else 1.0)
            lo, hi = cfg.dose_range
            dose_i[funded] = np.round(lo + (hi - lo) * scale, 2)
        hep_dose = np.where(in_treated & post, dose_i[pi], 0.0)
        hep_treated = (hep_dose > 0).astype("int64")
    else:
        hep_dose = np.zeros(pi.size)
        hep_treated = (in_treated & post).astype("int64")
    df[S.HEP_TREATED] = hep_treated
    df[S.HEP_DOSE] = hep_dose

    # --- outcomes --------------------------------------------------------------------------------
    r = df[S.DEPRIVATION_RANK].to_numpy() - 0.5
    w = df[S.LIST_SIZE].to_numpy()
    cell = g_idx * n_years + ti
    n_cells = len(rows) * n_years
    sw = np.bincount(cell, weights=w, minlength=n_cells)
    swr2 = np.bincount(cell, weights=w * r * r, minlength=n_cells)
    icb_codes = [r_.code for r_ in rows]
    qof_max = np.where(years[ti] <= 2020, 559, 635).astype("int64")
    lo_n, hi_n = cfg.gpps_responses
    gpps_n = rng.integers(lo_n, hi_n + 1, pi.size).astype("int64")
    df[S.QOF_MAX_POINTS] = qof_max
    df[S.GPPS_RESPONSES] = gpps_n
    params: dict[str, dict[str, object]] = {}
    sii_rows, level_rows, pe_rows = [], [], []
    clipped: dict[str, int] = {}
    zeroed: dict[str, int] = {}
    ns = cfg.noise_scale
    tc = years - years.mean()
    outcomes = cfg.simulated_outcomes()
    for col in outcomes:
        sp = cfg.outcome_specs[col]
        orow = OUTCOMES[col]
        a_g = _centre(rng.normal(0, sp.sd_icb, len(rows)))
        b_g = _centre(rng.normal(0, sp.sd_icb_gradient, len(rows)))
        c_t = _centre(
            sp.trend * tc + sp.step_2022 * (years >= 2022) + rng.normal(0, sp.sd_year, n_years)
        )
        b_t = _centre(sp.gradient_trend * tc + rng.normal(0, sp.sd_year_gradient, n_years))
        d_gt = _double_centre(rng.normal(0, sp.sd_icb_year * ns, (len(rows), n_years)))
        f_gt = _double_centre(rng.normal(0, sp.sd_icb_year_gradient * ns, (len(rows), n_years)))
        u_i = rng.normal(0, sp.tau * ns, n)
        e = rng.normal(0, sp.sigma * ns, pi.size)
        zero_rows = np.zeros(pi.size, dtype=bool)
        ics_mult = np.ones(len(rows))
        err = cfg.errors_for(col)
        if orow.is_proportion and err.has_zeros:
            err = err.replace(zero_share=0.0, treated_zero_share=None)  # zeros: rates only
        e_iid = e
        aux = None
        if not err.is_iid:
            aux = np.random.default_rng([cfg.seed, _AUX_STREAM, list(OUTCOMES).index(col)])
            e, ics_mult, zero_rows = _structured_errors(
                e,
                err,
                aux,
                sigma=sp.sigma * ns,
                practice=pi,
                icb=g_idx,
                treated=treated_g,
                t_centred=years[ti] - years.mean(),
                n_practices=n,
                zeros=not orow.is_proportion,
            )
        treat_gt = np.zeros((len(rows), n_years))
        treat_gt[treated_g, years >= cfg.start_year] = 1.0
        lev_eff, grad_eff, dose_eff = (cfg.effect(x, col) for x in ("level", "gradient", "dose"))
        alpha = sp.mu + a_g[:, None] + c_t[None, :] + d_gt + lev_eff * treat_gt
        beta = sp.b0 + b_g[:, None] + b_t[None, :] + f_gt + grad_eff * treat_gt
        v = u_i[pi] + dose_eff * hep_dose
        eta = alpha.ravel()[cell] + beta.ravel()[cell] * r + v + e
        # realised targets: weighted projection of the practice-specific terms on [1, r - 0.5]
        v_mean = np.bincount(cell, weights=w * v, minlength=n_cells) / np.where(sw > 0, sw, 1)
        v_slope = np.bincount(cell, weights=w * r * v, minlength=n_cells) / np.where(
            swr2 > 0, swr2, 1
        )
        scale = "logit" if orow.is_proportion else "identity"
        if not orow.is_proportion:
            clipped[col] = int((eta < 0).sum())
            y = np.round(np.maximum(eta, 0.0), 6)
            if err.has_zeros:
                y = np.where(zero_rows, 0.0, y)
                zeroed[col] = int(zero_rows.sum())
        else:
            nn = df[orow.denominator].to_numpy()
            if aux is None:
                y = rng.binomial(nn, _expit(eta)) / nn
            else:
                # advance the main stream exactly as the iid generator would (the binomial
                # sampler's consumption depends on p), then draw the outcome from the aux stream:
                # later outcomes stay identical whatever this outcome's error structure
                rng.binomial(nn, _expit(eta - e + e_iid))
                y = aux.binomial(nn, _expit(eta)) / nn
            if col == S.QOF and cfg.qof_missing_years:
                y = np.where(np.isin(years[ti], cfg.qof_missing_years), np.nan, y)
        df[col] = y
        params[col] = {
            "mu": sp.mu,
            "b0": sp.b0,
            "tau": sp.tau * ns,
            "sigma": sp.sigma * ns,
            "scale": scale,
            "a_g": pd.Series(a_g, index=icb_codes, name="a_g"),
            "b_g": pd.Series(b_g, index=icb_codes, name="b_g"),
            "c_t": pd.Series(c_t, index=years, name="c_t"),
            "b_t": pd.Series(b_t, index=years, name="b_t"),
            "d_gt": pd.DataFrame(d_gt, index=icb_codes, columns=years),
            "f_gt": pd.DataFrame(f_gt, index=icb_codes, columns=years),
            "errors": err.to_dict(),
            "ics_noise": pd.Series(ics_mult, index=icb_codes, name="ics_noise"),
        }
        present = sw.reshape(len(rows), n_years) > 0
        gg, yy = np.nonzero(present)
        flat = gg * n_years + yy
        base = {
            "outcome": col,
            S.ICB: np.asarray(icb_codes, dtype=object)[gg],
            S.YEAR: years[yy],
        }
        sii_rows.append(
            pd.DataFrame(
                {
                    **base,
                    "sii": beta[gg, yy],
                    "sii_realised": beta[gg, yy] + v_slope[flat],
                    "scale": scale,
                }
            )
        )
        level_rows.append(
            pd.DataFrame(
                {
                    **base,
                    "level": alpha[gg, yy],
                    "level_realised": alpha[gg, yy] + v_mean[flat],
                    "scale": scale,
                }
            )
        )
        pe_rows.append(pd.DataFrame({"outcome": col, S.PRACTICE: practice_codes, "u": u_i}))

    df = df.sort_values([S.PRACTICE, S.YEAR], kind="stable").reset_index(drop=True)
    column_order = [
        *S.ID_COLUMNS,
        S.LIST_SIZE,
        S.WEIGHTED_LIST_SIZE,
        S.IMD,
        S.IMD2015,
        S.DEPRIVATION_RANK,
        S.NEED_SCORE,
        S.NEED_RANK,
        S.HEP_TREATED,
        S.HEP_DOSE,
        *outcomes,
        *[c for c in denominator_columns() if c in _SIMULATED_DENOMINATORS],
    ]
    df = df[column_order]
    for c in (S.PRACTICE, S.PCN, S.SUB_ICB, S.ICB, S.ICB_NAME):
        df[c] = df[c].astype("str")
    truth = SimulationTruth(
        config=cfg,
        params=params,
        sii=pd.concat(sii_rows, ignore_index=True),
        level=pd.concat(level_rows, ignore_index=True),
        practice_effects=pd.concat(pe_rows, ignore_index=True),
        gradient_effect={k: cfg.effect("gradient", k) for k in outcomes},
        level_effect={k: cfg.effect("level", k) for k in outcomes},
        dose_effect={k: cfg.effect("dose", k) for k in outcomes},
        events=ev,
        clipped=clipped,
        zeroed=zeroed,
    )
    return SyntheticPanel(panel=df, truth=truth)


# --- named error scenarios ----------------------------------------------------------------------
# Calibrated error structures per outcome: residual statistics of the published design (QK1 and
# the 10 comparators, 2018-2024) of the real panel (REAL_TARGETS in
# hepcausal.data.residual_stats), reproduced by simulate_panel within the tolerances of
# tests/test_synthetic_errors.py (median of 4 seeds).  rho and drift_sd fix the ACF shape (grid
# over rho x drift_sd with the other features off); scale, nu, the ICB noise and the zero shares
# were then tuned with `python benchmarks/calibrate_synthetic.py --fit <outcome>` and by hand
# (the sample kurtosis is erratic for nu < 4, so the fit loss is noisy).  zero_persistence is
# measured directly: P(GP FTE == 0 | 0 last year) = 76/112 = 0.68.  The zero shares are below
# the real ones because clipping negative draws at 0 adds zeros (GP ~0.7%, nurse ~3%).
CALIBRATED_ERRORS: Final[Mapping[str, ErrorStructure]] = {
    S.GP_FTE: ErrorStructure(
        rho=0.68,
        drift_sd=0.12,
        ics_noise_sd=0.05,
        treated_noise_ratio=1.6,
        nu=3.0,
        zero_share=0.004,
        treated_zero_share=0.006,
        zero_persistence=0.68,
        scale=1.85,
    ),
    S.NURSE_FTE: ErrorStructure(
        rho=0.55,
        drift_sd=0.12,
        ics_noise_sd=0.05,
        treated_noise_ratio=0.8,
        nu=3.0,
        zero_share=0.0,
        treated_zero_share=0.01,
        zero_persistence=0.68,
        scale=3.3,
    ),
    S.ADMIN_FTE: ErrorStructure(
        rho=0.55,
        drift_sd=0.14,
        ics_noise_sd=0.1,
        treated_noise_ratio=0.85,
        nu=2.6,
        zero_share=0.004,
        treated_zero_share=0.015,
        zero_persistence=0.68,
        scale=2.4,
    ),
}

_REAL: Final = CALIBRATED_ERRORS[S.GP_FTE]

SCENARIOS: Final[Mapping[str, ErrorStructure | Mapping[str, ErrorStructure]]] = {
    "model": ErrorStructure(),
    "realistic": CALIBRATED_ERRORS,
    "ar1": ErrorStructure(rho=_REAL.rho),
    "drift": ErrorStructure(drift_sd=_REAL.drift_sd),
    "ics_noise": ErrorStructure(
        ics_noise_sd=_REAL.ics_noise_sd, treated_noise_ratio=_REAL.treated_noise_ratio
    ),
    "heavy_tails": ErrorStructure(nu=_REAL.nu, tail_unit=_REAL.tail_unit),
    "zeros": ErrorStructure(
        zero_share=_REAL.zero_share,
        treated_zero_share=_REAL.treated_zero_share,
        zero_persistence=_REAL.zero_persistence,
    ),
}
"""Named error scenarios (:func:`scenario`).

``model``: iid Gaussian noise, exactly what the panel models assume (today's generator).
``realistic``: every feature on at the magnitudes measured on the real panel, per outcome
(:data:`CALIBRATED_ERRORS`; outcomes without a calibration get GP FTE's structure with
``scale=1``).  ``ar1``, ``drift``, ``ics_noise``, ``heavy_tails``, ``zeros``: one feature alone at
its GP FTE magnitude, for every outcome (zeros only for rate outcomes).
"""


def scenario(name: str, config: SimulationConfig | None = None) -> SimulationConfig:
    """A configuration with a named error scenario.

    Parameters
    ----------
    name : str
        One of :data:`SCENARIOS`: ``model``, ``realistic``, ``ar1``, ``drift``, ``ics_noise``,
        ``heavy_tails``, ``zeros``.
    config : SimulationConfig, optional
        Base configuration (any preset: :meth:`SimulationConfig.small`,
        :meth:`SimulationConfig.published_design`, the national default); default
        ``SimulationConfig()``.

    Returns
    -------
    SimulationConfig
        ``config`` with ``errors`` set to the scenario.

    Raises
    ------
    ValueError
        If ``name`` is not a scenario.
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown error scenario {name!r}; choose one of {list(SCENARIOS)}")
    return (config or SimulationConfig()).replace(errors=name)


_ERROR_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(ErrorStructure))


def _resolve_errors(
    value: object, outcomes: Sequence[str]
) -> ErrorStructure | Mapping[str, ErrorStructure]:
    """``SimulationConfig.errors`` as ErrorStructure objects (scenario names and dicts resolved).

    Parameters
    ----------
    value : object
        An ErrorStructure, a scenario name, a dict of ErrorStructure fields, or a mapping
        outcome -> (ErrorStructure or dict of fields).
    outcomes : sequence of str
        Simulated outcomes (a per-outcome scenario covers exactly these).

    Returns
    -------
    ErrorStructure or dict
        The resolved value.

    Raises
    ------
    ValueError
        Unknown scenario name or ErrorStructure field.
    """
    if isinstance(value, ErrorStructure):
        return value
    if isinstance(value, str):
        if value not in SCENARIOS:
            raise ValueError(
                f"SimulationConfig.errors: unknown error scenario {value!r}; choose one of "
                f"{list(SCENARIOS)}"
            )
        named = SCENARIOS[value]
        if isinstance(named, ErrorStructure):
            return named
        fallback = _REAL.replace(scale=1.0)
        return {k: named.get(k, fallback) for k in outcomes}
    if isinstance(value, Mapping):
        if value and set(value) <= _ERROR_FIELDS:
            return _error_structure(dict(value))
        return {
            str(k): v if isinstance(v, ErrorStructure) else _error_structure(v)
            for k, v in value.items()
        }
    raise ValueError(
        "SimulationConfig.errors must be an ErrorStructure, a scenario name, a dict of "
        f"ErrorStructure fields or a mapping outcome -> ErrorStructure, got {type(value)!r}"
    )


def _error_structure(fields: object) -> ErrorStructure:
    if not isinstance(fields, Mapping):
        raise ValueError(f"SimulationConfig.errors: expected a dict of fields, got {fields!r}")
    unknown = sorted(set(fields) - _ERROR_FIELDS)
    if unknown:
        raise ValueError(
            f"SimulationConfig.errors: unknown ErrorStructure fields {unknown} "
            f"(known: {sorted(_ERROR_FIELDS)})"
        )
    return ErrorStructure(**fields)
