"""Panel error models: the pre/post collapse, ICB residual scales, weights and estimands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.causal.design import build_design
from hepcausal.causal.did import _ddd_effects
from hepcausal.models.panel_effects import ModelOptions, prepost_data
from hepcausal.spec import Design, DesignError


def _panel() -> pd.DataFrame:
    """Two ICBs x 3 practices x 4 years (2020-2023); one practice has no post-period row."""
    rows = []
    rng = np.random.default_rng(0)
    for g in ("QK1", "QJ2"):
        for p in range(3):
            for year in (2020, 2021, 2022, 2023):
                if p == 2 and g == "QJ2" and year >= 2022:
                    continue
                rows.append(
                    {
                        S.PRACTICE: f"{g}{p}",
                        S.ICB: g,
                        S.YEAR: year,
                        S.GP_FTE: 1.0 + p + 0.1 * year - 200 + rng.normal(0, 0.1),
                        S.DEPRIVATION_RANK: (p + 0.5) / 3,
                        S.LIST_SIZE: 1000.0 * (p + 1),
                    }
                )
    return pd.DataFrame(rows)


def test_prepost_is_the_change_in_practice_means() -> None:
    panel = _panel()
    des = build_design(panel, S.GP_FTE, Design(comparators=("QJ2",)), effects=_ddd_effects)
    pp = prepost_data(des)
    assert pp.n_dropped == 1  # QJ21... the practice without post rows
    assert pp.d.size == 5
    y = (panel[S.GP_FTE] - des.y_mean) / des.y_sd
    panel = panel.assign(y=y, post=panel[S.YEAR] >= 2022)
    means = panel.groupby([S.PRACTICE, "post"])["y"].mean().unstack()
    expected = (means[True] - means[False]).dropna().sort_index()
    np.testing.assert_allclose(np.sort(pp.d), np.sort(expected.to_numpy()), rtol=1e-12)
    # effect columns collapse the same way: D = 1 for treated practices, 0 for comparators
    treated = pp.group == des.groups.index("QK1")
    np.testing.assert_allclose(pp.effects[treated, 1], 1.0)
    np.testing.assert_allclose(pp.effects[~treated, 1], 0.0)


def test_weights_name_the_estimand_and_are_validated() -> None:
    panel = _panel()
    unweighted = build_design(panel, S.GP_FTE, Design(comparators=("QJ2",)))
    assert unweighted.weights is None and unweighted.estimand == "practice-average"
    weighted = build_design(panel, S.GP_FTE, Design(comparators=("QJ2",), weights="list_size"))
    assert weighted.estimand == "population-weighted"
    assert weighted.describe()["estimand"] == "population-weighted"
    assert weighted.weights is not None
    np.testing.assert_allclose(weighted.weights.mean(), 1.0)
    pp = prepost_data(weighted)
    assert pp.weights is not None and pp.weights.max() / pp.weights.min() == pytest.approx(3.0)
    bad = panel.assign(**{S.LIST_SIZE: -1.0})
    with pytest.raises(DesignError, match="must be positive"):
        build_design(bad, S.GP_FTE, Design(comparators=("QJ2",), weights="list_size"))
    with pytest.raises(DesignError, match="nope"):
        build_design(panel, S.GP_FTE, Design(comparators=("QJ2",), weights="nope"))


def test_model_options_are_checked() -> None:
    with pytest.raises(ValueError, match="error_model"):
        ModelOptions(error_model="ar2")
    with pytest.raises(ValueError, match="family"):
        ModelOptions(family="cauchy")
    with pytest.raises(ValueError, match="group_trends"):
        ModelOptions(error_model="prepost", group_trends=True)
