"""`rocketctr` command line. Kept thin: all logic lives in importable modules.

    rocketctr train --config <preset|yaml> --train <glob> --eval <glob> --model_dir <dir>
    rocketctr train --model_dir runs/demo            # built-in synthetic Criteo-shaped data
    rocketctr evaluate --model_dir <dir> --data <glob> [--tower light|booster|both]
    rocketctr predict --model_dir <dir>|--export_dir <dir> --data <glob> --output <f.parquet>
    rocketctr report --model_dir <dir> [--baseline_dir <dir>] [--test <glob>] --output <f.html>
    rocketctr export --model_dir <dir> --export_dir <base> [--set=export.embedding_dtype=int8]
    rocketctr item_vectors --export_dir <version> --catalogue <file> --output <f.parquet>
    rocketctr summary --config <preset|yaml> [--tower light|booster|both]

`rocketctr --help` lists the commands, `rocketctr <command> --help` a command's flags.

Parameter-server clusters (TF_CONFIG with a "ps" job): every task runs the same
`rocketctr train ...` command; on "worker" and "ps" tasks it starts that task's
tf.distribute.Server and blocks until killed, the "chief" task coordinates the training.
Codistillation: N processes with --replica_index=0..N-1 --shared_dir=<dir shared by all>
--set=distill.codistill_replicas=N, each with its own --model_dir.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import json
import os
import re
import shutil
import sys
import traceback
from pathlib import Path

# TensorFlow's C++ INFO and WARNING lines (oneDNN notes, the input pipeline's rendezvous
# line around a bad-row error) drown the progress bars and the one-line errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rocketctr  # noqa: F401, E402  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# What TensorFlow's C++ side prints on every start of a CPU machine, before its logging
# is set up (so TF_CPP_MIN_LOG_LEVEL cannot hide it): absl's notice, INFO/WARNING lines
# (oneDNN, "Could not find cuda drivers", CPU instructions) and the cuInit error of a
# machine without a GPU. Every other line, errors included, passes.
TF_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
    r"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    r"|To enable the following instructions: .* rebuild TensorFlow"
)
TF_LOGS_ENV = "ROCKETCTR_TF_LOGS"  # set to 1 to see them (as --verbose does)


def _globs(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line naming what is valid."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def flag_names(self) -> list[str]:
        return sorted(
            s
            for a in self._actions
            if a.help != argparse.SUPPRESS
            for s in a.option_strings
            if s.startswith("--") and s != "--help"
        )


def _add_model_dir(p, required: bool, help_text: str = "The run's model dir.") -> None:
    p.add_argument("--model_dir", required=required, help=help_text)


def _add_bad_rows(p) -> None:
    p.add_argument(
        "--bad_rows",
        choices=["error", "skip"],
        default=None,
        help="Malformed rows: fail naming file:line, or skip and count them. Default: the "
        "run's train.bad_rows.",
    )


def _add_verbose(p) -> None:
    p.add_argument(
        "--verbose",
        action="store_true",
        help="On an input, config or run-dir error, print the whole trace too; show "
        f"TensorFlow's start-up log lines (or set {TF_LOGS_ENV}=1).",
    )


def _add_force(p) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="Publish the light net even when the export gate refuses it (non-finite or "
        "constant scores, AUC at chance, below export.min_auc, or more than "
        "export.max_auc_drop below the newest version). Its rocketctr.json says forced.",
    )


def _train_flags(p) -> None:
    p.add_argument(
        "--config",
        default="default",
        help="A preset name (rocketctr/config/presets: default, criteo, avazu, frappe, "
        "pfd) or a YAML path.",
    )
    p.add_argument(
        "--train",
        type=_globs,
        default=[],
        help="Training file globs (comma-separated). Omit for synthetic data.",
    )
    p.add_argument(
        "--eval",
        type=_globs,
        default=[],
        help="Evaluation file globs (comma-separated): per-epoch validation, "
        "model selection and the final table.",
    )
    _add_model_dir(
        p, False, "Checkpoints, logs, config and metrics go here (default runs/default)."
    )
    p.set_defaults(model_dir="runs/default")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Config override, repeatable: --set train.batch_size=512, or "
        "--set schema=my_schema.yaml for your own data layout.",
    )
    _add_bad_rows(p)
    p.add_argument(
        "--strategy",
        choices=["auto", "default", "mirrored", "multi_worker", "parameter_server"],
        help="tf.distribute strategy (overrides train.strategy); auto reads TF_CONFIG and the "
        "devices. With parameter_server, `train` on a worker or ps task serves that task and "
        "blocks.",
    )
    p.add_argument(
        "--export_dir",
        help="Export base dir TF Serving watches (versions 1, 2, ...). Default: "
        "<model_dir>/export.",
    )
    p.add_argument(
        "--export",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Export the light net for TF Serving at the end (--noexport: don't).",
    )
    p.add_argument("--noexport", dest="export", action="store_false", help=argparse.SUPPRESS)
    _add_force(p)
    p.add_argument(
        "--replica_index",
        type=int,
        help="Codistillation: this replica's index in [0, codistill_replicas).",
    )
    p.add_argument(
        "--shared_dir", help="Codistillation: directory all replicas share (replica-<i>/ each)."
    )
    p.add_argument(
        "--synthetic_train_rows",
        type=int,
        default=300_000,
        help="Rows of built-in synthetic train data.",
    )
    p.add_argument(
        "--synthetic_eval_rows",
        type=int,
        default=50_000,
        help="Rows of built-in synthetic eval data.",
    )
    _add_verbose(p)


def _data_flag(p, required: bool = True) -> None:
    p.add_argument(
        "--data",
        "--eval",
        dest="data",
        type=_globs,
        required=required,
        help="File globs (comma-separated) in the run's schema.",
    )


def _add_light(p) -> None:
    p.add_argument(
        "--light",
        metavar="NAME",
        help="Which light net of a run of several (model.lights), at its own best epoch "
        "(default: the run's export.light, else its first).",
    )


def _evaluate_flags(p) -> None:
    _add_model_dir(p, True)
    _data_flag(p)
    p.add_argument(
        "--tower",
        choices=["light", "booster", "both"],
        default="both",
        help="Which net to score (default: every net the run has, each light net at its "
        "own best epoch).",
    )
    _add_light(p)
    p.add_argument(
        "--output",
        help="Also write the metrics (and calibration buckets) here, "
        "as JSON. The run's own files are never changed.",
    )
    p.add_argument(
        "--export_dir",
        help="Where the run's exports are (default "
        "<model_dir>/export): the version exported from the run's selected "
        "checkpoint scores the light net.",
    )
    _add_bad_rows(p)
    _add_verbose(p)


def _predict_flags(p) -> None:
    _add_model_dir(p, False, "Score with this run's selected weights (both towers available).")
    p.add_argument(
        "--export_dir",
        help="Or score with this light export: a version dir, or an export base "
        "(its newest version).",
    )
    _data_flag(p)
    p.add_argument(
        "--output",
        required=True,
        help="Where the scores go: a .parquet or .csv file, one row per input row.",
    )
    p.add_argument(
        "--keep",
        type=_globs,
        default=[],
        metavar="COL,...",
        help="Input columns copied to the output beside the scores, e.g. a request or user id.",
    )
    p.add_argument(
        "--tower",
        choices=["light", "booster", "both"],
        default="light",
        help="Whose scores to write (booster: --model_dir only).",
    )
    _add_light(p)
    p.add_argument(
        "--source",
        action="store_true",
        help="Also write each row's source_file and source_line, to join back on (lines "
        "count the header, as bad-row messages do).",
    )
    p.add_argument("--batch_size", type=int, default=4096, help="Rows scored per step.")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace --output if it exists (never when it is one of the inputs).",
    )
    _add_bad_rows(p)
    _add_verbose(p)


def _report_flags(p) -> None:
    _add_model_dir(p, True, "The run to report on.")
    p.add_argument(
        "--baseline_dir",
        help="A light_only run of the same light net: the lift and the gap closed "
        "are measured against it.",
    )
    p.add_argument(
        "--test",
        type=_globs,
        default=[],
        help="Held-out file globs to score (default: the run's eval files, which "
        "model selection saw).",
    )
    p.add_argument("--output", required=True, help="The HTML file to write.")
    _add_bad_rows(p)
    _add_verbose(p)


def _frontier_flags(p) -> None:
    _add_model_dir(p, True, "A run of several light nets (model.lights), or of one.")
    _data_flag(p, required=False)
    p.add_argument(
        "--baseline_dir",
        help="A light_only run of the same light nets: each net's lift over its "
        "alone-trained self.",
    )
    p.add_argument(
        "--latency_budget_ms",
        type=float,
        help="Name the best light net whose serving latency at --batch is within "
        "this (loop mode: the graph alone).",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=100,
        help="The batch size the budget and the Pareto set are judged at.",
    )
    p.add_argument("--output", help="Also write the frontier here, as JSON.")
    _add_bad_rows(p)
    _add_verbose(p)


def _export_flags(p) -> None:
    _add_model_dir(p, True)
    p.add_argument("--export_dir", help="Export base dir (default <model_dir>/export).")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="export.KEY=VALUE",
        help="export.* override, e.g. --set export.embedding_dtype=int8.",
    )
    _add_light(p)
    _add_force(p)
    _add_verbose(p)


def _item_vectors_flags(p) -> None:
    p.add_argument("--export_dir", required=True, help="A two-tower light export version dir.")
    p.add_argument(
        "--catalogue", type=_globs, required=True, help="Item rows (CSV/TSV with header, Parquet)."
    )
    p.add_argument("--output", required=True, help="Parquet file of item id -> vector.")
    p.add_argument("--id_column", help="The item id column (default: inferred).")
    _add_verbose(p)


def _summary_flags(p) -> None:
    p.add_argument(
        "--config", default="default", help="A preset name or a YAML path, as for train."
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Config override, repeatable, as for train.",
    )
    p.add_argument(
        "--tower",
        choices=["light", "booster", "both"],
        default="both",
        help="Which net to show (default: every net the config builds).",
    )
    _add_verbose(p)


# name: (one-line description, the function adding its flags); handlers: HANDLERS
COMMANDS = {
    "train": ("Train (or resume) a run, evaluate it, export the light net.", _train_flags),
    "evaluate": (
        "Score a finished run on labelled rows: AUC, logloss, GAUC, calibration.",
        _evaluate_flags,
    ),
    "predict": (
        "Write scores for every row of a file (Parquet/CSV), streaming.",
        _predict_flags,
    ),
    "report": (
        "One HTML launch report: training curves, calibration, lift, serving cost.",
        _report_flags,
    ),
    "export": ("Export a run's light net for TF Serving, verified.", _export_flags),
    "frontier": (
        "Each light net's quality, FLOPs, size and serving latency; which one to ship.",
        _frontier_flags,
    ),
    "item_vectors": ("Two-tower light net: item vectors of a catalogue.", _item_vectors_flags),
    "summary": (
        "A config's towers: layers, shapes, parameters, FLOPs.",
        _summary_flags,
    ),
}


def build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    parser = _Parser(
        prog="rocketctr",
        description="Distilled CTR models: a deep booster teaches a light net that is served.",
        epilog="`rocketctr <command> --help` lists a command's flags.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command", parser_class=_Parser)
    parsers = {}
    for name, (description, add_flags) in COMMANDS.items():
        parsers[name] = sub.add_parser(name, help=description, description=description)
        add_flags(parsers[name])
    return parser, parsers


def parse(argv: list[str]) -> argparse.Namespace:
    """The flags of `argv` (without the program name); exits 2 with one line on a bad one."""
    parser, parsers = build_parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        parser.print_help(sys.stderr)
        parser.exit(2)
    if argv[0] not in parsers and argv[0] not in ("-h", "--help"):
        near = difflib.get_close_matches(argv[0], list(parsers), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        parser.error(f"unknown command {argv[0]!r}; the commands are {', '.join(parsers)}.{hint}")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = parsers[args.command]
        valid = command.flag_names()
        names = [u.split("=")[0] for u in unknown if u.startswith("-")] or unknown
        near = [m for n in names for m in difflib.get_close_matches(n, valid, n=1)]
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        command.error(
            f"unknown flag(s) {' '.join(names)}; {args.command} takes {' '.join(valid)}.{hint}"
        )
    return args


def resolve_config(args):
    from rocketctr.config.core import load_config, parse_override

    config = load_config(args.config)
    overrides = dict(parse_override(s) for s in args.set)
    if args.bad_rows:
        overrides["train.bad_rows"] = args.bad_rows
    if args.strategy:
        overrides["train.strategy"] = args.strategy
    return config.replace(overrides) if overrides else config


def check_layout_first(args) -> None:
    """Checks the files' layout against the run's schema before TensorFlow loads (loading
    the config does: it builds the towers' configs), so that a wrong layout fails at once."""
    from rocketctr.config.core import Config, TrainConfig, config_data, parse_override
    from rocketctr.features.file_layout import check_layout
    from rocketctr.features.schema import load_schema

    data, _ = config_data(args.config)
    if not isinstance(data, dict):
        return  # the config load says why
    overrides = dict(parse_override(s) for s in args.set)
    schema = overrides.get("schema", data.get("schema", Config.schema))
    train = data.get("train") if isinstance(data.get("train"), dict) else {}
    bad_rows = args.bad_rows or overrides.get(
        "train.bad_rows", train.get("bad_rows", TrainConfig.bad_rows)
    )
    if isinstance(schema, str) and isinstance(bad_rows, str):  # else the config load says why
        for patterns in args.train, args.eval:
            check_layout(load_schema(schema), patterns, bad_rows)


def train_main(args) -> int:
    from rocketctr.files import check_writable_dir

    # Before anything is read or trained: a run that cannot save must not start.
    check_writable_dir(args.model_dir, "--model_dir")
    if args.export:
        check_writable_dir(export_base(args), "--export_dir")
    if args.train and args.eval:
        check_layout_first(args)
    config = resolve_config(args)

    from rocketctr.runs import rundir
    from rocketctr.training import distribute
    from rocketctr.training.codistill import CodistillReplica

    task = distribute.cluster_task()
    if task is not None:
        print(f"Serving {task[0]} task {task[1]} of the parameter-server cluster until killed.")
        distribute.serve_cluster_task()
        return 0
    replica = None
    if args.replica_index is not None or args.shared_dir:
        replica = CodistillReplica(args.replica_index or 0, args.shared_dir or "")
    model_dir = Path(args.model_dir)
    # One run per dir, from its synthetic data to its export (see rundir.hold).
    with rundir.hold(model_dir) if distribute.is_chief() else contextlib.nullcontext():
        return _train_and_export(args, config, model_dir, replica)


class UsageError(ValueError):
    """Flags that do not go together; printed as one line, exit code 2."""


def _train_and_export(args, config, model_dir: Path, replica) -> int:
    from rocketctr.data import synthetic
    from rocketctr.training import train

    train_files, eval_files = args.train, args.eval
    if bool(train_files) != bool(eval_files):
        raise UsageError("Give both --train and --eval, or neither (synthetic data).")
    if not train_files:
        try:
            paths = synthetic.ensure_synthetic(
                config.schema,
                model_dir / "synthetic",
                args.synthetic_train_rows,
                args.synthetic_eval_rows,
                seed=config.train.seed,
            )
        except ValueError as e:
            raise UsageError(str(e)) from None
        train_files, eval_files = [str(paths[0])], [str(paths[1])]
        print(f"No --train/--eval: using built-in synthetic data {paths[0]}, {paths[1]}")
    result = train.train(config, train_files, eval_files, model_dir, replica=replica)
    print(train.summary(result))
    path = None
    if args.export:
        path = train.export_trained(result, eval_files, export_base(args), force=args.force)
    if path is not None:
        print(f"Exported the light net to {path}: {_described(path)}")
    return 0


def export_base(args) -> Path:
    return Path(args.export_dir) if args.export_dir else Path(args.model_dir) / "export"


def item_vectors_main(args) -> int:
    from rocketctr.serving import catalogue

    counts = catalogue.write_item_vectors(
        args.export_dir, args.catalogue, None, args.output, id_column=args.id_column
    )
    print(
        f"Wrote {counts['items_written']:,} item vectors of dimension {counts['dimension']} "
        f"to {args.output} ({counts['rows_read']:,} rows read, "
        f"{counts['duplicate_ids_skipped']:,} duplicate ids skipped)"
    )
    return 0


def evaluate_main(args) -> int:
    from rocketctr.files import write_atomically
    from rocketctr.scoring.evaluation import describe_scored, evaluate_run, metrics_only
    from rocketctr.scoring.metrics import format_table

    result = evaluate_run(
        args.model_dir,
        args.data,
        tower=args.tower,
        bad_rows=args.bad_rows,
        export_base=args.export_dir,
        light=args.light,
    )
    print(describe_scored(result))
    parity, light = result["export_parity"], result["light"]
    if parity is not None:
        print(
            f"{light}: scored through the export {parity['export']}; it matches the "
            f"checkpoint's light net on all {parity['rows']:,} rows (max |Δp| "
            f"{parity['max_abs_diff']:.2g})"
        )
    elif light in result["towers"]:
        print(f"{light}: scored from the checkpoint (no export of this checkpoint found)")
    print(format_table(metrics_only(result)) + "\ndata: " + result["bad_rows"])
    if args.output:
        write_atomically(Path(args.output), json.dumps(result, indent=2))
        print(f"Wrote {args.output}")
    return 0


def predict_main(args) -> int:
    from rocketctr.scoring.predict import predict

    if bool(args.model_dir) == bool(args.export_dir):
        raise UsageError("predict needs exactly one of --model_dir and --export_dir.")
    summary = predict(
        args.data,
        args.output,
        model_dir=args.model_dir,
        export_dir=args.export_dir,
        tower=args.tower,
        keep=args.keep,
        bad_rows=args.bad_rows,
        batch_size=args.batch_size,
        source=args.source,
        overwrite=args.overwrite,
        light=args.light,
    )
    print(
        f"Wrote {summary['rows']:,} rows to {args.output} ({', '.join(summary['columns'])}); "
        f"scored with {summary['scored_with']}\ndata: {summary['bad_rows']}"
    )
    return 0


def report_main(args) -> int:
    from rocketctr.scoring.report import write_report

    summary = write_report(
        args.model_dir,
        args.output,
        baseline_dir=args.baseline_dir,
        test=args.test,
        bad_rows=args.bad_rows,
    )
    print(summary)
    return 0


def summary_main(args) -> int:
    from rocketctr.config.core import load_config, parse_override
    from rocketctr.features.schema import load_schema
    from rocketctr.model.cotrain import build_model
    from rocketctr.scoring.evaluation import run_towers

    config = load_config(args.config).replace(dict(parse_override(s) for s in args.set))
    model = build_model(config, load_schema(config.schema))
    names = run_towers(model, args.tower)  # every light net, with "both"
    for name in names:
        if name in model.light_nets:
            model.select_light(name)
            kind, tower = "light", model.light
        elif name in model.booster_members:
            kind, tower = name, model.booster_members[name]
        elif model.booster_members:
            continue  # an ensemble's mixture: each of its boosters is shown
        else:
            kind, tower = "booster", model.booster
        view = model.tower_view(kind)
        view.summary(line_length=110)
        num_fields = view.inputs[0].shape[1]
        flops = tower.flops(num_fields, config.model.embedding_dim)
        hidden = ", ".join(tower.hidden_names) or "none"
        print(
            f"{name}: {tower.config.name}, {flops:,} FLOPs per example; "
            f"hidden representations for distill.methods.hidden: {hidden}\n"
        )
    return 0


def frontier_main(args) -> int:
    from rocketctr.files import write_atomically
    from rocketctr.scoring.frontier import format_frontier, measure_frontier

    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1. Received: {args.batch}")
    if args.latency_budget_ms is not None and not args.latency_budget_ms > 0:
        raise UsageError(f"--latency_budget_ms must be > 0. Received: {args.latency_budget_ms}")
    result = measure_frontier(
        args.model_dir,
        args.data,
        baseline_dir=args.baseline_dir,
        batch=args.batch,
        latency_budget_ms=args.latency_budget_ms,
        bad_rows=args.bad_rows,
    )
    print(format_frontier(result))
    if args.output:
        write_atomically(Path(args.output), json.dumps(result, indent=2))
        print(f"Wrote {args.output}")
    return 0


def export_main(args) -> int:
    from rocketctr import serving
    from rocketctr.config.core import parse_override
    from rocketctr.files import check_writable_dir

    overrides = dict(parse_override(s) for s in args.set)  # export.* keys only
    check_writable_dir(export_base(args), "--export_dir")
    path = serving.export_from_model_dir(
        args.model_dir,
        export_base(args),
        overrides=overrides,
        force=args.force,
        light=args.light,
    )
    # The peak of this process: the restored table, the export's rows, the reloaded export.
    print(
        f"Exported the light net {_light_of(path)}to {path}: {_described(path)}; "
        f"{serving.peak_memory()}"
    )
    return 0


def _light_of(version_dir: Path) -> str:
    """The exported light net's name and a space, for a run of several; else ''."""
    from rocketctr import serving

    info = serving.read_export_info(version_dir)
    return f"{info['light']} " if info["config"]["model"].get("lights") else ""


def _described(version_dir: Path) -> str:
    from rocketctr import serving

    return serving.describe_export(serving.read_export_info(version_dir))


HANDLERS = {
    "train": train_main,
    "evaluate": evaluate_main,
    "predict": predict_main,
    "report": report_main,
    "export": export_main,
    "frontier": frontier_main,
    "item_vectors": item_vectors_main,
    "summary": summary_main,
}


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        return HANDLERS[args.command](args)
    except (Terminated, KeyboardInterrupt) as e:
        # Outside training's own handling (which saves a backup first): the command's
        # cleanup (an export's temporary dir, a prediction's partial file) has run.
        name = e.args[0] if isinstance(e, Terminated) else "SIGINT"
        print(f"\nrocketctr: stopped by {name}; nothing half-written was left.", file=sys.stderr)
        return STOPPED_EXIT_CODE
    except Exception as e:
        code = stop_exit_code(e)
        if code is not None:
            print(flush=True)  # end the progress bar's line
            kind = "error: " if code == DIVERGED_EXIT_CODE else ""
            print(f"rocketctr: {kind}{e}", file=sys.stderr)
            return code
        message = user_error_message(e)
        if message is None:
            raise  # a bug, not the user's input: the whole trace
        if args.verbose:
            traceback.print_exc()
        print(f"rocketctr: error: {message}", file=sys.stderr)
        return 2


# Exit codes beyond 0 (done), 1 (a bug: the trace is printed) and 2 (the user's input):
DIVERGED_EXIT_CODE = 3  # training diverged; nothing non-finite was saved
STOPPED_EXIT_CODE = 4  # stopped by SIGTERM/SIGINT, cleanly (training: resumable)


class Terminated(BaseException):
    """SIGTERM outside training: unwinds like Ctrl-C, so cleanup code runs."""


def _terminate(signum, frame) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one acts at once
    raise Terminated(signal.Signals(signum).name)


def stop_exit_code(error: Exception) -> int | None:
    """The exit code of a run that stopped on purpose: it diverged (3), or a signal stopped
    it after saving (4); None for any other error."""
    health, resume = (
        sys.modules.get("rocketctr.training.health"),
        sys.modules.get("rocketctr.training.resume"),
    )
    if health is not None and isinstance(error, health.TrainingDiverged):
        return DIVERGED_EXIT_CODE
    if resume is not None and isinstance(error, resume.TrainingStopped):
        return STOPPED_EXIT_CODE
    return None


def user_error_message(error: Exception) -> str | None:
    """The one-line message of an error in the user's input, config, files or run dir (exit
    code 2, no trace), or None for any other error."""
    from rocketctr.config.core import ConfigError
    from rocketctr.features.file_layout import LayoutError
    from rocketctr.features.schema import SchemaError
    from rocketctr.files import PathError

    user_errors = (ConfigError, SchemaError, LayoutError, FileNotFoundError, UsageError, PathError)
    if isinstance(error, user_errors):
        return str(error)
    if isinstance(error, OSError) and (
        error.errno in _ENVIRONMENT_ERRNOS or _ENVIRONMENT_TEXT.search(str(error))
    ):
        return _environment_message(error.strerror or str(error), error.filename, _needed(error))
    if sys.modules.get("tensorflow") is None:
        return None  # the errors below come from code that runs with TensorFlow loaded
    import tensorflow as tf

    from rocketctr.data import BadRowError
    from rocketctr.runs.rundir import RunLockedError
    from rocketctr.serving.catalogue import CatalogueError
    from rocketctr.serving.export_error import ExportError

    if isinstance(error, _tf_environment_errors(tf)) or (
        isinstance(error, tf.errors.FailedPreconditionError)
        and re.search(r"Is a directory|Not a directory|Read-only", str(error))
    ):
        return _environment_message(tf_error_line(error), None)
    if isinstance(error, tf.errors.DataLossError):
        from rocketctr.data.tfrecord import damaged_file

        found = damaged_file()
        if found is None:
            return pipeline_error_message(error)
        path, records, reason = found
        return (
            f"{path}: the TFRecord file is truncated or corrupt after record {records:,} "
            f"({tf_error_line(reason)}); replace it, or leave it out of the inputs."
        )
    if isinstance(error, tf.errors.InvalidArgumentError):
        # A bad row found inside the input pipeline: its own message, not TF's graph trace.
        return pipeline_error_message(error)
    if isinstance(error, (ExportError, CatalogueError, BadRowError, RunLockedError)):
        return str(error)
    return None


# OSErrors of the machine or the paths given, not of the code: disk full, quota,
# read-only filesystem, permission, a file where a directory belongs (or the reverse).
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
    errno.EFBIG,
}


# The same, from libraries that raise OSError without an errno (pyarrow's writers).
_ENVIRONMENT_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|Read-only file system|Permission denied"
)


def _tf_environment_errors(tf) -> tuple[type, ...]:
    """TensorFlow's errors for the same causes, raised by its file writes and reads."""
    return (tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError)


def _environment_message(text: str, filename: str | None, needed: str | None = None) -> str:
    """One line for a failed write or read: what, where, and when it is the disk that is
    full, the free space (and `needed`, what the write needed, where known)."""
    where = f": {filename}" if filename and str(filename) not in text else ""
    line = f"{text}{where}"
    full = re.search(r"No space left on device|Disk quota exceeded", line)
    path = filename or next(iter(re.findall(r"(?:^|\s)(/[^\s;,'\"]+)", text)), None)
    if full and path:
        directory = Path(path)
        while not directory.is_dir() and directory != directory.parent:
            directory = directory.parent
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(directory).free
            line += (
                f" ({needed + ', ' if needed else ''}{_mib(free)} MiB free on the filesystem "
                f"of {directory}: free some space, or point the command at another disk; the "
                "last good state is kept)"
            )
    return line


def _needed(error: OSError) -> str | None:
    """What a `files.DiskFullError` that knows the size of its write needed ("about 5.3 MiB
    needed for the epoch checkpoint"); else None."""
    size = getattr(error, "needed", None)
    if size is None:
        return None
    about = "at least" if getattr(error, "at_least", False) else "about"
    return f"{about} {_mib(size)} MiB needed for {error.what}"


def _mib(size: int) -> str:
    """Bytes in MiB: one decimal, or two significant digits below 0.1 MiB."""
    mib = size / 2**20
    return f"{mib:,.1f}" if mib >= 0.1 or mib == 0 else f"{mib:.2g}"


def pipeline_error_message(error: Exception) -> str:
    """The message a failed input-pipeline check gave (see data/checks.fail_unless), or the
    error's own first line when it is not one of those."""
    text = getattr(error, "message", str(error))
    found = re.search(r"assertion failed: \[(.*?)\](?:\n|$)", text, re.S)
    if found:  # tf.debugging.Assert escapes quotes
        return found.group(1).replace("\\'", "'").replace('\\"', '"')
    # A reader's own message raised inside tf.data (a Python generator): without the
    # exception's class.
    return re.sub(r"^ValueError: ", "", tf_error_line(error))


def tf_error_line(error: Exception) -> str:
    """The first line of a TensorFlow error's message, without TF's node and op names."""
    text = (getattr(error, "message", None) or str(error)).strip()
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]( name:)?", "", text)
    return text.splitlines()[0].strip() if text else repr(error)


# The filter process: copies its stdin to its stdout line by line, without the noise. A
# process, not a thread: it forwards what a crashing rocketctr wrote last (a C++ check
# failure before abort) until the pipe closes.
_FILTER = """
import re, sys
noise = re.compile(sys.argv[1])
for line in sys.stdin.buffer:
    if not noise.match(line.decode("utf-8", "replace")):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


def filter_tf_noise() -> None:
    """Sends this process's stderr (fd 2, so C++ writes too) through a filter process that
    drops `TF_NOISE` lines; restores fd 2 and waits for the filter at exit."""
    import atexit
    import subprocess

    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    try:
        filter_process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _FILTER, TF_NOISE.pattern],
            stdin=read_end,
            stdout=original,
            stderr=original,
        )
    except OSError:
        os.close(read_end), os.close(write_end), os.close(original)
        return  # no filter: the noise shows, nothing is lost
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)

    def restore() -> None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(original, 2)  # closes our end of the pipe: the filter sees its end
        with contextlib.suppress(subprocess.TimeoutExpired):
            filter_process.wait(timeout=10)  # a child still holding the pipe may outlive us

    atexit.register(restore)


def run() -> None:
    import signal

    from absl import logging

    if "--verbose" not in sys.argv and os.environ.get(TF_LOGS_ENV) != "1":
        filter_tf_noise()
    signal.signal(signal.SIGTERM, _terminate)
    logging.set_verbosity(logging.WARNING)
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
