"""No bad input becomes a result (issue 13, data side): table-driven damaged inputs.

Each case damages a copy of the small NHS fixture files (``tests/fixtures/nhs``) or a small panel
file and asserts the error type AND that the message names the file, the column, the row / line
(practice, year) or the year and the expected file.  Cases that are handled rather than refused
(e.g. a zero list size, which is an exclusion) assert the named inclusion rule that counts them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.headers import ColumnNotFoundError, DataFileError
from hepcausal.data.nhs import NHSLoadOptions, build_nhs_panel
from hepcausal.data.validate import PanelValidationError
from hepcausal.experiments.inputs import read_panel, write_panel

FIX = Path(__file__).parent / "fixtures" / "nhs"
YEARS = range(2018, 2021)
PAY19 = Path("payments") / "nhspaymentsgp-18-19-csv.csv"
PAY20 = Path("payments") / "nhspaymentsgp-19-20-prac-csv.csv"
QOF20 = Path("qof") / "qof-2019-20.csv"
WORKFORCE = Path("workforce") / "workforce-practice-fiscal-year.csv"
IMD = Path("imd") / "fingertips-93553-practice-deprivation.csv"
LOOKUP = Path("lookups") / "ccg-icb.csv"


# ------------------------------------------------------------------------------ damage helpers


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def header_only(rel: Path) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        _write(data / rel, _lines(data / rel)[:1])

    return damage


def empty(rel: Path) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        (data / rel).write_text("")

    return damage


def cut_after_practice_code(rel: Path, line: int) -> Callable[[Path], None]:
    """Truncate the file mid-record: line ``line`` ends right after its practice-code field."""

    def damage(data: Path) -> None:
        lines = _lines(data / rel)
        code = re.search(r"[A-Z]\d{5}", lines[line - 1])
        assert code is not None
        lines[line - 1] = lines[line - 1][: code.end()]
        (data / rel).write_text("\n".join(lines[:line]), encoding="utf-8")  # no final newline

    return damage


def keep_lines(rel: Path, n: int) -> Callable[[Path], None]:
    """Cut the file at a line boundary after ``n`` lines (header included)."""

    def damage(data: Path) -> None:
        _write(data / rel, _lines(data / rel)[:n])

    return damage


def extra_field(rel: Path, line: int) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        lines = _lines(data / rel)
        lines[line - 1] += ",surplus"
        _write(data / rel, lines)

    return damage


def delete(rel: Path) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        (data / rel).unlink()

    return damage


def duplicate_year(rel: Path, new_name: str) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        shutil.copy(data / rel, data / rel.parent / new_name)

    return damage


def workforce_cell(practice: str, year: int, column: int, value: str) -> Callable[[Path], None]:
    """Set one cell (0-based column) of the workforce file's row for practice x year."""

    def damage(data: Path) -> None:
        lines = _lines(data / WORKFORCE)
        for i, line in enumerate(lines):
            if line.startswith(f'"{practice}","{year}"'):
                fields = line.split(",")
                fields[column] = value
                lines[i] = ",".join(fields)
        _write(data / WORKFORCE, lines)

    return damage


def drop_workforce_year(year: int) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        _write(data / WORKFORCE, [x for x in _lines(data / WORKFORCE) if f'","{year}"' not in x])

    return damage


def payments_list(practice: str, value: str) -> Callable[[Path], None]:
    """Set the registered list of ``practice`` in the 2018/19 payments file."""

    def damage(data: Path) -> None:
        lines = _lines(data / PAY19)
        for i, line in enumerate(lines):
            fields = line.split(",")
            if len(fields) > 3 and fields[3] == practice:
                fields[7] = value
                lines[i] = ",".join(fields)
        _write(data / PAY19, lines)

    return damage


# ------------------------------------------------------------------------------ NHS file cases


@dataclass(frozen=True)
class FileCase:
    damage: Callable[[Path], None]
    error: type[Exception]
    named: tuple[str, ...]  # regexes that must all occur in the message


NHS_CASES: dict[str, FileCase] = {
    "payments cut mid-file after the practice code": FileCase(
        cut_after_practice_code(PAY19, 4),
        DataFileError,
        (r"nhspaymentsgp-18-19-csv\.csv", r"line 4", r"short row with 4 field"),
    ),
    "payments cut at a line boundary (practices lost)": FileCase(
        keep_lines(PAY19, 3),
        DataFileError,
        (r"nhspaymentsgp-18-19-csv\.csv", r"2 practices", r"60% fewer", r"truncated"),
    ),
    "payments row with an extra field": FileCase(
        extra_field(PAY20, 3),
        DataFileError,
        (r"nhspaymentsgp-19-20-prac-csv\.csv", r"line 3", r"long row with 13 field"),
    ),
    "payments file header-only": FileCase(
        header_only(PAY19),
        DataFileError,
        (r"nhspaymentsgp-18-19-csv\.csv", r"header but no data rows"),
    ),
    "payments file empty": FileCase(
        empty(PAY19), DataFileError, (r"nhspaymentsgp-18-19-csv\.csv", r"empty")
    ),
    "payments file of a panel year deleted": FileCase(
        delete(PAY19),
        FileNotFoundError,
        (r"payments file", r"\[2019\]", r"2018/19", r"nhspaymentsgp-18-19-\*\.csv"),
        # the option that opts in is named in the message
    ),
    "two payments files for one year": FileCase(
        duplicate_year(PAY19, "nhspaymentsgp-18-19-v2-csv.csv"),
        DataFileError,
        (r"nhspaymentsgp-18-19-v2-csv\.csv", r"second payments file", r"2018/19"),
    ),
    "payments list size not a number": FileCase(
        payments_list("C82001", "many"),
        ValueError,
        (r"nhspaymentsgp-18-19", r"Average Number of Registered Patients", r"rows \[0\]"),
    ),
    "QOF file of a panel year deleted": FileCase(
        delete(QOF20), FileNotFoundError, (r"QOF file", r"\[2020\]", r"qof-2019-20\.csv")
    ),
    "QOF file header-only": FileCase(
        header_only(QOF20), DataFileError, (r"qof-2019-20\.csv", r"header but no data rows")
    ),
    "QOF file cut mid-record": FileCase(
        cut_after_practice_code(QOF20, 3), DataFileError, (r"qof-2019-20\.csv", r"line 3")
    ),
    "workforce file header-only": FileCase(
        header_only(WORKFORCE),
        DataFileError,
        (r"workforce-practice-fiscal-year\.csv", r"header but no data rows"),
    ),
    "workforce file cut mid-record": FileCase(
        cut_after_practice_code(WORKFORCE, 6),
        DataFileError,
        (r"workforce-practice-fiscal-year\.csv", r"line 6", r"short row"),
    ),
    "workforce GP FTE 1e9": FileCase(
        workforce_cell("C82001", 2019, 3, "1e9"),
        DataFileError,
        (
            r"workforce-practice-fiscal-year\.csv",
            r"TOTAL_GP_EXTGL_FTE",
            r"gp_fte_per_1k",
            r"more than 20 FTE per 1,000",
            r"practice C82001, year 2019",
        ),
    ),
    "workforce admin FTE 1e6": FileCase(
        workforce_cell("A83001", 2018, 7, "1e6"),
        DataFileError,
        (r"TOTAL_ADMIN_FTE", r"admin_fte_per_1k", r"practice A83001, year 2018"),
    ),
    "workforce patients 1e9": FileCase(
        workforce_cell("C82001", 2020, 2, "1e9"),
        ValueError,
        (r"workforce-practice-fiscal-year\.csv", r"'TOTAL_PATIENTS'", r"above 500,000", r"C82001"),
    ),
    "workforce GP FTE 1e6 in a practice the rules exclude": FileCase(
        workforce_cell("A83002", 2019, 3, "1e6"),  # 420 patients: dropped by min_list_size
        DataFileError,
        (r"TOTAL_GP_EXTGL_FTE", r"practice A83002, year 2019"),
    ),
    "workforce negative FTE": FileCase(
        workforce_cell("C82002", 2019, 3, "-5"),
        ValueError,
        (r"workforce-practice-fiscal-year\.csv", r"TOTAL_GP_EXTGL_FTE", r"negative", r"rows"),
    ),
    "workforce rows of a panel year missing": FileCase(
        drop_workforce_year(2020),
        DataFileError,
        (r"workforce-practice-fiscal-year\.csv", r"no rows for panel year\(s\) \[2020\]"),
    ),
    "workforce column missing": FileCase(
        lambda d: _write(
            d / WORKFORCE, [x.replace("TOTAL_DPC_FTE", "SOMETHING") for x in _lines(d / WORKFORCE)]
        ),
        ColumnNotFoundError,
        (r"workforce-practice-fiscal-year\.csv", r"dpc_fte", r"total dpc fte"),
    ),
    "deprivation file header-only": FileCase(
        header_only(IMD),
        DataFileError,
        (r"fingertips-93553-practice-deprivation\.csv", r"header but no data rows"),
    ),
    "deprivation file with a short row": FileCase(
        cut_after_practice_code(IMD, 5),
        DataFileError,
        (r"fingertips-93553-practice-deprivation\.csv", r"line 5", r"short row"),
    ),
    "workforce year not an integer": FileCase(
        lambda d: _write(
            d / WORKFORCE,
            [x.replace('"A83001","2019"', '"A83001","2019.5"') for x in _lines(d / WORKFORCE)],
        ),
        ValueError,
        (r"workforce-practice-fiscal-year\.csv", r"'Year'", r"non-integer", r"rows \[7\]"),
    ),
    "workforce year blank": FileCase(
        lambda d: _write(
            d / WORKFORCE,
            [x.replace('"A83001","2019"', '"A83001",""') for x in _lines(d / WORKFORCE)],
        ),
        ValueError,
        (r"workforce-practice-fiscal-year\.csv", r"'Year'", r"missing", r"rows \[7\]"),
    ),
    "deprivation score 500 (an excluded practice)": FileCase(
        lambda d: _write(
            d / IMD,
            [
                x.replace("2019,A83002,FOUR,1,20.0", "2019,A83002,FOUR,1,-20")
                for x in _lines(d / IMD)
            ],
        ),
        DataFileError,
        (r"fingertips-93553", r"'Value'", r"-20", r"practices \['A83002'\]"),
    ),
    "deprivation score 500": FileCase(
        lambda d: _write(
            d / IMD,
            [x.replace("2019,C82002,TWO,1,45.0", "2019,C82002,TWO,1,500") for x in _lines(d / IMD)],
        ),
        DataFileError,
        (r"fingertips-93553", r"'Value'", r"outside \[0, 100\]", r"practices \['C82002'\]"),
    ),
    "lookup maps to an unknown ICB": FileCase(
        lambda d: _write(d / LOOKUP, [x.replace("16C,QHM", "16C,QZZ") for x in _lines(d / LOOKUP)]),
        PanelValidationError,
        (r"ccg-icb\.csv", r"icb_code", r"QZZ", r"practice A83001, year 2018"),
    ),
    "lookup maps an LLR sub-ICB elsewhere": FileCase(
        lambda d: _write(d / LOOKUP, [x.replace("04C,QK1", "04C,QHM") for x in _lines(d / LOOKUP)]),
        DataFileError,
        (r"ccg-icb\.csv", r"\['04C'\] map to \['QHM'\]", r"QK1"),
    ),
    "payments list size 1e9": FileCase(
        payments_list("C82002", "1e9"),
        ValueError,
        (
            r"nhspaymentsgp-18-19-csv\.csv",
            r"'Average Number of Registered Patients'",
            r"above 500,000",
            r"rows \[1\] \(practices \['C82002'\]\)",
        ),
    ),
    "lookup file empty": FileCase(empty(LOOKUP), DataFileError, (r"ccg-icb\.csv", r"empty")),
    "lookup file deleted": FileCase(
        delete(LOOKUP), FileNotFoundError, (r"ccg-icb\.csv", r"missing")
    ),
}


@pytest.fixture()
def nhs_copy(tmp_path: Path) -> Path:
    shutil.copytree(FIX, tmp_path / "nhs")
    return tmp_path / "nhs"


def test_fixtures_build_cleanly(nhs_copy: Path) -> None:
    """The undamaged copy builds, so every error below comes from its damage."""
    build = build_nhs_panel(nhs_copy, years=YEARS)
    assert len(build.panel) == 8 and build.fallbacks == {}


@pytest.mark.parametrize("name", list(NHS_CASES))
def test_damaged_nhs_file_is_a_named_error(nhs_copy: Path, name: str) -> None:
    case = NHS_CASES[name]
    case.damage(nhs_copy)
    with pytest.raises(case.error) as err:
        build_nhs_panel(nhs_copy, years=YEARS)
    message = str(err.value)
    for pattern in case.named:
        assert re.search(pattern, message), f"{name}: {pattern!r} not in {message!r}"


def test_missing_payments_year_names_the_option(nhs_copy: Path) -> None:
    (nhs_copy / PAY19).unlink()
    with pytest.raises(FileNotFoundError, match=r"data\.allow_list_size_fallback = true"):
        build_nhs_panel(nhs_copy, years=YEARS)
    build = build_nhs_panel(
        nhs_copy, years=YEARS, options=NHSLoadOptions(allow_list_size_fallback=True)
    )
    assert "fallback: list_size_from_workforce" in set(build.report.table()["rule"])


def test_header_only_payments_file_does_not_switch_to_the_fallback(nhs_copy: Path) -> None:
    """Even with the fallback allowed, a damaged file is an error, not a missing one."""
    header_only(PAY19)(nhs_copy)
    with pytest.raises(DataFileError, match=r"nhspaymentsgp-18-19-csv\.csv.*no data rows"):
        build_nhs_panel(
            nhs_copy, years=YEARS, options=NHSLoadOptions(allow_list_size_fallback=True)
        )


@pytest.mark.parametrize("value", ["", "0", "-100"])
def test_missing_zero_negative_list_size_counted_under_its_own_rule(
    nhs_copy: Path, value: str
) -> None:
    payments_list("C82001", value)(nhs_copy)
    build = build_nhs_panel(nhs_copy, years=YEARS)
    steps = {s.rule: s for s in build.report.steps}
    assert steps["invalid_list_size"].practices_dropped == 1
    assert steps["invalid_list_size"].llr_practices_dropped == 1
    assert steps["min_list_size"].practices_dropped == 1  # A83002 (< 500), as without damage
    assert "C82001" not in set(build.panel[S.PRACTICE])
    dropped = build.report.dropped
    assert set(dropped.loc[dropped[S.PRACTICE] == "C82001", "rule"]) == {"invalid_list_size"}


GPPS = (
    Path(__file__).parent
    / "fixtures"
    / "gpps"
    / "GPPS_2023_Practice_data_(weighted)_(csv)_PUBLIC.csv"
)
GPPS_CASES: dict[str, tuple[Callable[[list[str]], list[str]], tuple[str, ...]]] = {
    "header only": (lambda x: x[:1], ("header but no data rows",)),
    "cut mid-file": (lambda x: [*x[:2], x[2][:6]], (r"line 3", "short row")),
    "long row": (lambda x: [x[0], x[1] + ",9", *x[2:]], (r"line 2", "long row")),
}


@pytest.mark.parametrize("name", list(GPPS_CASES))
def test_damaged_gpps_file_is_a_named_error(tmp_path: Path, name: str) -> None:
    from hepcausal.data.gpps import load_gpps

    damage, named = GPPS_CASES[name]
    path = tmp_path / GPPS.name
    _write(path, damage(_lines(GPPS)))
    with pytest.raises(DataFileError) as err:
        load_gpps([path])
    for pattern in (re.escape(str(path)), *named):
        assert re.search(pattern, str(err.value)), f"{name}: {pattern!r} not in {err.value}"


# ------------------------------------------------------------------------------ panel files


@pytest.fixture(scope="module")
def good_panel() -> pd.DataFrame:
    return build_nhs_panel(FIX, years=YEARS).panel


def _set(column: str, value: object, row: int = 2) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def damage(p: pd.DataFrame) -> pd.DataFrame:
        p = p.copy()
        if p[column].dtype.kind in "if" and not isinstance(value, int | float):
            p[column] = p[column].astype(object)
        p.loc[row, column] = value
        return p

    return damage


@dataclass(frozen=True)
class PanelCase:
    damage: Callable[[pd.DataFrame], pd.DataFrame]
    named: tuple[str, ...]
    error: type[Exception] = PanelValidationError


def _where(p: pd.DataFrame, row: int = 2) -> str:
    """How the message locates panel row ``row`` of a CSV: its line, practice and year."""
    return rf"line {row + 2} \(practice {p.loc[row, S.PRACTICE]}, year {p.loc[row, S.YEAR]}\)"


PANEL_CASES: dict[str, PanelCase] = {
    "GP FTE -5": PanelCase(_set(S.GP_FTE, -5.0), (S.GP_FTE, "negative value")),
    "GP FTE 1e9": PanelCase(_set(S.GP_FTE, 1e9), (S.GP_FTE, r"plausible range \[0, 20\]")),
    "QOF 1.5": PanelCase(_set(S.QOF, 1.5), (S.QOF, r"outside \[0, 1\]")),
    "year 1999": PanelCase(_set(S.YEAR, 1999), ("'year'", r"outside \[2000, 2100\]")),
    "year 2150": PanelCase(_set(S.YEAR, 2150), ("'year'", r"outside \[2000, 2100\]")),
    "list size -100": PanelCase(_set(S.LIST_SIZE, -100.0), (S.LIST_SIZE, "non-positive")),
    "weighted list size missing": PanelCase(
        _set(S.WEIGHTED_LIST_SIZE, float("nan")), (S.WEIGHTED_LIST_SIZE, "missing")
    ),
    "deprivation score missing": PanelCase(
        _set(S.IMD, float("nan")), (S.IMD, "missing deprivation")
    ),
    "GP FTE not a number": PanelCase(_set(S.GP_FTE, "abc"), (S.GP_FTE, "non-numeric")),
    "unknown ICB code": PanelCase(_set(S.ICB, "QZZ"), (S.ICB, "unknown ICB code", "QZZ")),
    "hep_treated 2": PanelCase(_set(S.HEP_TREATED, 2), (S.HEP_TREATED, "0/1")),
    "negative QOF denominator": PanelCase(
        _set(S.QOF_MAX_POINTS, -559.0), (S.QOF_MAX_POINTS, "negative")
    ),
    "deprivation score -3": PanelCase(_set(S.IMD, -3.0), (S.IMD, r"outside \[0, 100\]")),
    "list size 1e7": PanelCase(_set(S.LIST_SIZE, 1e7), (S.LIST_SIZE, "above 500,000")),
    "weighted list 100x registered": PanelCase(
        lambda p: _set(S.WEIGHTED_LIST_SIZE, 100 * p.loc[2, S.LIST_SIZE])(p),
        (S.WEIGHTED_LIST_SIZE, r"weighted / registered list outside \[0\.1, 10\]"),
    ),
    "practice in two ICBs": PanelCase(_set(S.ICB, "QHM"), (S.ICB, "more than one ICB")),
    "duplicated practice-year": PanelCase(
        lambda p: pd.concat([p, p.iloc[[2]]], ignore_index=True), ("duplicated practice-years",)
    ),
}


@pytest.mark.parametrize("name", list(PANEL_CASES))
def test_damaged_panel_file_is_a_named_error(
    tmp_path: Path, good_panel: pd.DataFrame, name: str
) -> None:
    case = PANEL_CASES[name]
    damaged = case.damage(good_panel)
    path = write_panel(damaged, tmp_path / "panel.csv")
    with pytest.raises(case.error) as err:
        read_panel(path)
    message = str(err.value)
    for pattern in (re.escape(str(path)), *case.named, _where(damaged)):
        assert re.search(pattern, message), f"{name}: {pattern!r} not in {message!r}"


@pytest.mark.parametrize("column", [S.IMD, S.HEP_TREATED, S.WEIGHTED_LIST_SIZE, S.ICB])
def test_panel_file_missing_required_column(
    tmp_path: Path, good_panel: pd.DataFrame, column: str
) -> None:
    path = write_panel(good_panel.drop(columns=column), tmp_path / "panel.csv")
    with pytest.raises(PanelValidationError, match=rf"(?s){re.escape(str(path))}.*{column}"):
        read_panel(path)


def test_damaged_parquet_panel_names_file_and_row(tmp_path: Path, good_panel: pd.DataFrame) -> None:
    path = write_panel(_set(S.QOF, 1.5)(good_panel), tmp_path / "panel.parquet")
    with pytest.raises(
        PanelValidationError, match=rf"(?s)panel\.parquet.*{S.QOF}.*row 2 \(practice"
    ):
        read_panel(path)


PANEL_TEXT_CASES: dict[str, tuple[Callable[[list[str]], list[str]], tuple[str, ...]]] = {
    "short row": (lambda x: [*x[:3], x[3][: x[3].index(",", 10)], *x[4:]], (r"line 4", "short")),
    "long row": (lambda x: [*x[:3], x[3] + ",1", *x[4:]], (r"line 4", "long")),
    "cut mid-file": (lambda x: [*x[:4], x[4][:8]], (r"line 5", "short")),
    "header only": (lambda x: x[:1], ("header but no data rows",)),
    "empty": (lambda x: [], ("empty",)),
    "duplicated column": (
        lambda x: [x[0].replace("nurse_fte_per_1k", "gp_fte_per_1k"), *x[1:]],
        (r"line 1", r"duplicated column name.*gp_fte_per_1k"),
    ),
}


@pytest.mark.parametrize("name", list(PANEL_TEXT_CASES))
def test_malformed_panel_csv_names_file_and_line(
    tmp_path: Path, good_panel: pd.DataFrame, name: str
) -> None:
    damage, named = PANEL_TEXT_CASES[name]
    path = write_panel(good_panel, tmp_path / "panel.csv")
    lines = damage(path.read_text().splitlines())
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(DataFileError) as err:
        read_panel(path)
    for pattern in (re.escape(str(path)), *named):
        assert re.search(pattern, str(err.value)), f"{name}: {pattern!r} not in {err.value}"


def test_truncated_parquet_panel_names_the_file(tmp_path: Path, good_panel: pd.DataFrame) -> None:
    path = write_panel(good_panel, tmp_path / "panel.parquet")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFileError, match=r"panel\.parquet: not a readable parquet file"):
        read_panel(path)


def test_good_panel_file_round_trips(tmp_path: Path, good_panel: pd.DataFrame) -> None:
    path = write_panel(good_panel, tmp_path / "panel.csv")
    back = read_panel(path)
    pd.testing.assert_frame_equal(back, good_panel, check_dtype=False)


# ------------------------------------------------------------------------------ through the runner


def test_file_source_is_validated_by_prepare_data(tmp_path: Path, good_panel: pd.DataFrame) -> None:
    """``data.source = "file"``: the run's data path goes through validate_panel."""
    from hepcausal.experiments.config import Config, DataConfig
    from hepcausal.experiments.inputs import prepare_data

    path = write_panel(_set(S.GP_FTE, -5.0)(good_panel), tmp_path / "panel.csv")
    cfg = Config(data=DataConfig(source="file", path=str(path)))
    with pytest.raises(
        PanelValidationError, match=rf"(?s)panel\.csv.*{S.GP_FTE}.*negative.*line 4"
    ):
        prepare_data(cfg)


def test_synthetic_source_is_validated_by_prepare_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from hepcausal.data import synthetic
    from hepcausal.experiments.config import Config, DataConfig
    from hepcausal.experiments.inputs import prepare_data

    real = synthetic.simulate_panel

    def broken(cfg: object) -> object:
        sim = real(cfg)  # type: ignore[arg-type]
        sim.panel.loc[sim.panel.index[0], S.GP_FTE] = -1.0
        return sim

    monkeypatch.setattr(synthetic, "simulate_panel", broken)
    cfg = Config(data=DataConfig(source="synthetic", synthetic={"preset": "small"}))
    with pytest.raises(PanelValidationError, match=rf"(?s)synthetic.*{S.GP_FTE}.*negative.*row 0"):
        prepare_data(cfg)


def test_unrelated_data_dir_fails_before_hashing(tmp_path: Path) -> None:
    """A ``data.data_dir`` without the NHS layout is a ConfigError naming the key and the parts."""
    from hepcausal.experiments.config import Config, ConfigError, DataConfig
    from hepcausal.experiments.inputs import prepare_data

    (tmp_path / "big.bin").write_bytes(b"x" * 1000)
    cfg = Config(data=DataConfig(source="nhs", data_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"'data\.data_dir'.*not an NHS data folder.*payments"):
        prepare_data(cfg)
    with pytest.raises(FileNotFoundError, match=r"missing.*workforce-practice-fiscal-year"):
        build_nhs_panel(tmp_path)


# ============================================================================== experiments side
# Configs, names, output paths, caches, sweeps and the CLI (issue 13): every case goes through the
# command line or the runner and asserts the exit status and that the message names the key,
# file or folder.  Only the tiny estimator (tests/_experiments_tiny.py) ever samples, briefly.

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import tomli_w  # noqa: E402

from _experiments_tiny import TARGET, TINY, tiny_registry  # noqa: E402, F401  (autouse fixture)
from hepcausal.cli import EXIT_CODES, main  # noqa: E402
from hepcausal.experiments import registry  # noqa: E402
from hepcausal.experiments.config import ConfigError, config_from_dict  # noqa: E402
from hepcausal.experiments.runner import run_experiment  # noqa: E402
from hepcausal.experiments.store import (  # noqa: E402
    RunIntegrityError,
    SaveError,
    is_complete,
    load_run,
    verify_run,
)


def tiny_config(**changes: Any) -> dict[str, Any]:
    """A small synthetic config of the tiny estimator; ``changes``: dotted key -> value."""
    d: dict[str, Any] = {
        "name": "bad",
        "data": {"source": "synthetic", "synthetic": {"preset": "small", "n_practices": 240}},
        "analysis": {"outcome": "gp", "comparators": "all"},
        "estimator": {"name": TARGET},
        "sampler": {"draws": 100, "tune": 100, "chains": 1},
    }
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = d
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return d


@dataclass(frozen=True)
class CliCase:
    config: dict[str, Any]
    named: tuple[str, ...]  # regexes that must all occur in stderr
    code: int = 2
    args: tuple[str, ...] = ()


SWEEP = {"grid": {"analysis.start_year": [2021, 2022]}}
CHECK_CASES: dict[str, CliCase] = {
    "estimator.name = 'module:function'": CliCase(
        tiny_config(**{"estimator.name": "os:system"}),
        (r"'estimator\.name'", r"unknown estimator 'os:system'"),
    ),
    "sampler.seed = 1e20": CliCase(tiny_config(**{"sampler.seed": 1e20}), (r"'sampler\.seed'",)),
    "--seed 2**40": CliCase(
        tiny_config(), (r"'sampler\.seed' must be < 4,294,967,296",), args=("--seed", str(2**40))
    ),
    "sampler.seed = -1": CliCase(tiny_config(**{"sampler.seed": -1}), (r"'sampler\.seed'", ">= 0")),
    "sampler.draws = 1e10": CliCase(
        tiny_config(**{"sampler.draws": 10_000_000_000}),
        (r"'sampler\.draws' = 10,000,000,000", r"upper bound of 1,000,000", r"GB"),
    ),
    "sampler.chains = 1000": CliCase(
        tiny_config(**{"sampler.chains": 1000}), (r"'sampler\.chains' must be <= 64",)
    ),
    "sampler.tune = 1e9": CliCase(
        tiny_config(**{"sampler.tune": 10**9}), (r"'sampler\.tune' must be <= 1,000,000",)
    ),
    "prior = 'wide'": CliCase(
        tiny_config(**{"priors.noise_sd": "wide"}), (r"'priors\.noise_sd'", r"'wide'")
    ),
    "misspelt prior": CliCase(
        tiny_config(**{"priors.nois_sd": 1.0}), (r"'priors\.nois_sd'", r"did you mean")
    ),
    "240-character name": CliCase(tiny_config(name="x" * 240), (r"'name'", r"at most 200")),
    "NUL byte in the name": CliCase(tiny_config(name="a\x00b"), (r"'name'", r"NUL")),
    "name '..'": CliCase(tiny_config(name=".."), (r"'name'", r"must not start with '\.'")),
    "name with a slash": CliCase(tiny_config(name="a/../b"), (r"'name'", r"slashes")),
    "sweep label '..'": CliCase(
        tiny_config(sweep={**SWEEP, "labels": {"analysis.start_year": ["..", "b"]}}),
        (r"'sweep\.labels\.\"analysis\.start_year\"'", r"label '\.\.'"),
    ),
    "sweep label with a slash": CliCase(
        tiny_config(sweep={**SWEEP, "labels": {"analysis.start_year": ["a", "../../x"]}}),
        (r"'sweep\.labels\.\"analysis\.start_year\"'", r"label '\.\./\.\./x'"),
    ),
    "sweep over the name": CliCase(
        tiny_config(sweep={"grid": {"name": ["..", "x"]}}),
        (r"'sweep\.grid\.\"name\"'", r"cannot be swept"),
    ),
    "treated ICB not in the panel": CliCase(
        tiny_config(**{"analysis.treated_icb": "QZZ"}),
        (r"'analysis\.treated_icb' = 'QZZ' is not an ICB of the panel",),
    ),
    "comparator not in the panel": CliCase(
        tiny_config(**{"analysis.comparators": ["QZZ", "QJ2"]}),
        (r"'analysis\.comparators'", r"\['QZZ'\] are not in the panel"),
    ),
    "start year after the data": CliCase(
        tiny_config(**{"analysis.start_year": 2090}),
        (r"'analysis\.start_year' = 2090", r"panel has years"),
    ),
    "start year before the data": CliCase(
        tiny_config(**{"analysis.start_year": 2001}), (r"'analysis\.start_year' = 2001",)
    ),
    "posterior above the memory bound": CliCase(
        tiny_config(**{"sampler.draws": 900_000, "sampler.chains": 64}),
        (r"'sampler\.draws' = 900,000", r"about [\d.,]+ GB of posterior", r"upper bound"),
    ),
    "data_dir an unrelated folder": CliCase(
        tiny_config(**{"data.source": "nhs", "data.data_dir": "UNRELATED"}),
        (r"'data\.data_dir'", r"not an NHS data folder"),
    ),
    "sweep point with a start year outside the data": CliCase(
        tiny_config(sweep={"grid": {"analysis.start_year": [2021, 2095]}}),
        (r"sweep point bad__start_year=2095", r"'analysis\.start_year' = 2095"),
    ),
    "--out an existing file": CliCase(
        tiny_config(), (r"--out .*out\.txt: is an existing file",), args=("--out", "OUTFILE")
    ),
}


def _write_config(tmp_path: Path, d: dict[str, Any]) -> Path:
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir(exist_ok=True)
    (unrelated / "big.bin").write_bytes(b"x" * 1000)
    text = tomli_w.dumps(d).replace('"UNRELATED"', json.dumps(str(unrelated)))
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", list(CHECK_CASES))
def test_check_refuses_bad_config_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    case = CHECK_CASES[name]
    path = _write_config(tmp_path, case.config)
    (tmp_path / "out.txt").write_text("a file")
    args = [a.replace("OUTFILE", str(tmp_path / "out.txt")) for a in case.args]
    assert main(["check", str(path), *args]) == case.code
    err = capsys.readouterr().err
    assert err.startswith("hepcausal: error:") and "Traceback" not in err
    for pattern in case.named:
        assert re.search(pattern, err), f"{name}: {pattern!r} not in {err!r}"


@pytest.mark.parametrize(
    "name", ["--out an existing file", "240-character name", "treated ICB not in the panel"]
)
def test_run_validates_before_fitting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Names, output paths and the data checks come before the fit (no fit is thrown away)."""
    from hepcausal.experiments import runner

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitted before validating")

    monkeypatch.setattr(runner, "fit_config", no_fit)
    case = CHECK_CASES[name]
    path = _write_config(tmp_path, case.config)
    (tmp_path / "out.txt").write_text("a file")
    args = [a.replace("OUTFILE", str(tmp_path / "out.txt")) for a in case.args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "runs")]
    assert main(["run", str(path), *args]) == case.code
    err = capsys.readouterr().err
    for pattern in case.named:
        assert re.search(pattern, err), f"{name}: {pattern!r} not in {err!r}"


@pytest.mark.parametrize(
    ("out", "named"),
    [
        ("runs\x00x", r"--out 'runs\\x00x': a path must not contain a NUL byte"),
        ("FILE/runs", r"--out .*out\.txt/runs: .*out\.txt is a file"),
        ("FILE", r"--out .*out\.txt: is an existing file"),
    ],
)
def test_output_folder_checked_before_fitting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str, named: str
) -> None:
    from hepcausal.experiments import runner

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitted before validating")

    monkeypatch.setattr(runner, "fit_config", no_fit)
    (tmp_path / "out.txt").write_text("a file")
    with pytest.raises(ConfigError, match=named):
        run_experiment(
            config_from_dict(tiny_config()), out_dir=out.replace("FILE", str(tmp_path / "out.txt"))
        )


def test_config_never_imports_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``estimator.name = "evil:run"`` with an evil.py in the working directory: neither
    ``check`` nor ``run`` imports it."""
    marker = tmp_path / "IMPORTED"
    (tmp_path / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\ndef run(*a, **k): pass\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _write_config(tmp_path, tiny_config(**{"estimator.name": "evil:run"}))
    for command in ("check", "run"):
        assert main([command, str(path)]) == 2
        assert "'estimator.name': unknown estimator 'evil:run'" in capsys.readouterr().err
    assert not marker.exists() and "evil" not in sys.modules


class _Dist:
    name = "hepcausal-plugin-demo"


def test_plugins_only_through_installed_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plug-in is found only as an installed distribution's entry point in the group."""
    from importlib import metadata

    monkeypatch.delitem(registry.ESTIMATORS, TARGET)
    with pytest.raises(ConfigError, match=rf"'estimator\.name': unknown estimator '{TARGET}'"):
        config_from_dict(tiny_config())
    installed = [
        metadata.EntryPoint(TARGET, "_experiments_tiny:TINY", registry.ENTRY_POINT_GROUP),
        metadata.EntryPoint("broken", "_experiments_tiny:TARGET", registry.ENTRY_POINT_GROUP),
    ]

    def entry_points(*, group: str) -> list[metadata.EntryPoint]:
        return installed if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry.metadata, "entry_points", entry_points)
    cfg = config_from_dict(tiny_config())  # the installed plug-in is found and validated
    assert registry.get_entry(cfg.estimator.name) is TINY
    assert TARGET in registry.known_estimators()
    with pytest.raises(ConfigError, match=r"entry point 'broken'.*is a str, not an EstimatorEntry"):
        config_from_dict(tiny_config(**{"estimator.name": "broken"}))
    with pytest.raises(ConfigError, match=r"unknown estimator '_experiments_tiny:TINY'"):
        config_from_dict(tiny_config(**{"estimator.name": "_experiments_tiny:TINY"}))


def _panel_config(tmp_path: Path, panel: pd.DataFrame) -> Path:
    path = write_panel(panel, tmp_path / "panel.csv")
    d = tiny_config(
        data={"source": "file", "path": str(path)},
        **{"analysis.start_year": 2020, "analysis.outcome": S.GP_FTE},
    )
    return _write_config(tmp_path, d)


def test_check_reads_the_panel_file_and_prints_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good_panel: pd.DataFrame
) -> None:
    """A data error exits 3 and prints the whole multi-line message (file, columns, rows)."""
    damaged = _set(S.QOF, 1.5, row=5)(_set(S.GP_FTE, -5.0)(good_panel))
    path = _panel_config(tmp_path, damaged)
    assert main(["check", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") >= 3, err
    for pattern in ("panel\\.csv", S.GP_FTE, "negative", "line 4", S.QOF, "line 7"):
        assert re.search(pattern, err), f"{pattern!r} not in {err!r}"


@pytest.mark.parametrize(
    ("outcome", "damage", "named"),
    [
        ("gpps", lambda p: p, r"column 'gpps_overall_good' is not in the panel"),
        ("nurse", lambda p: p.assign(nurse_fte_per_1k=float("nan")), r"no observed values"),
    ],
)
def test_outcome_absent_from_the_panel_names_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    good_panel: pd.DataFrame,
    outcome: str,
    damage: Callable[[pd.DataFrame], pd.DataFrame],
    named: str,
) -> None:
    path = _panel_config(
        tmp_path, damage(good_panel.drop(columns="gpps_overall_good", errors="ignore"))
    )
    cfg = tomllib.loads(path.read_text())
    cfg["analysis"]["outcome"] = outcome
    path.write_text(tomli_w.dumps(cfg))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"'analysis\.outcome': .*{named}", err), err


def test_treated_icb_with_few_practices_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good_panel: pd.DataFrame
) -> None:
    path = _panel_config(tmp_path, good_panel)
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert re.search(r"hepcausal: warning: .*ICB QK1.*practice", captured.err), captured.err
    assert "posterior about" in captured.out


def test_exit_code_of_each_error_class() -> None:
    from hepcausal.cli import CliError, exit_code

    cases: dict[int, list[BaseException]] = {
        2: [CliError("x"), ConfigError("x"), registry.UnknownEstimatorError("x")],
        3: [
            DataFileError(Path("f.csv"), "x"),
            PanelValidationError("f.csv", ["x"]),
            FileNotFoundError("f.csv"),
            ColumnNotFoundError("x"),
        ],
        1: [SaveError("x", None), RuntimeError("x"), MemoryError()],
    }
    for code, errors in cases.items():
        for exc in errors:
            assert exit_code(exc) == code, type(exc).__name__


def test_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    for code in EXIT_CODES:
        assert re.search(rf"^  {code} ", out, re.M), f"exit status {code} not in --help"


# ------------------------------------------------------------------------------ caches and saving


@pytest.fixture
def fit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fits.log"
    monkeypatch.setenv("HEPCAUSAL_TEST_FIT_LOG", str(path))
    return path


def _fits(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _run(cfg: Any, out: Path, **kw: Any) -> Any:
    with warnings.catch_warnings():  # deliberately short chains: convergence is not the point
        warnings.filterwarnings("ignore", message=".*CONVERGENCE CHECK FAILED.*")
        return run_experiment(cfg, out_dir=out, figures=False, **kw)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "idata.nc truncated": (
        lambda d: (d / "idata.nc").write_bytes((d / "idata.nc").read_bytes()[:500]),
        r"idata\.nc is damaged",
    ),
    "summary.csv missing": (lambda d: (d / "summary.csv").unlink(), r"summary\.csv is missing"),
    "diagnostics.json edited": (
        lambda d: (d / "diagnostics.json").write_text('{"ok": true}'),
        r"diagnostics\.json is damaged",
    ),
    "meta.json missing": (
        lambda d: (d / "meta.json").unlink(),
        r"meta\.json is missing",
    ),
}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_damaged_cache_is_refitted_and_leftovers_removed(
    tmp_path: Path, fit_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Content hashes are verified on reuse (a damaged run is refitted with a warning, not
    "cached" and then failing); leftover temporary folders are removed by the next run and
    are never runs; every file is written 0666 - umask (JSON included)."""
    import socket

    cfg = config_from_dict(tiny_config())
    first = _run(cfg, tmp_path)
    assert _fits(fit_log) == 1
    marker = json.loads((first.run_dir / "run.json").read_text())
    assert {"idata.nc", "summary.csv", "diagnostics.json", "meta.json"} <= set(marker["files"])
    assert verify_run(first.run_dir) is None
    mode = 0o666 & ~_umask()
    for path in first.run_dir.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == mode, f"{path.name}: {oct(path.stat().st_mode)}"
    for i, (name, (damage, named)) in enumerate(DAMAGE.items()):  # each damage is detected
        copy = tmp_path / f"copy{i}"
        shutil.copytree(first.run_dir, copy)
        damage(copy)
        problem = verify_run(copy)
        assert problem is not None and re.search(named, problem), f"{name}: {problem}"
        with pytest.raises(RunIntegrityError, match=named):  # never read as the run's result
            load_run(copy)
        shutil.rmtree(copy)

    host = socket.gethostname().replace("-", "_")
    dead = tmp_path / f".tmp-bad-0123456789ab-{host}-999999999-deadbeef"
    alive = tmp_path / f".tmp-other-0123456789ab-{host}-{os.getpid()}-cafecafe"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "idata.nc").write_text("half written")
        (folder / "run.json").write_text('{"status": "complete"}')
        assert not is_complete(folder)  # a temporary folder is never a run

    DAMAGE["idata.nc truncated"][0](first.run_dir)  # through the runner: refitted, warned
    with pytest.warns(UserWarning, match=r"cached run is damaged \(.*idata\.nc is damaged"):
        again = _run(cfg, tmp_path)
    assert not again.cached and _fits(fit_log) == 2 and verify_run(again.run_dir) is None
    assert not dead.exists() and alive.exists()  # a running writer's folder is kept
    assert main(["report", str(alive)]) == 2
    assert "temporary folder" in capsys.readouterr().err
    assert _run(cfg, tmp_path).cached and _fits(fit_log) == 2


def test_finished_fit_is_rescued_when_saving_fails(
    tmp_path: Path, fit_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arviz as az

    from hepcausal.experiments import store

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "content_hashes", disk_full)  # after idata.nc is written
    monkeypatch.setenv("HEPCAUSAL_RESCUE_DIR", str(tmp_path / "rescue"))
    with pytest.raises(SaveError, match=r"saving it under .* failed.*No space left") as err:
        _run(config_from_dict(tiny_config()), tmp_path / "runs")
    rescued = err.value.rescued
    assert rescued is not None and str(rescued) in str(err.value)
    assert "effect" in az.from_netcdf(rescued).posterior
    assert not list((tmp_path / "runs").glob(".tmp-*"))


# ------------------------------------------------------------------------------ sweep workers


def test_sweep_workers_exit_when_their_parent_dies(tmp_path: Path) -> None:
    """SIGKILL of the sweep process: its worker notices within seconds and exits."""
    script = tmp_path / "parent.py"
    pid_file = tmp_path / "worker.pid"
    script.write_text(
        "import os, sys, time\n"
        "from hepcausal.experiments.sweep import _executor\n"
        "def work(path):\n"
        "    open(path, 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    pool = _executor(1)\n"
        "    pool.submit(work, sys.argv[1])\n"
        "    time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.2)
        worker = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker):
            assert time.monotonic() < deadline, "orphaned worker still running"
            time.sleep(0.2)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True
