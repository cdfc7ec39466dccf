"""One figure style for every hepcausal plot: palette, fonts, sizes and vector + PNG output.

The palette is Okabe-Ito (colour-blind safe).  LLR is always drawn in :data:`LLR_COLOUR`
(vermillion, thick, on top); comparators are muted grey; the treatment period is a light shade.
Figure widths follow common journal column widths (single 85 mm, double 178 mm).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hepcausal.schema import HEP_START_YEAR

# Okabe-Ito
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
LLR_COLOUR = OKABE_ITO["vermillion"]
COMPARATOR_COLOUR = "#8C8C8C"
ACCENT_COLOUR = OKABE_ITO["blue"]  # counterfactuals, classical estimates, second series
POST_SHADE = "#EDEDED"  # post-treatment period
ROPE_SHADE = "#CFE6F5"  # region of practical equivalence
PLACEBO_COLOUR = "#BDBDBD"
WARN_COLOUR = OKABE_ITO["orange"]
CYCLE = [OKABE_ITO[k] for k in ("blue", "orange", "green", "purple", "sky_blue", "vermillion")]

MM = 1 / 25.4
SINGLE_COLUMN = 85 * MM  # inches
DOUBLE_COLUMN = 178 * MM

DEFAULT_FORMATS: tuple[str, ...] = ("pdf", "svg", "png")
PNG_DPI = 250

RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "figure.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "axes.prop_cycle": cycler(color=CYCLE),
    "axes.titlelocation": "left",
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "grid.linewidth": 0.4,
    "grid.color": "#E0E0E0",
    "figure.dpi": 100,
    "savefig.dpi": PNG_DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,  # embed TrueType: editable text in Illustrator/Inkscape
    "svg.fonttype": "none",  # text stays text in SVG
    "svg.hashsalt": "hepcausal",  # deterministic SVG ids
    "figure.constrained_layout.use": True,
}


@contextmanager
def hepcausal_style(**overrides: Any) -> Iterator[None]:
    """Context manager applying the hepcausal rcParams (plus any ``overrides``).

    Parameters
    ----------
    **overrides
        Matplotlib rcParams (e.g. ``{"font.size": 9}`` as ``**{...}``) applied on top of
        :data:`RC`.

    Yields
    ------
    None
        The style is active inside the ``with`` block and restored on exit.
    """
    with mpl.rc_context({**RC, **overrides}):
        yield


def fiscal_year_label(year: int, short: bool = True) -> str:
    """Label of a fiscal year given its end year: 2022 -> '21/22' (short) or '2021/22'."""
    y = int(year)
    return f"{(y - 1) % 100:02d}/{y % 100:02d}" if short else f"{y - 1}/{y % 100:02d}"


def set_fiscal_year_ticks(ax: Axes, years: Iterable[int], short: bool = True) -> None:
    """Put one tick per fiscal year on the x axis, labelled '21/22' etc."""
    ys = sorted({int(y) for y in years})
    ax.set_xticks(ys)
    ax.set_xticklabels([fiscal_year_label(y, short) for y in ys])


def mark_treatment(
    ax: Axes,
    start: float = HEP_START_YEAR,
    *,
    end: float | None = None,
    label: str | None = "HEP period",
    line: bool = True,
) -> None:
    """Shade the post-treatment period (from half a year before ``start``); draw its boundary."""
    lo = start - 0.5
    hi = end + 0.5 if end is not None else ax.get_xlim()[1]
    xlim = ax.get_xlim()
    ax.axvspan(lo, max(hi, lo), color=POST_SHADE, lw=0, zorder=0, label=label)
    if line:
        ax.axvline(lo, color="#6E6E6E", lw=0.7, ls="--", zorder=0.5)
    ax.set_xlim(xlim)


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``(fig, ax)``: the given axes' figure, or a new figure of ``figsize``."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig, new = plt.subplots(figsize=figsize)
    return fig, new


def save_figure(
    fig: Figure,
    path: str | Path,
    formats: Iterable[str] = DEFAULT_FORMATS,
    *,
    dpi: int = PNG_DPI,
    caption: str | None = None,
    close: bool = False,
) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats`` (suffix of ``path`` is replaced).

    Vector output (PDF, SVG) keeps text as text; the PNG preview is ``dpi`` dots per inch.
    A ``caption`` is recorded in ``captions.json`` next to the files (read by the HTML report).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    path : str or Path
        Output path; a ``.pdf``/``.svg``/``.png`` suffix is replaced by each format's, other
        names get the format appended.  Parent folders are created.
    formats : iterable of str, default DEFAULT_FORMATS
        File formats (e.g. ``("pdf", "svg", "png")``), with or without a leading dot.
    dpi : int, default PNG_DPI
        Resolution of raster output, in dots per inch.
    caption : str or None, default None
        Caption recorded under the file stem in ``captions.json``.
    close : bool, default False
        Close the figure after saving.

    Returns
    -------
    list of pathlib.Path
        The files written, one per format.
    """
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in (".pdf", ".svg", ".png") else path
    stem.parent.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with hepcausal_style():
        for fmt in formats:
            fmt = fmt.lower().lstrip(".")
            target = stem.with_name(stem.name + "." + fmt)
            meta: dict[str, Any] = {}
            if fmt == "pdf":
                meta = {"Creator": "hepcausal", "CreationDate": None}
            elif fmt == "svg":
                meta = {"Date": None}
            fig.savefig(target, format=fmt, dpi=dpi, metadata=meta or None)
            out.append(target)
    if caption:
        record_caption(stem.parent, stem.name, caption)
    if close:
        plt.close(fig)
    return out


CAPTIONS_FILE = "captions.json"


def record_caption(directory: str | Path, stem: str, caption: str) -> Path:
    """Add ``stem -> caption`` to ``directory/captions.json`` (created if missing)."""
    f = Path(directory) / CAPTIONS_FILE
    data: dict[str, str] = {}
    if f.exists():
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError:
            data = {}
    data[stem] = caption
    f.write_text(json.dumps(data, indent=2, sort_keys=True))
    return f
