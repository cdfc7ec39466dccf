"""GP Patient Survey (GPPS) practice results: loader and merge into the panel.

Accepted format (one CSV per survey year, as published, "GPPS_<year>_Practice_data_(weighted)..."):

* practice code column: ``practice_code`` / ``Practice_Code`` / ``ad_practicecode``;
* overall experience "good" (very + fairly good): ``q28_12pct`` (up to 2023), or
  ``overallexp_12pct`` / ``overallexp.pcteval``, or the sum of ``overallexp_1_pct`` and
  ``overallexp_2_pct`` (2024 redesign); percentages (0-100) or proportions (0-1): by default the
  scale is inferred (any value > 1 means percent), or pass ``percent=``;
* counts: ``q28base`` (respondents answering the question; optional), ``distributed``,
  ``received`` (questionnaires sent / returned);
* suppressed or unavailable cells coded -97 (also -98, -99) become missing and are counted
  (``DataFrame.attrs["suppressed"]``, per column).

Folder discovery (:func:`gpps_files`, used for the config key ``data.gpps_dir``): every ``.csv``
file directly in the folder whose name starts with ``GPPS_<year>_Practice_data`` (case-insensitive,
e.g. the published ``GPPS_2023_Practice_data_(weighted)_(csv)_PUBLIC.csv``), one per survey year;
other files are ignored.

``year`` = the survey year in the file name (fieldwork January-March/April of that year, i.e. the
end of fiscal year <year-1>/<year>), or ``year=`` for a single file.  ``gpps_responses`` is the
question base ``q28base`` when present (the proportion's denominator), else ``received``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.headers import match_columns, read_csv_text, to_number

__all__ = ["SUPPRESSION_CODES", "gpps_files", "gpps_year_from_name", "load_gpps", "merge_gpps"]

SUPPRESSION_CODES = (-97.0, -98.0, -99.0)

_PATTERNS = {
    S.PRACTICE: [r"practice code", r"ad practicecode", r"practicecode"],
    "good": [r"q28 12pct", r"overallexp 12 ?pct", r"overallexp pcteval"],
    "good_1": r"overallexp 1 pct",
    "good_2": r"overallexp 2 pct",
    "base": [r"q28base", r"q28 base", r"overallexp base"],
    "distributed": r"distributed",
    "received": r"received",
}


def gpps_year_from_name(path: str | Path) -> int:
    """Survey year from 'GPPS_<year>_Practice_data...' (or any 20xx in the name)."""
    match = re.search(r"(?<!\d)(20\d{2})(?!\d)", Path(path).name)
    if not match:
        raise ValueError(
            f"{Path(path).name}: cannot infer the GPPS survey year from the file "
            "name (expected 'GPPS_<year>_Practice_data...'); pass year="
        )
    return int(match.group(1))


_FILE_NAME = re.compile(r"gpps_(20\d{2})_practice_data.*\.csv", re.IGNORECASE)


def gpps_files(folder: str | Path) -> list[Path]:
    """The GPPS practice files of a folder, one per survey year, sorted by year.

    Parameters
    ----------
    folder : str or Path
        Folder holding the published ``GPPS_<year>_Practice_data_(weighted)...csv`` files (not
        searched recursively; files with other names are ignored).

    Returns
    -------
    list of Path
        The matching files, in survey-year order.

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a directory or holds no matching file.
    ValueError
        If two files are for the same survey year.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: GPPS folder not found")
    by_year: dict[int, list[Path]] = {}
    for f in sorted(path.iterdir()):
        match = _FILE_NAME.fullmatch(f.name)
        if match and f.is_file():
            by_year.setdefault(int(match.group(1)), []).append(f)
    if not by_year:
        raise FileNotFoundError(
            f"{path}: no GPPS practice files (expected names like "
            "'GPPS_2023_Practice_data_(weighted)_(csv)_PUBLIC.csv')"
        )
    dup = {y: [f.name for f in fs] for y, fs in by_year.items() if len(fs) > 1}
    if dup:
        raise ValueError(f"{path}: more than one GPPS practice file per survey year: {dup}")
    return [by_year[y][0] for y in sorted(by_year)]


def _load_one(path: Path, year: int | None, percent: bool | None) -> pd.DataFrame:
    raw = read_csv_text(path)
    cols = match_columns(raw, _PATTERNS, source=path, optional=("good", "good_1", "good_2", "base"))
    has_pair = "good_1" in cols and "good_2" in cols
    if "good" not in cols and not has_pair:
        raise KeyError(
            f"{path}: required column 'q28_12pct' (overall experience good %) not "
            "found (nor 'overallexp_12pct'/'overallexp.pcteval' or the pair "
            f"'overallexp_1_pct' + 'overallexp_2_pct'); headers are {list(raw.columns)}"
        )
    suppressed: dict[str, int] = {}

    def number(key: str) -> pd.Series:
        values = to_number(raw[cols[key]], column=cols[key], source=path)
        codes = values.isin(SUPPRESSION_CODES)
        suppressed[cols[key]] = int(codes.sum())
        values = values.mask(codes)
        bad = values < 0
        if bad.any():
            raise ValueError(
                f"{path}: column {cols[key]!r} has negative values other than the "
                f"suppression codes {SUPPRESSION_CODES} at rows "
                f"{list(values.index[bad][:5])}"
            )
        return values

    if "good" in cols:
        good = number("good")
    else:
        good = number("good_1") + number("good_2")
    is_percent = bool((good > 1).any()) if percent is None else percent
    if is_percent:
        good = good / 100.0
    bad = good > 1 + 1e-9
    if bad.any():
        raise ValueError(
            f"{path}: overall-good share above 100% at rows {list(good.index[bad][:5])}"
        )
    out = pd.DataFrame(
        {
            S.PRACTICE: raw[cols[S.PRACTICE]].str.strip().str.upper(),
            S.YEAR: gpps_year_from_name(path) if year is None else int(year),
            S.GPPS_OVERALL: good.clip(upper=1.0),
            "gpps_distributed": number("distributed"),
            "gpps_received": number("received"),
        }
    )
    out[S.GPPS_RESPONSES] = number("base") if "base" in cols else out["gpps_received"]
    out.attrs["suppressed"] = suppressed
    return out


def load_gpps(
    path_or_paths: str | Path | Sequence[str | Path],
    *,
    year: int | None = None,
    percent: bool | None = None,
) -> pd.DataFrame:
    """Load one or more GPPS practice CSVs (format in the module docstring).

    Returns ``practice_code``, ``year``, ``gpps_overall_good`` (on [0, 1]), ``gpps_responses``,
    ``gpps_distributed``, ``gpps_received``; ``attrs["suppressed"]`` = total suppressed cells and
    ``attrs["suppressed_by_column"]`` = counts per file and column.

    Parameters
    ----------
    path_or_paths : str or Path or sequence of str or Path
        One GPPS practice CSV or several (one per survey year).
    year : int or None, keyword-only, default None
        Survey year of a single file (fieldwork early in the year, i.e. the end of fiscal year
        ``year-1/year``); None reads it from each file name.
    percent : bool or None, keyword-only, default None
        Whether the overall-good column is a percentage (divided by 100); None: detected
        (any value > 1).

    Returns
    -------
    pandas.DataFrame
        One row per practice and survey year, columns as above.

    Raises
    ------
    ValueError
        With no files, ``year`` for several files, a (practice, year) in more than one file,
        or a year that cannot be read from a file name.
    ColumnNotFoundError
        When a required column is missing.
    """
    paths = [path_or_paths] if isinstance(path_or_paths, str | Path) else list(path_or_paths)
    if not paths:
        raise ValueError("load_gpps: no files given")
    if year is not None and len(paths) > 1:
        raise ValueError("load_gpps(year=...) only applies to a single file")
    frames, by_col = [], {}
    for p in paths:
        frame = _load_one(Path(p), year, percent)
        by_col[str(p)] = frame.attrs["suppressed"]
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    dup = out.duplicated([S.PRACTICE, S.YEAR], keep=False)
    if dup.any():
        raise ValueError(
            f"GPPS files {[str(p) for p in paths]}: duplicated (practice, year): "
            f"{out.loc[dup, [S.PRACTICE, S.YEAR]].head(5).values.tolist()}"
        )
    out.attrs["suppressed_by_column"] = by_col
    out.attrs["suppressed"] = int(sum(sum(d.values()) for d in by_col.values()))
    return out


def merge_gpps(panel: pd.DataFrame, gpps: pd.DataFrame) -> pd.DataFrame:
    """Left-join GPPS results onto ``panel`` by practice and year (replacing any GPPS columns).

    Panel rows without a survey result get missing ``gpps_overall_good``/``gpps_responses``;
    ``attrs["gpps_matched"]`` counts the panel rows with a result.
    """
    keep = [S.PRACTICE, S.YEAR, S.GPPS_OVERALL, S.GPPS_RESPONSES]
    base = panel.drop(columns=[c for c in keep[2:] if c in panel.columns])
    merged = base.merge(gpps[keep], on=[S.PRACTICE, S.YEAR], how="left", validate="many_to_one")
    merged.attrs["gpps_matched"] = int(np.sum(merged[S.GPPS_OVERALL].notna()))
    return merged
