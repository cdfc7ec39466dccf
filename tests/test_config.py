"""Experiment configs: validation messages, grid expansion, content hashing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import tomli_w

from _experiments_tiny import TARGET, tiny_registry  # noqa: F401  (autouse fixture)
from hepcausal import schema
from hepcausal.experiments.config import (
    ConfigError,
    config_from_dict,
    load_config,
    parse_override,
)
from hepcausal.experiments.sweep import expand_sweep
from hepcausal.sampling import SamplerSettings

REPO = Path(__file__).resolve().parents[1]

BASE = f"""
name = "t"
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
draws = 100
tune = 100
"""


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_text(tmp_path: Path, extra: str, base: str = BASE) -> object:
    return load_config(write(tmp_path, base + textwrap.dedent(extra)))


# ------------------------------------------------------------------ unknown / misspelt keys


def merged(tmp_path: Path, extra: dict) -> Path:
    """BASE with ``extra`` deep-merged in, written as a TOML file."""
    doc = tomllib.loads(BASE)

    def merge(a: dict, b: dict) -> None:
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v

    merge(doc, extra)
    return write(tmp_path, tomli_w.dumps(doc))


@pytest.mark.parametrize(
    ("extra", "bad", "suggestion"),
    [
        ({"analysis": {"outcme": "gp"}}, "analysis.outcme", "analysis.outcome"),
        ({"sampler": {"draw": 10}}, "sampler.draw", "sampler.draws"),
        ({"data": {"soruce": "nhs"}}, "data.soruce", "data.source"),
        (
            {"data": {"synthetic": {"n_practises": 10}}},
            "data.synthetic.n_practises",
            "data.synthetic.n_practices",
        ),
        (
            {"data": {"inclusion": {"min_list_sise": 1000}}},
            "data.inclusion.min_list_sise",
            "data.inclusion.min_list_size",
        ),
        ({"estimator": {"efect_sd": 2.0}}, "estimator.efect_sd", "estimator.effect_sd"),
        ({"priors": {"noise_sdd": 2.0}}, "priors.noise_sdd", "priors.noise_sd"),
        ({"summary": {"rope": {"nurs": 0.1}}}, "summary.rope.nurs", "summary.rope.nurse"),
        ({"summery": {"hdi_prob": 0.9}}, "summery", "summary"),
        ({"sweep": {"grid": {"analysis.rnk": ["need"]}}}, "analysis.rnk", "analysis.rank"),
        (
            {"sweep": {"grid": {"analysis.rank": ["need"]}, "mdoe": "grid"}},
            "sweep.mdoe",
            "sweep.mode",
        ),
    ],
)
def test_misspelt_key_names_key_file_and_suggestion(tmp_path, extra, bad, suggestion):
    path = merged(tmp_path, extra)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"'{bad}'" in msg
    assert f"did you mean '{suggestion}'" in msg
    assert str(path) in msg


def test_unknown_estimator_suggests(tmp_path):
    text = BASE.replace(f'name = "{TARGET}"', 'name = "dd"')
    with pytest.raises(ConfigError, match=r"'estimator.name'.*did you mean 'did'"):
        load_config(write(tmp_path, text))


# ------------------------------------------------------------------ types and values


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("draws = 100", 'draws = "100"', "sampler.draws"),
        ("draws = 100", "draws = 1.5", "sampler.draws"),
        ("tune = 100", "tune = -1", "sampler.tune"),
        ("tune = 100", "tune = 100\ntarget_accept = 1.2", "sampler.target_accept"),
        ('outcome = "gp"', 'outcome = "gp_fte"', "analysis.outcome"),
        ('comparators = "all"', "comparators = 3", "analysis.comparators"),
        ('comparators = "all"', 'comparators = ["QK1", "QJ2"]', "analysis.comparators"),
        ('comparators = "all"', 'comparators = "all"\nstart_year = "2022"', "analysis.start_year"),
        ('comparators = "all"', 'comparators = "all"\nrank = "income"', "analysis.rank"),
        ('source = "synthetic"', 'source = "nsh"', "data.source"),
        ("seed = 3", "seed = true", "data.synthetic.seed"),
        ("draws = 100", "draws = 100\nmass_matrix = 3", "sampler.mass_matrix"),
        ('name = "t"', 'name = "t"\n[priors]\nnoise_sd = -1.0', "priors.noise_sd"),
        ('outcome = "gp"', 'outcome = "gp"\ncovariates = "list_size"', "analysis.covariates"),
    ],
)
def test_wrong_type_or_value_names_key(tmp_path, old, new, key):
    assert old in BASE
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        load_config(write(tmp_path, BASE.replace(old, new, 1)))


def test_invalid_generator_settings_are_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"\[data.synthetic\].*n_practices"):
        load_config(write(tmp_path, BASE.replace("n_practices = 240", "n_practices = 5")))


def test_summary_rope_and_hdi(tmp_path):
    cfg = load_text(tmp_path, "[summary]\nhdi_prob = 0.9\nrope = [-0.01, 0.02]\n")
    assert cfg.summary.hdi_prob == 0.9 and cfg.summary.rope == (-0.01, 0.02)
    with pytest.raises(ConfigError, match=r"'summary\.hdi_prob'"):
        load_text(tmp_path, "[summary]\nhdi_prob = 95\n")


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[analysis\n"))


def test_resolution_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.analysis.outcome == schema.GP_FTE
    assert cfg.analysis.rank_col == schema.DEPRIVATION_RANK
    assert cfg.analysis.start_year == schema.HEP_START_YEAR
    settings = cfg.sampler_settings()
    assert (settings.draws, settings.tune, settings.chains) == (100, 100, SamplerSettings().chains)
    assert settings.mass_matrix is None  # "auto": the estimator's choice
    low = cfg.with_overrides({"sampler.mass_matrix": "low_rank"}).sampler_settings()
    assert low.mass_matrix == "low_rank"
    with pytest.raises(ConfigError, match=r"'sampler\.mass_matrix' must be 'auto'"):
        cfg.with_overrides({"sampler.mass_matrix": "dense"})
    with pytest.raises(ConfigError, match=r"'sampler\.mass_matrix' 'low_rank' needs"):
        cfg.with_overrides({"sampler.mass_matrix": "low_rank", "sampler.sampler": "pymc"})
    published = cfg.with_overrides({"analysis.comparators": "published"})
    assert published.analysis.comparator_codes() == schema.PUBLISHED_COMPARATORS
    assert cfg.analysis.comparator_codes(["QK1", "QJ2", "QE1"]) == ("QE1", "QJ2")


def test_nhs_data_dir_from_env(tmp_path, monkeypatch):
    cfg = config_from_dict({"data": {"source": "nhs"}, "estimator": {"name": TARGET}})
    monkeypatch.setenv("HEPCAUSAL_NHS_DATA", str(tmp_path))
    assert cfg.data.resolved_data_dir() == tmp_path
    monkeypatch.delenv("HEPCAUSAL_NHS_DATA")
    with pytest.raises(ConfigError, match=r"data\.data_dir"):
        cfg.data.resolved_data_dir()


def test_parse_override():
    assert parse_override("sampler.draws=200") == ("sampler.draws", 200)
    assert parse_override('analysis.rank="need"') == ("analysis.rank", "need")
    assert parse_override("analysis.rank=need") == ("analysis.rank", "need")
    assert parse_override("priors={effect_sd = 2.0}") == ("priors", {"effect_sd": 2.0})
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("sampler.draws")


# ------------------------------------------------------------------ grid expansion

SWEEP = """
[sweep]
grid = {"analysis.start_year" = [2021, 2022], "analysis.outcome" = ["gp", "nurse", "admin"]}
"""


def test_grid_expansion_cartesian(tmp_path):
    cfg = load_text(tmp_path, SWEEP)
    points = expand_sweep(cfg)
    assert len(points) == 6
    assert len({p.name for p in points}) == 6
    assert len({p.config.hash() for p in points}) == 6
    for p in points:
        assert p.config.sweep is None
        assert p.config.analysis.start_year == p.varied["analysis.start_year"]
        assert p.name.startswith("t__start_year=")
    combos = {(p.config.analysis.start_year, p.config.analysis.outcome) for p in points}
    assert (2021, schema.NURSE_FTE) in combos and (2022, schema.ADMIN_FTE) in combos


def test_grid_one_at_a_time_with_labels(tmp_path):
    cfg = load_text(
        tmp_path,
        """
        [sweep]
        mode = "one_at_a_time"
        [sweep.grid]
        "analysis.comparators" = ["all", "published"]
        "analysis.start_year" = [2021, 2022]
        "priors" = [{}, {noise_sd = 3.0}]
        [sweep.labels]
        "priors" = ["default", "wider"]
    """,
    )
    points = expand_sweep(cfg)
    # base + one alternative per key (values equal to the base are not repeated)
    assert [p.name for p in points] == [
        "t__base",
        "t__comparators=published",
        "t__start_year=2021",
        "t__priors=wider",
    ]
    assert points[0].varied == {}
    assert points[3].config.priors == {"noise_sd": 3.0}
    assert points[3].labels == {
        "analysis.comparators": "all",
        "analysis.start_year": "2022",
        "priors": "wider",
    }


def test_grid_bad_value_names_point(tmp_path):
    cfg = load_text(tmp_path, '[sweep]\ngrid = {"analysis.start_year" = [2022, 1999]}\n')
    with pytest.raises(ConfigError, match=r"sweep point t__start_year=1999.*'analysis.start_year'"):
        expand_sweep(cfg)


def test_labels_must_match_grid(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep\.labels"):
        load_text(
            tmp_path,
            '[sweep]\ngrid = {"analysis.start_year" = [2021]}\n'
            'labels = {"analysis.start_year" = ["a", "b"]}\n',
        )


# ------------------------------------------------------------------ hashing


def test_hash_stable_and_sensitive(tmp_path):
    path = write(tmp_path, BASE)
    a, b = load_config(path), load_config(path)
    assert a.hash("fp") == b.hash("fp")
    # aliases resolve to the same content; names and sweeps do not change the numbers
    alias = load_config(write(tmp_path, BASE.replace('"gp"', f'"{schema.GP_FTE}"'), "b.toml"))
    assert alias.hash("fp") == a.hash("fp")
    assert a.with_overrides({}, name="other").hash("fp") == a.hash("fp")
    assert load_text(tmp_path, SWEEP).hash("fp") == a.hash("fp")
    # anything that changes the numbers changes the hash
    assert a.hash("fp2") != a.hash("fp")
    assert a.with_overrides({"sampler.draws": 101}).hash("fp") != a.hash("fp")
    assert a.with_overrides({"sampler.seed": 1}).hash("fp") != a.hash("fp")
    assert a.with_overrides({"priors.noise_sd": 2.0}).hash("fp") != a.hash("fp")
    assert a.with_overrides({"data.synthetic.seed": 4}).hash("fp") != a.hash("fp")


def test_toml_round_trip_and_hash_across_processes(tmp_path):
    cfg = load_text(tmp_path, SWEEP + "[summary]\nrope = 0.01\n[priors]\nnoise_sd = 2.0\n")
    again = load_config(write(tmp_path, cfg.to_toml(), "resolved.toml"))
    assert again.to_dict() | {"name": cfg.name} == cfg.to_dict()
    assert again.hash("x") == cfg.hash("x")
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "import _experiments_tiny as t;"
        "from hepcausal.experiments.registry import ESTIMATORS;"
        "ESTIMATORS[t.TARGET] = t.TINY;"
        "from hepcausal.experiments.config import load_config;"
        "print(load_config(sys.argv[1]).hash('x'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "resolved.toml"), str(REPO / "tests")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == cfg.hash("x")


def test_shipped_experiment_configs_are_valid():
    paths = sorted((REPO / "experiments").glob("*.toml"))
    assert paths, "experiments/*.toml missing"
    for path in paths:
        cfg = load_config(path)
        assert expand_sweep(cfg)


def test_sensitivity_set_covers_the_planned_analyses():
    points = expand_sweep(load_config(REPO / "experiments" / "sensitivity.toml"))
    names = [p.name.split("__", 1)[1] for p in points]
    assert names == [
        "base",
        "comparators=all",
        "rank=need",
        "outcome=nurse",
        "outcome=admin",
        "outcome=qof",
        "priors=wider",
        "start_year=2021",
        "min_list_size=1000.0",
    ]
    base = points[0].config
    assert base.data.source == "nhs" and base.estimator.name == "ddd"
    assert base.analysis.comparator_codes() == schema.PUBLISHED_COMPARATORS
    wider = points[names.index("priors=wider")].config.priors
    assert wider and all(v > 1 for v in wider.values())
    assert points[-1].config.data.inclusion["min_list_size"] == 1000.0


def test_every_registered_estimator_resolves_and_options_are_checked(tmp_path):
    import inspect

    from hepcausal.experiments.registry import ESTIMATORS, get_entry

    for name, entry in ESTIMATORS.items():
        if name == TARGET:
            continue
        func = entry.function
        assert callable(func)
        params = inspect.signature(func).parameters
        assert list(params)[:4] == ["panel", "outcome", "design", "inference"]
        # the options model declares exactly the function's options, with the same defaults
        opts = entry.options.model_fields
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            from hepcausal.causal.did import DidKeywords, fit_did

            assert name == "ddd"  # fit_ddd(..., **options: Unpack[DidKeywords]): fit_did's options
            assert set(opts) == set(DidKeywords.__annotations__)
            params = inspect.signature(fit_did).parameters
        assert set(opts) == set(list(params)[4:]), name
        for key, field in opts.items():
            assert field.default == params[key].default, (name, key)
        assert entry.priors.names() or name in ("replication", "funding_sii")  # classical
    assert "icb_year_effects" in get_entry("ddd").options.model_fields
    ok = config_from_dict({"estimator": {"name": "ddd", "icb_year_effects": False}})
    assert ok.estimator.options == {"icb_year_effects": False}
    with pytest.raises(ConfigError, match=r"did you mean 'estimator\.icb_year_effects'"):
        config_from_dict({"estimator": {"name": "ddd", "icb_year_efects": False}})
    with pytest.raises(ConfigError, match=r"'estimator\.icb_year_effects'.*boolean"):
        config_from_dict({"estimator": {"name": "ddd", "icb_year_effects": "no"}})
    with pytest.raises(ConfigError, match=r"'estimator\.backend'.*synthetic_control"):
        config_from_dict({"estimator": {"name": "synthetic_control", "backend": "stan"}})


def test_closed_registry_rejects_import_paths():
    from hepcausal.experiments.registry import UnknownEstimatorError, get_entry

    for name in ("os:system", "hepcausal.causal.did:fit_did", "_experiments_tiny:fit_tiny_did"):
        with pytest.raises(ConfigError, match=r"'estimator\.name'.*unknown estimator.*valid"):
            config_from_dict({"estimator": {"name": name}})
        with pytest.raises(UnknownEstimatorError):
            get_entry(name)
    with pytest.raises(ConfigError, match=r"did you mean 'ddd'"):
        config_from_dict({"estimator": {"name": "dddd"}})


@pytest.mark.parametrize(
    ("estimator", "section", "key", "value"),
    [
        ("did", "analysis", "rank", "need"),
        ("did", "analysis", "rank", "deprivation"),  # explicitly set, even to the default
        ("gradient", "analysis", "covariates", ["list_size"]),
        ("gradient", "summary", "rope", 0.1),
        ("gradient", "summary", "hdi_prob", 0.9),
        ("sdid", "analysis", "weights", "list_size"),
        ("synthetic_control", "analysis", "covariates", ["list_size"]),
    ],
)
def test_key_the_estimator_does_not_use_is_an_error(tmp_path, estimator, section, key, value):
    doc = {"estimator": {"name": estimator}, section: {key: value}}
    msg = rf"'{section}\.{key}' is not used by estimator '{estimator}'"
    with pytest.raises(ConfigError, match=msg):
        config_from_dict(doc)
    path = write(tmp_path, tomli_w.dumps(doc))
    with pytest.raises(ConfigError, match=msg) as err:
        load_config(path)
    assert str(path) in str(err.value)
    # the same key is fine for an estimator that uses it, and unset keys are never an error
    config_from_dict(
        {"estimator": {"name": "ddd"}, section: {key: value}} if key != "weights" else {}
    )
    cfg = config_from_dict({"estimator": {"name": estimator}})
    assert cfg.with_overrides({"sampler.draws": 10}).sampler.draws == 10  # round trip is clean


def test_event_study_uses_the_rank_only_for_the_gradient_target():
    config_from_dict({"estimator": {"name": "event_study"}, "analysis": {"rank": "need"}})
    with pytest.raises(ConfigError, match=r"'analysis\.rank' is not used by estimator"):
        config_from_dict(
            {"estimator": {"name": "event_study", "target": "level"}, "analysis": {"rank": "need"}}
        )


@pytest.mark.parametrize(
    ("estimator", "priors", "key"),
    [
        ("ddd", {"efect_sd": 1.0}, "priors.efect_sd"),
        ("ddd", {"effect_sd": -1.0}, "priors.effect_sd"),
        ("gradient", {"sigma_icbb": 1.0}, "priors.sigma_icbb"),
        ("gradient", {"tau": 0.0}, "priors.tau"),
        ("synthetic_control", {"concentraton": 1.0}, "priors.concentraton"),
    ],
)
def test_check_validates_priors_against_the_estimator(tmp_path, capsys, estimator, priors, key):
    from hepcausal.cli import main

    path = write(tmp_path, tomli_w.dumps({"estimator": {"name": estimator}, "priors": priors}))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"'{key}'" in err and str(path) in err
    good = {"ddd": "effect_sd", "gradient": "tau", "synthetic_control": "concentration"}
    ok = config_from_dict({"estimator": {"name": estimator}, "priors": {good[estimator]: 2.0}})
    assert ok.priors == {good[estimator]: 2.0}


def test_check_rejects_unused_key_naming_it(tmp_path, capsys):
    from hepcausal.cli import main

    path = write(tmp_path, '[estimator]\nname = "did"\n[analysis]\nrank = "need"\n')
    assert main(["check", str(path)]) == 2
    assert "'analysis.rank' is not used by estimator 'did'" in capsys.readouterr().err


def test_toml_written_by_tomli_w_round_trips(tmp_path):
    cfg = config_from_dict(
        {
            "name": "rt",
            "data": {"synthetic": {"preset": "small", "n_practices": 240, "gradient_effect": 0}},
            "analysis": {"comparators": ["QJ2", "QE1"], "covariates": ["list_size"]},
            "estimator": {"name": "ddd", "icb_year_effects": False},
            "priors": {"effect_sd": 2.0},
            "summary": {"rope": {"gp": [-0.01, 0.02], "qof": 0.01}},
        }
    )
    text = cfg.to_toml()
    assert tomllib.loads(text) == cfg.to_dict()
    again = load_config(write(tmp_path, text, "rt.toml"))
    assert again.to_dict() == cfg.to_dict() and again.hash("x") == cfg.hash("x")
    assert again.analysis.covariates == ("list_size",)
    assert again.data.synthetic["gradient_effect"] == 0


def test_gpps_dir_is_a_path_outside_the_hash(tmp_path):
    a = config_from_dict({"data": {"source": "nhs"}})
    b = config_from_dict({"data": {"source": "nhs", "gpps_dir": str(tmp_path)}})
    assert b.data.gpps_dir == str(tmp_path) and a.hash("x") == b.hash("x")
    assert b.data.resolved_gpps_dir() == tmp_path and a.data.resolved_gpps_dir() is None
    missing = config_from_dict({"data": {"gpps_dir": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match=r"'data\.gpps_dir'.*does not exist"):
        missing.data.resolved_gpps_dir()
    with pytest.raises(ConfigError, match=r"'data\.gpps_dir'"):
        config_from_dict({"data": {"gpps_dir": 3}})


def test_synthetic_control_adapter_builds_the_sii_table(monkeypatch):
    """The adapter's wide table is the classical per-ICB-year SII, donors = comparators."""
    import hepcausal.causal.synthetic_control as sc
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel
    from hepcausal.experiments.adapters import synthetic_control
    from hepcausal.inequality.classical import sii_table
    from hepcausal.spec import Design, Inference

    seen: dict = {}

    class Captured(Exception):
        pass

    def spy(wide, treated, start, **kw):
        seen.update(wide=wide, treated=treated, start=start, **kw)
        raise Captured

    monkeypatch.setattr(sc, "fit_synthetic_control", spy)
    panel = simulate_panel(SimulationConfig.small(n_practices=240, seed=2)).panel
    comps = ["QJ2", "QE1", "QWO"]
    with pytest.raises(Captured):
        synthetic_control(
            panel,
            schema.GP_FTE,
            Design(comparators=comps, start_year=2021),
            Inference(rope=0.01),
        )
    assert seen["treated"] == "QK1" and seen["start"] == 2021 and seen["donors"] == comps
    assert list(seen["wide"].columns) == sorted(["QK1", *comps])
    expected = sii_table(
        panel[panel[schema.ICB].isin(["QK1", *comps])],
        schema.GP_FTE,
        method="unit",
        rank_col=schema.DEPRIVATION_RANK,
    )
    exp = expected.set_index([schema.YEAR, schema.ICB])
    for year, row in seen["wide"].iterrows():
        for icb, value in row.items():
            assert value == pytest.approx(exp.loc[(year, icb), "sii"])
            assert seen["outcome_se"].loc[year, icb] == pytest.approx(exp.loc[(year, icb), "se"])
    assert seen["rope"] == 0.01 and seen["units"].startswith("FTE")
    with pytest.raises(ValueError, match="PyMC backend only"):
        synthetic_control(panel, schema.GP_FTE, inference=Inference(backend="stan"))


def test_sweep_over_estimators_keeps_only_the_keys_set_in_the_file():
    grid = {"sweep": {"grid": {"estimator.name": ["ddd", "did"]}}}
    points = expand_sweep(config_from_dict({"estimator": {"name": "ddd"}, **grid}))
    assert [p.config.estimator.name for p in points] == ["ddd", "did"]
    assert "rank" not in points[1].config.to_dict()["analysis"]  # did: no rank
    assert points[0].config.to_dict()["analysis"]["rank"] == "deprivation"
    explicit = {"estimator": {"name": "ddd"}, "analysis": {"rank": "need"}, **grid}
    with pytest.raises(ConfigError, match=r"'analysis\.rank' is not used by estimator 'did'"):
        expand_sweep(config_from_dict(explicit))


def test_gradient_adapter_passes_design_and_inference(monkeypatch):
    """The gradient adapter models the treated ICB + comparators on the design's rank."""
    import hepcausal.models.gradient as gm
    from hepcausal.experiments.adapters import gradient
    from hepcausal.spec import Design, DesignError, Inference

    seen: dict = {}
    monkeypatch.setattr(gm, "fit_gradient", lambda panel, outcome, **kw: seen.update(kw))
    inf = Inference(backend="stan", priors={"tau": 2.0})
    gradient(None, schema.GP_FTE, Design(comparators=("QJ2",), rank_col="need_rank"), inf)
    assert seen["icbs"] == ["QK1", "QJ2"] and seen["rank_col"] == "need_rank"
    assert seen["backend"] == "stan" and seen["priors"] == {"tau": 2.0}
    assert seen["settings"] is inf.settings and seen["standardise"] is None
    gradient(None, schema.GP_FTE, Design(comparators="all"), standardise=[1, 2])
    assert seen["icbs"] is None and seen["standardise"] == (1.0, 2.0)
    # the unpooled treated x post term uses the design's treated ICB and start year
    assert seen["treated"] == "QK1" and seen["start_year"] == schema.HEP_START_YEAR
    gradient(None, schema.GP_FTE, Design(weights="list_size"), treated_term=False)
    assert seen["weights"] == "list_size" and seen["treated"] is None
    with pytest.raises(DesignError, match="weights"):
        from hepcausal.experiments.adapters import synthetic_control

        synthetic_control(None, schema.GP_FTE, Design(weights="list_size"))


def test_hash_follows_the_estimators_resolved_defaults(monkeypatch) -> None:
    """A changed package default (here the DDD's error model) changes the run hash, so a cached
    run fitted under the old default is never reused."""
    import dataclasses
    from typing import Literal

    from hepcausal.experiments import registry

    cfg = config_from_dict({"estimator": {"name": "ddd"}})
    before = cfg.hash("data")
    assert cfg.hash("data") == before  # stable
    entry = registry.ESTIMATORS["ddd"]

    class ChangedDefault(entry.options):  # type: ignore[misc, valid-type, name-defined]
        error_model: Literal["prepost", "rows"] = "rows"

    monkeypatch.setitem(
        registry.ESTIMATORS, "ddd", dataclasses.replace(entry, options=ChangedDefault)
    )
    assert cfg.hash("data") != before
