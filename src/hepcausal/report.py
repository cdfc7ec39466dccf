"""Self-contained offline HTML reports of a stored run and of a sweep.

A run directory (written by :mod:`hepcausal.experiments.store`) holds ``summary.csv``,
``diagnostics.json`` (both required), and optionally ``run.json``, ``config.resolved.toml``
(or ``config.toml`` / ``config.json``), ``provenance.json``, ``meta.json``, ``inclusion.csv``,
``inclusion.txt``, ``truth.json`` and ``figures/*.png|svg`` with ``figures/captions.json``.
The report embeds every figure (PNG as base64, SVG inline) and uses no external CSS/JS.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from hepcausal.report_template import (
    esc,
    figure_html,
    fmt,
    fmt_ess,
    fmt_prob,
    fmt_rhat,
    html_table,
    kv_table,
    page,
)
from hepcausal.summaries import EffectSummary, estimand_words, sign_reading

REPORT_NAME = "report.html"
SWEEP_REPORT_NAME = "sweep_report.html"
CONFIG_NAMES = ("config.resolved.toml", "config.toml", "config.json")
# Figures in reading order; unknown stems follow alphabetically.
FIGURE_ORDER = (
    "outcome_by_icb",
    "sii_by_icb",
    "event_view",
    "sii_trajectories",
    "sii_small_multiples",
    "event_study",
    "synthetic_control",
    "donor_weights",
    "placebo_rmspe",
    "effect_posterior",
    "forest",
    "prior_predictive_check",
    "posterior_predictive_check",
    "trace_rank",
)
EFFECT_COLUMNS = (
    "term",
    "name",
    "mean",
    "median",
    "sd",
    "hdi_low",
    "hdi_high",
    "p_direction",
    "p_rope",
    "rope_low",
    "rope_high",
    "units",
)
EFFECT_HEADERS = {
    "hdi_low": "HDI low",
    "hdi_high": "HDI high",
    "p_direction": "P(direction)",
    "p_rope": "P(ROPE)",
    "rope_low": "ROPE low",
    "rope_high": "ROPE high",
    "sd": "SD",
    "term": "estimand",
    "name": "description",
}


class ReportError(ValueError):
    """A run directory is missing a file the report needs, or a file is unreadable."""


def _read_json(path: Path, required: bool = False) -> dict[str, Any] | None:
    if not path.is_file():
        if required:
            raise ReportError(f"report: required file missing: {path}")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"report: {path} is not valid JSON ({exc})") from exc


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.astype(object).where(df.notna(), None).to_dict(orient="records"):
        out.append({str(k): v for k, v in rec.items()})
    return out


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def effect_from_row(row: dict[str, Any]) -> EffectSummary:
    """Rebuild an :class:`EffectSummary` from a ``summary.csv`` row."""
    lo, hi = _num(row.get("rope_low")), _num(row.get("rope_high"))
    return EffectSummary(
        name=str(row.get("name", "effect")),
        mean=float(row["mean"]),
        median=float(row.get("median", row["mean"])),
        sd=float(row.get("sd") or 0.0),
        hdi_low=float(row["hdi_low"]),
        hdi_high=float(row["hdi_high"]),
        hdi_prob=float(row.get("hdi_prob") or 0.95),
        p_positive=float(row.get("p_positive", float("nan"))),
        p_direction=float(row.get("p_direction", float("nan"))),
        rope=(lo, hi) if lo is not None and hi is not None else None,
        p_rope=_num(row.get("p_rope")),
        n_draws=int(_num(row.get("n_draws")) or 0),
        units="" if row.get("units") is None else str(row.get("units")),
        draws_kind=str(row.get("draws_kind") or "posterior"),
    )


TRUTH_COLUMNS = ("term", "true value", "estimate", "HDI low", "HDI high", "HDI covers truth")


def truth_rows(truth: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per estimand with a known true value: term, true value, estimate and its HDI.

    Parameters
    ----------
    truth
        ``truth.json`` of a run: term -> true value (``FitResult.truth``); non-numeric
        entries are skipped.
    rows
        ``summary.csv`` records (``term`` column, or ``name`` in older runs).

    Returns
    -------
    list of dict
        Keys :data:`TRUTH_COLUMNS`; estimate and HDI blank for terms not in the summary.
    """
    by_term = {str(r.get("term") or r.get("name")): r for r in rows}
    out = []
    for term, value in truth.items():
        true = _num(value) if not isinstance(value, dict | list | bool) else None
        if true is None:
            continue
        r = by_term.get(term, {})
        mean, lo, hi = _num(r.get("mean")), _num(r.get("hdi_low")), _num(r.get("hdi_high"))
        covers = lo <= true <= hi if lo is not None and hi is not None else None
        out.append(dict(zip(TRUTH_COLUMNS, (term, true, mean, lo, hi, covers), strict=True)))
    return out


def _truth_section(truth: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    table = truth_rows(truth, rows)
    if not table:
        return ""
    return (
        "<h3>Simulation truth</h3>"
        '<p class="note">The data are synthetic: the true value of each estimand is known.</p>'
        + html_table(table, TRUTH_COLUMNS)
    )


def _classical_section(run_dir: Path, meta: dict[str, Any] | None) -> str:
    """The classical SII of the treated ICS and the comparator average by year, beside the
    Bayesian estimate of the change of their difference."""
    path = run_dir / "sii_classical.csv"
    treated = (meta or {}).get("treated")
    if not path.is_file() or not treated:
        return ""
    from hepcausal.plots.panel import sii_by_year

    t = pd.read_csv(path)
    t["icb_code"] = t["icb_code"].astype(str)
    method = str(t["method"].iloc[0]) if "method" in t and len(t) else "phe"
    by_year = sii_by_year(t, str(treated))
    how = (
        "PHE method (quintile means)"
        if method == "phe"
        else "practice-level regression on the rank (too few practices per quintile for PHE)"
    )
    cols = ["year", "treated_sii", "treated_lower", "treated_upper", "comparator_average"]
    heads = {
        "treated_sii": f"SII {treated}",
        "treated_lower": "95% CI low",
        "treated_upper": "95% CI high",
        "comparator_average": "comparator average",
        "difference": "difference",
    }
    return (
        "<h3>Classical SII beside the Bayesian estimate</h3>"
        f'<p class="note">Classical slope index of inequality by fiscal year, {esc(how)}, of the '
        "data the model saw (all ICS-years in sii_classical.csv). The Bayesian DDD estimates "
        "the change of the difference after the start relative to before.</p>"
        + html_table(_records(by_year), [*cols, "difference"], headers=heads)
    )


def _diagnostics_section(diag: dict[str, Any]) -> tuple[str, bool]:
    problems = list(diag.get("problems") or [])
    ok = bool(diag.get("ok", not problems))
    if ok:
        box = (
            '<div class="ok">All convergence checks passed (R-hat, bulk and tail ESS, '
            "divergences).</div>"
        )
    else:
        items = "".join(f"<li>{esc(p)}</li>" for p in problems) or "<li>(no details)</li>"
        box = (
            '<div class="warning" id="convergence-warning">CONVERGENCE CHECK FAILED: do not '
            f"trust these estimates.<ul>{items}</ul></div>"
        )
    rows = [
        (
            "max R-hat",
            f"{fmt_rhat(diag.get('max_rhat'))} (threshold {fmt_rhat(diag.get('rhat_max'))}; "
            f"worst: {diag.get('worst_rhat_var') or '-'})",
        ),
        (
            "min bulk ESS",
            f"{fmt_ess(diag.get('min_ess_bulk'))} (threshold {fmt_ess(diag.get('ess_min'))};"
            f" worst: {diag.get('worst_ess_var') or '-'})",
        ),
        ("min tail ESS", fmt_ess(diag.get("min_ess_tail"))),
        ("divergent transitions", fmt(diag.get("n_divergences"))),
        ("chains x draws", f"{diag.get('n_chains')} x {diag.get('n_draws')}"),
    ]
    return box + kv_table(rows), ok


def _figures(run_dir: Path, marker: dict[str, Any] | None) -> list[tuple[Path, str]]:
    fig_dir = run_dir / "figures"
    if not fig_dir.is_dir():
        return []
    captions = _read_json(fig_dir / "captions.json") or {}
    by_stem: dict[str, Path] = {}
    for p in sorted(fig_dir.iterdir()):
        if p.suffix.lower() == ".png" or (p.suffix.lower() == ".svg" and p.stem not in by_stem):
            by_stem[p.stem] = p  # prefer the PNG preview (small), else inline the SVG
    order = {s: i for i, s in enumerate(FIGURE_ORDER)}
    listed = [Path(f).stem for f in (marker or {}).get("figures", [])]
    for i, s in enumerate(dict.fromkeys(listed)):
        order.setdefault(s, len(FIGURE_ORDER) + i)
    stems = sorted(by_stem, key=lambda s: (order.get(s, 10_000), s))
    return [(by_stem[s], str(captions.get(s, ""))) for s in stems]


def _outcome_role(run_dir: Path, row: dict[str, Any]) -> str:
    """The primary/secondary sentence of a run whose config declares a primary outcome."""
    if not isinstance(row.get("outcome_role"), str):
        return ""
    primary = None
    p = run_dir / CONFIG_NAMES[0]
    if p.is_file():
        try:
            primary = tomllib.loads(p.read_text(encoding="utf-8"))["analysis"]["primary_outcome"]
        except (tomllib.TOMLDecodeError, KeyError, TypeError):
            primary = None
    from hepcausal.experiments.store import outcome_role_sentence

    return outcome_role_sentence(str(row["outcome_role"]), primary)


def _config_text(run_dir: Path) -> tuple[str, str] | None:
    for name in CONFIG_NAMES:
        p = run_dir / name
        if p.is_file():
            return name, p.read_text(encoding="utf-8")
    return None


def _provenance_section(prov: dict[str, Any] | None) -> str:
    if not prov:
        return '<p class="note">No provenance.json in this run directory.</p>'
    git = prov.get("git") or {}
    items: list[tuple[str, object]] = [
        ("run name", prov.get("name")),
        ("config hash", prov.get("config_hash")),
        ("config source", prov.get("config_source")),
        ("seed", prov.get("seed")),
        ("git commit", git.get("commit")),
        ("git working tree dirty", git.get("dirty")),
        ("python", prov.get("python")),
        ("platform", prov.get("platform")),
        ("started", prov.get("started")),
        ("finished", prov.get("finished")),
        ("wall time (s)", prov.get("seconds")),
    ]
    out = kv_table([(k, v) for k, v in items if v is not None])
    sampler = prov.get("sampler")
    if sampler:
        out += "<h3>Sampler</h3>" + kv_table(sorted(sampler.items()))
    data = prov.get("data") or {}
    if data:
        flat = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
        out += "<h3>Data</h3>" + kv_table(flat)
        files = data.get("files_sha256") or {}
        if files:
            out += html_table([{"file": k, "sha256": v} for k, v in sorted(files.items())])
        gen = data.get("generator")
        if gen:
            out += (
                "<h3>Data generator</h3><pre>"
                + esc(json.dumps(gen, indent=2, sort_keys=True, default=str))
                + "</pre>"
            )
    pkgs = prov.get("packages") or {}
    if pkgs:
        out += "<h3>Package versions</h3>" + html_table(
            [
                {"package": k, "version": v if v is not None else "not installed"}
                for k, v in sorted(pkgs.items())
            ]
        )
    return out


def _meta_section(meta: dict[str, Any] | None) -> str:
    if not meta:
        return ""
    keys = (
        "estimator",
        "backend",
        "outcome",
        "treated",
        "comparators",
        "start_year",
        "years",
        "n_obs",
        "n_units",
        "n_groups",
        "likelihood",
        "rank_col",
        "effect_columns",
    )
    rows = [
        (k, ", ".join(map(str, meta[k])) if isinstance(meta[k], list) else meta[k])
        for k in keys
        if k in meta
    ]
    out = '<h2 id="model">Model</h2>' + kv_table(rows) if rows else ""
    dropped = meta.get("dropped")
    if dropped:
        out += "<h3>Rows dropped by the estimator</h3>" + html_table(
            [{"reason": k, "rows": v} for k, v in dropped.items()]
        )
    notes = meta.get("notes")
    if notes:
        out += "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
    for name, records in (meta.get("tables") or {}).items():  # estimator tables (records)
        if records:
            out += f"<h3>{esc(str(name).replace('_', ' '))}</h3>" + html_table(records)
    return out


def write_report(
    run_dir: str | Path, *, out: str | Path | None = None, title: str | None = None
) -> Path:
    """Write ``report.html`` (self-contained, opens offline) for a run directory; return it.

    A sweep directory (with ``sweep_summary.csv``) gets :func:`write_sweep_report` instead.

    Parameters
    ----------
    run_dir
        A run directory of :mod:`hepcausal.experiments.store`, or a sweep directory.
    out
        Output file (default ``run_dir/report.html``, ``sweep_report.html`` for a sweep).
    title
        Page title (default from the run name).

    Returns
    -------
    pathlib.Path
        The written HTML file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"report: run directory not found: {run_dir}")
    if (run_dir / "sweep_summary.csv").is_file():
        return write_sweep_report(run_dir, out=out, title=title)
    summary_path = run_dir / "summary.csv"
    if not summary_path.is_file():
        raise ReportError(f"report: required file missing: {summary_path}")
    summary = pd.read_csv(summary_path)
    missing = [c for c in ("name", "mean", "hdi_low", "hdi_high") if c not in summary.columns]
    if missing:
        raise ReportError(f"report: {summary_path} lacks column(s) {missing}")
    diag = _read_json(run_dir / "diagnostics.json", required=True) or {}
    marker = _read_json(run_dir / "run.json")
    prov = _read_json(run_dir / "provenance.json")
    meta = _read_json(run_dir / "meta.json")
    truth = _read_json(run_dir / "truth.json")
    name = (marker or {}).get("name") or (prov or {}).get("name") or run_dir.name
    estimator = (marker or {}).get("estimator") or (meta or {}).get("estimator") or ""
    title = title or f"hepcausal run: {name}"
    rows = _records(summary)

    diag_html, ok = _diagnostics_section(diag)
    parts: list[str] = [f"<h1>{esc(title)}</h1>"]
    sub = [
        s
        for s in (
            estimator and f"estimator {estimator}",
            (prov or {}).get("finished") and f"finished {(prov or {})['finished']}",
            f"directory {run_dir.name}",
        )
        if s
    ]
    parts.append(f'<p class="subtitle">{esc(" | ".join(sub))}</p>')
    sections = [
        ("headline", "Headline"),
        ("effects", "Effects"),
        ("diagnostics", "Diagnostics"),
        ("figures", "Figures"),
        ("inclusion", "Inclusion"),
        ("config", "Configuration"),
        ("provenance", "Provenance"),
    ]
    parts.append(
        "<nav><ul>"
        + "".join(f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t in sections)
        + "</ul></nav>"
    )

    parts.append('<h2 id="headline">Headline</h2>')
    if not ok:
        parts.append(
            '<div class="warning">The sampler failed its convergence checks (see '
            "Diagnostics); the numbers below are not trustworthy.</div>"
        )
    if rows:
        m = meta or {}
        term = str(rows[0].get("term") or rows[0].get("name"))
        head = effect_from_row(rows[0])
        words = estimand_words(
            term,
            outcome=m.get("outcome"),
            treated=m.get("treated"),
            start_year=m.get("start_year"),
            rank_col=m.get("rank_col"),
        )
        from hepcausal.experiments.store import sii_before

        before = sii_before(run_dir, m.get("treated"), m.get("start_year"))
        reading = sign_reading(
            term, head.mean, outcome=m.get("outcome"), rank_col=m.get("rank_col"), sii_before=before
        )
        sentences = [head.sentence(words, reading)]
        true = _num((truth or {}).get(term))
        if true is not None:
            sentences.append(f"Synthetic data: estimate {head.mean:.3g}, true value {true:.3g}.")
        role = _outcome_role(run_dir, rows[0])
        if role:
            sentences.append(role)
        p_pre = _num(rows[0].get("pretrend_p"))
        if p_pre is not None:  # event studies: the parallel-trends check belongs to the headline
            flagged = str(rows[0].get("pretrend_flag")).lower() in ("true", "1")
            power = _num(rows[0].get("pretrend_power"))
            sentences.append(
                f"Pre-trend check: joint p = {p_pre:.3g} "
                + (
                    "(FLAGGED: parallel trends doubtful)."
                    if flagged
                    else "(not flagged; not evidence of parallel trends"
                    + (f": power {power:.2f} against a ROPE-per-year trend)." if power else ").")
                )
            )
            bd = {
                k[10:]: x
                for k, v in rows[0].items()
                if k.startswith("breakdown_") and (x := _num(v)) is not None
            }
            if bd:
                sentences.append(
                    "Parallel-trends sensitivity: the robust interval includes 0 from "
                    + ", ".join(f"{k.replace('_', ' ')} bound {v:.3g}" for k, v in bd.items())
                    + " (0 = already without violations)."
                )
        parts.append('<div class="headline">' + "<br>".join(esc(s) for s in sentences) + "</div>")
    else:
        parts.append('<p class="note">summary.csv has no estimands.</p>')

    parts.append('<h2 id="effects">Effects</h2>')
    cols = [c for c in EFFECT_COLUMNS if c in summary.columns]
    prob = summary["hdi_prob"].dropna().iloc[0] if "hdi_prob" in summary and len(summary) else None
    if prob is not None:
        parts.append(
            f'<p class="note">Posterior means with {float(prob):.0%} highest-density '
            "intervals; P(direction) = posterior probability of the sign of the median;"
            " P(ROPE) = posterior mass inside the region of practical equivalence. The "
            "first row is the headline estimand.</p>"
        )
    shown = [
        {**r, **{c: fmt_prob(_num(r.get(c))) for c in ("p_direction", "p_rope") if c in r}}
        for r in rows
    ]
    parts.append(html_table(shown, cols, headers=EFFECT_HEADERS))
    if (run_dir / "parameters.csv").is_file():
        parts.append(
            '<p class="note">Every stored parameter (mean, SD, HDI, MCSE, ESS, R-hat): '
            "parameters.csv and parameters.tex in the run directory.</p>"
        )
    if truth:
        parts.append(_truth_section(truth, rows))
    parts.append(_classical_section(run_dir, meta))

    parts.append('<h2 id="diagnostics">Diagnostics</h2>' + diag_html)
    parts.append(_meta_section(meta))

    parts.append('<h2 id="figures">Figures</h2>')
    figs = _figures(run_dir, marker)
    fig_error = (marker or {}).get("figures_error")
    if fig_error:
        parts.append(f'<div class="warning">Figure generation failed: {esc(fig_error)}</div>')
    if figs:
        parts += [figure_html(p, cap, i + 1) for i, (p, cap) in enumerate(figs)]
    else:
        parts.append('<p class="note">No figures in this run directory.</p>')

    parts.append('<h2 id="inclusion">Inclusion</h2>')
    inc = run_dir / "inclusion.csv"
    if inc.is_file():
        parts.append(html_table(_records(pd.read_csv(inc))))
        dropped = run_dir / "inclusion_dropped.csv"
        if dropped.is_file():
            n = len(pd.read_csv(dropped))
            parts.append(
                f'<p class="note">{n:,} dropped practice-year rows are listed with '
                "their reasons in inclusion_dropped.csv.</p>"
            )
    elif (run_dir / "inclusion.txt").is_file():  # the text version only without the table
        parts.append(
            "<pre>" + esc((run_dir / "inclusion.txt").read_text(encoding="utf-8")) + "</pre>"
        )
    else:
        parts.append('<p class="note">No inclusion rules were applied (no inclusion.csv).</p>')

    parts.append('<h2 id="config">Configuration</h2>')
    cfg = _config_text(run_dir)
    if cfg:
        parts.append(f'<p class="note">{esc(cfg[0])}</p><pre>{esc(cfg[1])}</pre>')
    else:
        parts.append('<p class="note">No resolved configuration file in this run.</p>')

    parts.append('<h2 id="provenance">Provenance</h2>' + _provenance_section(prov))
    target = Path(out) if out is not None else run_dir / REPORT_NAME
    _write_atomic(target, page(title, "\n".join(parts)))
    return target


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


SWEEP_COLUMNS = (
    "run",
    "estimand",
    "mean",
    "hdi_low",
    "hdi_high",
    "p_direction",
    "p_rope",
    "diagnostics_ok",
    "max_rhat",
    "min_ess_bulk",
    "n_divergences",
)


def write_sweep_report(
    sweep_dir: str | Path, *, out: str | Path | None = None, title: str | None = None
) -> Path:
    """Write ``sweep_report.html`` for a sweep directory (``sweep_summary.csv`` + forest plot).

    Each run links to its own ``report.html`` (written here if missing) by relative path.

    Parameters
    ----------
    sweep_dir : str or Path
        A sweep directory of :func:`hepcausal.experiments.sweep.run_sweep` (with
        ``sweep_summary.csv``).
    out : str or Path or None, keyword-only, default None
        Output file; None: ``sweep_dir/sweep_report.html``.
    title : str or None, keyword-only, default None
        Page title; None: ``"hepcausal sweep: <name>"``.

    Returns
    -------
    pathlib.Path
        The written HTML file.

    Raises
    ------
    ReportError
        When ``sweep_summary.csv`` is missing.
    """
    sweep_dir = Path(sweep_dir)
    csv = sweep_dir / "sweep_summary.csv"
    if not csv.is_file():
        raise ReportError(f"sweep report: required file missing: {csv}")
    table = pd.read_csv(csv)
    manifest = _read_json(sweep_dir / "sweep.json") or {}
    name = manifest.get("name") or sweep_dir.name
    title = title or f"hepcausal sweep: {name}"
    rows = _records(table)
    failed = [bool(r.get("diagnostics_ok")) is False for r in rows]
    parts = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="subtitle">{len(rows)} runs | directory {esc(sweep_dir.name)}</p>',
    ]
    if any(failed):
        bad = [str(r.get("run")) for r, f in zip(rows, failed, strict=True) if f]
        parts.append(
            '<div class="warning" id="convergence-warning">CONVERGENCE CHECK FAILED in '
            f"{len(bad)} run(s): {esc(', '.join(bad))}. Do not trust those rows.</div>"
        )
    varied = [
        c
        for c in table.columns
        if c not in SWEEP_COLUMNS
        and c
        not in (
            "median",
            "sd",
            "hdi_prob",
            "p_positive",
            "rope_low",
            "rope_high",
            "units",
            "cached",
            "config_hash",
            "run_dir",
            "n_draws",
            "name",
            "term",
            "truth",
        )
    ]
    cols = ["run", *varied, *[c for c in SWEEP_COLUMNS[1:] if c in table.columns]]
    links = []
    for r in rows:
        rd = r.get("run_dir")
        rel = ""
        if rd and Path(str(rd)).is_dir():
            rep = Path(str(rd)) / REPORT_NAME
            if not rep.is_file():
                try:
                    write_report(rd)
                except ReportError:
                    rep = Path()
            if rep.is_file():
                rel = os.path.relpath(rep, sweep_dir)
        links.append(rel)
    body_rows = []
    for r, link in zip(rows, links, strict=True):
        r = dict(r)
        r["report"] = link
        body_rows.append(r)
    parts.append('<h2 id="table">Headline estimand by run</h2>')
    headers = {
        **EFFECT_HEADERS,
        "diagnostics_ok": "converged",
        "max_rhat": "max R-hat",
        "min_ess_bulk": "min bulk ESS",
        "n_divergences": "divergences",
    }
    table_html = html_table(
        body_rows, cols, headers=headers, row_class=["failed" if f else "" for f in failed]
    )
    parts.append(table_html)
    linked = [(str(r.get("run")), link) for r, link in zip(rows, links, strict=True) if link]
    if linked:
        parts.append(
            "<h3>Run reports</h3><ul>"
            + "".join(f'<li><a href="{esc(link)}">{esc(run)}</a></li>' for run, link in linked)
            + "</ul>"
        )
    forest = next(
        (p for p in (sweep_dir / "forest.png", sweep_dir / "forest.svg") if p.is_file()), None
    )
    if forest is not None:
        parts.append('<h2 id="forest">Forest plot</h2>')
        captions = _read_json(sweep_dir / "captions.json") or {}
        parts.append(figure_html(forest, str(captions.get(forest.stem, "")), 1))
    target = Path(out) if out is not None else sweep_dir / SWEEP_REPORT_NAME
    _write_atomic(target, page(title, "\n".join(parts)))
    return target


__all__ = ["ReportError", "write_report", "write_sweep_report"]
