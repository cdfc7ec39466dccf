"""Placebo calibration of the panel estimators (hepcausal.causal.placebo_panel)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.causal.did import fit_did
from hepcausal.causal.placebo_panel import PlaceboFit, calibrate, placebo_calibrate
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference
from hepcausal.summaries import summarise_effect


class _Fit:
    """The two attributes :func:`calibrate` reads."""

    def __init__(self, mean: float, sd: float) -> None:
        draws = np.random.default_rng(0).normal(mean, sd, 40_000)
        self.effects = {"delta": summarise_effect(draws, name="delta")}


def _table(z: list[float], sd: float = 0.02) -> pd.DataFrame:
    z_arr = np.asarray(z)
    return pd.DataFrame(
        {
            "group": [f"G{i}" for i in range(z_arr.size)],
            "mean": z_arr * sd,
            "sd": sd,
            "z": z_arr,
            "hdi_low": (z_arr - 1.96) * sd,
            "hdi_high": (z_arr + 1.96) * sd,
            "excludes_zero": np.abs(z_arr) > 1.96,
            "converged": True,
        }
    )


def test_rank_p_value_and_calibrated_interval() -> None:
    fit = _Fit(0.1, 0.02)  # z = 5: more extreme than every placebo
    cal = calibrate(fit, _table([0.5, -1.0, 2.5, -3.0, 0.1]), "delta")  # type: ignore[arg-type]
    assert cal["rank"] == 1 and cal["p_value"] == pytest.approx(1 / 6) == cal["p_floor"]
    assert cal["n_excluding_zero"] == 2
    rms = np.sqrt(np.mean(np.array([0.5, -1.0, 2.5, -3.0, 0.1]) ** 2))
    assert cal["scale"] == pytest.approx(rms)
    e = fit.effects["delta"]
    assert cal["calibrated_high"] - cal["calibrated_low"] == pytest.approx(
        rms * (e.hdi_high - e.hdi_low)
    )
    # a treated effect in the middle of the placebos ranks low; honest placebos do not widen
    mid = calibrate(_Fit(0.0, 0.02), _table([0.5, -1.0, 0.3, -0.2]), "delta")  # type: ignore[arg-type]
    assert mid["rank"] == 5 and mid["p_value"] == pytest.approx(1.0)
    assert mid["scale"] == 1.0


def test_headline_shows_placebo_rank_and_calibrated_interval() -> None:
    """The CLI headline states the rank, p-value with its floor and the calibrated interval."""
    from hepcausal.experiments.store import placebo_line

    cal = calibrate(_Fit(0.1, 0.02), _table([0.5, -1.0, 2.5, -3.0, 0.1]), "delta")  # type: ignore[arg-type]
    line = placebo_line({"estimator": "ddd", "placebo": cal}, 0.95)
    assert "rank 1 of 6" in line and "p = 0.17, floor 0.17" in line
    assert f"[{cal['calibrated_low']:.3g}, {cal['calibrated_high']:.3g}]" in line
    assert "not run" in placebo_line({"estimator": "ddd"}, 0.95)
    assert placebo_line({"estimator": "gradient"}, 0.95) == ""


@pytest.mark.slow
def test_placebo_calibrate_end_to_end() -> None:
    """DiD on a small panel: every comparator refitted; summary and meta carry the calibration."""
    icbs = ("QK1", "QJ2", "QOQ", "QT1")
    cfg = SimulationConfig.small(n_practices=48, icbs=icbs, years=(2020, 2021, 2022, 2023), seed=4)
    panel = simulate_panel(cfg).panel
    inf = Inference(settings=SamplerSettings(draws=300, tune=300, chains=2, seed=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # deliberately short chains
        fit = fit_did(panel, S.GP_FTE, Design(comparators=icbs[1:]), inf)
        pf = placebo_calibrate(fit, panel, inference=inf)
    assert isinstance(pf, PlaceboFit)
    assert list(pf.placebo["group"]) == list(icbs[1:])
    cal = pf.calibration
    assert cal["n_placebo"] == 3 and cal["p_floor"] == pytest.approx(0.25)
    assert 1 <= cal["rank"] <= 4
    row = pf.summary().iloc[0]
    assert row["placebo_rank"] == f"{cal['rank']} of 4"
    assert row["calibrated_low"] <= pf.headline.hdi_low
    assert pf.meta["placebo"]["rank"] == cal["rank"]
    from hepcausal.plots.dispatch import result_figures

    names = [name for name, _, _ in result_figures(pf)]
    assert names[0] == "placebo"


def test_placebo_sweep_mode_points_and_calibration(tmp_path) -> None:
    """Placebo sweep mode: the base run, every comparator as pseudo-treated, the calibration."""
    from hepcausal.experiments.sweep import expand_sweep, placebo_calibration
    from hepcausal.schema import PUBLISHED_COMPARATORS

    cfg = tmp_path / "plc.toml"
    cfg.write_text(
        'name = "plc"\n[data]\nsource = "synthetic"\n[analysis]\noutcome = "gp"\n'
        '[estimator]\nname = "ddd"\n[sweep]\nmode = "placebo"\ngrid = {}\n'
    )
    points = expand_sweep(cfg)
    assert len(points) == 1 + len(PUBLISHED_COMPARATORS) and points[0].name == "plc__base"
    for p, c in zip(points[1:], PUBLISHED_COMPARATORS, strict=True):
        a = p.config.analysis
        assert a.treated_icb == c and p.name == f"plc__treated_icb=placebo-{c}"
        comps = a.comparator_codes()
        assert c not in comps and S.LLR_ICB not in comps and len(comps) == len(points) - 2
    z = [0.5, -1.0, 2.5, -3.0, 0.1, 0.2, -0.4, 0.9, -1.2, 0.3]
    rows = [
        {"run": "plc__base", "estimand": "delta_gradient", "mean": 0.1, "sd": 0.02}
        | {"hdi_low": 0.06, "hdi_high": 0.14, "diagnostics_ok": True}
    ]
    for p, zi in zip(points[1:], z, strict=True):
        rows.append(
            {"run": p.name, "estimand": "delta_gradient", "mean": zi * 0.02, "sd": 0.02}
            | {"hdi_low": zi * 0.02 - 0.04, "hdi_high": zi * 0.02 + 0.04, "diagnostics_ok": True}
        )
    cal = placebo_calibration(pd.DataFrame(rows[:-1]), points).iloc[0]  # one placebo missing
    assert cal["treated"] == S.LLR_ICB and cal["n_placebo"] == 9 and cal["n_placebo_missing"] == 1
    assert cal["rank"] == 1 and cal["p_value"] == pytest.approx(0.1) == cal["p_floor"]
    assert cal["z_sd"] == pytest.approx(np.std(z[:-1], ddof=1))
    assert cal["n_excluding_zero"] == 2  # |z| > 2: the HDIs +-2 SD exclude 0
    with pytest.raises(ValueError, match="base run"):
        placebo_calibration(pd.DataFrame(rows[1:]), points)
