"""Tests of hepcausal.plots: figures are drawn, composable (ax=), saved as valid vector + PNG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import arviz as az
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from hepcausal import plots
from hepcausal.causal.event_study import EventStudyFit
from hepcausal.diagnostics import check_convergence
from hepcausal.plots.event_study import pretrend_text
from hepcausal.plots.style import fiscal_year_label, save_figure
from hepcausal.plots.synthetic_control import as_draws, weights_table
from hepcausal.results import FitResult, append_terms, stack_terms
from hepcausal.schema import LLR_ICB, PUBLISHED_COMPARATORS, STUDY_YEARS
from hepcausal.summaries import summarise_effect

ICBS = (LLR_ICB, *PUBLISHED_COMPARATORS[:4])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def sii_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for code in ICBS:
        base = rng.normal(-0.08, 0.03)
        for y in STUDY_YEARS:
            m = base + (0.04 if code == LLR_ICB and y >= 2022 else 0.0) + rng.normal(0, 0.01)
            rows.append(
                {"icb_code": code, "year": y, "mean": m, "hdi_low": m - 0.03, "hdi_high": m + 0.03}
            )
    return pd.DataFrame(rows)


def classical_table(t: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "icb_code": t["icb_code"],
            "year": t["year"],
            "sii": t["mean"] + 0.01,
            "lower": t["mean"] - 0.05,
            "upper": t["mean"] + 0.06,
        }
    )


def event_table() -> pd.DataFrame:
    rel = np.arange(-4, 3)
    mean = np.where(rel >= 0, 0.03, 0.0) + np.array([0.001, -0.03, 0.002, 0, 0.03, 0.028, 0.031])
    half = np.full(rel.size, 0.02)
    half[rel == -1] = 0.0
    mean[rel == -1] = 0.0
    return pd.DataFrame(
        {
            "year": rel + 2022,
            "relative_time": rel,
            "mean": mean,
            "hdi_low": mean - half,
            "hdi_high": mean + half,
        }
    )


def fake_idata(seed: int = 0, n_obs: int = 40) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    return az.from_dict(
        posterior={
            "effect": rng.normal(0.03, 0.01, (2, 200)),
            "sigma": np.abs(rng.normal(1, 0.1, (2, 200))),
            "beta": rng.normal(0, 1, (2, 200, 3)),
        },
        posterior_predictive={"y": rng.normal(0, 1, (2, 200, n_obs))},
        prior_predictive={"y": rng.normal(0, 3, (1, 100, n_obs))},
        observed_data={"y": rng.normal(0, 1, n_obs)},
        sample_stats={"diverging": np.zeros((2, 200), dtype=bool)},
        coords={"coef": ["a", "b", "c"], "obs": np.arange(n_obs)},
        dims={"beta": ["coef"], "y": ["obs"]},
    )


# ----------------------------------------------------------------------------- style/output
def test_fiscal_year_label() -> None:
    assert fiscal_year_label(2022) == "21/22"
    assert fiscal_year_label(2000, short=False) == "1999/00"


def test_save_figure_writes_valid_vector_and_png(tmp_path: Path) -> None:
    fig = plots.plot_sii_trajectories(sii_table())
    paths = save_figure(fig, tmp_path / "sub" / "sii.pdf", caption="SII by ICS.")
    assert [p.name for p in paths] == ["sii.pdf", "sii.svg", "sii.png"]
    pdf, svg, png = paths
    assert pdf.read_bytes().startswith(b"%PDF") and b"%%EOF" in pdf.read_bytes()[-64:]
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "LLR (QK1)" in svg.read_text()  # text kept as text (svg.fonttype none)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width_px = int.from_bytes(png.read_bytes()[16:20], "big")
    assert width_px > 600  # 250 dpi preview, not a screen-resolution thumbnail
    captions = json.loads((tmp_path / "sub" / "captions.json").read_text())
    assert captions == {"sii": "SII by ICS."}


def test_svg_output_is_deterministic(tmp_path: Path) -> None:
    a = save_figure(plots.plot_event_study(event_table()), tmp_path / "a", ["svg"])[0]
    b = save_figure(plots.plot_event_study(event_table()), tmp_path / "b", ["svg"])[0]
    assert a.read_bytes() == b.read_bytes()


# ----------------------------------------------------------------------------- SII trajectories
def test_sii_overlay_highlights_llr_and_accepts_ax() -> None:
    fig, ax = plt.subplots()
    out = plots.plot_sii_trajectories(sii_table(), classical=classical_table(sii_table()), ax=ax)
    assert out is fig
    llr = [ln for ln in ax.get_lines() if ln.get_color() == plots.LLR_COLOUR]
    grey = [ln for ln in ax.get_lines() if ln.get_color() == plots.COMPARATOR_COLOUR]
    assert len(llr) == 1 and len(grey) == len(ICBS) - 1
    np.testing.assert_allclose(llr[0].get_xdata(), STUDY_YEARS)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "LLR (QK1)" in labels and "Classical SII (95% CI)" in labels


def test_sii_grid_has_one_panel_per_icb() -> None:
    fig = plots.plot_sii_trajectories(sii_table(), layout="grid", ncols=3, outcome="gp_fte_per_1k")
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == len(ICBS)
    assert visible[0].get_title(loc="left") == "LLR (QK1)"


def test_sii_rejects_missing_columns() -> None:
    with pytest.raises(KeyError, match="hdi_high"):
        plots.plot_sii_trajectories(sii_table().drop(columns="hdi_high"))
    with pytest.raises(ValueError, match="layout"):
        plots.plot_sii_trajectories(sii_table(), layout="spiral")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- event study
def test_pretrend_text_counts_pre_hdis_excluding_zero() -> None:
    # pre coefficients: -4 (covers 0), -3 (-0.05..-0.01: excludes 0), -2 (covers 0); -1 reference
    assert pretrend_text(event_table()) == "Pre-period: 1 of 3 HDIs exclude 0"


def test_event_study_accepts_ax_and_marks_reference() -> None:
    fig, ax = plt.subplots()
    assert plots.plot_event_study(event_table(), ax=ax) is fig
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["Pre-period: 1 of 3 HDIs exclude 0"]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[3] == "-1\n20/21" and ticks[4] == "0\n21/22"


# ----------------------------------------------------------------------------- synthetic control
def test_synthetic_control_gap_and_cumulative_gap() -> None:
    years = np.arange(2018, 2025)
    rng = np.random.default_rng(0)
    cf = -0.08 + rng.normal(0, 0.005, (300, years.size))
    obs = np.full(years.size, -0.08) + np.where(years >= 2022, 0.03, 0.0)
    placebo = pd.DataFrame(rng.normal(0, 0.01, (years.size, 4)), index=years)
    fig = plots.plot_synthetic_control(years, obs, cf, placebo_gaps=placebo)
    _, b, c = fig.axes[:3]
    gap_mean = (obs - cf).mean(axis=0)
    mean_line = next(ln for ln in b.get_lines() if ln.get_color() == plots.LLR_COLOUR)
    np.testing.assert_allclose(mean_line.get_ydata(), gap_mean)
    cum = next(ln for ln in c.get_lines() if ln.get_color() == plots.LLR_COLOUR)
    np.testing.assert_allclose(cum.get_xdata(), [2022, 2023, 2024])
    np.testing.assert_allclose(cum.get_ydata(), np.cumsum(gap_mean[years >= 2022]))
    assert len([ln for ln in b.get_lines() if ln.get_color() == "#BDBDBD"]) == 4


def test_synthetic_control_accepts_axes_and_chain_draw_arrays() -> None:
    years = np.arange(2018, 2025)
    cf = np.random.default_rng(1).normal(0, 0.01, (2, 100, years.size))
    fig, axes = plt.subplots(1, 3)
    assert plots.plot_synthetic_control(years, np.zeros(years.size), cf, axes=axes) is fig
    assert as_draws(cf).shape == (200, years.size)
    with pytest.raises(ValueError, match="columns"):
        plots.plot_synthetic_control(years[:-1], np.zeros(6), cf)


def test_donor_weights_sorted_and_from_draws() -> None:
    w = np.random.default_rng(2).dirichlet([5.0, 1.0, 0.3], size=400)
    t = weights_table(w, donors=["A", "B", "C"])
    assert list(t["donor"]) == ["A", "B", "C"]
    assert np.all(t["hdi_low"] <= t["mean"]) and np.all(t["mean"] <= t["hdi_high"])
    fig, ax = plt.subplots()
    assert plots.plot_donor_weights(w, donors=["A", "B", "C"], ax=ax) is fig
    assert [t.get_text() for t in ax.get_yticklabels()] == ["C", "B", "A"]  # largest on top


def test_placebo_ratios_highlight_treated() -> None:
    r = pd.Series({"QK1": 4.0, "A": 1.0, "B": 2.0})
    _, ax = plt.subplots()
    plots.plot_placebo_ratios(r, treated="QK1", p_value=1 / 3, ax=ax)
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]
    assert colours[-1].lower() == plots.LLR_COLOUR.lower()
    assert "p = 0.333" in ax.texts[0].get_text()


# ----------------------------------------------------------------------------- forest
def sweep_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": ["primary", "no trends", "stan"],
            "estimand": ["ddd"] * 3,
            "mean": [0.03, 0.02, 0.031],
            "hdi_low": [0.01, -0.01, 0.012],
            "hdi_high": [0.05, 0.05, 0.05],
            "p_direction": [0.99, 0.9, 0.995],
            "p_rope": [0.02, 0.2, 0.01],
            "rope_low": [-0.01] * 3,
            "rope_high": [0.01] * 3,
            "diagnostics_ok": [True, False, True],
            "units": ["per 1,000"] * 3,
        }
    )


def test_forest_columns_rope_and_failed_runs(tmp_path: Path) -> None:
    t = sweep_table().rename(columns={"run": "name", "diagnostics_ok": "ok"})
    fig, ax = plt.subplots()
    assert plots.plot_forest(t, ax=ax, highlight=["primary"]) is fig
    texts = [x.get_text() for x in ax.texts]
    assert any("P(dir)" in s and "P(ROPE)" in s for s in texts)
    assert any("0.990" in s and "0.020" in s for s in texts)
    labels = [x.get_text() for x in ax.get_yticklabels()]
    assert labels == ["primary", "no trends (!)", "stan"]
    assert list(ax.get_yticks()) == [2, 1, 0]  # first row at the top
    spans = [p for p in ax.patches if p.get_x() == pytest.approx(-0.01)]
    assert spans, "ROPE band from rope_low/rope_high not drawn"


def test_plot_sweep_forest_writes_files(tmp_path: Path) -> None:
    out = plots.plot_sweep_forest(sweep_table(), tmp_path / "forest.png")
    assert out == tmp_path / "forest.png" and out.stat().st_size > 1000
    assert (tmp_path / "forest.pdf").is_file() and (tmp_path / "forest.svg").is_file()


def test_forest_rejects_missing_columns() -> None:
    with pytest.raises(KeyError, match="hdi_low"):
        plots.plot_forest(pd.DataFrame({"name": ["a"], "mean": [1.0], "hdi_high": [2.0]}))


# ----------------------------------------------------------------------------- checks
def test_effect_posterior_annotates_probabilities() -> None:
    draws = np.random.default_rng(3).normal(0.03, 0.01, 2000)
    fig, ax = plt.subplots()
    assert plots.plot_effect_posterior(draws, name="effect", rope=0.01, ax=ax) is fig
    s = summarise_effect(draws, name="effect", rope=0.01)
    text = ax.texts[0].get_text()
    assert f"P(> 0) = {s.p_direction:.3f}" in text and f"P(ROPE) = {s.p_rope:.3f}" in text


def test_ppc_prior_and_posterior_and_trace() -> None:
    idata = fake_idata()
    for group in ("prior", "posterior"):
        fig, ax = plt.subplots()
        assert plots.plot_ppc(idata, group=group, ax=ax) is fig
        assert group.capitalize() in ax.get_title(loc="left")
    fig = plots.plot_trace_rank(idata)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 2 * 4  # effect, sigma, beta[a], beta[b]
    with pytest.raises(ValueError, match="prior_predictive"):
        plots.plot_ppc(az.from_dict(posterior={"x": np.zeros((1, 5))}), group="prior")


# ----------------------------------------------------------------------------- plot_result
def _fit_result(idata: az.InferenceData, cls: type = FitResult, **kw) -> FitResult:
    idata = idata.copy()
    append_terms(idata, {"effect": idata.posterior["effect"].values})  # the estimand contract
    diag = check_convergence(idata, warn=False)
    eff = {"effect": summarise_effect(idata.posterior["effect"], name="effect", rope=0.01)}
    return cls(idata=idata, diagnostics=diag, effects=eff, **kw)


def test_plot_result_generic_fit(tmp_path: Path) -> None:
    paths = plots.plot_result(_fit_result(fake_idata()), tmp_path, formats=["svg", "png"])
    stems = {p.stem for p in paths}
    assert stems == {
        "effect_posterior",
        "trace_rank",
        "prior_predictive_check",
        "posterior_predictive_check",
    }
    assert all(p.stat().st_size > 0 for p in paths)
    assert {p.suffix for p in paths} == {".svg", ".png"}
    captions = json.loads((tmp_path / "captions.json").read_text())
    assert set(captions) == stems


def test_plot_result_gradient_fit(tmp_path: Path) -> None:
    from hepcausal.models.gradient import GradientFit

    rng = np.random.default_rng(4)
    years = list(STUDY_YEARS)
    sii = rng.normal(-0.08, 0.01, (2, 150, len(ICBS), len(years)))
    nat = sii.mean(axis=2)
    idata = az.from_dict(
        posterior={"sii": sii, "national_sii": nat},
        coords={"icb": list(ICBS), "year": years},
        dims={"sii": ["icb", "year"], "national_sii": ["year"]},
    )
    key = f"national_sii_change_{years[0]}_{years[-1]}"
    change = nat[..., -1] - nat[..., 0]
    nat_da = idata.posterior["national_sii"]
    idata.posterior["estimand"] = stack_terms(
        {key: nat_da.sel(year=years[-1]) - nat_da.sel(year=years[0])}
    )
    fit = GradientFit(
        idata=idata,
        diagnostics=check_convergence(idata, warn=False),
        effects={key: summarise_effect(change, name="change")},
        meta={"outcome": "gp_fte_per_1k", "likelihood": "gaussian"},
    )
    np.testing.assert_allclose(fit.draws(key), change.ravel())
    paths = plots.plot_result(fit, tmp_path, formats=["png"])
    assert {p.stem for p in paths} == {
        "sii_trajectories",
        "sii_small_multiples",
        "effect_posterior",
        "trace_rank",
    }


def test_plot_result_causal_fit_uses_estimand_draws(tmp_path: Path) -> None:
    from hepcausal.causal.panel_fit import CausalFit

    rng = np.random.default_rng(5)
    est = rng.normal([0.03, -0.01], 0.01, (2, 200, 2))
    idata = az.from_dict(
        posterior={"estimand": est, "sigma": np.abs(rng.normal(1, 0.1, (2, 200)))},
        coords={"term": ["delta_gradient", "delta"]},
        dims={"estimand": ["term"]},
    )
    eff = {"delta_gradient": summarise_effect(est[..., 0], name="delta_gradient")}
    fit = CausalFit(idata=idata, diagnostics=check_convergence(idata, warn=False), effects=eff)
    np.testing.assert_allclose(fit.draws("delta_gradient"), est[..., 0].ravel())
    paths = plots.plot_result(fit, tmp_path, formats=["svg"])
    assert {p.stem for p in paths} == {"effect_posterior", "trace_rank"}


def test_plot_result_rejects_unknown_objects(tmp_path: Path) -> None:
    with pytest.raises(
        TypeError, match=r"no figures for a object; registered types: \[.*FitResult"
    ):
        plots.plot_result(object(), tmp_path)


class _EventStudy(EventStudyFit):
    """An event-study fit whose table is given (building the real one needs a fitted design)."""

    def event_table(self, target: str | None = None) -> pd.DataFrame:
        return event_table()


def test_event_study_figures_use_reference_and_pretrend(tmp_path: Path) -> None:
    fit = _fit_result(
        fake_idata(),
        _EventStudy,
        meta={"start_year": 2022},
        target="gradient",
        reference_year=2021,
        pretrend={"n_pre": 3, "p_joint": 0.42, "max_abs_z": 1.3, "flag": False},
    )
    figs = {stem: fig for stem, fig, _ in plots.result_figures(fit)}
    assert {"event_study", "event_study_level", "effect_posterior", "trace_rank"} <= set(figs)
    ax = figs["event_study"].axes[0]
    assert ax.texts[0].get_text().startswith("Pre-trend check (3 years): joint p = 0.42")
    assert figs["event_study_level"].axes[0].get_ylabel().startswith("Effect on level")


def test_trace_rank_shows_the_elements_its_caption_names() -> None:
    """The worst-R-hat element (here the last year) is drawn, not the first two elements."""
    rng = np.random.default_rng(8)
    year = rng.normal(0, 1, (2, 200, 4))
    year[1, :, 3] += 3.0  # chains disagree on the last year only
    idata = az.from_dict(
        posterior={"effect": rng.normal(0.03, 0.01, (2, 200)), "year_effect": year},
        coords={"year": [2021, 2022, 2023, 2024]},
        dims={"year_effect": ["year"]},
    )
    fit = _fit_result(idata)
    assert fit.diagnostics.worst_rhat_var == "year_effect"
    (_, fig, caption), *_ = (f for f in plots.result_figures(fit) if f[0] == "trace_rank")
    shown = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "year_effect[2024]" in shown and "year_effect[2021]" not in shown
    assert "estimand[effect]" in shown
    assert "year_effect[2024]" in caption and "estimand[effect]" in caption


def test_synthetic_control_adapter(tmp_path: Path) -> None:
    from hepcausal.causal.synthetic_control import SyntheticControlFit

    rng = np.random.default_rng(6)
    years = np.arange(2018, 2025)
    cf = rng.normal(-0.08, 0.005, (2, 100, years.size))
    idata = az.from_dict(
        posterior={"effect": rng.normal(0.02, 0.01, (2, 100))},
        posterior_predictive={
            "counterfactual": cf,
            "avg_post_effect": rng.normal(0.02, 0.01, (2, 100)),
        },
        coords={"time": years},
        dims={"counterfactual": ["time"]},
    )
    series = pd.DataFrame(
        {"observed": np.linspace(-0.1, -0.05, years.size)}, index=pd.Index(years, name="time")
    )
    weights = pd.DataFrame(
        {"mean": [0.7, 0.2, 0.1], "hdi_low": [0.5, 0.0, 0.0], "hdi_high": [0.9, 0.4, 0.3]},
        index=pd.Index(["A", "B", "C"], name="donor"),
    )
    pp_avg = idata.posterior_predictive["avg_post_effect"].values
    append_terms(idata, {"avg_post_effect": pp_avg})
    eff = {"avg_post_effect": summarise_effect(pp_avg, name="average post effect")}
    fit = SyntheticControlFit(
        idata=idata,
        diagnostics=check_convergence(idata, warn=False),
        effects=eff,
        treated="QK1",
        start=2022,
        series=series,
        weights=weights,
    )
    figs = plots.result_figures(fit)
    assert [s for s, _, _ in figs][:3] == ["synthetic_control", "donor_weights", "effect_posterior"]
    obs_line = figs[0][1].axes[0].get_lines()[0]
    np.testing.assert_allclose(obs_line.get_ydata(), series["observed"])
    assert [t.get_text() for t in figs[1][1].axes[0].get_yticklabels()] == ["C", "B", "A"]


def test_placebo_adapters(tmp_path: Path) -> None:
    from hepcausal.causal.placebo import PlaceboInTimeResult, PlaceboResult

    years = np.arange(2018, 2025)
    rng = np.random.default_rng(7)
    gaps = pd.DataFrame(
        rng.normal(0, 0.01, (years.size, 4)), index=years, columns=["QK1", "A", "B", "C"]
    )
    table = pd.DataFrame(
        {"ratio": [3.0, 1.0, 1.5, 9.0], "excluded": [False, False, False, True]},
        index=pd.Index(["QK1", "A", "B", "C"], name="unit"),
    )
    pl = PlaceboResult(
        treated="QK1",
        start=2022,
        table=table,
        gaps=gaps,
        rank=1,
        n_placebos=2,
        n_excluded=1,
        excluded=["C"],
        p_value=1 / 3,
        p_value_floor=1 / 3,
        inference="map",
        pre_mspe_factor=20.0,
    )
    figs = {stem: fig for stem, fig, _ in plots.result_figures(pl)}
    assert list(figs) == ["placebo_gaps", "placebo_rmspe"]
    ax = figs["placebo_gaps"].axes[0]
    treated_line = next(ln for ln in ax.get_lines() if ln.get_color() == plots.LLR_COLOUR)
    np.testing.assert_allclose(treated_line.get_ydata(), gaps["QK1"])
    assert sum(ln.get_linestyle() == ":" for ln in ax.get_lines()) == 1  # excluded placebo
    bars = figs["placebo_rmspe"].axes[0].patches
    assert len(bars) == 3  # excluded unit not ranked
    intime = PlaceboInTimeResult(
        treated="QK1",
        start=2022,
        fits={},
        table=pd.DataFrame(
            {
                "mean": [0.01, -0.02],
                "hdi_low": [-0.03, -0.05],
                "hdi_high": [0.05, 0.01],
                "p_direction": [0.7, 0.8],
            },
            index=pd.Index([2020, 2021], name="fake_start"),
        ),
    )
    paths = plots.plot_result(intime, tmp_path, formats=["png"])
    assert [p.name for p in paths] == ["placebo_in_time.png"]


def test_gradient_figures_use_the_family_reporting_scale() -> None:
    """Binomial families plot the probability-scale SII (``sii_prob``), others ``sii``."""
    from hepcausal.models.gradient import GradientFit

    rng = np.random.default_rng(9)
    years = list(STUDY_YEARS)
    shape = (2, 100, len(ICBS), len(years))
    sii, sii_prob = rng.normal(-0.5, 0.01, shape), rng.normal(0.05, 0.001, shape)
    idata = az.from_dict(
        posterior={"sii": sii, "sii_prob": sii_prob, "effect": rng.normal(0, 1, shape[:2])},
        coords={"icb": list(ICBS), "year": years},
        dims={"sii": ["icb", "year"], "sii_prob": ["icb", "year"]},
    )
    for family, values in (("beta_binomial", sii_prob), ("gaussian", sii)):
        fit = _fit_result(idata, GradientFit, meta={"likelihood": family})
        fig = next(f for s, f, _ in plots.result_figures(fit) if s == "sii_trajectories")
        llr = next(ln for ln in fig.axes[0].get_lines() if ln.get_color() == plots.LLR_COLOUR)
        np.testing.assert_allclose(llr.get_ydata(), values[:, :, 0].mean(axis=(0, 1)))


# ----------------------------------------------------------------- time-axis figures of a panel
def _panel_frame(shift: float = -0.3) -> pd.DataFrame:
    """ICS x year practice rows with a known SII: 0.2 everywhere, LLR's moving by ``shift``."""
    rng = np.random.default_rng(1)
    rows = []
    for icb in ["QK1", "QJ2", "QOQ", "QT1"]:
        for year in range(2018, 2025):
            rank = np.linspace(0, 1, 60)
            sii = 0.2 + (shift if icb == "QK1" and year >= 2022 else 0.0)
            y = 1.0 + sii * rank + rng.normal(0, 0.01, rank.size)
            rows += [
                {"icb_code": icb, "year": year, "practice_code": f"{icb}{i}", "y": v, "r": r}
                for i, (v, r) in enumerate(zip(y, rank, strict=True))
            ]
    return pd.DataFrame(rows)


def test_descriptive_event_view_recovers_a_known_change_and_its_sign() -> None:
    from hepcausal.inequality.classical import sii_table
    from hepcausal.plots.panel import descriptive_event_table, plot_descriptive_event

    for shift in (-0.3, 0.3):
        sii = sii_table(_panel_frame(shift), "y", method="unit", rank_col="r")
        ev = descriptive_event_table(sii, treated="QK1", treatment_year=2022).set_index("year")
        assert ev.loc[2021, "diff"] == 0.0  # reference year
        np.testing.assert_allclose(ev.loc[[2018, 2019, 2020], "diff"], 0.0, atol=0.03)
        np.testing.assert_allclose(ev.loc[[2022, 2023, 2024], "diff"], shift, atol=0.03)
        assert (ev.loc[[2022, 2023], "lower"] < ev.loc[[2022, 2023], "diff"]).all()
    fig = plot_descriptive_event(
        ev.reset_index(), ylabel="SII difference", title="t", estimate=(0.3, 0.2, 0.4), truth=0.3
    )
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "True value" in labels and "Model estimate (95% HDI)" in labels
    assert "Years relative" in fig.axes[0].get_xlabel()
    plt.close(fig)


def test_icb_series_highlights_treated_marks_start_and_averages_comparators() -> None:
    from hepcausal.plots.panel import icb_year_table, plot_icb_series

    t = icb_year_table(_panel_frame(), "y")
    assert set(t.columns) >= {"icb_code", "year", "value", "lower", "upper", "n"}
    assert (t["n"] == 60).all() and (t["lower"] < t["value"]).all()
    fig = plot_icb_series(t, treated="QK1", treatment_year=2022, ylabel="Y (units)", title="T")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Y (units)" and ax.get_xlabel() == "Fiscal year"
    labels = ax.get_legend_handles_labels()[1] or [x.get_text() for x in ax.get_legend().texts]
    assert any("LLR" in x for x in labels) and "Comparator average" in labels
    assert any("n = 3" in x for x in labels)
    plt.close(fig)


def test_england_reference_pools_every_practice_and_is_drawn() -> None:
    """England is every practice as one group (not the comparator average), with its CI."""
    from types import SimpleNamespace

    from hepcausal.plots.dispatch import _england_source
    from hepcausal.plots.panel import (
        england_level,
        england_sii,
        icb_year_table,
        plot_icb_series,
    )

    frame = _panel_frame(0.3)  # LLR's SII 0.2 -> 0.5 from 2022; the other 3 ICSs stay at 0.2
    level = england_level(frame, "y")
    sii = england_sii(frame, "y", "r")
    assert sii is not None and set(level["icb_code"]) == set(sii["icb_code"]) == {"England"}
    assert (level["n"] == 240).all() and (sii["method"] == "phe").all()
    by_year = frame.groupby("year")["y"].mean().to_numpy()
    np.testing.assert_allclose(level.sort_values("year")["value"], by_year)
    s = sii.set_index("year")["sii"]
    np.testing.assert_allclose(s.loc[[2018, 2019, 2020, 2021]], 0.2, atol=0.02)
    # a quarter of the practices moved by 0.3: England moves by about 0.075, neither 0 (the
    # comparator average) nor 0.3 (LLR)
    np.testing.assert_allclose(s.loc[[2022, 2023, 2024]], 0.275, atol=0.02)
    assert (sii["lower"] < sii["sii"]).all() and (sii["sii"] < sii["upper"]).all()
    unit = england_sii(frame, "y", "r", method="unit")  # the method of the ICS lines
    assert unit is not None and unit["method"].str.startswith("unit").all()

    fig = plot_icb_series(
        icb_year_table(frame, "y"),
        treated="QK1",
        treatment_year=2022,
        ylabel="Y",
        title="T",
        reference=level,
    )
    labels = [x.get_text() for x in fig.axes[0].get_legend().texts]
    assert "England, all practices (95% CI)" in labels
    plt.close(fig)

    # drawn only when the source panel has ICBs beyond the design's own
    assert _england_source(SimpleNamespace(source=frame, groups=["QK1", "QJ2"])) is frame
    every = SimpleNamespace(source=frame, groups=["QK1", "QJ2", "QOQ", "QT1"])
    assert _england_source(every) is None
    assert _england_source(SimpleNamespace(source=None, groups=["QK1"])) is None


def test_effect_posterior_marks_truth_names_lines_in_words() -> None:
    rng = np.random.default_rng(2)
    fig = plots.plot_effect_posterior(
        rng.normal(-0.04, 0.02, 2000),
        name="delta_gradient",
        xlabel="Change in the SII relative to comparators",
        units="FTE",
        rope=0.02,
        truth=-0.04,
    )
    ax = fig.axes[0]
    labels = [t.get_text() for t in fig.legends[0].texts] if fig.legends else []
    labels += ax.get_legend_handles_labels()[1]
    assert {"Zero", "Posterior mean", "True value", "ROPE"} <= set(labels)
    assert "delta_gradient" not in ax.get_xlabel() and "Change in the SII" in ax.get_xlabel()
    # the statistics box does not cover the ROPE band: it sits right of 0.02 (mean < 0)
    fig.canvas.draw()
    box = next(t for t in ax.texts if "mean" in t.get_text())
    x0 = ax.transData.inverted().transform(box.get_window_extent().get_points())[0, 0]
    assert x0 > 0.02
    plt.close(fig)
