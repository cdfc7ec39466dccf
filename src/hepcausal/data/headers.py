"""Robust reading of published CSV files whose headers drift between years.

Headers are matched after normalisation (byte-order mark, embedded newlines, case, punctuation and
footnote digits removed), against one or more regular expressions per wanted column.  A required
column that cannot be found raises :class:`ColumnNotFoundError` naming the file and the column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

__all__ = [
    "ColumnNotFoundError",
    "fiscal_year_from_name",
    "match_columns",
    "normalise_header",
    "parse_dates",
    "read_csv_text",
    "to_number",
]


# Cell contents that published files use for "not available" / "suppressed".
_MISSING_MARKERS = ("", "-", ":", "*", "..", "nan", "NaN", "NA", "N/A", "n/a", "None")


class ColumnNotFoundError(KeyError):
    """A required column is missing from a published file (message names the file and column)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def normalise_header(name: object) -> str:
    """Lower-case ``name``, strip BOM/newlines/punctuation and trailing footnote digits."""
    text = str(name).replace("\ufeff", "").replace("\r", " ").replace("\n", " ").lower()
    text = re.sub(r"[^a-z0-9%]+", " ", text).strip()
    text = re.sub(r"(?<=[a-z])\d$", "", text)  # footnote marker glued to the last word: "patients1"
    return re.sub(r"\s+", " ", text).strip()


def read_csv_text(path: str | Path) -> pd.DataFrame:
    """Read a CSV with every column as text (BOM-safe); raise a clear error if it is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=True)
    except UnicodeDecodeError:
        df = pd.read_csv(path, dtype=str, encoding="cp1252", keep_default_na=True)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path}: file is empty") from err
    df.columns = [str(c).replace("\ufeff", "").strip() for c in df.columns]
    return df


def match_columns(
    df: pd.DataFrame,
    patterns: Mapping[str, str | Sequence[str]],
    *,
    source: str | Path,
    optional: Sequence[str] = (),
) -> dict[str, str]:
    """Map each wanted name to the file's header matching one of its regexes (on normalised names).

    Patterns are tried in order and must match the *whole* normalised header.  Raises
    :class:`ColumnNotFoundError` naming ``source`` and the wanted column if a required one is
    absent, or ``ValueError`` if a pattern matches more than one header.
    """
    normalised = {col: normalise_header(col) for col in df.columns}
    found: dict[str, str] = {}
    for wanted, pats in patterns.items():
        pats = [pats] if isinstance(pats, str) else list(pats)
        hit: str | None = None
        for pat in pats:
            hits = [c for c, n in normalised.items() if re.fullmatch(pat, n)]
            if len(hits) > 1:
                raise ValueError(
                    f"{source}: column {wanted!r} is ambiguous: headers {hits} all match {pat!r}"
                )
            if hits:
                hit = hits[0]
                break
        if hit is None:
            if wanted in optional:
                continue
            raise ColumnNotFoundError(
                f"{source}: required column {wanted!r} not found (expected a header matching "
                f"{' or '.join(repr(p) for p in pats)}; headers are {list(df.columns)})"
            )
        found[wanted] = hit
    return found


def to_number(values: pd.Series, *, column: str, source: str | Path) -> pd.Series:
    """Parse numbers (thousands separators allowed); markers such as ':' or '*' become NaN.

    Any other non-numeric cell raises ``ValueError`` naming the file, column and rows.
    """
    text = values.astype("str").str.replace(",", "", regex=False).str.strip()
    text = text.mask(text.isin(_MISSING_MARKERS))
    out = pd.to_numeric(text, errors="coerce")
    bad = out.isna() & text.notna()
    if bad.any():
        rows = list(values.index[bad][:5])
        raise ValueError(
            f"{source}: column {column!r} has non-numeric values {list(values[bad][:5])} "
            f"at rows {rows}"
        )
    return out.astype(float)


def parse_dates(values: pd.Series) -> pd.Series:
    """Parse practice open/close dates given as Excel serials or as dd/mm/yyyy text."""
    text = values.astype("str").str.strip()
    text = text.mask(text.isin(["", "nan", "NaN", "NA"]))
    serial = pd.to_numeric(text, errors="coerce")
    out = pd.to_datetime(text.where(serial.isna()), format="%d/%m/%Y", errors="coerce")
    from_serial = pd.to_datetime("1899-12-30") + pd.to_timedelta(serial, unit="D")
    return out.where(serial.isna(), from_serial)


def fiscal_year_from_name(path: str | Path) -> int:
    """Fiscal-year *end* from a file name: '...-17-18...' or '...2017-18...' -> 2018."""
    name = Path(path).name
    match = re.search(r"(?<!\d)(?:20)?(\d{2})[-_ ]?(?:20)?(\d{2})(?!\d)", name)
    if match:
        start, end = int(match.group(1)), int(match.group(2))
        if (end - start) % 100 == 1:
            return 2000 + end
    raise ValueError(
        f"{name}: cannot infer the fiscal year from the file name (expected e.g. '17-18' or "
        "'2017-18'); pass year= explicitly"
    )
