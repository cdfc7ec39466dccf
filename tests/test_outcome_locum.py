"""The locum/trainee GP FTE outcome, end to end from its single outcome-table row.

Loader (workforce file) -> NHS panel -> validation -> alias look-up -> synthetic generator ->
SII table -> labels, with no outcome-specific code outside hepcausal.outcomes and the schema
constant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.data.inclusion import InclusionRules
from hepcausal.data.nhs import build_nhs_panel, load_workforce
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.data.validate import PanelValidationError, validate_panel
from hepcausal.inequality.sii_table import default_value_type, sii_table
from hepcausal.outcomes import get_outcome, label_of, outcome_names, units_of
from hepcausal.plots.labels import sii_axis_label

LOCUM = S.LOCUM_TRAINEE_FTE
FIX = Path(__file__).parent / "fixtures" / "nhs"


def test_row_and_alias() -> None:
    row = get_outcome("locum")
    assert row is get_outcome(LOCUM) and row.column == LOCUM and "locum" in outcome_names()
    assert row.kind == "rate" and row.source == "workforce"
    assert row.source_column == "locum_trainee_fte" and row.denominator is None
    assert units_of("locum") == "FTE per 1,000 weighted patients"
    assert label_of(LOCUM) == "Locum/trainee GP FTE per 1,000 weighted patients"
    assert sii_axis_label(LOCUM) == (
        "SII of locum/trainee GP FTE\n(FTE per 1,000 weighted patients)"
    )
    assert default_value_type(LOCUM) == "rate"


def test_fixture_panel_has_the_column() -> None:
    p = build_nhs_panel(FIX, years=range(2018, 2021)).panel.set_index([S.PRACTICE, S.YEAR])
    wf = load_workforce(FIX / "workforce" / "workforce-practice-fiscal-year.csv")
    raw = wf.set_index([S.PRACTICE, S.YEAR])["locum_trainee_fte"]
    want = raw / p[S.WEIGHTED_LIST_SIZE] * 1000
    np.testing.assert_allclose(p[LOCUM], want.reindex(p.index))
    assert p.loc[("A83001", 2018), LOCUM] > 0 and p.loc[("C82001", 2018), LOCUM] == 0


@pytest.mark.realdata
def test_real_panel_values(nhs_data_dir: Path) -> None:
    rules = InclusionRules(outcomes=(LOCUM,))
    p = build_nhs_panel(nhs_data_dir, rules).panel
    x = p[LOCUM]
    assert x.notna().all() and len(p) > 30_000
    lo, hi = get_outcome(LOCUM).bounds
    assert x.between(lo, hi).all()
    # a minority of the GP workforce: median well below the GP FTE median (~0.45)
    assert 0.02 < x.median() < 0.2 and x.median() < p[S.GP_FTE].median()
    assert 0.2 < (x == 0).mean() < 0.7  # many practices employ none
    by_year = p.groupby(S.YEAR)[LOCUM].mean()
    assert by_year.loc[2024] > by_year.loc[2018]
    sii = sii_table(p, LOCUM, method="unit", seed=1)
    assert len(sii) == 42 * 7 and np.isfinite(sii["sii"]).all()


def test_validation_bounds() -> None:
    p = build_nhs_panel(FIX, years=range(2018, 2021)).panel
    p.loc[p.index[0], LOCUM] = 25.0
    with pytest.raises(PanelValidationError, match=rf"{LOCUM}.*plausible range"):
        validate_panel(p)


def test_generator_simulates_it() -> None:
    cfg = SimulationConfig.small(noise_scale=0.0, gradient_effect={S.GP_FTE: -0.04, LOCUM: 0.05})
    sp = simulate_panel(cfg)
    assert LOCUM in sp.panel and LOCUM in sp.truth.clipped
    assert (sp.panel[LOCUM] >= 0).all()
    assert sp.truth.params[LOCUM]["mu"] == get_outcome("locum").synthetic.mu
    assert sp.truth.ddd(LOCUM) == pytest.approx(0.05)
    assert sp.truth.ddd(S.GP_FTE) == pytest.approx(-0.04)
    tab = sii_table(sp.panel, LOCUM, method="quintile_bootstrap", n_boot=100, seed=2)
    assert len(tab) == 12 * len(cfg.years) and np.isfinite(tab["sii"]).all()
    tab = sii_table(sp.panel, "locum_trainee_fte_per_1k", method="phe", n_sim=1000, seed=2)
    assert np.isfinite(tab["sii"]).all()
