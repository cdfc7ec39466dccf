"""GP Patient Survey loader and merge, on small hand-made files in the published layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.gpps import gpps_year_from_name, load_gpps, merge_gpps
from hepcausal.data.validate import validate_panel

FIX = Path(__file__).parent / "fixtures"
G2023 = FIX / "gpps" / "GPPS_2023_Practice_data_(weighted)_(csv)_PUBLIC.csv"
G2024 = FIX / "gpps" / "GPPS_2024_Practice_data_(weighted)_(csv)_PUBLIC.csv"


def test_pre_2024_layout_percent_and_suppression() -> None:
    g = load_gpps(G2023).set_index(S.PRACTICE)
    assert set(g[S.YEAR]) == {2023}
    assert g.loc["C82001", S.GPPS_OVERALL] == pytest.approx(0.855)  # 85.5 % -> 0.855
    assert g.loc["C82001", S.GPPS_RESPONSES] == 118  # the question base, not 'received'
    assert g.loc["C82001", "gpps_received"] == 120
    # -97 = suppressed: missing, and counted per column
    assert np.isnan(g.loc["C82002", S.GPPS_OVERALL])
    assert np.isnan(g.loc["C82002", S.GPPS_RESPONSES])
    assert g.attrs["suppressed"] == 3
    assert g.attrs["suppressed_by_column"][str(G2023)]["Q28_12pct"] == 1


def test_2024_layout_sums_very_and_fairly_good() -> None:
    g = load_gpps(G2024).set_index(S.PRACTICE)
    assert set(g[S.YEAR]) == {2024}
    assert g.loc["C82001", S.GPPS_OVERALL] == pytest.approx(0.85)
    assert g.loc["C82002", S.GPPS_OVERALL] == pytest.approx(0.60)
    assert np.isnan(g.loc["A83001", S.GPPS_OVERALL])
    assert g.loc["C82002", S.GPPS_RESPONSES] == 88


def test_several_files_and_counts() -> None:
    g = load_gpps([G2023, G2024])
    assert len(g) == 6 and sorted(g[S.YEAR].unique()) == [2023, 2024]
    assert g.attrs["suppressed"] == 7
    assert g[S.GPPS_OVERALL].dropna().between(0, 1).all()
    with pytest.raises(ValueError, match="duplicated"):
        load_gpps([G2023, G2023])


def test_explicit_scale_and_year(tmp_path: Path) -> None:
    f = tmp_path / "survey.csv"
    f.write_text("practice_code,distributed,received,q28_12pct\nC82001,10,5,0.9\n")
    with pytest.raises(ValueError, match="survey year"):
        load_gpps(f)
    g = load_gpps(f, year=2019)
    assert g[S.GPPS_OVERALL].iloc[0] == pytest.approx(0.9) and g[S.YEAR].iloc[0] == 2019
    g = load_gpps(f, year=2019, percent=True)
    assert g[S.GPPS_OVERALL].iloc[0] == pytest.approx(0.009)
    assert g[S.GPPS_RESPONSES].iloc[0] == 5  # no question base: responses received


def test_bad_files_name_file_and_column(tmp_path: Path) -> None:
    f = tmp_path / "GPPS_2022_Practice_data.csv"
    f.write_text("practice_code,distributed,received,q3_12pct\nC82001,10,5,90\n")
    with pytest.raises(KeyError, match=r"GPPS_2022_Practice_data.csv.*q28_12pct"):
        load_gpps(f)
    f.write_text("practice_code,distributed,received,q28_12pct\nC82001,10,5,-5\n")
    with pytest.raises(ValueError, match=r"q28_12pct.*rows \[0\]"):
        load_gpps(f)
    f.write_text("practice_code,distributed,q28_12pct\nC82001,10,50\n")
    with pytest.raises(KeyError, match="received"):
        load_gpps(f)


def test_year_from_name() -> None:
    assert gpps_year_from_name(G2023) == 2023
    assert gpps_year_from_name("GPPS_2019_Practice_data_(weighted).csv") == 2019


def test_merge_into_panel() -> None:
    panel = pd.DataFrame(
        {
            S.PRACTICE: ["C82001", "C82001", "C82002", "Z00001"],
            S.YEAR: [2023, 2024, 2023, 2023],
            S.GPPS_OVERALL: np.nan,  # replaced by the merge
        }
    )
    merged = merge_gpps(panel, load_gpps([G2023, G2024]))
    assert len(merged) == len(panel)
    assert merged[S.GPPS_OVERALL].tolist()[:2] == pytest.approx([0.855, 0.85])
    assert merged[S.GPPS_OVERALL].isna().tolist() == [False, False, True, True]
    assert merged.attrs["gpps_matched"] == 2
    assert merged.columns.tolist().count(S.GPPS_OVERALL) == 1


def test_merged_panel_validates(tmp_path: Path) -> None:
    from hepcausal.data.inclusion import InclusionRules
    from hepcausal.data.nhs import build_nhs_panel

    rules = InclusionRules(window=(2018, 2023), require_all_years=False, missing_outcome="keep")
    build = build_nhs_panel(FIX / "nhs", rules, years=[2018, 2020, 2023], gpps_paths=[G2023, G2024])
    p = build.panel.set_index([S.PRACTICE, S.YEAR])
    assert p.loc[("C82001", 2023), S.GPPS_OVERALL] == pytest.approx(0.855)
    assert np.isnan(p.loc[("C82001", 2020), S.GPPS_OVERALL])
    assert any("suppressed" in n for n in build.report.notes)
    # survey years outside the panel and panel years without a survey file are reported
    assert (
        "GPPS: no survey file for panel year(s) [2018, 2020] (GPPS missing)" in build.report.notes
    )
    assert any(
        n.startswith("GPPS: survey year(s) [2024] are not panel years") for n in build.report.notes
    )
    validate_panel(build.panel)


# ---------------------------------------------------------- GPPS from a config (data.gpps_dir)


def _gpps_dir(tmp_path: Path) -> Path:
    """A folder as downloaded: the two survey files in the official format plus unrelated files."""
    folder = tmp_path / "gpps"
    folder.mkdir()
    for f in (G2023, G2024):
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "README.txt").write_text("not a survey file\n")
    (folder / "GPPS_2023_National_data_(weighted).csv").write_text("not practice data\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "GPPS_2019_Practice_data_(weighted).csv").write_text("ignored: nested\n")
    return folder


def _nhs_config(outcome: str, gpps_dir: Path | None, data_dir: Path = FIX / "nhs"):
    from hepcausal.experiments.config import AnalysisConfig, Config, DataConfig

    data = DataConfig(
        source="nhs", data_dir=str(data_dir), gpps_dir=None if gpps_dir is None else str(gpps_dir)
    )
    return Config(data=data, analysis=AnalysisConfig(outcome=outcome))


def test_gpps_files_discovery_rule(tmp_path: Path) -> None:
    from hepcausal.data.gpps import gpps_files

    folder = _gpps_dir(tmp_path)
    assert [f.name for f in gpps_files(folder)] == [G2023.name, G2024.name]
    (folder / "gpps_2023_practice_data_v2.csv").write_text("x\n")
    with pytest.raises(ValueError, match="more than one GPPS practice file per survey year"):
        gpps_files(folder)
    with pytest.raises(FileNotFoundError, match="no GPPS practice files"):
        gpps_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="GPPS folder not found"):
        gpps_files(tmp_path / "absent")


def test_gpps_outcome_without_gpps_dir_fails_before_fitting(monkeypatch) -> None:
    from hepcausal.experiments import runner
    from hepcausal.experiments.config import ConfigError
    from hepcausal.experiments.inputs import prepare_data

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitted although the GPPS files are missing")

    monkeypatch.setattr(runner, "fit_config", no_fit)
    for outcome in (S.GPPS_OVERALL, "gpps"):
        cfg = _nhs_config(outcome, None)
        with pytest.raises(ConfigError, match=r"data\.gpps_dir"):
            prepare_data(cfg)
        with pytest.raises(ConfigError, match=r"data\.gpps_dir"):
            runner.run_experiment(cfg, out_dir="/nonexistent-never-written")
    # other outcomes do not need the survey files
    assert prepare_data(_nhs_config(S.GP_FTE, None)).fingerprint


def test_gpps_dir_errors_name_the_key(tmp_path: Path) -> None:
    from hepcausal.experiments.config import ConfigError
    from hepcausal.experiments.inputs import prepare_data

    with pytest.raises(ConfigError, match=r"'data\.gpps_dir'.*not found"):
        prepare_data(_nhs_config(S.GPPS_OVERALL, tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"'data\.gpps_dir'.*no GPPS practice files"):
        prepare_data(_nhs_config(S.GPPS_OVERALL, tmp_path))


def test_gpps_dir_enters_fingerprint(tmp_path: Path) -> None:
    from hepcausal.experiments.inputs import prepare_data

    folder = _gpps_dir(tmp_path)
    without = prepare_data(_nhs_config(S.GP_FTE, None))
    with_gpps = prepare_data(_nhs_config(S.GPPS_OVERALL, folder))
    assert without.fingerprint != with_gpps.fingerprint
    assert sum("GPPS_" in f for f in with_gpps.files) == 2
    # same content, other folder: same fingerprint; changed content: another one
    other = tmp_path / "copy"
    other.mkdir()
    for f in (G2023, G2024):
        (other / f.name).write_bytes(f.read_bytes())
    assert prepare_data(_nhs_config(S.GPPS_OVERALL, other)).fingerprint == with_gpps.fingerprint
    (other / G2024.name).write_text(G2024.read_text().replace("0.45", "0.46"))
    assert prepare_data(_nhs_config(S.GPPS_OVERALL, other)).fingerprint != with_gpps.fingerprint


@pytest.mark.realdata
def test_real_panel_with_gpps_dir(nhs_data_dir: Path, tmp_path: Path) -> None:
    """The runner's NHS panel carries the survey values of the files in data.gpps_dir."""
    from hepcausal.experiments.inputs import prepare_data

    data = prepare_data(_nhs_config(S.GPPS_OVERALL, _gpps_dir(tmp_path), nhs_data_dir))
    panel = data.panel
    got = panel.loc[panel[S.GPPS_OVERALL].notna(), [S.PRACTICE, S.YEAR, S.GPPS_OVERALL]]
    assert len(got) >= 1
    assert set(got[S.YEAR]) <= {2023, 2024}
    expected = load_gpps([G2023, G2024]).set_index([S.PRACTICE, S.YEAR])[S.GPPS_OVERALL]
    for _, r in got.iterrows():
        assert r[S.GPPS_OVERALL] == pytest.approx(expected.loc[(r[S.PRACTICE], r[S.YEAR])])
