"""Runner and sweeps: caching, atomic run directories, interruption + resume, parallel workers."""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import pandas as pd
import pytest

from _experiments_tiny import TARGET, tiny_registry  # noqa: F401  (autouse fixture)
from hepcausal.experiments.config import ConfigError, config_from_dict
from hepcausal.experiments.runner import run_experiment
from hepcausal.experiments.store import is_complete, load_run
from hepcausal.experiments.sweep import run_sweep

pytestmark = pytest.mark.timeout(600)


def base_dict(name: str = "s") -> dict:
    return {
        "name": name,
        "data": {
            "source": "synthetic",
            "synthetic": {"preset": "small", "n_practices": 240, "seed": 3},
        },
        "analysis": {"outcome": "gp", "comparators": "all"},
        "estimator": {"name": TARGET},
        "sampler": {"draws": 300, "tune": 300, "chains": 2},
    }


@pytest.fixture
def fit_log(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "fits.log"
    monkeypatch.setenv("HEPCAUSAL_TEST_FIT_LOG", str(path))
    return path


def n_fits(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


class Stop(Exception):
    pass


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


# the tiny test estimator samples deliberately short chains
@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_run_cache_and_force(tmp_path, fit_log):
    cfg = config_from_dict(base_dict("one"))
    first = run_experiment(cfg, out_dir=tmp_path, figures=False)
    assert not first.cached and n_fits(fit_log) == 1
    files = {p.name for p in first.run_dir.iterdir()}
    assert {
        "idata.nc",
        "summary.csv",
        "diagnostics.json",
        "config.resolved.toml",
        "provenance.json",
        "run.json",
        "truth.json",
    } <= files
    assert not list(tmp_path.glob(".tmp-*"))  # temp dir renamed into place
    prov = json.loads((first.run_dir / "provenance.json").read_text())
    assert prov["config_hash"] == first.config_hash
    assert prov["data"]["panel_sha256"] and prov["data"]["generator_seed"] == 3
    assert prov["packages"]["pymc"] and prov["python"]
    # unchanged config + data: cached, not refitted, identical numbers
    again = run_experiment(cfg, out_dir=tmp_path, figures=False)
    assert again.cached and n_fits(fit_log) == 1
    assert again.run_dir == first.run_dir
    assert again.headline.mean == pytest.approx(first.headline.mean, rel=1e-12)
    assert again.diagnostics.max_rhat == pytest.approx(first.diagnostics.max_rhat)
    assert again.config.hash() == cfg.hash()
    # force refits in place with the same seed => same numbers
    forced = run_experiment(cfg, out_dir=tmp_path, force=True, figures=False)
    assert not forced.cached and n_fits(fit_log) == 2
    assert forced.headline.mean == pytest.approx(first.headline.mean, rel=1e-9)


# the tiny test estimator samples deliberately short chains
@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_sweep_interrupt_and_resume(tmp_path, fit_log):
    d = base_dict("sw")
    d["sweep"] = {"grid": {"analysis.start_year": [2021, 2022]}}
    cfg = config_from_dict(d)

    def stop_after_first(row: dict) -> None:
        raise Stop(row["run"])

    with pytest.raises(Stop):
        run_sweep(
            cfg,
            out_dir=tmp_path,
            workers=1,
            progress=False,
            on_run_done=stop_after_first,
            figures=False,
        )
    assert n_fits(fit_log) == 1
    manifest = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    status = {p["name"]: p["status"] for p in manifest["points"]}
    assert sorted(status.values()) == ["complete", "pending"]
    done = next(p for p in manifest["points"] if p["status"] == "complete")
    mtime = (Path(done["run_dir"]) / "idata.nc").stat().st_mtime_ns

    res = run_sweep(cfg, out_dir=tmp_path, workers=1, progress=False, figures=False)
    assert n_fits(fit_log) == 2  # only the unfinished point was fitted
    assert (Path(done["run_dir"]) / "idata.nc").stat().st_mtime_ns == mtime
    assert len(res.table) == 2 and not res.failed
    assert res.table.loc[res.table["run"] == done["name"], "cached"].item()
    manifest = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert {p["status"] for p in manifest["points"]} == {"complete"}
    # the table agrees with the stored runs
    for _, row in res.table.iterrows():
        run = load_run(row["run_dir"])
        assert run.headline.mean == pytest.approx(row["mean"])
        assert str(run.config.analysis.start_year) == str(row["analysis.start_year"])
    years = sorted(int(v) for v in res.table["analysis.start_year"])
    assert years == [2021, 2022]
    csv = pd.read_csv(tmp_path / "sw" / "sweep_summary.csv")
    assert len(csv) == 2
    assert "tabular" in (tmp_path / "sw" / "sweep_summary.tex").read_text()
    # a manifest left false by a killed sweep (finished runs "pending", a run "complete" that
    # is not) is made true on resume; a third call refits nothing
    path = tmp_path / "sw" / "sweep.json"
    lie = json.loads(path.read_text())
    for p in lie["points"]:
        p["status"] = "pending"
    lie["points"].append({"name": "sw__gone", "status": "complete", "run_dir": "x"})
    path.write_text(json.dumps(lie))
    run_sweep(cfg, out_dir=tmp_path, workers=2, progress=False, figures=False)
    assert n_fits(fit_log) == 2
    manifest = json.loads(path.read_text())
    assert [p["status"] for p in manifest["points"]] == ["complete", "complete"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not 0600


def test_sweep_failure_is_recorded(tmp_path):
    d = base_dict("bad")
    d["sweep"] = {"grid": {"estimator.effect_sd": [-1.0]}}  # valid config, fails in the fit
    with pytest.warns(UserWarning, match="1 run\\(s\\) failed"):
        res = run_sweep(
            config_from_dict(d), out_dir=tmp_path, workers=1, progress=False, figures=False
        )
    assert res.table.empty and not res.files
    ((name, err),) = res.failed.items()
    assert "effect_sd" in err and "effect_sd" in name
    manifest = json.loads((tmp_path / "bad" / "sweep.json").read_text())
    failed = [p for p in manifest["points"] if p["status"] == "failed"]
    assert len(failed) == 1 and "effect_sd" in failed[0]["error"]


def test_sweep_with_an_invalid_prior_fails_before_running(tmp_path):
    d = base_dict("badprior")
    d["sweep"] = {"grid": {"priors": [{"not_a_prior": 1.0}]}}
    with pytest.raises(ConfigError, match=r"sweep point badprior__priors=.*'priors\.not_a_prior'"):
        run_sweep(config_from_dict(d), out_dir=tmp_path, workers=1, progress=False)
    assert not (tmp_path / "badprior").exists()


@pytest.mark.slow
def test_sweep_two_worker_processes(tmp_path):
    # spawned workers resolve the estimator from the shipped (closed) registry
    d = base_dict("par")
    d["estimator"] = {"name": "did"}
    d["sweep"] = {"grid": {"analysis.start_year": [2021, 2022]}}
    res = run_sweep(config_from_dict(d), out_dir=tmp_path, workers=2, progress=False, figures=False)
    assert len(res.table) == 2 and not res.failed
    assert res.table["config_hash"].nunique() == 2
    for run_dir in res.table["run_dir"]:
        assert is_complete(run_dir)
        idata = az.from_netcdf(Path(run_dir) / "idata.nc")
        assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 300


# the tiny test estimator samples deliberately short chains
@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_sweep_on_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    d = base_dict("dask")
    d["sweep"] = {"grid": {"analysis.start_year": [2021]}}
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        res = run_sweep(
            config_from_dict(d), out_dir=tmp_path, scheduler=client, progress=False, figures=False
        )
    assert len(res.table) == 1 and not res.failed
    assert is_complete(res.table["run_dir"].iloc[0])
