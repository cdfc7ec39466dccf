"""Experiment configs: validation messages, grid expansion, content hashing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from _experiments_tiny import TARGET
from hepcausal import schema
from hepcausal.experiments.config import (
    ConfigError,
    config_from_dict,
    dumps_toml,
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
    return write(tmp_path, dumps_toml(doc))


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
    cfg = load_text(tmp_path, '[sweep]\ngrid = {"analysis.rank" = ["deprivation", "neeed"]}\n')
    with pytest.raises(ConfigError, match=r"sweep point t__rank=neeed.*'analysis.rank'"):
        expand_sweep(cfg)


def test_labels_must_match_grid(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep\.labels"):
        load_text(
            tmp_path,
            '[sweep]\ngrid = {"analysis.rank" = ["need"]}\n'
            'labels = {"analysis.rank" = ["a", "b"]}\n',
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
    from hepcausal.experiments.registry import ESTIMATORS, estimator_options, get_estimator

    for name in ESTIMATORS:
        assert callable(get_estimator(name))
        assert "settings" not in estimator_options(name)  # filled by the runner
    assert "icb_year_effects" in estimator_options("ddd")
    assert {"method", "series"} <= set(estimator_options("synthetic_control"))
    ok = config_from_dict({"estimator": {"name": "ddd", "icb_year_effects": False}})
    assert ok.estimator.options == {"icb_year_effects": False}
    with pytest.raises(ConfigError, match=r"did you mean 'estimator\.icb_year_effects'"):
        config_from_dict({"estimator": {"name": "ddd", "icb_year_efects": False}})


def test_synthetic_control_adapter_builds_the_sii_table(monkeypatch):
    """The adapter's wide table is the classical per-ICB-year SII, donors = comparators."""
    import hepcausal.causal.synthetic_control as sc
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel
    from hepcausal.experiments.adapters import synthetic_control
    from hepcausal.inequality.classical import sii_table

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
        synthetic_control(panel, schema.GP_FTE, comparators=comps, start_year=2021, rope=0.01)
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
        synthetic_control(panel, schema.GP_FTE, backend="stan")
