"""``SamplerSettings.cores`` reaches nutpie (pm.sample does not forward it by itself)."""

from __future__ import annotations

from typing import Any

import pymc as pm
import pytest

from hepcausal.sampling import SamplerSettings, sample_pymc


def test_cores_reach_nutpie(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_sample(**kwargs: Any) -> str:
        seen.update(kwargs)
        return "idata"

    monkeypatch.setattr(pm, "sample", fake_sample)
    with pm.Model() as model:
        pm.Normal("x")
    sample_pymc(model, SamplerSettings(cores=1, chains=4))
    assert seen["cores"] == 1
    assert seen["nuts_sampler"] == "nutpie"
    assert seen["nuts_sampler_kwargs"]["cores"] == 1
    sample_pymc(model, SamplerSettings(cores=2, mass_matrix="low_rank"))
    assert seen["nuts_sampler_kwargs"] == {"cores": 2, "low_rank_modified_mass_matrix": True}
