"""The outcome table: one row per outcome, read by every layer of hepcausal.

Loaders, panel validation, the experiment config, the synthetic generator, the SII table, the
models and the plots all look outcomes up here, so adding an outcome is one :class:`Outcome` row
(plus, for a new source column, the loader's header pattern).  Units follow one convention:
``units`` is what one unit of the stored value means (``"FTE per 1,000 weighted patients"``,
``"proportion"``), and ``label`` is the axis title in words with those units.

Look-ups take the panel column or the config alias: ``get_outcome("gp")`` and
``get_outcome("gp_fte_per_1k")`` return the same row.

Adding an outcome: append a row to ``_ROWS`` (and a column constant to :mod:`hepcausal.schema`).
A workforce FTE outcome needs only ``source="workforce"``, the loaded ``source_column`` and its
``source_header`` (header regex of the workforce file): the NHS panel then computes it as
``source_column / weighted_list_size * 1000``, validates it against ``bounds`` and the generator
simulates it from ``synthetic``.  A funding outcome is a ``source="payments"`` row naming its
payment group (:data:`hepcausal.data.nhs_files.PAYMENT_GROUPS`) and list denominator.  Append
(never insert) rows: the generator draws the outcomes in
table order, so appending keeps the simulated panels of existing seeds identical.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from hepcausal import schema as S

OutcomeKind = Literal["rate", "proportion", "count"]
SiiValueType = Literal["rate", "proportion", "other"]
OutcomeSource = Literal["workforce", "qof", "gpps", "payments", "derived"]

FTE_UNITS: Final = "FTE per 1,000 weighted patients"
PROPORTION_UNITS: Final = "proportion"
GBP_WEIGHTED_UNITS: Final = "GBP per weighted patient"
GBP_REGISTERED_UNITS: Final = "GBP per registered patient"

# Funding outcomes (NHS Payments to General Practice; payment groups in
# hepcausal.data.nhs_files.PAYMENT_GROUPS).  GBP per patient per fiscal year.
FUND_TOTAL: Final = S.FUND_TOTAL
FUND_TOTAL_REG: Final = S.FUND_TOTAL_REG
FUND_CORE: Final = S.FUND_CORE
FUND_QOF: Final = S.FUND_QOF
FUND_ENHANCED: Final = S.FUND_ENHANCED
FUND_LOCAL: Final = S.FUND_LOCAL
FUND_PCN: Final = S.FUND_PCN
FUNDING_COLUMNS: Final = (
    FUND_TOTAL,
    FUND_TOTAL_REG,
    FUND_CORE,
    FUND_QOF,
    FUND_ENHANCED,
    FUND_LOCAL,
    FUND_PCN,
)


@dataclass(frozen=True)
class SyntheticSpec:
    """Generative constants of one outcome in the synthetic generator.

    Model scale: identity for rates, logit for proportions.  Calibrated against the real files
    by ``benchmarks/calibrate_synthetic.py``.

    Parameters
    ----------
    mu : float
        Grand mean of the ICB-year intercepts.
    sd_icb : float
        SD of the ICB intercept effects ``a_g``.
    trend : float
        Linear year trend of ``c_t`` per year (centred on the mean year).
    sd_year : float
        SD of the year noise added to ``c_t``.
    b0 : float
        Grand mean gradient (SII on the model scale).
    sd_icb_gradient : float
        SD of the ICB gradient effects ``b_g``.
    gradient_trend : float
        Linear year trend of ``b_t`` per year.
    sd_year_gradient : float
        SD of the year noise added to ``b_t``.
    sd_icb_year : float
        SD of the ICB x year intercept deviations ``d_gt`` (before double centring).
    sd_icb_year_gradient : float
        SD of the ICB x year gradient deviations ``f_gt``.
    tau : float
        SD of the practice effects ``u_i``.
    sigma : float
        SD of the practice-year noise ``e_it``.
    step_2022 : float
        Extra shift of ``c_t`` from year 2022 on (e.g. the QOF 2021/22 indicator change).
    """

    mu: float
    sd_icb: float
    trend: float
    sd_year: float
    b0: float
    sd_icb_gradient: float
    gradient_trend: float
    sd_year_gradient: float
    sd_icb_year: float
    sd_icb_year_gradient: float
    tau: float
    sigma: float
    step_2022: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """One outcome: names, units, statistical defaults, validation bounds and data source.

    Parameters
    ----------
    column : str
        Panel column (e.g. ``"gp_fte_per_1k"``).
    alias : str
        Short name used in configs (e.g. ``"gp"``).
    label : str
        Axis title in words with units.
    short : str
        Short name for sentences and legends (e.g. ``"GP FTE"``).
    units : str
        What one unit of the stored value means.
    kind : {"rate", "proportion", "count"}
        Rates are per-patient quantities (identity scale), proportions lie in [0, 1].
    denominator : str or None
        Panel column holding the proportion's denominator (binomial likelihoods), else None.
    family : str
        Default likelihood family of the gradient model (a name in
        :data:`hepcausal.models.families.FAMILIES`).
    sii_value_type : {"rate", "proportion", "other"}
        Value type for the PHE SII confidence intervals
        (:func:`hepcausal.inequality.classical.sii`).
    sii_transform : {"identity", "log", "logit"}
        Transform the published study applied before its quintile SII (log for FTE, logit for
        proportions); the package default SII is on the identity scale.
    bounds : tuple of float
        Plausibility bounds ``(low, high)`` used by panel validation (values outside are an
        error naming the rows).
    source : {"workforce", "qof", "gpps", "payments", "derived"}
        The loaded table the outcome comes from.
    source_column : str or None
        Column of that loaded table (for workforce FTE: the raw FTE count, divided by the
        weighted list size / 1,000 to give the outcome; for payments: the payment group, a key
        of :data:`hepcausal.data.nhs_files.PAYMENT_GROUPS`, or ``"total"`` for the files'
        'Total NHS Payments to General Practice').
    rope : float
        Default half-width of the region of practical equivalence, in ``units``.
    synthetic : SyntheticSpec or None
        Generator constants; None means the generator does not simulate this outcome.
    source_header : str or None
        For workforce outcomes: regex matched against the normalised headers of the workforce
        file (:func:`hepcausal.data.headers.normalise_header`) to find ``source_column``; None
        for outcomes whose loader has its own header patterns (QOF, GPPS, payments).
    list_denominator : str or None
        For payments outcomes: the panel list-size column the payment group is divided by
        (``weighted_list_size`` or ``list_size``); None otherwise.
    """

    column: str
    alias: str
    label: str
    short: str
    units: str
    kind: OutcomeKind
    denominator: str | None
    family: str
    sii_value_type: SiiValueType
    sii_transform: Literal["identity", "log", "logit"]
    bounds: tuple[float, float]
    source: OutcomeSource
    source_column: str | None
    rope: float
    synthetic: SyntheticSpec | None = None
    source_header: str | None = None
    list_denominator: str | None = None

    @property
    def is_proportion(self) -> bool:
        """True for outcomes stored on [0, 1]."""
        return self.kind == "proportion"


def _fte(
    column: str,
    alias: str,
    who: str,
    short: str,
    raw: str,
    header: str,
    upper: float,
    spec: SyntheticSpec | None,
) -> Outcome:
    return Outcome(
        column=column,
        alias=alias,
        label=f"{who} FTE per 1,000 weighted patients",
        short=short,
        units=FTE_UNITS,
        kind="rate",
        denominator=None,
        family="gaussian",
        sii_value_type="rate",
        sii_transform="log",
        bounds=(0.0, upper),
        source="workforce",
        source_column=raw,
        rope=0.02,
        synthetic=spec,
        source_header=header,
    )


_MEASURED_ROWS: Final = (
    _fte(
        S.GP_FTE,
        "gp",
        "GP",
        "GP FTE",
        "gp_fte",
        r"total gp ext ?gl fte",
        20.0,
        SyntheticSpec(
            mu=0.45,
            sd_icb=0.06,
            trend=-0.008,
            sd_year=0.003,
            b0=0.12,
            sd_icb_gradient=0.055,
            gradient_trend=0.0,
            sd_year_gradient=0.005,
            sd_icb_year=0.01,
            sd_icb_year_gradient=0.02,
            tau=0.125,
            sigma=0.06,
        ),
    ),
    _fte(
        S.NURSE_FTE,
        "nurse",
        "Nurse",
        "nurse FTE",
        "nurse_fte",
        r"total nurses? fte",
        20.0,
        SyntheticSpec(
            mu=0.245,
            sd_icb=0.045,
            trend=-0.001,
            sd_year=0.003,
            b0=0.003,
            sd_icb_gradient=0.045,
            gradient_trend=0.0,
            sd_year_gradient=0.005,
            sd_icb_year=0.01,
            sd_icb_year_gradient=0.02,
            tau=0.055,
            sigma=0.035,
        ),
    ),
    _fte(
        S.DPC_FTE,
        "dpc",
        "Direct patient care",
        "DPC FTE",
        "dpc_fte",
        r"total dpc fte",
        20.0,
        SyntheticSpec(
            mu=0.19,
            sd_icb=0.035,
            trend=0.012,
            sd_year=0.003,
            b0=0.05,
            sd_icb_gradient=0.04,
            gradient_trend=0.0,
            sd_year_gradient=0.005,
            sd_icb_year=0.008,
            sd_icb_year_gradient=0.02,
            tau=0.035,
            sigma=0.02,
        ),
    ),
    _fte(
        S.ADMIN_FTE,
        "admin",
        "Admin",
        "admin FTE",
        "admin_fte",
        r"total admin fte",
        50.0,
        SyntheticSpec(
            mu=1.12,
            sd_icb=0.07,
            trend=0.016,
            sd_year=0.005,
            b0=0.03,
            sd_icb_gradient=0.08,
            gradient_trend=0.0,
            sd_year_gradient=0.01,
            sd_icb_year=0.02,
            sd_icb_year_gradient=0.06,
            tau=0.22,
            sigma=0.12,
        ),
    ),
    Outcome(
        column=S.QOF,
        alias="qof",
        label="QOF achievement (proportion of points)",
        short="QOF achievement",
        units=PROPORTION_UNITS,
        kind="proportion",
        denominator=S.QOF_MAX_POINTS,
        family="beta_binomial",
        sii_value_type="proportion",
        sii_transform="logit",
        bounds=(0.0, 1.0),
        source="qof",
        source_column=S.QOF,
        rope=0.01,
        synthetic=SyntheticSpec(
            mu=3.2,
            sd_icb=0.3,
            trend=0.0,
            sd_year=0.05,
            step_2022=-1.45,
            b0=0.5,
            sd_icb_gradient=0.3,
            gradient_trend=0.0,
            sd_year_gradient=0.03,
            sd_icb_year=0.08,
            sd_icb_year_gradient=0.2,
            tau=0.7,
            sigma=0.5,
        ),
    ),
    Outcome(
        column=S.GPPS_OVERALL,
        alias="gpps",
        label="GPPS good overall experience (proportion)",
        short="GPPS overall experience",
        units=PROPORTION_UNITS,
        kind="proportion",
        denominator=S.GPPS_RESPONSES,
        family="beta_binomial",
        sii_value_type="proportion",
        sii_transform="logit",
        bounds=(0.0, 1.0),
        source="gpps",
        source_column=S.GPPS_OVERALL,
        rope=0.01,
        synthetic=SyntheticSpec(
            mu=1.3,
            sd_icb=0.2,
            trend=-0.05,
            sd_year=0.03,
            step_2022=-0.4,
            b0=0.35,
            sd_icb_gradient=0.1,
            gradient_trend=0.0,
            sd_year_gradient=0.02,
            sd_icb_year=0.05,
            sd_icb_year_gradient=0.08,
            tau=0.45,
            sigma=0.2,
        ),
    ),
    _fte(
        S.LOCUM_TRAINEE_FTE,
        "locum",
        "Locum/trainee GP",
        "locum/trainee GP FTE",
        "locum_trainee_fte",
        r"total locu+m trn fte",
        20.0,
        # Real 2018-2024: mean 0.115 rising ~0.015/yr, SII median 0.016, 42% exact zeros.  The
        # identity-scale generator matches level, trend and gradient; its practice noise is
        # smaller than the real one (tau 0.09, sigma 0.05) so that clipping at 0 stays rare.
        SyntheticSpec(
            mu=0.12,
            sd_icb=0.015,
            trend=0.008,
            sd_year=0.003,
            b0=0.016,
            sd_icb_gradient=0.035,
            gradient_trend=0.0,
            sd_year_gradient=0.005,
            sd_icb_year=0.005,
            sd_icb_year_gradient=0.015,
            tau=0.025,
            sigma=0.015,
        ),
    ),
)


def _funding(
    column: str, alias: str, group: str, what: str, short: str, registered: bool = False
) -> Outcome:
    units = GBP_REGISTERED_UNITS if registered else GBP_WEIGHTED_UNITS
    return Outcome(
        column=column,
        alias=alias,
        label=f"{what} ({units}, per year)",
        short=short,
        units=units,
        kind="rate",
        denominator=None,
        family="gaussian",
        sii_value_type="other",
        sii_transform="identity",
        # payments lines can be negative (recoveries); tiny lists give extreme per-patient values
        # (the real 2017/18-2022/23 extremes lie inside these bounds); the payment-validity
        # rule (NHSLoadOptions.payment_validity) is the analysis filter, not these bounds.
        bounds=(-1.0e6, 1.0e6),
        source="payments",
        source_column=group,
        rope=1.0,
        synthetic=None,
        list_denominator=S.LIST_SIZE if registered else S.WEIGHTED_LIST_SIZE,
    )


# Funding rows: appended after every simulated row (synthetic=None: the generator draws none).
_ROWS: Final = (
    *_MEASURED_ROWS,
    _funding(FUND_TOTAL, "fund_total", "total", "Total NHS payments", "total payments"),
    _funding(
        FUND_TOTAL_REG,
        "fund_total_reg",
        "total",
        "Total NHS payments",
        "total payments per registered patient",
        registered=True,
    ),
    _funding(
        FUND_CORE, "fund_core", "core", "Core payments (global sum, MPIG, PMS)", "core payments"
    ),
    _funding(FUND_QOF, "fund_qof", "qof", "QOF payments", "QOF payments"),
    _funding(
        FUND_ENHANCED,
        "fund_enhanced",
        "enhanced",
        "Enhanced services (DES) payments",
        "DES payments",
    ),
    _funding(
        FUND_LOCAL,
        "fund_local",
        "local",
        "Local incentive scheme payments",
        "local incentive payments",
    ),
    _funding(FUND_PCN, "fund_pcn", "pcn", "PCN payments", "PCN payments"),
)

OUTCOMES: Final[Mapping[str, Outcome]] = MappingProxyType({o.column: o for o in _ROWS})
"""Every outcome, keyed by panel column, in display order."""

_BY_ALIAS: Final[Mapping[str, Outcome]] = MappingProxyType({o.alias: o for o in _ROWS})


class UnknownOutcomeError(KeyError):
    """An outcome name that is neither a panel column nor an alias of the outcome table."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


def outcome_names() -> list[str]:
    """Every accepted outcome name: aliases first, then panel columns."""
    return [*_BY_ALIAS, *OUTCOMES]


def get_outcome(name: str) -> Outcome:
    """The outcome row for a panel column or a config alias.

    Parameters
    ----------
    name : str
        Panel column (``"gp_fte_per_1k"``) or alias (``"gp"``).

    Returns
    -------
    Outcome
        The table row.

    Raises
    ------
    UnknownOutcomeError
        When ``name`` is neither; the message lists the valid names and the nearest one.
    """
    row = OUTCOMES.get(name) or _BY_ALIAS.get(name)
    if row is None:
        valid = outcome_names()
        close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownOutcomeError(f"unknown outcome {name!r}; valid: {valid}{hint}")
    return row


def find_outcome(name: str | None) -> Outcome | None:
    """Like :func:`get_outcome` but None for unknown names (columns of user panels).

    Parameters
    ----------
    name : str or None
        Panel column (``"gp_fte_per_1k"``) or config alias (``"gp"``); None gives None.

    Returns
    -------
    Outcome or None
        The table row, or None when ``name`` is None or not in the table.
    """
    if name is None:
        return None
    return OUTCOMES.get(name) or _BY_ALIAS.get(name)


def outcome_columns(
    *, kind: OutcomeKind | None = None, source: OutcomeSource | None = None
) -> tuple[str, ...]:
    """Panel columns of the outcomes, optionally only one kind or one source.

    Parameters
    ----------
    kind : {"rate", "proportion", "count"} or None, default None
        Keep only outcomes of this kind; None keeps every kind.
    source : {"workforce", "qof", "gpps", "derived"} or None, default None
        Keep only outcomes from this source; None keeps every source.

    Returns
    -------
    tuple of str
        The panel columns, in table order.
    """
    return tuple(
        o.column
        for o in OUTCOMES.values()
        if (kind is None or o.kind == kind) and (source is None or o.source == source)
    )


def denominator_columns() -> tuple[str, ...]:
    """Panel columns holding the denominators of the proportion outcomes, in table order."""
    return tuple(dict.fromkeys(o.denominator for o in OUTCOMES.values() if o.denominator))


def synthetic_specs() -> dict[str, SyntheticSpec]:
    """Generator constants of every outcome the synthetic generator simulates (table order).

    Returns
    -------
    dict of str to SyntheticSpec
        Panel column -> :class:`SyntheticSpec`, for the rows whose ``synthetic`` is not None.
    """
    return {o.column: o.synthetic for o in OUTCOMES.values() if o.synthetic is not None}


def units_of(name: str | None) -> str:
    """Units of an outcome in words (empty for columns not in the table).

    Parameters
    ----------
    name : str or None
        Panel column or config alias.

    Returns
    -------
    str
        The row's units (e.g. ``FTE_UNITS``), or ``""`` for names not in the table.
    """
    row = find_outcome(name)
    return row.units if row is not None else ""


def label_of(name: str | None) -> str:
    """Axis title of an outcome (the column name in words for columns not in the table).

    Parameters
    ----------
    name : str or None
        Panel column or config alias.

    Returns
    -------
    str
        The row's label; for names not in the table the name with underscores replaced by
        spaces; ``"outcome"`` for None or ``""``.
    """
    if not name:
        return "outcome"
    row = find_outcome(name)
    return row.label if row is not None else name.replace("_", " ")


def short_of(name: str | None) -> str:
    """Short name of an outcome (the column name in words for columns not in the table).

    Parameters
    ----------
    name : str or None
        Panel column or config alias.

    Returns
    -------
    str
        The row's short name; for names not in the table the name with underscores replaced by
        spaces; ``""`` for None or ``""``.
    """
    if not name:
        return ""
    row = find_outcome(name)
    return row.short if row is not None else name.replace("_", " ")


__all__ = [
    "FTE_UNITS",
    "FUNDING_COLUMNS",
    "FUND_CORE",
    "FUND_ENHANCED",
    "FUND_LOCAL",
    "FUND_PCN",
    "FUND_QOF",
    "FUND_TOTAL",
    "FUND_TOTAL_REG",
    "GBP_REGISTERED_UNITS",
    "GBP_WEIGHTED_UNITS",
    "OUTCOMES",
    "PROPORTION_UNITS",
    "Outcome",
    "SyntheticSpec",
    "UnknownOutcomeError",
    "denominator_columns",
    "find_outcome",
    "get_outcome",
    "label_of",
    "outcome_columns",
    "outcome_names",
    "short_of",
    "synthetic_specs",
    "units_of",
]
