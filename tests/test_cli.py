"""The hepcausal command line: help, errors, simulate -> run (cached), a sweep end to end."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import arviz as az
import pandas as pd
import pytest

from _experiments_tiny import TARGET, tiny_registry  # noqa: F401  (autouse fixture)
from hepcausal.cli import main
from hepcausal.experiments.config import load_config
from hepcausal.experiments.inputs import prepare_data
from hepcausal.experiments.store import load_run

pytestmark = pytest.mark.timeout(600)

COMMANDS = ("run", "sweep", "report", "simulate", "data", "check")


def test_help_at_every_level(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and all(c in out for c in COMMANDS)
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "example" in capsys.readouterr().out


def test_errors_without_traceback_and_documented_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[analysis]\noutcme = "gp"\n')
    assert main(["run", str(bad)]) == 2  # config error
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("hepcausal: error:")
    assert "'analysis.outcme'" in err and "did you mean 'analysis.outcome'" in err
    assert str(bad) in err
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text(f'[estimator]\nname = "{TARGET}"\n')
    assert main(["check", str(good), "--set", "sampler.draws"]) == 2
    assert "key=value" in capsys.readouterr().err
    assert main(["check", str(good), "--set", "sampler.draws=0"]) == 2
    assert "'sampler.draws' must be >= 1" in capsys.readouterr().err
    assert main(["sweep", str(good)]) == 2
    assert "no [sweep] table" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"analysis\.outcme"):
        main(["--debug", "run", str(bad)])


def write_config(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


# deliberately short chains (2 x 300 draws): the convergence warning is expected here
@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_simulate_then_run_from_file_and_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "simulate",
                "--preset",
                "small",
                "--n-practices",
                "240",
                "--seed",
                "5",
                "--gradient-effect",
                "-0.05",
                "--out",
                "panel.csv",
            ]
        )
        == 0
    )
    assert "Truth:" in capsys.readouterr().out
    panel = pd.read_csv("panel.csv")
    truth = json.loads(Path("panel.truth.json").read_text())
    assert truth["gradient_effect"]["gp_fte_per_1k"] == -0.05
    assert truth["config"]["seed"] == 5 and panel["icb_code"].nunique() == 12
    cfg = write_config(
        tmp_path / "fromfile.toml",
        f"""
        [data]
        source = "file"
        path = "panel.csv"
        [analysis]
        outcome = "nurse"
        comparators = "all"
        [estimator]
        name = "{TARGET}"
        [sampler]
        draws = 100
        tune = 300
        chains = 2
    """,
    )
    assert main(["run", str(cfg), "--out", "runs", "--draws", "300", "--seed", "11"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("The estimated tiny DiD effect is")
    assert out[1].startswith("Diagnostics: R-hat max")
    assert out[2].startswith("Run directory: runs/fromfile-") and "cached" not in out[2]
    run = load_run(out[2].split(": ", 1)[1])
    assert run.config.sampler.draws == 300 and run.config.sampler.seed == 11
    prov = json.loads((run.run_dir / "provenance.json").read_text())
    ((fname, digest),) = prov["data"]["files_sha256"].items()
    assert fname.endswith("panel.csv") and len(digest) == 64
    if run.figures:  # figures from hepcausal.plots.plot_result
        assert all(p.is_file() for p in run.figures)
    # the HTML report of the run
    assert main(["report", str(run.run_dir)]) == 0
    report = Path(capsys.readouterr().out.strip().split(": ", 1)[1])
    assert report.is_file() and report.parent == run.run_dir
    assert "tiny DiD effect" in report.read_text()
    # same command again: cached
    assert main(["run", str(cfg), "--out", "runs", "--draws", "300", "--seed", "11"]) == 0
    assert "(cached: unchanged config and data, not refitted)" in capsys.readouterr().out
    # the cache key covers the data: changing the panel file changes it
    resolved = load_config(cfg).with_overrides({"sampler.draws": 300, "sampler.seed": 11})
    assert resolved.hash(prepare_data(resolved).fingerprint) == run.config_hash
    panel.iloc[:-1].to_csv("panel.csv", index=False)
    assert resolved.hash(prepare_data(resolved).fingerprint) != run.config_hash


# deliberately short chains (2 x 300 draws): the convergence warning is expected here
@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_sweep_end_to_end(tmp_path, capsys):
    cfg = write_config(
        tmp_path / "mini.toml",
        f"""
        name = "mini"
        [data]
        source = "synthetic"
        [data.synthetic]
        preset = "small"
        n_practices = 240
        seed = 3
        [analysis]
        outcome = "gp"
        comparators = "all"
        [estimator]
        name = "{TARGET}"
        [sampler]
        draws = 300
        tune = 300
        chains = 2
        [summary]
        rope = 0.01
        [sweep]
        grid = {{"analysis.comparators" = ["all", ["QJ2", "QE1", "QWO"]]}}
    """,
    )
    out_dir = tmp_path / "out"
    assert (
        main(
            [
                "sweep",
                str(cfg),
                "--workers",
                "1",
                "--out",
                str(out_dir),
                "--no-progress",
                "--no-figures",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Sweep directory:" in printed and "csv:" in printed and "tex:" in printed
    table = pd.read_csv(out_dir / "mini" / "sweep_summary.csv")
    assert len(table) == 2  # one row per grid point
    assert set(table["analysis.comparators"]) == {"all", "QJ2+QE1+QWO"}
    assert table["config_hash"].nunique() == 2
    assert {"mean", "hdi_low", "hdi_high", "p_direction", "p_rope", "diagnostics_ok"} <= set(
        table.columns
    )
    assert (table["hdi_low"] <= table["mean"]).all() and (table["mean"] <= table["hdi_high"]).all()
    if "forest:" in printed:  # hepcausal.plots provides the sweep forest plot
        assert (out_dir / "mini" / "forest.png").is_file()
    tex = (out_dir / "mini" / "sweep_summary.tex").read_text()
    assert tex.count(r"\\") >= 3  # header + 2 rows
    for row in table.itertuples():
        run_dir = Path(row.run_dir)
        idata = az.from_netcdf(run_dir / "idata.nc")
        assert "effect" in idata.posterior
        summary = pd.read_csv(run_dir / "summary.csv")
        assert summary["mean"].iloc[0] == pytest.approx(row.mean)
        assert summary["mean"].iloc[0] == pytest.approx(float(idata.posterior["effect"].mean()))
        diag = json.loads((run_dir / "diagnostics.json").read_text())
        assert diag["ok"] == row.diagnostics_ok and diag["n_chains"] == 2
        prov = json.loads((run_dir / "provenance.json").read_text())
        assert prov["config_hash"] == row.config_hash
        assert len(prov["data"]["fingerprint"]) == 64 and len(prov["data"]["panel_sha256"]) == 64
        assert prov["data"]["generator_seed"] == 3 and prov["seed"] == 20211
        resolved = (run_dir / "config.resolved.toml").read_text()
        assert "[sweep]" not in resolved
    comps = {load_run(d).config.analysis.comparators for d in table["run_dir"]}
    assert comps == {"all", ("QJ2", "QE1", "QWO")}
    # 'hepcausal report' on the sweep directory writes the sweep report
    assert main(["report", str(out_dir / "mini")]) == 0
    report = Path(capsys.readouterr().out.strip().split(": ", 1)[1])
    assert report == out_dir / "mini" / "sweep_report.html" and report.is_file()
    assert all(Path(d, "report.html").is_file() for d in table["run_dir"])


@pytest.mark.realdata
def test_data_command_on_real_files(nhs_data_dir, tmp_path, capsys):
    out = tmp_path / "nhs.csv"
    assert (
        main(
            ["data", "--data-dir", str(nhs_data_dir), "--min-list-size", "1000", "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "min_list_size" in printed and ">= 1000" in printed
    panel = pd.read_csv(out)
    assert panel["icb_code"].nunique() == 42
    incl = pd.read_csv(tmp_path / "nhs.inclusion.csv")
    kept = incl.loc[incl["rule"] == "kept", "practice_years"].item()
    assert kept == len(panel)


def test_version_and_progress_flags(tmp_path, capsys):
    from hepcausal import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"hepcausal {__version__}"
    for cmd in ("run", "sweep"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "--progress, --no-progress" in text
        assert ("--store {compact,full}" in text) == (cmd == "run")


def test_sampler_progressbar_key_is_accepted_and_not_hashed(tmp_path, capsys):
    cfg = write_config(
        tmp_path / "c.toml",
        f"""
        [data]
        source = "synthetic"
        [estimator]
        name = "{TARGET}"
        [sampler]
        progressbar = true
    """,
    )
    assert main(["check", str(cfg)]) == 0
    assert "progressbar = true" in capsys.readouterr().out
    on = load_config(cfg)
    off = on.with_overrides({"sampler.progressbar": False})
    assert on.sampler_settings().progressbar is True
    assert off.sampler_settings().progressbar is False
    assert on.hash("x") == off.hash("x")  # a progress bar does not change the numbers
    assert main(["check", str(cfg), "--set", "sampler.progresbar=true"]) != 0
    assert "progressbar" in capsys.readouterr().err  # nearest-key suggestion
