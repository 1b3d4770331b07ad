"""rocketctr at scale: a long stream, and tables of 1M to 40M rows, in time, memory and disk.

**Tables.** For each table size, a copy of the criteo schema whose hash buckets are scaled up
to that many rows (every field in proportion; the light net reads them all, as in a plain
co_train run) trains the default preset's DCN booster and MLP-32 light net for two epochs
of `--steps` steps at batch 4096 on synthetic rows (`rocketctr train --noexport`), once per
embedding optimizer. Per run: seconds per step (the second epoch's, traced already), peak
RSS, the bytes of one epoch checkpoint and how long its write took (the life of
TensorFlow's `ckpt-N_temp/` directory, watched every 20 ms), and the run dir's bytes. Then
`rocketctr export` exports the light net of the first optimizer's run once per exporter and
embedding dtype. Each command runs in its own process; its peak resident memory is its
VmHWM (see `run`). A table of `--base_rows` rows gives each command's constant
(TensorFlow, the graph, the data pipeline), so the growth over it is what the table costs.
A dense-update optimizer (adam) is run up to `--dense_max_rows` only: it needs several
tables more memory than the others.

**Stream.** `--stream_rows` rows (24M) at batch 4096 through the default preset's co_train
run (DCN 256-128-64, MLP-32, criteo schema), in four epochs of a quarter each over a
repeated synthetic file: RSS every second and examples/s per quarter.

    python benchmarks/scale.py                        # 1M, 10M, 40M rows; a 24M-row stream
    python benchmarks/scale.py --rows 1000000 --stream_rows 0 --optimizers adagrad
    python benchmarks/scale.py --code before=/path/to/an/old/checkout --code after=.

`--code NAME=DIR` runs the export with the rocketctr package of checkout DIR (PYTHONPATH),
one after the other on the same trained run, so exporters are compared on identical
checkpoints; their exported variables are compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

# isort: split
from rocketctr.data.synthetic import ensure_synthetic_criteo  # noqa: E402
from rocketctr.features.schema import load_schema  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "data_schemas" / "criteo.yaml"
TABLE_RUN = [  # the default preset's towers
    "train.num_epochs=2",
    "train.checkpoint_every_steps=0",
    "train.keep_checkpoints=1",  # 40M rows: one lazy_adam checkpoint is 7.7 GB
]
# Learning rates of the embedding optimizers (they move the numbers, not the timings).
OPTIMIZER_RATES = {"adagrad": 0.05, "lazy_adam": 0.001, "adam": 0.001}
DENSE_OPTIMIZERS = ("adam",)  # update every row of the table at every step
STREAM_BATCH = 4096
MiB, GiB = 2**20, 2**30
_TEMP_DIR = re.compile(r"ckpt-\d+_temp(_[0-9a-f]+)?")  # a checkpoint being written


def scaled_schema(rows: int, directory: Path) -> tuple[Path, int]:
    """A copy of the criteo schema with about `rows` table rows; (its path, its exact rows)."""
    spec = yaml.safe_load(SCHEMA.read_text())
    total = sum(f["hash_buckets"] for f in spec["categorical"])
    for f in spec["categorical"]:
        f["hash_buckets"] = max(1, round(f["hash_buckets"] * rows / total))
    spec["name"] = f"criteo_{rows}"
    path = directory / f"criteo_{rows}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path, sum(f.num_rows for f in load_schema(str(path)).categorical)


@dataclass
class Process:
    """What one command did: its peak RSS, seconds and output, and what was watched."""

    peak_rss: int
    seconds: float
    text: str
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds in, bytes)
    saves: list[float] = field(default_factory=list)  # seconds of each checkpoint write


def _status(pid: int, *keys: str) -> list[int] | None:
    """Values in bytes of /proc/<pid>/status lines (VmRSS, VmHWM), or None once it exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = [re.search(rf"^{key}:\s+(\d+) kB", status, re.M) for key in keys]
    return [int(m[1]) * 1024 for m in found] if all(found) else None


def run(command: list[str], code: Path, log: Path, checkpoints: Path | None = None) -> Process:
    """Runs `python -m rocketctr.cli <command>` with `code`'s package first on the path,
    sampling its RSS every second and, in `checkpoints`, how long each checkpoint write
    lasts. Raises on a failure.

    Its peak is its VmHWM, read every 20 ms until it exits (a high-water mark: the last
    read holds every peak before it). Not wait4's ru_maxrss: Linux carries that over the
    exec from this process, which forked it (a 1M-row synthetic file made here would set
    every command's floor).
    """
    env = dict(os.environ, PYTHONPATH=str(code), TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    rss, writing, saves, peak = [], {}, [], 0
    next_sample = 0.0
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rocketctr.cli", *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(code),
        )
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            now = time.perf_counter() - start
            if pid:
                break
            values = _status(proc.pid, "VmRSS", "VmHWM")
            if values is not None:
                peak = max(peak, values[1])
                if now >= next_sample:
                    rss.append((round(now, 1), values[0]))
                    next_sample = now + 1.0
            if checkpoints is not None:
                names = set()
                if checkpoints.is_dir():
                    names = {p.name for p in checkpoints.iterdir() if _TEMP_DIR.fullmatch(p.name)}
                for name in names:
                    writing.setdefault(name, now)
                for name in set(writing) - names:
                    saves.append(now - writing.pop(name))
            time.sleep(0.02)
    returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    text = log.read_text()
    if returncode:
        raise RuntimeError(
            f"{' '.join(command[:1])} failed ({returncode}), see {log}:\n" + text[-2000:]
        )
    return Process(peak, seconds, text, rss, saves)


def directory_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def checkpoint_bytes(run_dir: Path) -> int:
    """The bytes of the newest epoch checkpoint in `run_dir`."""
    indexes = sorted(
        (run_dir / "checkpoints").glob("ckpt-*.index"),
        key=lambda p: int(p.name[len("ckpt-") : -len(".index")]),
    )
    prefix = str(indexes[-1])[: -len(".index")]
    return sum(p.stat().st_size for p in Path(prefix).parent.glob(Path(prefix).name + ".*"))


def commit(checkout: Path) -> str:
    """The checkout's commit, with "+changes" when its tracked files differ from it."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(checkout), *args], capture_output=True, text=True
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def digest(directory: Path) -> str:
    """sha256 over the files of a SavedModel's variables/ (the exported numbers)."""
    h = hashlib.sha256()
    for path in sorted((directory / "variables").iterdir()):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def graph_digest(directory: Path) -> str:
    """sha256 of a SavedModel's saved_model.pb as text, less what a process numbers: traced
    functions are named `__inference_<name>_<uid>` and some attributes hold uids, from a
    counter that any earlier trace in the process advances."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((directory / "saved_model.pb").read_bytes())
    text = re.sub(r"(__inference_\w*?)_\d+\b", r"\1", str(proto))
    lines = sorted(re.sub(r'^(\s*s: )"\d+"$', r"\1<uid>", line) for line in text.splitlines())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def train_command(run_dir: Path, data: tuple[Path, Path], sets: list[str]) -> list[str]:
    """`rocketctr train` of `data` (train, eval files) into `run_dir`, with `--set`s."""
    return [
        "train",
        f"--model_dir={run_dir}",
        f"--train={data[0]}",
        f"--eval={data[1]}",
        "--noexport",
        *(f"--set={s}" for s in sets),
    ]


def train_tables(args, rows: int, optimizer: str, data, code: Path, work: Path):
    """Trains one run of `rows` table rows with `optimizer` on its tables; (its dir, its
    exact table rows, what it measured)."""
    schema, table_rows = scaled_schema(rows, work)
    run_dir = work / f"run_{rows}_{optimizer}"
    sets = [
        f"schema={schema}",
        f"model.embedding_dim={args.dim}",
        f"train.steps_per_epoch={args.steps}",
        f"train.batch_size={args.batch_size}",
        f"train.embedding_optimizer.name={optimizer}",
        f"train.embedding_optimizer.learning_rate={OPTIMIZER_RATES[optimizer]}",
        *TABLE_RUN,
        *args.set,
    ]
    command = train_command(run_dir, data, sets)
    log = work / f"train_{rows}_{optimizer}.log"
    process = run(command, code, log, checkpoints=run_dir / "checkpoints")
    history = json.loads((run_dir / "history.json").read_text())
    result = {
        "optimizer": optimizer,
        "peak_rss": process.peak_rss,
        "seconds": round(process.seconds, 1),
        "step_seconds": history[-1]["seconds"] / args.steps,
        "checkpoint_bytes": checkpoint_bytes(run_dir),
        "checkpoint_write_seconds": [round(x, 2) for x in process.saves],
        "run_dir_bytes": directory_bytes(run_dir),
    }
    print(
        f"{table_rows:,} rows, {optimizer}: {result['step_seconds']:.3f} s/step, train peak "
        f"{process.peak_rss / MiB:,.0f} MiB, checkpoint {result['checkpoint_bytes'] / GiB:.2f} "
        f"GiB written in {max(process.saves, default=0):.1f} s",
        flush=True,
    )
    return run_dir, table_rows, result


def measure(args, rows: int, data: tuple[Path, Path], codes: dict[str, Path], work: Path):
    """Trains runs of `rows` table rows, one per optimizer, and exports the first one with
    every code and dtype. Each run dir is deleted before the next run: at 40M rows one holds
    tens of GB (checkpoint, best/ copies)."""
    train_code = next(iter(codes.values()))
    result = {"optimizers": [], "exports": []}
    for optimizer in args.optimizers:
        if optimizer in DENSE_OPTIMIZERS and rows > args.dense_max_rows:
            print(f"{rows:,} rows, {optimizer}: skipped (above --dense_max_rows)", flush=True)
            continue
        run_dir, table_rows, trained = train_tables(args, rows, optimizer, data, train_code, work)
        result["optimizers"].append(trained)
        if not result["exports"]:
            result.update(
                rows=table_rows,
                table_bytes=table_rows * args.dim * 4,
                train={"peak_rss": trained["peak_rss"], "seconds": trained["seconds"]},
                exports=export_all(args, rows, run_dir, codes, work),
            )
        shutil.rmtree(run_dir)
    return result


def export_all(args, rows: int, run_dir: Path, codes: dict[str, Path], work: Path) -> list:
    """Exports the light net of `run_dir` with every code and dtype."""
    exports = []
    for dtype in args.dtypes:
        for name, code in codes.items():
            base = run_dir / f"export_{name}_{dtype}"
            command = [
                "export",
                f"--model_dir={run_dir}",
                f"--export_dir={base}",
                "--force",
                f"--set=export.embedding_dtype={dtype}",
            ]
            process = run(command, code, work / f"export_{rows}_{name}_{dtype}.log")
            own = re.search(r"peak memory ([0-9,]+) MiB", process.text)
            exports.append(
                {
                    "code": name,
                    "dtype": dtype,
                    "peak_rss": process.peak_rss,
                    "seconds": round(process.seconds, 1),
                    "reported_peak_mib": int(own[1].replace(",", "")) if own else None,
                    "variables_sha256": digest(base / "1"),
                    "graph_sha256": graph_digest(base / "1"),
                }
            )
            print(
                f"  export {name} {dtype}: peak {process.peak_rss / MiB:,.0f} MiB in "
                f"{process.seconds:.0f} s",
                flush=True,
            )
            shutil.rmtree(base)
    return exports


def stream(args, code: Path, work: Path) -> dict:
    """`--stream_rows` rows through the default preset's co_train run, in four quarters."""
    file_rows = min(args.stream_file_rows, args.stream_rows)
    data = ensure_synthetic_criteo(work / "data", file_rows, 2_000, seed=1)
    steps = math.ceil(args.stream_rows / 4 / STREAM_BATCH)
    run_dir = work / "run_stream"
    sets = [
        f"train.batch_size={STREAM_BATCH}",
        "train.num_epochs=4",
        f"train.steps_per_epoch={steps}",
    ]
    command = train_command(run_dir, data, [*sets, *args.set])
    print(f"Streaming {4 * steps * STREAM_BATCH:,} rows ...", flush=True)
    process = run(command, code, work / "stream.log")
    history = json.loads((run_dir / "history.json").read_text())
    shutil.rmtree(run_dir)
    quarters = [steps * STREAM_BATCH / r["seconds"] for r in history]
    print(
        f"  ex/s per quarter: {', '.join(f'{q:,.0f}' for q in quarters)}; peak "
        f"{process.peak_rss / MiB:,.0f} MiB",
        flush=True,
    )
    return {
        "rows": 4 * steps * STREAM_BATCH,
        "file_rows": file_rows,
        "batch_size": STREAM_BATCH,
        "seconds": round(process.seconds, 1),
        "peak_rss": process.peak_rss,
        "examples_per_s": quarters,
        "rss": process.rss,
    }


def ratios(results: list[dict]) -> None:
    """Adds each peak's growth over the smallest run's, in tables, to every result."""
    base = results[0]
    base_exports = {(e["code"], e["dtype"]): e["peak_rss"] for e in base["exports"]}
    for r in results:
        extra = r["table_bytes"] - base["table_bytes"]
        r["train"]["ratio"] = r["train"]["peak_rss"] / r["table_bytes"]
        r["train"]["growth_tables"] = (
            (r["train"]["peak_rss"] - base["train"]["peak_rss"]) / extra if extra else None
        )
        for e in r["exports"]:
            e["ratio"] = e["peak_rss"] / r["table_bytes"]
            grown = e["peak_rss"] - base_exports[e["code"], e["dtype"]]
            e["growth_tables"] = grown / extra if extra else None


def memory_markdown(payload: dict) -> str:
    results, codes = payload["results"], list(payload["codes"])
    headers = ["table rows", "table MiB", "train peak MiB", "train growth / table"]
    for dtype in payload["dtypes"]:
        for name in codes:
            headers += [f"export {name} {dtype} MiB", f"growth / table ({name} {dtype})"]

    def growth(value):
        return "–" if value is None else f"{value:.2f}x"

    rows = []
    for r in results:
        row = [
            f"{r['rows']:,}",
            round(r["table_bytes"] / MiB),
            round(r["train"]["peak_rss"] / MiB),
            growth(r["train"]["growth_tables"]),
        ]
        exports = {(e["code"], e["dtype"]): e for e in r["exports"]}
        for dtype in payload["dtypes"]:
            for name in codes:
                e = exports[name, dtype]
                row += [round(e["peak_rss"] / MiB), growth(e["growth_tables"])]
        rows.append(row)
    same, graphs = [], []
    for r in results:
        for dtype in payload["dtypes"]:
            exports = [e for e in r["exports"] if e["dtype"] == dtype]
            same.append(len({e["variables_sha256"] for e in exports}) == 1)
            graphs.append(len({e["graph_sha256"] for e in exports}) == 1)
    reported = [
        abs(e["reported_peak_mib"] - e["peak_rss"] / MiB)
        for r in results
        for e in r["exports"]
        if e["reported_peak_mib"] is not None
    ]
    checkouts = ", ".join(f"{n}: {c['commit']}" for n, c in payload["codes"].items())
    text = (
        f"## Peak memory of training and export against the table\n\n"
        f"Exporters {checkouts}. Dim {payload['dim']}, float32 training table (light net reads "
        f"every row), the run trained with {payload['optimizers'][0]} tables. Peak RSS of each "
        f"process (VmHWM); growth / table = (peak − the "
        f"{results[0]['rows']:,}-row run's peak) / (table bytes − its table bytes).\n\n"
        + common.markdown_table(headers, rows)
        + "\n\nExported variables (variables/, byte for byte) identical across exporters for "
        + f"every size and dtype: {'yes' if all(same) else 'NO'}; graphs (saved_model.pb, "
        + "traced functions' numbering aside) identical: "
        + ("yes" if all(graphs) else "NO")
        + (
            f". The exporter's own `peak memory` line is within {max(reported):.0f} MiB of the "
            "measured peak."
            if reported
            else "."
        )
        + "\n"
    )
    return text


def optimizers_markdown(payload: dict) -> str:
    """A row per table size and optimizer: s/step (and against the smallest size above the
    base), peak RSS, one checkpoint's bytes and write time, the run dir."""
    results = payload["results"]
    sized = results[1:] or results  # past the base run
    first = {}  # optimizer: its s/step at the smallest size it ran
    for r in reversed(sized):
        first.update({o["optimizer"]: o["step_seconds"] for o in r["optimizers"]})
    rows = []
    for r in results:
        for o in r["optimizers"]:
            writes = o["checkpoint_write_seconds"]
            ckpt_gib = o["checkpoint_bytes"] / GiB
            write = max(writes) if writes else None
            rows.append(
                [
                    f"{r['rows']:,}",
                    o["optimizer"],
                    f"{o['step_seconds']:.3f}",
                    f"{o['step_seconds'] / first[o['optimizer']]:.2f}x"
                    if o["optimizer"] in first
                    else "–",
                    round(o["peak_rss"] / MiB),
                    f"{ckpt_gib:.2f}",
                    "–" if write is None else f"{write:.1f}",
                    "–" if not write or ckpt_gib < 0.5 else f"{write / ckpt_gib:.1f}",
                    f"{o['run_dir_bytes'] / GiB:.2f}",
                ]
            )
    headers = [
        "table rows",
        "embedding optimizer",
        "s / step",
        f"vs {sized[0]['rows']:,} rows",
        "train peak MiB",
        "checkpoint GiB",
        "its write s",
        "s / GiB",
        "run dir GiB",
    ]
    skipped = ", ".join(o for o in payload["optimizers"] if o in DENSE_OPTIMIZERS)
    return (
        "## Step time, memory and disk by embedding optimizer\n\n"
        f"Batch {payload['batch_size']}, {payload['steps']} steps per epoch; s / step is the "
        "second epoch's (its validation on 2,000 rows included). A checkpoint's write is the "
        "longest life of its `ckpt-N_temp/` directory (watched every 20 ms); the run dir keeps "
        "one checkpoint (`train.keep_checkpoints=1`) and best/."
        + (f" {skipped} runs up to {payload['dense_max_rows']:,} rows only." if skipped else "")
        + "\n\n"
        + common.markdown_table(headers, rows)
        + "\n"
    )


def stream_markdown(result: dict) -> str:
    """Examples/s per quarter of the stream and its RSS over time."""
    settled = [rss for t, rss in result["rss"] if t >= 60]
    seconds = result["seconds"]
    marks = [
        min(result["rss"], key=lambda sample, at=at: abs(sample[0] - at * seconds / 10))
        for at in range(1, 11)
    ]
    return (
        f"## A {result['rows']:,}-row stream\n\n"
        f"The default preset's co_train run (DCN 256-128-64 ∥ 3 crosses, MLP-32, criteo "
        f"schema) at batch {result['batch_size']:,}, four epochs of a quarter each over a "
        f"{result['file_rows']:,}-row synthetic file read again and again, {seconds:,.0f} s in "
        f"all. Examples/s per quarter (its validation on 2,000 rows included; the first "
        "quarter's includes tracing): "
        + ", ".join(f"{q:,.0f}" for q in result["examples_per_s"])
        + f". Peak RSS {result['peak_rss'] / MiB:,.0f} MiB"
        + (
            f"; after the first minute RSS stayed within {min(settled) / MiB:,.0f}–"
            f"{max(settled) / MiB:,.0f} MiB"
            if settled
            else ""
        )
        + ". RSS at each tenth of the run (s: MiB): "
        + ", ".join(f"{t:.0f}: {rss / MiB:,.0f}" for t, rss in marks)
        + ".\n"
    )


def markdown(payload: dict) -> str:
    parts = [
        f"# rocketctr at scale\n\nCommand: `{payload['command']}`. Machine: {payload['machine']}.\n"
    ]
    if payload.get("stream"):
        parts.append(stream_markdown(payload["stream"]))
    if payload["results"]:
        parts += [optimizers_markdown(payload), memory_markdown(payload)]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        default="1000000,10000000,40000000",
        help="Table sizes (comma-separated); empty for none.",
    )
    parser.add_argument(
        "--base_rows",
        type=int,
        default=20000,
        help="The small table whose peaks give each command's constant.",
    )
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40, help="Training steps per epoch.")
    parser.add_argument("--batch_size", type=int, default=4096)
    parser.add_argument("--optimizers", default="adagrad,lazy_adam,adam")
    parser.add_argument(
        "--dense_max_rows",
        type=int,
        default=10_000_000,
        help="The largest table a dense-update optimizer (adam) trains.",
    )
    parser.add_argument("--stream_rows", type=int, default=24_000_000, help="0: no stream.")
    parser.add_argument(
        "--stream_file_rows", type=int, default=1_000_000, help="The stream's repeated file."
    )
    parser.add_argument("--dtypes", default="float32,int8")
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="An exporter to measure (default: this checkout).",
    )
    parser.add_argument("--set", action="append", default=[], help="More training overrides.")
    parser.add_argument("--out", default="scale")
    parser.add_argument("--workdir", help="Where runs go (default: a temporary dir).")
    args = parser.parse_args(argv)
    args.dtypes = args.dtypes.split(",")
    args.optimizers = args.optimizers.split(",")
    unknown = set(args.optimizers) - set(OPTIMIZER_RATES)
    if unknown:
        parser.error(f"--optimizers: unknown {sorted(unknown)}; known: {sorted(OPTIMIZER_RATES)}")
    codes = dict(c.split("=", 1) for c in args.code) or {"this": str(ROOT)}
    codes = {name: Path(d).resolve() for name, d in codes.items()}
    sizes = [int(r) for r in args.rows.split(",") if r]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rocketctr_scale_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": "python benchmarks/scale.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "codes": {n: {"path": str(p), "commit": commit(p)} for n, p in codes.items()},
        "dim": args.dim,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "dtypes": args.dtypes,
        "optimizers": args.optimizers,
        "dense_max_rows": args.dense_max_rows,
        "stream": None,
        "results": [],
        "machine": common.machine_description(),
    }
    # Results are written after each part (a later one may fail: a full disk, memory).
    if args.stream_rows:
        payload["stream"] = stream(args, next(iter(codes.values())), work)
        common.write_results(args.out, payload, markdown(payload))
    if sizes:
        data = ensure_synthetic_criteo(work / "data", 20_000, 2_000, seed=0)
        for rows in [args.base_rows, *sizes]:
            payload["results"].append(measure(args, rows, data, codes, work))
            ratios(payload["results"])
            common.write_results(args.out, payload, markdown(payload))
    text = markdown(payload)
    paths = common.write_results(args.out, payload, text)
    print(text)
    print(f"Wrote {paths[0]} and {paths[1]}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
