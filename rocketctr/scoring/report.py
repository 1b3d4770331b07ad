"""`rocketctr report`: one self-contained HTML page to decide whether the light net ships.

It shows the run's per-epoch validation curves with the selected epoch marked, the hint
weight schedule, a reliability diagram per tower, the metrics of both towers on the eval
(or a held-out test) data with the light net's lift and the gap closed against a baseline
run, the serving cost of the export (FLOPs, parameters, size, and a latency measured here),
and the resolved config. Plots are PNGs embedded in the page (matplotlib, no JavaScript).
Nothing in the runs is written.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rocketctr.config.core import SINGLE_LIGHT, Config, ConfigError
from rocketctr.files import write_atomically
from rocketctr.runs.rundir import (
    RunFileError,
    load_run_config,
    read_eval_patterns,
    run_schema,
)
from rocketctr.runs.selected import EARLY_STOPPING, selected_epoch, selection_monitor, teacher_stop
from rocketctr.scoring.evaluation import DEFAULT_EXPORT, evaluate_run, find_export, run_history
from rocketctr.scoring.metrics import FEW_GAUC_USERS

LATENCY_BATCHES = (1, 100)
COLORS = {"booster": "#c0392b", "light": "#2471a3"}


def _png(figure) -> str:
    """An <img> of a matplotlib figure, embedded as base64 PNG."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to files only
    import matplotlib.pyplot as plt

    return plt


def curves_plot(
    history: list[dict], selected: int | None, towers: Sequence[str] = ("booster", "light")
) -> str:
    """Validation AUC and logloss per epoch of each tower, the selected epoch marked, and
    the epoch after which the booster stopped and taught from a frozen copy of its best
    (`distill.teacher_patience`): from there on its curve is that copy's."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    epochs = [r["epoch"] for r in history]
    panels = (("auc", "validation AUC"), ("bce", "validation logloss"))
    for ax, (metric, label) in zip(axes, panels, strict=True):
        for tower in towers:
            values = [r.get(f"val_{tower}_{metric}") for r in history]
            if any(v is not None for v in values):
                ax.plot(
                    epochs,
                    [np.nan if v is None else v for v in values],
                    marker="o",
                    markersize=3,
                    color=COLORS.get(tower),
                    label=tower,
                )
        if selected is not None:
            ax.axvline(selected, color="#27ae60", linestyle="--", label=f"selected ({selected})")
        stop = teacher_stop(history)
        if stop is not None:
            ax.axvline(
                stop["epoch"],
                color=COLORS.get("booster"),
                linestyle=":",
                label=f"teacher frozen (epoch {stop['teacher_stopped']})",
            )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(figure)


def frontier_section(model_dir, data, baseline_dir, bad_rows) -> str:
    """`rocketctr frontier` of a run of several light nets: its table and a plot of AUC
    against latency at batch 100, the Pareto set marked."""
    from rocketctr.scoring.frontier import latency_at, measure_frontier

    result = measure_frontier(
        model_dir,
        data,
        baseline_dir=baseline_dir,
        bad_rows=bad_rows,
        reps=50,
        loop_seconds=0.1,
        rounds=3,
    )
    batch, sizes = result["batch"], sorted(result["nets"][0]["latency_ms"]["loop"])
    header = [
        "net",
        "AUC",
        "logloss",
        "MFLOPs",
        "params",
        "MiB",
        *(f"ms@{b}" for b in sizes),
        "lift",
        "Pareto",
    ]
    rows = [
        [
            r["name"],
            _f(r["auc"]),
            _f(r["logloss"]),
            f"{r['flops'] / 1e6:.3f}",
            f"{r['parameters']['total']:,}",
            f"{r['export_bytes'] / 2**20:.1f}",
            *(f"{latency_at(r, b):.3f}" for b in sizes),
            f"{r['lift']['auc']:+.4f}" if "lift" in r else "n/a",
            "yes" if r["name"] in result["pareto"] else "",
        ]
        for r in result["nets"]
    ]
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    for r in result["nets"]:
        on = r["name"] in result["pareto"]
        ax.scatter(
            latency_at(r, batch),
            r["auc"],
            s=40,
            zorder=3,
            color=COLORS.get(r["name"], "#2471a3"),
            marker="o" if on else "x",
        )
        ax.annotate(
            r["name"],
            (latency_at(r, batch), r["auc"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    front = sorted(
        (r for r in result["nets"] if r["name"] in result["pareto"]),
        key=lambda r: latency_at(r, batch),
    )
    ax.plot(
        [latency_at(r, batch) for r in front],
        [r["auc"] for r in front],
        color="#27ae60",
        linestyle="--",
        label="Pareto set",
    )
    ax.set_xlabel(f"serving latency at batch {batch} (ms, loop)")
    ax.set_ylabel("AUC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    note = (
        f"<p class=note>Each light net at its own best epoch. MFLOPs per example; ms@N: "
        f"latency of its SavedModel's serving_default at batch N, run in a loop in-process "
        f"(the graph alone), the nets timed side by side on this machine; lift: AUC over the "
        f"same net trained alone (--baseline_dir). Pick: {html.escape(str(result['pick']))} "
        f"({html.escape(result['pick_reason'])}).</p>"
    )
    return _table(header, rows) + _png(figure) + note


def hint_weight_plot(config: Config, total_steps: int) -> str:
    """λ(step) over the run's global steps."""
    import tensorflow as tf

    from rocketctr.distill.base import parse_methods, total_weight
    from rocketctr.distill.schedule import hint_weight

    plt = _pyplot()
    steps = np.linspace(0, max(total_steps, 1), num=200).astype(np.int64)
    weights = hint_weight(tf.constant(steps), config.distill).numpy().tolist()
    figure, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, weights, color=COLORS["light"])
    ax.set_xlabel("global step")
    ax.set_ylabel("distillation weight λ")
    methods = " + ".join(f"{m.weight:g}·{n}" for n, m in parse_methods(config.distill).items())
    ax.set_title(f"{methods}, mode {config.distill.mode!r}")
    ax.set_ylim(bottom=0, top=max(max(weights), total_weight(config.distill), 1e-3) * 1.1)
    ax.grid(alpha=0.3)
    return _png(figure)


def reliability_plot(towers: dict[str, dict[str, Any]]) -> str:
    """Mean predicted CTR against observed CTR per equal-mass bucket, per tower."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(towers), figsize=(4.2 * len(towers), 4), squeeze=False)
    for ax, (tower, values) in zip(axes[0], towers.items(), strict=True):
        buckets = values["calibration"]
        predicted = [b["mean_prediction"] for b in buckets]
        observed = [b["observed_ctr"] for b in buckets]
        top = max(max(predicted), max(observed)) * 1.05
        ax.plot([0, top], [0, top], color="#999999", linestyle=":", label="perfect")
        ax.plot(
            predicted, observed, marker="o", markersize=4, color=COLORS.get(tower, "k"), label=tower
        )
        ax.set_xlabel("mean predicted CTR")
        ax.set_ylabel("observed CTR")
        ax.set_title(f"{tower}: ECE {values['ece']:.4f}, {len(buckets)} buckets")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(figure)


def measure_latency(export_path: Path, rows: dict[str, np.ndarray], repeats: int = 50) -> dict:
    """Median milliseconds of the export's serving_default per call, in this process, at
    batch sizes `LATENCY_BATCHES` (rows taken from `rows`, repeated when too few)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    n = len(next(iter(rows.values())))
    out = {}
    for batch in LATENCY_BATCHES:
        index = np.arange(batch) % n
        inputs = {c: tf.constant(v[index]) for c, v in rows.items()}
        signature(**inputs)  # trace and warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            signature(**inputs)["probabilities"].numpy()
            times.append((time.perf_counter() - start) * 1000)
        out[batch] = float(np.median(times))
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _f(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"


def metrics_rows(
    evaluation: dict[str, Any], baseline: dict[str, Any] | None
) -> tuple[list[str], list[list[str]], dict[str, float] | None]:
    """The metrics table (towers, and the baseline's light net), and the lift of the light net
    over the baseline with the gap it closes to the booster, when both are there."""
    towers = dict(evaluation["towers"])
    rows_by_name = list(towers.items())
    # The light net "light" means: the run's (one light net), or its export.light of several.
    light_name = evaluation.get("light", "light")
    alone_name = (baseline or {}).get("light", "light")
    if baseline is not None:
        rows_by_name.append((f"{alone_name} alone (baseline)", baseline["towers"][alone_name]))
    has_gauc = any("gauc" in v for _, v in rows_by_name)
    header = (
        ["net", "AUC", "logloss"]
        + (["GAUC", "users"] if has_gauc else [])
        + ["ECE", "mean predicted CTR", "observed CTR", "rows"]
    )
    rows = []
    for name, v in rows_by_name:
        row = [name, _f(v["auc"]), _f(v["logloss"])]
        if has_gauc:
            row += [_f(v.get("gauc")), _f(v.get("gauc_users"))]
        row += [_f(v["ece"]), _f(v["mean_prediction"]), _f(v["observed_ctr"]), _f(v["rows"])]
        rows.append(row)
    lift = None
    if baseline is not None and light_name in towers:
        alone = baseline["towers"][alone_name]["auc"]
        light = towers[light_name]["auc"]
        logloss_change = towers[light_name]["logloss"] - baseline["towers"][alone_name]["logloss"]
        lift = {"auc_lift": light - alone, "logloss_change": logloss_change}
        if "booster" in towers:
            gap = towers["booster"]["auc"] - alone
            lift["booster_auc_over_baseline"] = gap
            lift["gap_closed"] = (light - alone) / gap if gap > 0 else float("nan")
    return header, rows, lift


def _export_version(
    model_dir: Path, global_step: int, light: str = SINGLE_LIGHT
) -> tuple[Path | None, bool]:
    """The export of the run's selected checkpoint (of light net `light`), else its newest
    one; and whether it is the selected checkpoint's."""
    from rocketctr.serving import versions

    base = model_dir / DEFAULT_EXPORT
    path = find_export(base, model_dir, global_step, light)
    if path is not None:
        return path, True
    found = versions(base)
    return (found[-1], False) if found else (None, False)


def serving_section(
    model_dir: Path, global_step: int, rows: dict[str, np.ndarray], light: str = SINGLE_LIGHT
) -> tuple[str, dict[str, Any] | None]:
    """The serving cost of the run's export (HTML), and its numbers (None: no export)."""
    from rocketctr.serving import read_export_info

    path, selected = _export_version(model_dir, global_step, light)
    if path is None:
        where = model_dir / DEFAULT_EXPORT
        return f"<p>No export in {html.escape(str(where))}: nothing to serve yet.</p>", None
    info = read_export_info(path)
    columns = [c["name"] for c in info["schema"]["serving_columns"]]
    latency = measure_latency(path, {c: rows[c] for c in columns})
    flops, params = info["flops_per_example"], info["parameters"]
    cost_rows = [
        [tower, _f(flops[tower]), _f(params[tower]["tower"]), _f(params[tower]["embedding"])]
        for tower in ("light", "booster")
        if flops.get(tower) is not None and params.get(tower)
    ]
    if len(cost_rows) == 2:
        ratio = flops["booster"] / max(flops["light"], 1)
        cost_rows.append(["booster / light", f"{ratio:.1f}x", "", ""])
    table = info["embedding_table"]
    which = "the selected checkpoint's" if selected else "not of the selected checkpoint"
    numbers = {
        "export": str(path),
        "of_selected_checkpoint": selected,
        "size_bytes": info["size_bytes"],
        "embedding_dtype": table["dtype"],
        "latency_ms": latency,
    }
    text = "".join(
        [
            f"<p>Export <code>{html.escape(str(path))}</code> ({which}): "
            f"{info['size_bytes'] / 2**20:.1f} MiB, {html.escape(table['dtype'])} table of "
            f"{table['rows']:,} rows (training: {table['training_rows']:,}), exported "
            f"{html.escape(str(info['exported_at']))}.</p>",
            _table(
                ["net", "FLOPs / example", "tower parameters", "embedding parameters"], cost_rows
            ),
            _table(
                ["batch (rows)", "median latency here (ms)"],
                [[b, f"{ms:.2f}"] for b, ms in latency.items()],
            ),
            "<p class=note>FLOPs: analytic, from layer shapes (no lookups, activations or bias "
            "adds). Latency: the export's serving_default called in this process on eval rows, "
            "the median of 50 calls after a warm-up; TF Serving adds its RPC and batching.</p>",
        ]
    )
    return text, numbers


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1.5em;
       color: #222; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f2f2f2; }
.note { color: #666; font-size: 0.88em; } .warn { color: #a04000; font-weight: 600; }
pre { background: #f7f7f7; padding: 0.8em; font-size: 0.85em; overflow-x: auto; }
img { max-width: 100%; }
"""


def write_report(
    model_dir: str | Path,
    output: str | Path,
    *,
    baseline_dir: str | Path | None = None,
    test: Sequence[str] = (),
    bad_rows: str | None = None,
) -> str:
    """Writes the report of `model_dir` to `output`; returns a one-line summary.

    Args:
        model_dir: the run.
        output: the HTML file.
        baseline_dir: a light_only run of the same light net, scored on the same rows.
        test: held-out file globs; default the run's recorded eval files.
        bad_rows: the bad-row policy for reading them; None takes the run's.
    """
    from rocketctr.serving.run_restore import eval_rows

    model_dir = Path(model_dir)
    try:
        config = load_run_config(model_dir)
        data = list(test) or read_eval_patterns(model_dir)
        baseline_config = load_run_config(Path(baseline_dir)) if baseline_dir else None
    except RunFileError as e:
        raise ConfigError(str(e)) from None
    if not data:
        raise ConfigError(f"{model_dir} recorded no eval data: give the rows to score with --test.")
    if baseline_config is not None and baseline_config.distill.mode != "light_only":
        raise ConfigError(
            f"--baseline_dir {baseline_dir} is a {baseline_config.distill.mode!r} run; the "
            "baseline is the same light net trained alone (distill.mode light_only)."
        )
    evaluation = evaluate_run(model_dir, data, bad_rows=bad_rows)
    baseline = (
        evaluate_run(baseline_dir, data, tower="light", bad_rows=bad_rows) if baseline_dir else None
    )
    history = run_history(model_dir, unreadable="The report has no training curves.")
    monitor, _ = selection_monitor(config)
    selected = selected_epoch(history, config)
    features, _ = eval_rows(
        run_schema(model_dir, config),
        data,
        bad_rows or config.train.bad_rows,
        max(LATENCY_BATCHES),
    )
    rows = {c: v.numpy() for c, v in features.items()}
    serving_html, serving = serving_section(
        model_dir, evaluation["global_step"], rows, evaluation["light"] or SINGLE_LIGHT
    )
    header, table_rows, lift = metrics_rows(evaluation, baseline)

    warnings = []
    users = [v["gauc_users"] for v in evaluation["towers"].values() if "gauc_users" in v]
    if users and min(users) < FEW_GAUC_USERS:
        warnings.append(f"GAUC averages over only {min(users):,} users: it says little.")
    last = history[-1] if history else {}
    if len(history) > 1 and selected == last["epoch"] and last.get("stop") != EARLY_STOPPING:
        warnings.append(
            "The selected epoch is the last one: the nets were still improving; "
            "train longer (train.num_epochs)."
        )
    if baseline_config is not None and (
        baseline_config.model.light_nets()[baseline["light"]]
        != config.model.light_nets().get(evaluation["light"])
    ):
        warnings.append(
            "The baseline's light net is not this run's light net: the lift "
            "compares different nets."
        )
    source = "held-out test data" if test else "the run's eval data (model selection saw it)"
    parts = [
        f"<h1>rocketctr launch report: {html.escape(str(model_dir))}</h1>",
        f"<p class=note>Written {datetime.datetime.now().isoformat(timespec='seconds')}. "
        f"Checkpoint <code>{html.escape(evaluation['checkpoint'])}</code> (global step "
        f"{evaluation['global_step']:,}), mode {html.escape(config.distill.mode)}, light "
        f"{html.escape(_tower_names(config.model.light_nets()))}, "
        + (
            f"boosters {html.escape(_tower_names(config.model.boosters))} (their "
            f"{_MIXTURES[config.model.booster_mixture]} teaches, as booster)"
            if config.model.boosters
            else f"booster {html.escape(config.model.booster.name)}"
        )
        + "."
        "</p>",
        *(f"<p class=warn>{html.escape(w)}</p>" for w in warnings),
        f"<h2>Metrics on {html.escape(source)}</h2>",
        f"<p class=note>{html.escape(', '.join(data))}: {html.escape(evaluation['bad_rows'])}. "
        + html.escape(_scored_with(evaluation))
        + "</p>",
        _table(header, table_rows),
    ]
    if lift is not None:
        parts += [
            "<h2>Did distillation pay off?</h2>",
            _lift_table(lift),
            "<p class=note>Gap closed = (light − baseline) / (booster − baseline), in AUC on "
            "the rows above. One run each: compare seeds before deciding.</p>",
        ]
    parts += ["<h2>Calibration (reliability)</h2>", reliability_plot(evaluation["towers"])]
    if history:
        curve_towers = ["booster", *(n for n in evaluation["towers"] if n != "booster")]
        parts += [
            "<h2>Training</h2>",
            curves_plot(history, selected, curve_towers),
            f"<p class=note>{len(history)} epoch(s); selected epoch {selected} by "
            f"{html.escape(monitor)}; training ended by "
            f"{html.escape(str(history[-1].get('stop')))}.{_teacher_note(history)}</p>",
        ]
        if config.distill.mode not in ("light_only", "booster_only"):
            parts.append(hint_weight_plot(config, evaluation["global_step"]))
    config_text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    if len(config.model.light_nets()) > 1 and config.distill.mode != "booster_only":
        parts += [
            "<h2>The frontier: quality against serving latency</h2>",
            frontier_section(model_dir, data, baseline_dir, bad_rows),
        ]
    parts += [
        "<h2>Serving cost</h2>",
        serving_html,
        "<h2>Config</h2>",
        "<details><summary>The run's resolved config</summary>"
        f"<pre>{html.escape(config_text)}</pre></details>",
    ]
    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>rocketctr report: {html.escape(model_dir.name)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    write_atomically(Path(output), page)
    summary = f"Wrote {output}: " + ", ".join(
        f"{t} AUC {v['auc']:.4f}" for t, v in evaluation["towers"].items()
    )
    if lift is not None:
        summary += f"; light lift over the baseline {lift['auc_lift']:+.4f} AUC"
        if "gap_closed" in lift:
            summary += f", gap closed {100 * lift['gap_closed']:.0f} %"
    if serving is not None:
        summary += "; export latency here " + ", ".join(
            f"{ms:.2f} ms at batch {b}" for b, ms in serving["latency_ms"].items()
        )
    return summary


def _teacher_note(history: list[dict]) -> str:
    """Where the booster stopped teaching from live weights, as a sentence, or ""."""
    stop = teacher_stop(history)
    if stop is None:
        return ""
    return (
        f" The booster stopped training after epoch {stop['epoch']} and taught from its best "
        f"epoch, {stop['teacher_stopped']}, frozen, from then on."
    )


_MIXTURES = {"mean": "mean logit", "gated": "gated mixture"}  # model.booster_mixture


def _tower_names(nets: dict) -> str:
    """'mlp', or 'mlp32 (mlp), mlp128 (mlp)' for several nets by name."""
    if len(nets) == 1:
        return next(iter(nets.values())).name
    return ", ".join(f"{n} ({tower.name})" for n, tower in nets.items())


def _scored_with(evaluation: dict[str, Any]) -> str:
    parity = evaluation["export_parity"]
    if parity is None:
        return "Both nets scored from the checkpoint."
    return (
        f"The light net scored through the export {parity['export']}, which matches the "
        f"checkpoint on every row (max |Δp| {parity['max_abs_diff']:.2g})."
    )


def _lift_table(lift: dict[str, float]) -> str:
    rows = [
        ["light AUC lift over the baseline", f"{lift['auc_lift']:+.4f}"],
        ["light logloss change", f"{lift['logloss_change']:+.4f}"],
    ]
    if "gap_closed" in lift:
        rows += [
            ["booster AUC over the baseline", f"{lift['booster_auc_over_baseline']:+.4f}"],
            ["gap closed", f"{100 * lift['gap_closed']:.0f} %"],
        ]
    return _table(["", ""], rows)
