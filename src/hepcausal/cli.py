"""The ``hepcausal`` command line: run, sweep, report, simulate, data, check.

Errors print the whole message (every line) and exit with a documented status (see
:data:`EXIT_CODES`; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepcausal import __version__

EPILOG = """\
examples:
  hepcausal run experiments/synthetic_baseline.toml          # fit on built-in synthetic data
  hepcausal run experiments/baseline.toml --out runs          # the published design, NHS data
  hepcausal sweep experiments/sensitivity.toml --workers 2    # sensitivity analyses
  hepcausal report runs/baseline-0123456789ab                 # HTML report of a run
  hepcausal report runs/sensitivity                           # HTML report of a sweep
  hepcausal simulate --preset small --seed 1 --out panel.csv  # synthetic panel + truth json
  hepcausal data --out nhs_panel.csv                          # build + check the NHS panel
  hepcausal check experiments/sensitivity.toml                # validate a config, list runs

run 'hepcausal COMMAND --help' for the options of each command.

exit status:
  0  success
  1  a fit or a sweep run failed, or an unexpected error (a finished fit that cannot be
     saved is written to a rescue file first, and the message says where)
  2  usage or config error (bad option, unknown or invalid config key, bad --out or run name)
  3  data error (a data file or panel is missing, damaged or implausible: the message names
     the file, column and rows)
  4  convergence checks failed (only with --strict)
  130 interrupted (finished runs are kept; rerun to resume)
"""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DATA, EXIT_CONVERGENCE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILED: "a fit or sweep run failed, or an unexpected error",
    EXIT_USAGE: "usage or config error",
    EXIT_DATA: "data error (missing, damaged or implausible data file or panel)",
    EXIT_CONVERGENCE: "convergence checks failed (--strict)",
    EXIT_INTERRUPTED: "interrupted",
}
"""The exit statuses of the ``hepcausal`` command (also listed in ``--help``)."""


class CliError(Exception):
    """A user-facing error (printed without traceback)."""


# ---------------------------------------------------------------------------- helpers


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from hepcausal.experiments.config import parse_override

    out: dict[str, Any] = {}
    for key in ("draws", "tune", "chains", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            out[f"sampler.{key}"] = value
    for text in getattr(args, "set", None) or []:
        k, v = parse_override(text)
        out[k] = v
    return out


def _progress(args: argparse.Namespace) -> bool | None:
    """``--progress/--no-progress``; ``--quiet`` turns it off; None = the config / a terminal."""
    progress: bool | None = getattr(args, "progress", None)
    if progress is None and getattr(args, "quiet", False):
        return False
    return progress


def _load(args: argparse.Namespace) -> Any:
    from hepcausal.experiments.config import load_config

    cfg = load_config(args.config)
    ov = _overrides(args)
    return cfg.with_overrides(ov) if ov else cfg


def _add_progress(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"show {what} (default: on when stderr is a terminal; config key sampler.progressbar)",
    )


def _add_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("overrides (change the config without editing it)")
    g.add_argument("--draws", type=int, help="posterior draws per chain (sampler.draws)")
    g.add_argument("--tune", type=int, help="tuning steps per chain (sampler.tune)")
    g.add_argument("--chains", type=int, help="number of chains (sampler.chains)")
    g.add_argument("--seed", type=int, help="random seed (sampler.seed)")
    g.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any dotted config key, value in TOML syntax (bare words are "
        "strings); repeatable, e.g. --set analysis.comparators=all "
        "--set priors.effect_sd=2.5 --set 'analysis.comparators=[\"QJ2\"]'",
    )


# ---------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from hepcausal.experiments.runner import run_experiment

    cfg = _load(args)
    progress = _progress(args)
    if progress is not None:  # the sampler's progress bar (not part of the config hash)
        cfg = cfg.with_overrides({"sampler.progressbar": progress})
    if cfg.sweep is not None:
        print(
            f"note: {args.config} has a [sweep] table; running its base point only "
            "(use 'hepcausal sweep' for all points)",
            file=sys.stderr,
        )
    res = run_experiment(
        cfg,
        out_dir=args.out,
        force=args.force,
        figures=not args.no_figures,
        store=args.store,
    )
    print(res.describe())
    if not res.diagnostics.ok:
        print(
            "WARNING: convergence checks FAILED - do not trust these estimates "
            "(increase draws/tune or target_accept, or reparameterise).",
            file=sys.stderr,
        )
        if args.strict:
            return EXIT_CONVERGENCE
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from hepcausal.experiments.sweep import run_sweep

    cfg = _load(args)
    if cfg.sweep is None:
        raise CliError(f"{args.config} has no [sweep] table; use 'hepcausal run' instead")
    if cfg.sampler.progressbar is None:  # parallel runs: one bar per run, not per sampler
        cfg = cfg.with_overrides({"sampler.progressbar": False})
    res = run_sweep(
        cfg,
        out_dir=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
        progress=sys.stderr.isatty() if _progress(args) is None else bool(_progress(args)),
        figures=not args.no_figures,
    )
    if not res.table.empty:
        cols = [
            "run",
            "mean",
            "hdi_low",
            "hdi_high",
            "p_direction",
            "p_rope",
            "diagnostics_ok",
            "cached",
        ]
        with _pd_options():
            print(res.table[cols].to_string(index=False))
    if "placebo" in res.files:
        import pandas as pd

        from hepcausal.experiments.store import placebo_line

        cal = pd.read_csv(res.files["placebo"]).iloc[0].to_dict()
        print(placebo_line({"placebo": cal}, cfg.summary.hdi_prob))
    for kind, path in res.files.items():
        print(f"{kind}: {path}")
    print(f"Sweep directory: {res.sweep_dir} (HTML report: hepcausal report {res.sweep_dir})")
    bad = [] if res.table.empty else list(res.table.loc[~res.table["diagnostics_ok"], "run"])
    if bad:
        print(f"WARNING: convergence checks FAILED for {len(bad)} run(s): {bad}", file=sys.stderr)
    if res.failed:
        for name, err in res.failed.items():
            print(f"FAILED {name}: {err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_CONVERGENCE if bad and args.strict else 0


def _pd_options() -> Any:
    import pandas as pd

    return pd.option_context(
        "display.width", 200, "display.max_colwidth", 60, "display.precision", 3
    )


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of a run directory, or of a sweep directory (with ``sweep.json``)."""
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise CliError(f"run directory {run_dir} does not exist")
    if run_dir.resolve().name.startswith("."):
        raise CliError(f"{run_dir} is a temporary folder of an unfinished run, not a run")
    kwargs = {"out": args.out} if args.out else {}
    if (run_dir / "sweep.json").is_file():
        from hepcausal.report import write_sweep_report

        out = write_sweep_report(run_dir, **kwargs)
        print(f"Sweep report: {out}")
        return 0
    from hepcausal.api import write_report

    out = write_report(run_dir, **kwargs)
    print(f"Report: {out}")
    return 0


def _simulation_config(args: argparse.Namespace) -> Any:
    from hepcausal.experiments.config import ConfigError, _simulation_factory, load_config

    settings: dict[str, Any] = {}
    if args.config:
        cfg = load_config(args.config)
        settings = dict(cfg.data.synthetic)
    if args.preset is not None:
        settings["preset"] = args.preset
    for key in ("n_practices", "seed", "gradient_effect", "level_effect"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    try:
        sim = _simulation_factory(**settings)
        sim.validate()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid simulation settings: {exc}") from exc
    return sim


def cmd_simulate(args: argparse.Namespace) -> int:
    from hepcausal.data.synthetic import simulate_panel
    from hepcausal.experiments.inputs import _jsonable, write_panel
    from hepcausal.experiments.store import write_json

    out = Path(args.out)
    if out.suffix not in (".csv", ".parquet"):
        raise CliError(f"--out {out} must end in .csv or .parquet")
    sim_cfg = _simulation_config(args)
    sim = simulate_panel(sim_cfg)
    write_panel(sim.panel, out)
    truth = sim.truth
    truth_doc = {
        key: _jsonable(getattr(truth, key))
        for key in (
            "gradient_effect",
            "level_effect",
            "dose_effect",
            "params",
            "clipped",
            "sii",
            "level",
        )
        if hasattr(truth, key)
    }
    truth_doc["config"] = _jsonable(sim_cfg)
    truth_path = write_json(out.with_name(out.stem + ".truth.json"), truth_doc)
    n_prac = sim.panel["practice_code"].nunique()
    print(f"Synthetic panel: {len(sim.panel)} practice-years, {n_prac} practices -> {out}")
    print(f"Truth: {truth_path}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from hepcausal.api import build_nhs_panel
    from hepcausal.experiments.config import DataConfig, load_config
    from hepcausal.experiments.inputs import write_panel

    inclusion: dict[str, Any] = {}
    data_dir = args.data_dir
    if args.config:
        cfg = load_config(args.config)
        inclusion = dict(cfg.data.inclusion)
        data_dir = data_dir or cfg.data.data_dir
    if args.min_list_size is not None:
        inclusion["min_list_size"] = args.min_list_size
    rules = DataConfig(source="nhs", inclusion=inclusion).inclusion_rules()
    built = build_nhs_panel(data_dir, rules)
    from hepcausal.data.validate import validate_panel

    validate_panel(built.panel, source="NHS panel")
    print(built.report)
    panel = built.panel
    print(
        f"\nPanel: {len(panel)} practice-years, {panel['practice_code'].nunique()} practices, "
        f"{panel['icb_code'].nunique()} ICBs, years {panel['year'].min()}-{panel['year'].max()}"
    )
    if args.out:
        out = write_panel(panel, args.out)
        incl = out.with_name(out.stem + ".inclusion.csv")
        built.report.table().to_csv(incl, index=False)
        print(f"Wrote {out} and {incl}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a config as ``run`` / ``sweep`` would, against the data each run would read."""
    import json

    from hepcausal.experiments.config import ConfigError
    from hepcausal.experiments.inputs import prepare_data
    from hepcausal.experiments.runner import (
        MAX_POSTERIOR_BYTES,
        check_output,
        posterior_bytes,
        preflight,
    )
    from hepcausal.experiments.sweep import expand_sweep

    cfg = _load(args)
    print(cfg.to_toml(), end="")
    points = expand_sweep(cfg)
    if args.out is not None:
        for p in points:
            check_output(args.out, p.config)
    sizes: dict[str, str] = {}
    warned: list[str] = []
    if not args.no_data:
        datasets: dict[str, Any] = {}
        for p in points:
            key = json.dumps(p.config.data.model_dump(), sort_keys=True, default=str)
            if key not in datasets:
                datasets[key] = prepare_data(p.config)
            data = datasets[key]
            try:
                warned += [f"{p.name}: {message}" for message in preflight(p.config, data)]
            except ConfigError as exc:
                if cfg.sweep is None:
                    raise
                raise ConfigError(f"sweep point {p.name} ({p.varied}): {exc}") from exc
            gb = posterior_bytes(p.config, data.panel) / 1e9
            bound = MAX_POSTERIOR_BYTES / 1e9
            sizes[p.name] = f"posterior about {gb:,.2f} GB; upper bound {bound:.1f} GB"
    print(f"\n# config OK: {len(points)} run(s)" + (" (data not read)" if args.no_data else ""))
    for p in points:
        print(f"#   {p.name}" + (f"  ({sizes[p.name]})" if p.name in sizes else ""))
    for message in warned:
        print(f"hepcausal: warning: {message}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- parser


def cmd_power(args: argparse.Namespace) -> int:
    from hepcausal.causal.power import (
        analytic_power,
        design_power,
        minimum_detectable,
        posterior_predictive_power,
    )
    from hepcausal.data.icb_table import ICB_BY_CODE
    from hepcausal.data.synthetic import SimulationConfig
    from hepcausal.experiments.runner import design_of, inference_of
    from hepcausal.plots.null_result import plot_power_curve

    cfg = _load(args)
    try:
        effects = [float(x) for x in args.effects.split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(
            f"--effects must be comma-separated numbers; got {args.effects!r}"
        ) from exc
    out = Path(args.out or Path("runs") / "power" / cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    estimator = cfg.estimator.name if cfg.estimator.name in ("ddd", "did") else "ddd"
    if args.analytic_sd is not None:
        table = analytic_power(args.analytic_sd, effects)
        mde = {c: minimum_detectable(table, c) for c in ("power_hdi", "power_pd")}
    elif args.simulate == "posterior":
        from hepcausal.experiments.inputs import prepare_data
        from hepcausal.experiments.runner import fit_config

        if cfg.estimator.name not in ("ddd", "did"):
            raise ValueError(
                f"--simulate posterior needs estimator.name 'ddd' or 'did'; the config has "
                f"{cfg.estimator.name!r}"
            )
        if cfg.estimator.options.get("placebo"):  # the refits need the fit, not its placebos
            cfg = cfg.with_overrides({"estimator.placebo": False})
        data = prepare_data(cfg)
        fit = fit_config(cfg, data, cores=args.workers)
        h = fit.headline
        print(f"fitted {estimator} ({cfg.name}): {h.name} {h.mean:.4g} (SD {h.sd:.4g})")
        approx = analytic_power(h.sd, [i * h.sd / 50 for i in range(251)])
        print(
            "normal-approximation MDE at 80% from that SD: "
            f"{minimum_detectable(approx, 'power_hdi'):.4g} (95% HDI excludes 0), "
            f"{minimum_detectable(approx, 'power_pd'):.4g} (P(direction) > 0.95)"
        )
        res = posterior_predictive_power(
            fit,
            data.panel,
            effects,
            design=design_of(cfg),
            n_sims=args.n_sims,
            inference=inference_of(cfg, cores=1),
            options=dict(cfg.estimator.options),
            workers=args.workers,
            seed=cfg.sampler.seed,
            checkpoint=out / "power_sims.csv",  # each refit appended as it finishes
        )
        table, mde = res.table, res.mde
        res.sims.to_csv(out / "power_sims.csv", index=False)
    else:
        design = design_of(cfg)
        codes = (design.treated, *design.comparators)
        sim = SimulationConfig.published_design(icbs=tuple(ICB_BY_CODE[c] for c in codes))
        res = design_power(
            effects,
            n_sims=args.n_sims,
            outcome=cfg.analysis.outcome,
            estimator=estimator,
            config=sim,
            error_scenario=args.scenario,
            design=design,
            inference=inference_of(cfg, cores=1),
            workers=args.workers,
            seed=cfg.sampler.seed,
        )
        table, mde = res.table, res.mde
        res.sims.to_csv(out / "power_sims.csv", index=False)
    table.to_csv(out / "power.csv", index=False)
    fig = plot_power_curve(table)
    for ext in ("pdf", "png"):
        fig.savefig(out / f"power_curve.{ext}", dpi=200)
    print(table.to_string(index=False))
    print(
        f"minimum detectable change at 80% power: {mde['power_hdi']:.4g} (95% HDI excludes 0), "
        f"{mde['power_pd']:.4g} (P(direction) > 0.95); written to {out}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hepcausal",
        description="Bayesian causal inference on inequality in English general practice: "
        "did LLR's Health Equity Payments change the deprivation gradient?",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars and no log lines (warnings only)"
    )
    parser.add_argument("--version", action="version", version=f"hepcausal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "run",
        help="fit one experiment config",
        formatter_class=fmt,
        description="Fit one experiment (TOML config). Prints the headline sentence, the "
        "diagnostics line and the run directory. Unchanged config + data are not "
        "refitted (the stored run is returned) unless --force.",
        epilog="examples:\n  hepcausal run experiments/synthetic_baseline.toml\n"
        "  hepcausal run experiments/baseline.toml --draws 2000 --seed 7 --out runs\n"
        "  hepcausal run experiments/baseline.toml --set analysis.rank=need\n",
    )
    p.add_argument("config", help="experiment TOML file")
    p.add_argument("--out", default="runs", help="folder of run directories (default: runs)")
    p.add_argument("--force", action="store_true", help="refit even if a cached run exists")
    p.add_argument("--no-figures", action="store_true", help="skip figures")
    p.add_argument(
        "--store",
        choices=("compact", "full"),
        default="compact",
        help="idata.nc content: 'compact' (default: posterior draws without warmup and without "
        "practice-level effects) or 'full' (everything the sampler returned)",
    )
    _add_progress(p, "the sampler's progress bar with ETA")
    p.add_argument(
        "--strict", action="store_true", help="exit with status 4 when convergence checks fail"
    )
    _add_overrides(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "sweep",
        help="run a sensitivity sweep",
        formatter_class=fmt,
        description="Run every point of a config's [sweep] grid in parallel, skipping finished "
        "runs (an interrupted sweep resumes where it stopped). Writes "
        "OUT/<name>/sweep_summary.csv and .tex with every headline effect.",
        epilog="examples:\n  hepcausal sweep experiments/sensitivity.toml --workers 2\n"
        "  hepcausal sweep experiments/sensitivity.toml --scheduler tcp://10.0.0.5:8786\n"
        "  hepcausal check experiments/sensitivity.toml   # list the runs first\n",
    )
    p.add_argument("config", help="experiment TOML file with a [sweep] table")
    p.add_argument("--out", default="runs", help="output folder (default: runs)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="local worker processes (default 2; 1 = run in this process)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="Dask distributed scheduler address, e.g. tcp://host:8786",
    )
    p.add_argument("--force", action="store_true", help="refit every point")
    _add_progress(p, "the per-run progress bar")
    p.add_argument(
        "--no-figures",
        action="store_true",
        help="skip the figures of each run (the sweep forest plot is still drawn)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 4 when any run fails its convergence checks",
    )
    _add_overrides(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "report",
        help="write the HTML report of a run or a sweep",
        formatter_class=fmt,
        description="Write an HTML report (figures, effects table, diagnostics, provenance) "
        "into a run directory; for a sweep directory (OUT/<sweep name>), the sweep report "
        "(headline table, forest plot, a link to each run's report).",
        epilog="examples:\n  hepcausal report runs/synthetic_baseline-0123456789ab\n"
        "  hepcausal report runs/sensitivity_synthetic\n",
    )
    p.add_argument(
        "run_dir", help="a run directory ('hepcausal run') or sweep directory ('hepcausal sweep')"
    )
    p.add_argument("--out", help="output HTML file (default: RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "simulate",
        help="write a synthetic panel with known truth",
        formatter_class=fmt,
        description="Simulate a national practice x year panel with known effects. Writes the "
        "panel (.csv or .parquet) and OUT-STEM.truth.json with the true effects.",
        epilog="examples:\n  hepcausal simulate --out panel.csv\n"
        "  hepcausal simulate --preset small --seed 3 --gradient-effect -0.05 "
        "--out small.parquet\n"
        "  hepcausal simulate --config experiments/synthetic_baseline.toml --out p.csv\n",
    )
    p.add_argument("--config", help="take [data.synthetic] settings from this config")
    p.add_argument(
        "--preset",
        choices=["small", "national"],
        help="'small' = 12 ICBs, fast; 'national' = all 42 ICBs (default)",
    )
    p.add_argument("--n-practices", type=int, dest="n_practices", help="number of practices")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument(
        "--gradient-effect",
        type=float,
        dest="gradient_effect",
        help="true change of the treated ICB's gradient (model scale)",
    )
    p.add_argument(
        "--level-effect",
        type=float,
        dest="level_effect",
        help="true change of the treated ICB's level (model scale)",
    )
    p.add_argument("--out", required=True, help="output panel file (.csv or .parquet)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "data",
        help="build and check the real NHS panel",
        formatter_class=fmt,
        description="Build the practice x year panel from the NHS files, validate it and print "
        "the inclusion table (every dropped practice counted by rule).",
        epilog="examples:\n  hepcausal data                      # uses $HEPCAUSAL_NHS_DATA\n"
        "  hepcausal data --data-dir /data/nhs --min-list-size 1000 --out panel.csv\n",
    )
    p.add_argument("--data-dir", help="NHS data folder (default: $HEPCAUSAL_NHS_DATA)")
    p.add_argument("--config", help="take [data.inclusion] rules from this config")
    p.add_argument(
        "--min-list-size",
        type=float,
        dest="min_list_size",
        help="minimum registered list size (inclusion rule)",
    )
    p.add_argument("--out", help="write the panel (.csv or .parquet) and its inclusion table")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser(
        "check",
        help="validate a config and list its runs",
        formatter_class=fmt,
        description="Validate a config as 'run' and 'sweep' would, print it fully resolved and "
        "list the runs it defines.  Every run is checked against the data it would read (the "
        "ICBs, start year and outcome against the panel, the posterior's memory against its "
        "upper bound; a treated ICB with few practices is a warning); nothing is fitted.",
        epilog="example:\n  hepcausal check experiments/sensitivity.toml\n"
        "  hepcausal check experiments/baseline.toml --out runs\n",
    )
    p.add_argument("config", help="experiment TOML file")
    p.add_argument("--out", help="also check that the run folders can be written under OUT")
    p.add_argument(
        "--no-data", action="store_true", help="check the config only (do not read the data)"
    )
    _add_overrides(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "power",
        help="design power and minimum detectable change of a config's design",
        formatter_class=fmt,
        description="Simulate the design with injected post-period gradient changes, refit, and "
        "report the power curve and the minimum detectable change at 80%%.  Default "
        "(--simulate posterior): fit the config's DiD/DDD to its data, replicate from the "
        "fitted model's posterior predictive distribution; --simulate generator: the realistic "
        "generator at the published-design sizes; --analytic-sd: the normal approximation.",
        epilog="example:\n  hepcausal power experiments/baseline.toml --effects 0,0.05,0.1 "
        "--n-sims 10 --draws 500 --tune 500 --chains 2\n",
    )
    p.add_argument("config", help="experiment TOML file (its design and estimator)")
    p.add_argument("--effects", default="0,0.025,0.05,0.075,0.1", help="injected changes")
    p.add_argument("--n-sims", type=int, default=10, dest="n_sims", help="simulations per change")
    p.add_argument("--workers", type=int, help="processes (at most the CPU count)")
    p.add_argument(
        "--simulate",
        choices=("posterior", "generator"),
        default="posterior",
        help="replicates from the fitted model's posterior predictive (default) or the generator",
    )
    p.add_argument("--scenario", default="realistic", help="generator error scenario")
    p.add_argument(
        "--analytic-sd",
        type=float,
        dest="analytic_sd",
        help="skip simulation: normal-approximation power from this posterior SD",
    )
    p.add_argument("--out", help="output folder (default runs/power/<config name>)")
    _add_overrides(p)
    p.set_defaults(func=cmd_power)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hepcausal`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else logging.INFO
    logger = logging.getLogger("hepcausal")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    if args.quiet:
        warnings.filterwarnings("ignore", message=".*BLAS.*")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("hepcausal: interrupted (finished runs are kept; rerun to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        msg = str(exc).strip() or type(exc).__name__
        print(f"hepcausal: error: {msg}", file=sys.stderr)  # every line of the message
        return exit_code(exc)


def exit_code(exc: BaseException) -> int:
    """The exit status of an error (see :data:`EXIT_CODES`).

    Parameters
    ----------
    exc : BaseException
        The error.

    Returns
    -------
    int
        2 for usage and config errors, 3 for data errors, 1 otherwise.
    """
    from hepcausal.data.headers import ColumnNotFoundError, DataFileError
    from hepcausal.data.validate import PanelValidationError
    from hepcausal.experiments.config import ConfigError
    from hepcausal.experiments.registry import PriorError, UnknownEstimatorError

    if isinstance(exc, CliError | ConfigError | UnknownEstimatorError | PriorError):
        return EXIT_USAGE
    if isinstance(exc, DataFileError | PanelValidationError | ColumnNotFoundError):
        return EXIT_DATA
    if isinstance(exc, FileNotFoundError):
        return EXIT_DATA
    return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
