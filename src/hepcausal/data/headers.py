"""Robust reading of published CSV files whose headers drift between years.

Headers are matched after normalisation (byte-order mark, embedded newlines, case, punctuation and
footnote digits removed), against one or more regular expressions per wanted column.  A required
column that cannot be found raises :class:`ColumnNotFoundError` naming the file and the column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

__all__ = [
    "ColumnNotFoundError",
    "DataFileError",
    "check_csv_shape",
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


class DataFileError(ValueError):
    """A data file is empty, header-only, damaged or implausible.

    The message starts with the file name; ``path`` is the file and ``line`` the 1-based line
    number of the offending record (the header is line 1) when there is one.

    Parameters
    ----------
    path : str or Path
        The offending file (stored as ``str`` in ``self.path``).
    message : str
        What is wrong; the exception message is ``"<path>: <message>"``.
    line : int or None, keyword-only, default None
        1-based line number of the offending record (header = line 1), if any.
    """

    def __init__(self, path: str | Path, message: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        super().__init__(f"{path}: {message}")


def normalise_header(name: object) -> str:
    """Lower-case ``name``, strip BOM/newlines/punctuation and trailing footnote digits."""
    text = str(name).replace("\ufeff", "").replace("\r", " ").replace("\n", " ").lower()
    text = re.sub(r"[^a-z0-9%]+", " ", text).strip()
    text = re.sub(r"(?<=[a-z])\d$", "", text)  # footnote marker glued to the last word: "patients1"
    return re.sub(r"\s+", " ", text).strip()


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def check_csv_shape(text: str, *, source: str | Path) -> list[int]:
    """Check that every record of a CSV text has as many fields as its header.

    Blank lines are ignored (as by the CSV readers); quoted fields may span lines.

    Parameters
    ----------
    text : str
        The decoded file contents.
    source : str or Path
        The file's name, used in the error messages.

    Returns
    -------
    list of int
        The line number (1-based; the header is line 1) at which each data record starts, in
        order; blank lines are not records.

    Raises
    ------
    DataFileError
        If the text is empty (no header), has a duplicated column name, has a header but no data
        rows, or a record is shorter
        or longer than the header (the message gives the line number, 1 = the header, and the
        field counts), or is not valid CSV (e.g. an unterminated quote).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next((rec for rec in reader if rec), None)
        if header is None:
            raise DataFileError(source, "file is empty (no header line)")
        names = [h.replace("\ufeff", "").strip() for h in header]
        dup = sorted({h for h in names if names.count(h) > 1})
        if dup:
            raise DataFileError(
                source, f"line 1: duplicated column name(s) {dup} in the header", line=1
            )
        n_fields = len(header)
        lines: list[int] = []
        start = reader.line_num + 1
        for record in reader:
            if record:
                lines.append(start)
                if len(record) != n_fields:
                    kind = "short" if len(record) < n_fields else "long"
                    raise DataFileError(
                        source,
                        f"line {start}: {kind} row with {len(record)} field(s), the header has "
                        f"{n_fields} (file truncated or damaged?)",
                        line=start,
                    )
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataFileError(
            source, f"line {reader.line_num}: not valid CSV ({err})", line=reader.line_num
        ) from err
    if not lines:
        raise DataFileError(source, "file has a header but no data rows")
    return lines


def read_csv_text(path: str | Path) -> pd.DataFrame:
    """Read a CSV strictly, with every column as text (BOM-safe, UTF-8 or cp1252).

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    DataFrame
        One row per data record; every column as text, missing markers as NaN.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    DataFileError
        If the file is empty or header-only, or a row has fewer or more fields than the header
        (see :func:`check_csv_shape`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    text = _decode(path)
    n_records = len(check_csv_shape(text, source=path))
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=True)
    if len(df) != n_records:  # pragma: no cover - both readers skip blank lines
        raise DataFileError(path, f"read {len(df)} rows but the file has {n_records} records")
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
