"""Classical slope and relative index of inequality (the published reference methods).

* :func:`sii` - PHE/OHID ``phe_sii`` for quantile data (Low & Low 2004), simulation CIs.
* :func:`sii_bootstrap` - quantile-mean SII with stratified practice bootstrap and BCa (the LLR
  Health Equity Payment evaluation).
* :func:`sii_unit` - practice-level WLS on relative rank (comparable with the Bayesian model).
* :func:`sii_table` - any of the above per ICB x year of a practice panel (+ England rows).

Convention (see :mod:`hepcausal.schema`): rank 0 = most deprived, SII = least minus most deprived.
"""

from hepcausal.inequality.bca import bca_interval, jackknife_acceleration, percentile_interval
from hepcausal.inequality.sii_bootstrap import quantile_mean_sii, sii_bootstrap
from hepcausal.inequality.sii_core import SIIInputError, SIIResult
from hepcausal.inequality.sii_phe import sii
from hepcausal.inequality.sii_table import sii_table
from hepcausal.inequality.sii_unit import sii_unit

__all__ = [
    "SIIInputError",
    "SIIResult",
    "bca_interval",
    "jackknife_acceleration",
    "percentile_interval",
    "quantile_mean_sii",
    "sii",
    "sii_bootstrap",
    "sii_table",
    "sii_unit",
]
