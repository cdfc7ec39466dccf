"""The practice x fiscal-year panel schema shared by every module.

Conventions (used everywhere in hepcausal):

* ``year`` is the fiscal year *end*: 2022 means FY 2021/22 (April 2021 - March 2022), as in the
  GP workforce file.  Health Equity Payments began in FY 2021/22, i.e. ``year == 2022``.
* Proportions (QOF achievement, GP Patient Survey) are stored on [0, 1], never as percentages.
* Staffing outcomes are FTE per 1,000 *weighted* patients.
* Relative ranks follow the PHE slope-index-of-inequality convention: units are ordered from
  **most deprived (rank 0) to least deprived (rank 1)**, a unit's rank is the midpoint of its
  population-weighted cumulative share, so the SII (slope) is the modelled value at the least
  deprived end minus the value at the most deprived end.  A negative SII for GP FTE means fewer
  GPs per patient in more deprived practices.
"""

from __future__ import annotations

from typing import Final

PRACTICE: Final = "practice_code"
YEAR: Final = "year"
PCN: Final = "pcn_code"
SUB_ICB: Final = "sub_icb_code"
ICB: Final = "icb_code"
ICB_NAME: Final = "icb_name"
LIST_SIZE: Final = "list_size"
WEIGHTED_LIST_SIZE: Final = "weighted_list_size"
IMD: Final = "imd_score"  # IMD 2019 practice score (Fingertips 93553)
IMD2015: Final = "imd2015_score"
DEPRIVATION_RANK: Final = "deprivation_rank"  # rank of IMD: 0 most deprived, 1 least deprived
NEED_SCORE: Final = "need_score"  # alternative need measure (higher = more need)
NEED_RANK: Final = "need_rank"  # rank of need: 0 most need, 1 least need
HEP_TREATED: Final = "hep_treated"  # 1 if the practice received HEP funding in that year
HEP_DOSE: Final = "hep_dose"  # HEP top-up, GBP per weighted patient (0 when untreated)

# Outcome columns.  Everything else about an outcome (kind, units, denominator, bounds, ...) is
# its row in hepcausal.outcomes.OUTCOMES (outcome_columns(kind=...), get_outcome(c).denominator).
GP_FTE: Final = "gp_fte_per_1k"  # GP FTE excl. locums and trainees per 1,000 weighted patients
NURSE_FTE: Final = "nurse_fte_per_1k"
DPC_FTE: Final = "dpc_fte_per_1k"  # direct patient care staff
ADMIN_FTE: Final = "admin_fte_per_1k"
QOF: Final = "qof_achievement"  # QOF points achieved / max points available that year, in [0, 1]
QOF_MAX_POINTS: Final = "qof_max_points"  # 559 up to 2019/20, 635 from 2021/22
GPPS_OVERALL: Final = "gpps_overall_good"  # GPPS % positive overall experience, in [0, 1]
GPPS_RESPONSES: Final = "gpps_responses"  # GPPS responses received (the proportion's denominator)
LOCUM_TRAINEE_FTE: Final = "locum_trainee_fte_per_1k"  # locum + trainee GP FTE per 1,000 weighted
# Funding (NHS Payments to General Practice), GBP per patient per fiscal year (outcome table rows)
FUND_TOTAL: Final = "funding_total_per_wpt"
FUND_TOTAL_REG: Final = "funding_total_per_rpt"
FUND_CORE: Final = "funding_core_per_wpt"
FUND_QOF: Final = "funding_qof_per_wpt"
FUND_ENHANCED: Final = "funding_enhanced_per_wpt"
FUND_LOCAL: Final = "funding_local_per_wpt"
FUND_PCN: Final = "funding_pcn_per_wpt"

KEY_COLUMNS: Final = (PRACTICE, YEAR)
ID_COLUMNS: Final = (PRACTICE, YEAR, PCN, SUB_ICB, ICB, ICB_NAME)
REQUIRED_COLUMNS: Final = (*ID_COLUMNS, LIST_SIZE, WEIGHTED_LIST_SIZE, IMD)

# Leicester, Leicestershire and Rutland and the published comparators.
LLR_ICB: Final = "QK1"
LLR_SUB_ICBS: Final = ("03W", "04C", "04V")
PUBLISHED_COMPARATORS: Final = (
    "QJ2",
    "QOQ",
    "QT1",
    "QHM",
    "QWO",
    "QF7",
    "QE1",
    "QWU",
    "QJM",
    "QNC",
)
HEP_START_YEAR: Final = 2022  # FY 2021/22
STUDY_YEARS: Final = tuple(range(2018, 2025))  # FY 2017/18 .. 2023/24
