"""HTML building blocks of the offline report: page shell, inline CSS, escaped tables."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

CSS = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #1a1a1a;
       max-width: 1100px; margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #D55E00; padding-bottom: 0.15em;
     margin-top: 1.8em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.subtitle { color: #555; margin-top: 0; }
.headline { background: #F4F8FB; border-left: 5px solid #0072B2; padding: 0.7em 1em;
            margin: 1em 0; }
.warning { background: #FDECEA; border: 3px solid #C0392B; color: #7B1E12; padding: 0.8em 1em;
           margin: 1em 0; font-weight: bold; }
.warning ul { font-weight: normal; margin: 0.3em 0 0 0; }
.ok { background: #EAF6EE; border-left: 5px solid #009E73; padding: 0.5em 1em; margin: 1em 0; }
.note { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border-bottom: 1px solid #DDD; padding: 0.25em 0.7em; text-align: left;
         vertical-align: top; }
th { background: #F2F2F2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #FDECEA; }
figure { margin: 1.2em 0; page-break-inside: avoid; }
figure img, figure svg { max-width: 100%; height: auto; border: 1px solid #EEE; }
figcaption { font-size: 0.9em; color: #333; margin-top: 0.3em; }
pre { background: #F7F7F7; border: 1px solid #E3E3E3; padding: 0.7em; white-space: pre-wrap;
      overflow-wrap: anywhere; font-size: 0.82em; }
nav ul { columns: 3; font-size: 0.9em; }
code { font-size: 0.92em; }
"""


def esc(x: object) -> str:
    """HTML-escape any value as text."""
    return html.escape("" if x is None else str(x), quote=True)


def fmt(v: object, digits: int = 3) -> str:
    """Numbers to short strings (3 significant digits); other values as text; blanks for NaN."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)  # seeds, counts and years: never thousands separators
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.{digits}g}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:,.{max(digits - 1, 1)}f}"
    return str(v)


def fmt_prob(v: object) -> str:
    """A probability to 3 decimals, never rounded to 0 or 1: '> 0.999', '< 0.001'.

    Parameters
    ----------
    v
        A probability (None or NaN give a blank).

    Returns
    -------
    str
        The text.
    """
    if v is None or isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        return ""
    if v > 0.999:
        return "> 0.999"
    if v < 0.001:
        return "< 0.001"
    return f"{v:.3f}"


def fmt_rhat(v: object) -> str:
    """R-hat to 3 decimals (1.0067 -> '1.007'); blank for None/NaN."""
    if v is None or not isinstance(v, int | float) or math.isnan(float(v)):
        return ""
    return f"{float(v):.3f}"


def fmt_ess(v: object) -> str:
    """An effective sample size as an integer ('1164'); blank for None/NaN."""
    if v is None or not isinstance(v, int | float) or math.isnan(float(v)):
        return ""
    return str(round(float(v)))


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def html_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    row_class: Sequence[str] | None = None,
) -> str:
    """A plain HTML table of ``rows`` (escaped; numbers right-aligned)."""
    if not rows:
        return '<p class="note">(none)</p>'
    cols = list(columns) if columns is not None else list(rows[0].keys())
    hdr = "".join(f"<th>{esc((headers or {}).get(c, c))}</th>" for c in cols)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{esc(row_class[i])}"' if row_class and row_class[i] else ""
        cells = "".join(
            f'<td class="num">{esc(fmt(r.get(c)))}</td>'
            if _is_num(r.get(c))
            else f"<td>{esc(fmt(r.get(c)))}</td>"
            for c in cols
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{hdr}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv_table(items: Iterable[tuple[str, object]]) -> str:
    """Two-column key/value table."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in items)
    return f"<table><tbody>{rows}</tbody></table>"


CSS_PX_PER_INCH = 96
FIGURE_ZOOM = 1.35  # on screen, a little larger than print size


def png_css_width(raw: bytes) -> int | None:
    """Display width (CSS px) of a PNG at its physical size (from pHYs) times FIGURE_ZOOM."""
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width_px = int.from_bytes(raw[16:20], "big")
    i = raw.find(b"pHYs")
    if i < 0 or raw[i + 12] != 1:  # unit 1 = metre
        return None
    dpi = int.from_bytes(raw[i + 4 : i + 8], "big") * 0.0254
    if dpi <= 0:
        return None
    return round(width_px / dpi * CSS_PX_PER_INCH * FIGURE_ZOOM)


def figure_html(path: Path, caption: str, number: int) -> str:
    """An inline figure: PNG as a base64 data URI, SVG inlined; numbered caption."""
    suffix = path.suffix.lower()
    alt = esc(caption or path.stem)
    if suffix == ".png":
        raw = path.read_bytes()
        data = base64.b64encode(raw).decode("ascii")
        width = png_css_width(raw)
        style = f' style="width: {width}px"' if width else ""
        body = f'<img alt="{alt}"{style} src="data:image/png;base64,{data}">'
    elif suffix == ".svg":
        text = path.read_text(encoding="utf-8")
        start = text.find("<svg")
        body = text[start:] if start >= 0 else text
    else:
        raise ValueError(f"cannot embed {path}: only .png and .svg figures are supported")
    cap = f"<b>Figure {number}.</b> {esc(caption)}" if caption else f"<b>Figure {number}.</b>"
    return f'<figure id="fig-{esc(path.stem)}">{body}<figcaption>{cap}</figcaption></figure>'


def page(title: str, body: str) -> str:
    """The complete self-contained HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )
