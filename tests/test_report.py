"""Tests of the offline HTML run and sweep reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import arviz as az
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from hepcausal import plots
from hepcausal.diagnostics import check_convergence
from hepcausal.report import ReportError, effect_from_row, write_report, write_sweep_report
from hepcausal.results import FitResult, append_terms
from hepcausal.summaries import summarise_effect

SRC_HREF = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def assert_offline(text: str) -> None:
    """Every src/href is an inline data URI, an in-page anchor or a relative path."""
    refs = SRC_HREF.findall(text)
    assert refs
    for r in refs:
        if r.startswith("data:"):
            assert r.startswith("data:image/png;base64,")
        else:
            assert "http" not in r and "//" not in r and ":" not in r, r
    assert "<script" not in text and "<link" not in text and "@import" not in text


def _idata(seed: int, shift_chain: float = 0.0) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    effect = rng.normal(0.03, 0.01, (2, 500))
    effect[1] += shift_chain  # a non-mixing chain fails R-hat
    sigma = np.abs(rng.normal(1, 0.1, (2, 500)))
    return az.from_dict(
        posterior={"delta_gradient": effect, "sigma": sigma},
        sample_stats={"diverging": np.zeros((2, 500), dtype=bool)},
    )


def make_run(
    tmp: Path, *, failed: bool = False, figures: bool = True, truth: dict | None = None
) -> Path:
    """A run directory in the layout of hepcausal.experiments.store."""
    idata = _idata(0, shift_chain=0.05 if failed else 0.0)
    post = idata.posterior
    append_terms(idata, {"delta_gradient": post["delta_gradient"], "sigma": post["sigma"]})
    diag = check_convergence(idata, warn=False)
    eff = {
        "delta_gradient": summarise_effect(
            idata.posterior["delta_gradient"],
            name="delta_gradient",
            rope=0.01,
            units="FTE per 1,000 weighted patients",
        ),
        "sigma": summarise_effect(idata.posterior["sigma"], name="sigma"),
    }
    result = FitResult(
        idata=idata,
        diagnostics=diag,
        effects=eff,
        meta={
            "estimator": "ddd",
            "outcome": "gp_fte_per_1k",
            "treated": "QK1",
            "dropped": {"missing outcome": 3},
        },
    ).with_truth(truth)
    run = tmp / "run-abc123"
    run.mkdir(parents=True)
    result.save(run / "idata.nc")
    result.summary().to_csv(run / "summary.csv", index=False)
    (run / "diagnostics.json").write_text(json.dumps(diag.to_dict()))
    (run / "meta.json").write_text(json.dumps(result.meta))
    if result.truth is not None:
        (run / "truth.json").write_text(json.dumps(result.truth))
    (run / "config.resolved.toml").write_text(
        'name = "primary"\n[analysis]\noutcome = "gp_fte_per_1k"  # <b>not html</b>\n'
    )
    (run / "provenance.json").write_text(
        json.dumps(
            {
                "name": "primary",
                "config_hash": "abc123",
                "seed": 20211,
                "git": {"commit": "deadbeef" * 5, "dirty": False},
                "python": "3.11.9",
                "packages": {"pymc": "5.28.0", "arviz": "0.23.0"},
                "data": {
                    "source": "nhs",
                    "fingerprint": "f00d",
                    "files_sha256": {"qof.csv": "aa" * 32},
                },
            }
        )
    )
    pd.DataFrame(
        {
            "rule": ["min list size", "has IMD"],
            "practices_dropped": [12, 4],
            "rows_dropped": [60, 20],
        }
    ).to_csv(run / "inclusion.csv", index=False)
    marker = {
        "status": "complete",
        "name": "primary",
        "estimator": "ddd",
        "diagnostics_ok": diag.ok,
        "figures": [],
        "figures_error": None,
    }
    if figures:
        paths = plots.plot_result(result, run / "figures", formats=["svg", "png"])
        marker["figures"] = [str(p.relative_to(run)) for p in paths]
    (run / "run.json").write_text(json.dumps(marker))
    return run


def test_report_labels_primary_and_secondary_outcome(tmp_path: Path) -> None:
    from hepcausal.experiments.store import outcome_role_sentence

    run = make_run(tmp_path)
    assert "Outcome role" not in write_report(run).read_text()  # no primary declared
    summary = pd.read_csv(run / "summary.csv").assign(outcome_role="secondary")
    summary.to_csv(run / "summary.csv", index=False)
    (run / "config.resolved.toml").write_text(
        'name = "primary"\n[analysis]\noutcome = "nurse_fte_per_1k"\n'
        'primary_outcome = "gp_fte_per_1k"\n'
    )
    html = write_report(run).read_text()
    assert "Outcome role: secondary (the declared primary outcome is gp_fte_per_1k)" in html
    assert outcome_role_sentence("primary", "gp_fte_per_1k").startswith("Outcome role: primary")
    assert outcome_role_sentence(None, None) == ""


def test_report_sections_inline_figures_and_offline(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    text = out.read_text()
    for anchor in (
        "headline",
        "effects",
        "diagnostics",
        "figures",
        "inclusion",
        "config",
        "provenance",
    ):
        assert f'id="{anchor}"' in text
    # headline sentence: the estimand in words, its code name, what the sign means
    assert "slope index of inequality (SII)" in text and "(delta_gradient) is" in text
    assert "A positive SII means more" in text
    assert "All convergence checks passed" in text and 'class="warning"' not in text
    # every figure embedded, with its caption, as a data URI (two figures: posterior, trace)
    assert text.count('src="data:image/png;base64,') == 2
    assert "Posterior of the headline estimand" in text
    # offline: no external URL in any src or href, no external stylesheet or script
    assert_offline(text)
    # config is escaped text, provenance and inclusion are shown
    assert "&lt;b&gt;not html&lt;/b&gt;" in text
    assert "deadbeef" in text and "20211" in text and "aa" * 32 in text
    assert "min list size" in text and "missing outcome" in text


def test_failed_diagnostics_show_warning_box(tmp_path: Path) -> None:
    run = make_run(tmp_path, failed=True, figures=False)
    text = write_report(run).read_text()
    assert 'id="convergence-warning"' in text
    assert "CONVERGENCE CHECK FAILED" in text
    assert "R-hat" in text.split('id="convergence-warning"')[1].split("</div>")[0]
    assert "No figures in this run directory" in text


def test_effect_from_row_round_trips_summary(tmp_path: Path) -> None:
    run = make_run(tmp_path, figures=False)
    row = pd.read_csv(run / "summary.csv").iloc[0].to_dict()
    idata = az.from_netcdf(run / "idata.nc")
    s = summarise_effect(
        idata.posterior["delta_gradient"],
        name="delta_gradient",
        rope=0.01,
        units="FTE per 1,000 weighted patients",
    )
    assert effect_from_row(row).sentence() == s.sentence()


def test_report_errors_name_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not found"):
        write_report(tmp_path / "nope")
    (tmp_path / "r").mkdir()
    with pytest.raises(ReportError, match=r"summary\.csv"):
        write_report(tmp_path / "r")
    run = make_run(tmp_path, figures=False)
    (run / "diagnostics.json").unlink()
    with pytest.raises(ReportError, match=r"diagnostics\.json"):
        write_report(run)


def test_sweep_report_links_runs_and_flags_failures(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    good = make_run(sweep / "a", figures=False)
    bad = make_run(sweep / "b", failed=True, figures=False)
    rows = []
    for name, rd in (("primary", good), ("no trends", bad)):
        head = pd.read_csv(rd / "summary.csv").iloc[0].to_dict()
        ok = json.loads((rd / "diagnostics.json").read_text())["ok"]
        rows.append(
            {
                "run": name,
                "analysis.trends": name == "no trends",
                **head,
                "estimand": head["name"],
                "diagnostics_ok": ok,
                "run_dir": str(rd),
            }
        )
    table = pd.DataFrame(rows).drop(columns=["name"])
    table.to_csv(sweep / "sweep_summary.csv", index=False)
    plots.plot_sweep_forest(table, sweep / "forest.png")
    text = write_sweep_report(sweep).read_text()
    assert 'id="convergence-warning"' in text and "no trends" in text
    assert 'href="a/run-abc123/report.html"' in text and (good / "report.html").is_file()
    assert text.count('src="data:image/png;base64,') == 1
    assert_offline(text)


def test_event_study_pretrend_in_headline(tmp_path: Path) -> None:
    run = make_run(tmp_path, figures=False)
    summary = pd.read_csv(run / "summary.csv")
    summary["pretrend_flag"] = True
    summary["pretrend_p"] = 0.012
    summary.to_csv(run / "summary.csv", index=False)
    text = write_report(run).read_text()
    headline = text.split('class="headline">')[1].split("</div>")[0]
    assert "joint p = 0.012 (FLAGGED: parallel trends doubtful)" in headline


def test_truth_shown_as_term_true_value_estimate_table(tmp_path: Path) -> None:
    run = make_run(tmp_path, figures=False, truth={"delta_gradient": 0.03, "sigma": 5.0})
    summary = pd.read_csv(run / "summary.csv")
    assert list(summary["term"]) == ["delta_gradient", "sigma"]
    assert list(summary["truth"]) == [0.03, 5.0]
    text = write_report(run).read_text()
    section = text.split("<h3>Simulation truth</h3>")[1].split("</table>")[0]
    for header in ("term", "true value", "estimate", "HDI covers truth"):
        assert f"<th>{header}</th>" in section
    rows = section.split("<tr>")[2:]  # header row first
    assert "delta_gradient" in rows[0] and ">yes<" in rows[0]  # 0.03 inside the HDI
    assert "sigma" in rows[1] and ">no<" in rows[1]  # 5 far outside the posterior of sigma
    assert "{" not in section  # a table, not raw JSON


def test_no_truth_section_without_truth(tmp_path: Path) -> None:
    text = write_report(make_run(tmp_path, figures=False)).read_text()
    assert "Simulation truth" not in text


def test_report_of_a_sweep_directory_writes_the_sweep_report(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    run = make_run(sweep / "a", figures=False)
    head = pd.read_csv(run / "summary.csv").iloc[0].to_dict()
    row = {"run": "primary", **head, "diagnostics_ok": True, "run_dir": str(run)}
    pd.DataFrame([row]).to_csv(sweep / "sweep_summary.csv", index=False)
    out = write_report(sweep)
    assert out == sweep / "sweep_report.html" and "Headline estimand by run" in out.read_text()


# ----------------------------------------------------------------- the estimand in words, rounding
def test_estimand_words_name_who_what_when_and_rank() -> None:
    from hepcausal.summaries import estimand_words

    w = estimand_words(
        "delta_gradient", outcome="gp", treated="QK1", start_year=2022, rank_col="deprivation_rank"
    )
    assert w is not None
    assert "LLR's" in w and "slope index of inequality" in w and "GP FTE" in w
    assert "from FY2021/22" in w and "deprivation rank" in w and "comparator" in w
    assert "need rank" in str(estimand_words("delta_gradient", rank_col="need_rank"))
    assert "mean" in str(estimand_words("delta_level", outcome="gp", start_year=2022))
    assert estimand_words("something_else") is None


def test_sign_reading_for_both_signs_of_the_change_and_of_the_sii() -> None:
    from hepcausal.summaries import sign_reading

    kw = {"outcome": "gp", "rank_col": "deprivation_rank"}
    neg, pos = (
        sign_reading("delta_gradient", -0.02, **kw),
        sign_reading("delta_gradient", 0.02, **kw),
    )
    assert neg is not None and pos is not None
    assert "A positive SII means more GP FTE in less deprived practices" in neg
    assert "towards the more deprived practices" in neg
    assert "towards the less deprived practices" in pos
    # with the SII before the start the reading says narrowed / widened
    assert "narrows" in str(sign_reading("delta_gradient", -0.02, sii_before=0.1, **kw))
    assert "widens" in str(sign_reading("delta_gradient", 0.02, sii_before=0.1, **kw))
    assert "widens" in str(sign_reading("delta_gradient", -0.02, sii_before=-0.1, **kw))
    assert "narrows" in str(sign_reading("delta_gradient", 0.02, sii_before=-0.1, **kw))
    assert "in need" in str(sign_reading("delta_gradient", 0.02, rank_col="need_rank"))
    assert sign_reading("delta_level", -0.02, **kw) is None  # a level change has no SII reading


def test_report_rounding() -> None:
    from hepcausal.report_template import fmt_ess, fmt_prob, fmt_rhat

    assert fmt_rhat(1.0067) == "1.007" and fmt_rhat(1.01) == "1.010"
    assert fmt_ess(1164.24) == "1164" and fmt_ess(float("nan")) == ""
    assert fmt_prob(0.9996) == "> 0.999" and fmt_prob(0.0004) == "< 0.001"
    assert fmt_prob(0.5) == "0.500" and fmt_prob(None) == ""


def test_report_shows_inclusion_once_and_rounded_diagnostics(tmp_path: Path) -> None:
    run = make_run(tmp_path, figures=False)
    (run / "inclusion.txt").write_text("INCLUSION TEXT VERSION\n")
    text = write_report(run).read_text()
    assert "INCLUSION TEXT VERSION" not in text  # the table is shown, not the text twice
    assert "min list size" in text
    assert "overflow-x: auto" not in text and "pre-wrap" in text  # notes wrap, no scroll box


# ----------------------------------------------------------------- compact run folders
def test_compact_idata_drops_warmup_practice_effects_and_raw_draws() -> None:
    import numpy as np

    from hepcausal.experiments.store import compact_idata, parameter_latex, parameter_table

    rng = np.random.default_rng(0)
    post = {
        "effect": rng.normal(size=(2, 50, 2)),
        "unit_raw": rng.normal(size=(2, 50, 30)),
        "z_cell": rng.normal(size=(2, 50, 3, 4)),
        "sigma": np.abs(rng.normal(size=(2, 50))),
    }
    idata = az.from_dict(
        posterior=post,
        warmup_posterior=post,
        dims={"effect": ["term"], "unit_raw": ["unit"], "z_cell": ["group", "year"]},
        coords={"term": ["a", "b"]},
        save_warmup=True,
    )
    assert "warmup_posterior" in idata.groups()
    small = compact_idata(idata)
    assert not any(g.startswith("warmup") for g in small.groups())
    assert set(small.posterior.data_vars) == {"effect", "sigma"}
    assert "unit" not in small.posterior.dims
    assert small.posterior.attrs["dropped_vars"] == "unit_raw,z_cell"
    assert "unit_raw" in idata.posterior  # the fit's own idata is untouched
    table = parameter_table(small)
    assert list(table["parameter"]) == ["effect[a]", "effect[b]", "sigma"]
    tex = parameter_latex(table, caption="x")
    assert "R-hat" in tex and "effect[a]" in tex and "\\toprule" in tex and "hdi_low" not in tex


def test_report_shows_classical_sii_beside_bayesian_and_reads_the_gap(tmp_path: Path) -> None:
    from hepcausal.experiments.store import sii_before

    run = make_run(tmp_path, figures=False)
    rows = [
        {"icb_code": icb, "year": y, "sii": s, "lower": s - 0.1, "upper": s + 0.1, "method": "phe"}
        for icb, s0 in (("QK1", 0.2), ("QJ2", 0.1), ("QOQ", 0.12))
        for y, s in (
            (y, s0 - (0.05 if icb == "QK1" and y >= 2022 else 0.0)) for y in range(2019, 2024)
        )
    ]
    pd.DataFrame(rows).to_csv(run / "sii_classical.csv", index=False)
    meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").is_file() else {}
    meta.update({"treated": "QK1", "start_year": 2022, "outcome": "gp"})
    (run / "meta.json").write_text(json.dumps(meta))
    assert sii_before(run, "QK1", 2022) == pytest.approx(0.2)
    text = write_report(run).read_text()
    assert "Classical SII beside the Bayesian estimate" in text and "comparator average" in text
    # the fixture's delta_gradient is about +0.03: with a positive SII before, it widens the gap
    assert "classical SII averaged 0.2" in text and "widens that gap" in text
