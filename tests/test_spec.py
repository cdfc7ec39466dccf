"""The typed estimator specification: Design / Inference validation and the shared docstring."""

from __future__ import annotations

import pytest

from hepcausal import schema as S
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import (
    ESTIMATOR_PARAMETERS,
    Design,
    DesignError,
    Inference,
    SpecError,
    estimator_parameters,
)


def test_design_defaults_and_validation() -> None:
    d = Design()
    assert d.treated == S.LLR_ICB and d.comparators == S.PUBLISHED_COMPARATORS
    assert (d.start_year, d.rank_col, d.weights) == (S.HEP_START_YEAR, S.DEPRIVATION_RANK, None)
    assert Design(comparators=["QJ2", "QE1"]).comparators == ("QJ2", "QE1")  # a tuple
    assert Design(comparators="all").comparator_list == "all"
    assert d.with_(start_year=2021).start_year == 2021 and d.start_year == S.HEP_START_YEAR
    for kw, match in (
        ({"comparators": "some"}, "Design.comparators must be 'all'"),
        ({"comparators": []}, "Design.comparators is empty"),
        ({"comparators": ["QK1"]}, "contains the treated group 'QK1'"),
        ({"treated": ""}, "Design.treated must be a non-empty string"),
        ({"rank_col": ""}, "Design.rank_col must be a column name or None"),
    ):
        with pytest.raises(DesignError, match=match):
            Design(**kw)
    with pytest.raises(DesignError, match="contains the treated group"):
        d.with_(treated="QJ2")  # with_ validates again


def test_inference_validation_and_rope_forms() -> None:
    inf = Inference()
    assert inf.backend == "pymc" and inf.rope == "auto" and inf.priors is None
    assert inf.settings == SamplerSettings()
    assert Inference(rope=1).rope == 1.0 and Inference(rope=[-1, 2]).rope == (-1.0, 2.0)
    assert Inference(rope=None).rope is None
    assert Inference(priors={"effect_sd": 2.0}).priors == {"effect_sd": 2.0}
    for kw, match in (
        ({"backend": "jags"}, "backend must be one of"),
        ({"hdi_prob": 1.5}, "hdi_prob must be in"),
        ({"rope": "wide"}, "rope must be a number"),
        ({"rope": -0.1}, "half-width must be > 0"),
        ({"rope": (2, 1)}, "low <= high"),
        ({"rope": True}, "rope must be a number"),
        ({"priors": [1.0]}, "priors must be a dict"),
        ({"settings": {"draws": 10}}, "settings must be a SamplerSettings"),
    ):
        with pytest.raises(SpecError, match=match):
            Inference(**kw)


def test_estimator_parameters_fills_the_marker() -> None:
    def fit(panel, outcome, design=None, inference=None, *, flag=True):
        """Fit.

        Parameters
        ----------
        {estimator parameters}
        flag : bool
            A switch.
        """

    estimator_parameters(fit)
    doc = fit.__doc__ or ""
    assert "{estimator parameters}" not in doc
    assert "        inference : Inference, optional\n" in doc and "flag : bool" in doc
    assert doc.count("panel : pandas.DataFrame") == 1
    assert ESTIMATOR_PARAMETERS.splitlines()[0] == "panel : pandas.DataFrame"
