"""Peak memory of training and of `rocketctr export` against the bytes of the table.

For each table size, a copy of the criteo schema whose hash buckets are scaled up to that
many rows (every field in proportion; the light net reads them all, as in a plain co_train
run) trains a tiny DCN booster and MLP light net for a few steps on synthetic rows
(`rocketctr train --noexport`), then `rocketctr export` exports the light net of that run
once per exporter and embedding dtype. Each command runs in its own process; its peak
resident memory is the kernel's (`os.wait4`, ru_maxrss). A table of `--base_rows` rows gives
each command's constant (TensorFlow, the graph, the data pipeline), so the growth over it
is what the table costs.

    python benchmarks/scale.py                        # 1M, 5M, 10M rows at dim 16
    python benchmarks/scale.py --code before=/path/to/an/old/checkout --code after=.

`--code NAME=DIR` runs the export with the rocketctr package of checkout DIR (PYTHONPATH),
one after the other on the same trained run, so exporters are compared on identical
checkpoints; their exported variables are compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; imports rocketctr before TensorFlow)

# isort: split
from rocketctr.data.synthetic import ensure_synthetic_criteo  # noqa: E402
from rocketctr.features.schema import load_schema  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "data_schemas" / "criteo.yaml"
TINY_MODEL = [
    "model.booster.hidden_units=[16]",
    "model.booster.num_cross_layers=1",
    "model.light.hidden_units=[8]",
    "train.batch_size=256",
    "train.num_epochs=1",
    "train.checkpoint_every_steps=0",
]
MiB = 2**20


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


def run(command: list[str], code: Path, log: Path) -> tuple[int, float, str]:
    """Runs `python -m rocketctr.cli <command>` with `code`'s package first on the path.

    Returns:
        (peak RSS in bytes of that process, seconds, its stdout). Raises on a failure.
    """
    env = dict(os.environ, PYTHONPATH=str(code), TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rocketctr.cli", *command], stdout=out,
            stderr=subprocess.STDOUT, env=env, cwd=str(code),
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    text = log.read_text()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command[:1])} failed ({proc.returncode}), see {log}:\n"
                           + text[-2000:])  # fmt: skip
    return usage.ru_maxrss * 1024, seconds, text


def commit(checkout: Path) -> str:
    """The checkout's commit, with "+changes" when its tracked files differ from it."""

    def git(*args):
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                              text=True).stdout.strip()  # fmt: skip

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


def measure(args, rows: int, data: tuple[Path, Path], codes: dict[str, Path], work: Path):
    """Trains one run of `rows` table rows and exports it with every code and dtype."""
    schema, table_rows = scaled_schema(rows, work)
    run_dir = work / f"run_{rows}"
    train_code = next(iter(codes.values()))
    sets = [f"schema={schema}", f"model.embedding_dim={args.dim}",
            f"train.steps_per_epoch={args.steps}", *TINY_MODEL, *args.set]  # fmt: skip
    command = ["train", f"--model_dir={run_dir}", f"--train={data[0]}", f"--eval={data[1]}",
               "--noexport", *(f"--set={s}" for s in sets)]  # fmt: skip
    peak, seconds, _ = run(command, train_code, work / f"train_{rows}.log")
    result = {
        "rows": table_rows,
        "table_bytes": table_rows * args.dim * 4,
        "train": {"peak_rss": peak, "seconds": round(seconds, 1)},
        "exports": [],
    }
    print(f"{table_rows:,} rows: train peak {peak / MiB:,.0f} MiB in {seconds:.0f} s", flush=True)
    for dtype in args.dtypes:
        for name, code in codes.items():
            base = run_dir / f"export_{name}_{dtype}"
            command = ["export", f"--model_dir={run_dir}", f"--export_dir={base}", "--force",
                       f"--set=export.embedding_dtype={dtype}"]  # fmt: skip
            peak, seconds, text = run(command, code, work / f"export_{rows}_{name}_{dtype}.log")
            own = re.search(r"peak memory ([0-9,]+) MiB", text)
            entry = {
                "code": name,
                "dtype": dtype,
                "peak_rss": peak,
                "seconds": round(seconds, 1),
                "reported_peak_mib": int(own[1].replace(",", "")) if own else None,
                "variables_sha256": digest(base / "1"),
                "graph_sha256": graph_digest(base / "1"),
            }
            result["exports"].append(entry)
            print(f"  export {name} {dtype}: peak {peak / MiB:,.0f} MiB in {seconds:.0f} s",
                  flush=True)  # fmt: skip
    shutil.rmtree(run_dir)  # checkpoints of the big tables: gigabytes
    return result


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


def markdown(payload: dict) -> str:
    results, codes = payload["results"], list(payload["codes"])
    headers = ["table rows", "table MiB", "train peak MiB", "train growth / table"]
    for dtype in payload["dtypes"]:
        for name in codes:
            headers += [f"export {name} {dtype} MiB", f"growth / table ({name} {dtype})"]

    def growth(value):
        return "–" if value is None else f"{value:.2f}x"

    rows = []
    for r in results:
        row = [f"{r['rows']:,}", round(r["table_bytes"] / MiB), round(r["train"]["peak_rss"] / MiB),
               growth(r["train"]["growth_tables"])]  # fmt: skip
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
    reported = [abs(e["reported_peak_mib"] - e["peak_rss"] / MiB) for r in results
                for e in r["exports"] if e["reported_peak_mib"] is not None]  # fmt: skip
    checkouts = ", ".join(f"{n}: {c['commit']}" for n, c in payload["codes"].items())
    text = (
        f"# Peak memory of training and export against the table\n\n"
        f"Command: `{payload['command']}` (exporters {checkouts})\n\n"
        f"Dim {payload['dim']}, float32 training table (light net reads every row), "
        f"embedding optimizer {payload['embedding_optimizer']}, {payload['steps']} training "
        f"steps. Peak RSS of each process (ru_maxrss); growth / table = (peak − the "
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
        + f"\n\nMachine: {payload['machine']}\n"
    )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000,5000000,10000000",
                        help="Table sizes (comma-separated).")  # fmt: skip
    parser.add_argument(
        "--base_rows",
        type=int,
        default=20000,
        help="The small table whose peaks give each command's constant.",
    )
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="Training steps.")
    parser.add_argument("--dtypes", default="float32,int8")
    parser.add_argument("--code", action="append", default=[], metavar="NAME=DIR",
                        help="An exporter to measure (default: this checkout).")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], help="More training overrides.")
    parser.add_argument("--out", default="scale_export")
    parser.add_argument("--workdir", help="Where runs go (default: a temporary dir).")
    args = parser.parse_args(argv)
    args.dtypes = args.dtypes.split(",")
    codes = dict(c.split("=", 1) for c in args.code) or {"this": str(ROOT)}
    codes = {name: Path(d).resolve() for name, d in codes.items()}
    sizes = [args.base_rows] + [int(r) for r in args.rows.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rocketctr_scale_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = ensure_synthetic_criteo(work / "data", 20_000, 2_000, seed=0)
    results = [measure(args, rows, data, codes, work) for rows in sizes]
    ratios(results)
    optimizer = next((s.split("=", 1)[1] for s in args.set
                      if s.startswith("train.embedding_optimizer.name=")), "adagrad")  # fmt: skip
    payload = {
        "command": "python benchmarks/scale.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "codes": {n: {"path": str(p), "commit": commit(p)} for n, p in codes.items()},
        "dim": args.dim,
        "steps": args.steps,
        "dtypes": args.dtypes,
        "embedding_optimizer": optimizer,
        "results": results,
        "machine": common.machine_description(),
    }
    text = markdown(payload)
    paths = common.write_results(args.out, payload, text)
    print(text)
    print(f"Wrote {paths[0]} and {paths[1]}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
