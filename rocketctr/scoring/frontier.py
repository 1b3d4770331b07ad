"""The frontier of a run's light nets: quality against serving cost, and which one to ship.

For each light net of a run (`model.lights`, each at its own best epoch) and for its
booster, on labelled rows:
- AUC, logloss and GAUC (`evaluation.evaluate_run`);
- analytic FLOPs per example, parameters, and the bytes of its SavedModel;
- serving latency of that SavedModel's `serving_default` at several batch sizes, in-process:
  "loop" (the graph alone, what a C++ server pays) and "call" (plus a Python call), timed
  side by side (serving/latency.py);
- with a baseline run (the same light nets trained `light_only`), each net's lift over
  its alone-trained self.

The Pareto set holds the nets no other net beats on both AUC and latency at the chosen
batch. With a latency budget, the pick is the light net of highest AUC within it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rocketctr.config.core import ConfigError
from rocketctr.runs.rundir import BEST_DIR, read_eval_patterns, restore_run
from rocketctr.runs.selected import load_light
from rocketctr.scoring.evaluation import evaluate_run, run_history

BATCH_SIZES = (1, 100, 1000)
MODES = ("loop", "call")


def measure_frontier(
    model_dir: str | Path,
    data: Sequence[str] | None = None,
    *,
    baseline_dir: str | Path | None = None,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    batch: int = 100,
    latency_budget_ms: float | None = None,
    bad_rows: str | None = None,
    reps: int = 100,
    loop_seconds: float = 0.2,
    rounds: int = 5,
) -> dict[str, Any]:
    """Measures every net of a run; see the module docstring.

    Args:
        model_dir: a `rocketctr train` model dir.
        data: labelled file globs in the run's schema; default the run's eval files.
        baseline_dir: a light_only run of the same light nets, for the lift.
        batch_sizes: the batch sizes timed.
        batch: the batch size the Pareto set and the budget are judged at (timed too).
        latency_budget_ms: pick the best light net whose loop latency at `batch` is within
            it.
        bad_rows: the bad-row policy; None takes the run's.
        reps, loop_seconds, rounds: how long each timing runs (serving/latency.py).

    Returns:
        JSON-able: {"model_dir", "data", "batch", "latency_budget_ms", "nets": [row, ...],
        "pareto": [names], "pick": name or None, "pick_reason"}; each row holds name,
        kind ("light" or "booster"), auc, logloss, gauc, flops, parameters,
        export_bytes, latency_ms {mode: {batch: ms}}, flops_ratio and latency_ratio (the
        booster's over its own, at `batch`, loop mode), and "alone" and "lift" with a
        baseline.
    """
    from rocketctr import serving

    model_dir = Path(model_dir)
    model, config, _, _ = restore_run(model_dir, error=ConfigError, train=False)
    if not model.has_light:
        raise ConfigError(f"{model_dir} has no light net (distill.mode 'booster_only').")
    patterns = list(data or read_eval_patterns(model_dir))
    if not patterns:
        raise ConfigError(f"{model_dir} recorded no eval data: give --data.")
    batch_sizes = sorted({*batch_sizes, batch})
    evaluation = evaluate_run(model_dir, patterns, tower="both", bad_rows=bad_rows)
    alone = (
        evaluate_run(baseline_dir, patterns, tower="both", bad_rows=bad_rows)["towers"]
        if baseline_dir
        else {}
    )
    features, _ = serving.eval_rows(
        model.schema, patterns, bad_rows or config.train.bad_rows, max(batch_sizes)
    )
    rows = _tiled({c: np.asarray(v) for c, v in features.items()}, max(batch_sizes))
    nets: dict[str, dict[str, Any]] = {}
    history = run_history(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        if model.has_booster:  # before any light net's best rows are loaded into the table
            dirs["booster"] = serving.export_tower(model, Path(tmp) / "booster", "booster")
            nets["booster"] = _costs(model, "booster")
        for name, path in _exported_lights(model, model_dir / BEST_DIR, history, Path(tmp)):
            dirs[name], nets[name] = path, _costs(model, "light")
        for name, path in dirs.items():
            nets[name]["export_bytes"] = serving.saved_model_bytes(path)
        latency = time_saved_models(dirs, rows, batch_sizes, reps, loop_seconds, rounds)
    towers = evaluation["towers"]
    for name, row in nets.items():
        row.update(
            name=name,
            kind="booster" if name == "booster" else "light",
            auc=towers[name]["auc"],
            logloss=towers[name]["logloss"],
            gauc=towers[name].get("gauc"),
            latency_ms=latency[name],
        )
        if name in alone:
            row["alone"] = {k: alone[name][k] for k in ("auc", "logloss")}
            row["lift"] = {k: row[k] - alone[name][k] for k in ("auc", "logloss")}
    booster = nets.get("booster")
    for row in nets.values():
        if booster is not None:
            row["flops_ratio"] = booster["flops"] / max(row["flops"], 1)
            row["latency_ratio"] = (
                booster["latency_ms"]["loop"][batch] / row["latency_ms"]["loop"][batch]
            )
    ordered = [nets[n] for n in model.light_nets] + ([booster] if booster else [])
    pick, reason = pick_light(ordered, batch, latency_budget_ms)
    return {
        "model_dir": str(model_dir),
        "data": patterns,
        "batch": batch,
        "latency_budget_ms": latency_budget_ms,
        "nets": ordered,
        "pareto": pareto_set(ordered, batch),
        "pick": pick,
        "pick_reason": reason,
    }


def time_saved_models(
    dirs: dict[str, Path],
    rows: dict[str, np.ndarray],
    batch_sizes: Sequence[int],
    reps: int = 100,
    loop_seconds: float = 0.2,
    rounds: int = 5,
    modes: Sequence[str] = MODES,
) -> dict[str, dict[str, dict[int, float]]]:
    """{name: {mode: {batch: ms}}}: each SavedModel's `serving_default` timed side by side
    on the first rows of `rows` (serving/latency.py)."""
    from rocketctr.serving.latency import graph_loop, signature_inputs, time_calls, time_loops

    loaded = {n: tf.saved_model.load(str(d)) for n, d in dirs.items()}  # owns the variables
    signatures = {n: loaded[n].signatures["serving_default"] for n in dirs}
    latency: dict[str, dict[str, dict[int, float]]] = {n: {m: {} for m in modes} for n in dirs}
    for size in batch_sizes:
        inputs = {n: signature_inputs(signatures[n], rows, size) for n in dirs}
        if "call" in modes:
            for n, ms in time_calls(signatures, inputs, reps, max(reps // 10, 2)).items():
                latency[n]["call"][size] = ms
        if "loop" in modes:
            loops = {n: (graph_loop(lambda f, s=signatures[n]: s(**f)), (inputs[n],)) for n in dirs}
            for n, ms in time_loops(loops, loop_seconds, rounds).items():
                latency[n]["loop"][size] = ms
    return latency


def light_within_budget(
    model, model_dir: str | Path, history: list[dict], features: dict, aucs: dict[str, float]
) -> str:
    """The light net a run of several exports under `export.latency_budget_ms`: the best
    validation AUC (`aucs`) whose loop latency at `export.latency_batch` fits. Leaves it
    selected, at its best epoch.

    Raises:
        ConfigError: no light net fits the budget (the line names the fastest).
    """

    export = model.rocket_config.export
    batch = export.latency_batch
    rows = _tiled({c: np.asarray(v) for c, v in features.items()}, batch)
    best_dir = Path(model_dir) / BEST_DIR
    with tempfile.TemporaryDirectory() as tmp:
        dirs = dict(_exported_lights(model, best_dir, history, Path(tmp)))
        latency = time_saved_models(dirs, rows, [batch], rounds=3, modes=("loop",))
    table = [{"name": n, "kind": "light", "auc": aucs[n], "latency_ms": latency[n]} for n in dirs]
    pick, reason = pick_light(table, batch, export.latency_budget_ms)
    if pick is None:
        raise ConfigError(
            f"export.latency_budget_ms: {reason}. Nothing exported; raise the budget, or "
            "export one with rocketctr export --light NAME."
        )
    print(f"Exporting light net {pick}: {reason}.")
    load_light(model, best_dir, history, pick)
    return pick


def _exported_lights(model, best_dir: Path, history: list[dict], directory: Path):
    """(name, SavedModel path) of each light net, exported unverified into `directory` for
    timing at its own best epoch; the model holds that net's weights while its pair is used."""
    from rocketctr import serving

    for name in model.light_nets:
        load_light(model, best_dir, history, name)
        yield name, serving.export_tower(model, directory / name, "light")


def _costs(model, kind: str) -> dict[str, Any]:
    """FLOPs per example and parameters of the model's booster, or of its selected light."""
    from rocketctr import serving

    return {
        "flops": serving.tower_flops(model)[kind],
        "parameters": serving.parameter_counts(model)[kind],
    }


def _tiled(rows: dict[str, np.ndarray], num_rows: int) -> dict[str, np.ndarray]:
    """`rows` repeated to at least `num_rows` (a small eval file still times batch 1000)."""
    n = len(next(iter(rows.values())))
    if n >= num_rows:
        return rows
    return {c: np.resize(v, num_rows) for c, v in rows.items()}


def latency_at(row: dict[str, Any], batch: int, mode: str = "loop") -> float:
    latency = row["latency_ms"][mode]
    return latency[batch] if batch in latency else latency[str(batch)]  # JSON keys: str


def pareto_set(rows: Sequence[dict[str, Any]], batch: int) -> list[str]:
    """The names of the nets no other net beats on both AUC and loop latency at `batch`
    (at least as good on both, better on one)."""
    front = []
    for row in rows:
        a, t = row["auc"], latency_at(row, batch)
        dominated = any(
            o is not row
            and o["auc"] >= a
            and latency_at(o, batch) <= t
            and (o["auc"] > a or latency_at(o, batch) < t)
            for o in rows
        )
        if not dominated:
            front.append(row["name"])
    return front


def pick_light(
    rows: Sequence[dict[str, Any]], batch: int, budget_ms: float | None
) -> tuple[str | None, str]:
    """The light net to ship: the best AUC whose loop latency at `batch` is within
    `budget_ms`; without a budget, the best AUC. (name or None, why)."""
    lights = [r for r in rows if r["kind"] == "light"]
    if budget_ms is None:
        best = max(lights, key=lambda r: r["auc"])
        return best["name"], "highest AUC (no latency budget given)"
    fitting = [r for r in lights if latency_at(r, batch) <= budget_ms]
    if not fitting:
        fastest = min(lights, key=lambda r: latency_at(r, batch))
        return None, (
            f"no light net fits {budget_ms:g} ms at batch {batch}: the fastest, "
            f"{fastest['name']}, takes {latency_at(fastest, batch):.3f} ms"
        )
    best = max(fitting, key=lambda r: r["auc"])
    return best["name"], (
        f"highest AUC within {budget_ms:g} ms at batch {batch} ({latency_at(best, batch):.3f} ms)"
    )


def format_frontier(result: dict[str, Any]) -> str:
    """The frontier as a text table, the Pareto set and the pick."""
    batch = result["batch"]
    sizes = sorted(int(b) for b in result["nets"][0]["latency_ms"]["loop"])
    lift = any("lift" in r for r in result["nets"])
    header = f"{'net':<12}{'auc':>8}{'logloss':>9}{'gauc':>8}{'MFLOPs':>9}{'params':>11}{'MiB':>7}"
    header += "".join(f"{f'ms@{b}':>10}" for b in sizes) + f"{'x faster':>9}"
    header += f"{'lift':>9}" if lift else ""
    lines = [header]
    for r in result["nets"]:
        gauc = f"{r['gauc']:.4f}" if r.get("gauc") is not None else "-"
        line = (
            f"{r['name']:<12}{r['auc']:>8.4f}{r['logloss']:>9.4f}{gauc:>8}"
            f"{r['flops'] / 1e6:>9.3f}{r['parameters']['total']:>11,}"
            f"{r['export_bytes'] / 2**20:>7.1f}"
        )
        line += "".join(f"{latency_at(r, b):>10.3f}" for b in sizes)
        ratio = r.get("latency_ratio")
        line += f"{ratio:>9.2f}" if ratio is not None else f"{'-':>9}"
        if lift:
            line += f"{r['lift']['auc']:>+9.4f}" if "lift" in r else f"{'-':>9}"
        lines.append(line + ("  *" if r["name"] in result["pareto"] else ""))
    lines.append(
        f"ms@N: loop latency of the SavedModel's serving_default at batch N (in-process, "
        f"the graph alone); x faster: the booster's loop latency at batch {batch} over the "
        "net's; * the Pareto set (no net is better on both AUC and latency there)."
    )
    lines.append(f"Pick: {result['pick'] or 'none'}: {result['pick_reason']}")
    return "\n".join(lines)
