"""``SamplerSettings.cores`` reaches nutpie (pm.sample does not forward it by itself)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pymc as pm
import pytest

from hepcausal.sampling import SamplerSettings, sample_pymc


def test_cores_reach_nutpie(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_sample(**kwargs: Any) -> SimpleNamespace:
        seen.update(kwargs)
        return SimpleNamespace(posterior=SimpleNamespace(attrs={}))  # what sample_pymc reads

    monkeypatch.setattr(pm, "sample", fake_sample)
    with pm.Model() as model:
        pm.Normal("x")
    idata = sample_pymc(model, SamplerSettings(cores=1, chains=4))
    assert idata.posterior.attrs["cores"] == 1  # the provenance records what was used
    assert seen["cores"] == 1
    assert seen["nuts_sampler"] == "nutpie"
    assert seen["nuts_sampler_kwargs"]["cores"] == 1
    sample_pymc(model, SamplerSettings(cores=2, mass_matrix="low_rank"))
    assert seen["nuts_sampler_kwargs"] == {"cores": 2, "low_rank_modified_mass_matrix": True}
