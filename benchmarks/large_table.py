"""Large tables: train tvae on a 5,000,000-row Adult-like Parquet file streamed from disk, peak memory.

Writes the table chunk by chunk (Adult resampled with replacement, numbers jittered, row groups of
100,000 rows; never 5M rows in pandas), then runs `synthgen train --stream --epochs 1` in a fresh
process under `/usr/bin/time -v` and reports peak resident memory, wall time and rows/s; for
contrast, a smaller table (1,000,000 rows) is trained both ways, streamed and in memory
(`--no-stream`: the whole table and its encoded matrix in memory). The files live in a temporary
folder that is deleted afterwards.

    python benchmarks/large_table.py                   # 5,000,000 rows streamed; 1,000,000 both ways
    python benchmarks/large_table.py --quick           # 200,000 rows both ways (about 30 s)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from measure import timed_synthgen  # noqa: E402  (benchmarks/ is the script folder)

GROUP = 100_000


def write_adult_like(path: Path, rows: int, *, seed: int = 0) -> dict:
    """``rows`` Adult-like rows to ``path`` in row groups of ``GROUP``, one group in memory at a time."""
    from synthgen.datasets import load_adult

    adult = load_adult()
    rng = np.random.default_rng(seed)
    writer = None
    start = time.perf_counter()
    for done in range(0, rows, GROUP):
        part = adult.iloc[rng.integers(0, len(adult), min(GROUP, rows - done))].reset_index(drop=True)
        part["age"] = np.clip(part["age"] + rng.integers(-2, 3, len(part)), 17, 90)
        part["fnlwgt"] = np.round(part["fnlwgt"] * rng.lognormal(0, 0.05, len(part))).astype(np.int64)
        part["hours-per-week"] = np.clip(part["hours-per-week"] + rng.integers(-3, 4, len(part)), 1, 99)
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=GROUP)
    writer.close()
    meta = pq.ParquetFile(path).metadata
    return {"rows": meta.num_rows, "row_groups": meta.num_row_groups, "file_mb": round(path.stat().st_size / 2**20),
            "uncompressed_mb": round(sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
                                     / 2**20), "write_s": round(time.perf_counter() - start, 1)}


def run_train(data: Path, out: Path, *, stream: bool) -> dict:
    """One `synthgen train` process: wall seconds, peak RSS (MB), and the fit's own summary."""
    wall, peak_mb, stdout = timed_synthgen("train", str(data), "--model", "tvae", "--epochs", "1", "--out", str(out),
                                           "-q", "--force", "--stream" if stream else "--no-stream")
    from synthgen import Sampler

    summary = Sampler.load(out).manifest["training"]
    rows = summary["rows"]
    return {"rows": rows, "mode": "streamed" if stream else "in memory", "peak_mb": peak_mb,
            "wall_s": round(wall, 1), "fit_s": round(summary["seconds"], 1),
            "epoch_s": round(summary["history"][-1]["seconds"], 1), "rows_per_s": round(rows / summary["seconds"]),
            "prepare_s": round(summary["transformer_seconds"], 1),
            **({"transformer_fitted_on": summary["transformer_fitted_on"],
                "outside_sample": {c: sum(k.values()) for c, k in summary["outside_sample"].items()}}
               if stream else {}),
            "output": stdout.strip().splitlines()}


def others_running() -> list[str]:
    """Other test or benchmark processes on the machine (they share its 2 cores and distort timings)."""
    proc = subprocess.run(["pgrep", "-af", "pytest|benchmarks/|synthgen train"], capture_output=True, text=True,
                          check=False)
    mine = {str(os.getpid()), str(os.getppid())}  # this script and a wrapper such as `timeout` that started it
    return [line for line in proc.stdout.splitlines() if line.split()[0] not in mine and "pgrep" not in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the streamed table")
    parser.add_argument("--compare-rows", type=int, default=1_000_000, help="rows trained both ways")
    parser.add_argument("--quick", action="store_true", help="200,000 rows, both ways")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    big_rows, small_rows = (None, 200_000) if args.quick else (args.rows, args.compare_rows)
    before = others_running()
    runs, tables = [], {}
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        folder = Path(tmp)
        for rows in [r for r in (big_rows, small_rows) if r]:
            data = folder / f"adult-{rows}.parquet"
            tables[rows] = write_adult_like(data, rows)
            runs.append(run_train(data, folder / "m.sgm", stream=True))
            if rows == small_rows:
                runs.append(run_train(data, folder / "m.sgm", stream=False))
            data.unlink()
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
                         f"{platform.platform()}",
              "tables": {str(k): v for k, v in tables.items()}, "runs": runs,
              "other_jobs": {"before": before, "after": others_running()}}
    name = "large_table-quick" if args.quick else "large_table"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(render(result))
    print(render(result))


def render(result: dict) -> str:
    lines = [f"# tvae on large Adult-like Parquet tables, 1 epoch ({result['date']}, {result['machine']})", "",
             "| rows | mode | peak RSS MB | wall s (incl. start-up) | fit s | epoch s | rows/s (fit) | "
             "transformer fitted on |", "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in result["runs"]:
        fitted = r.get("transformer_fitted_on")
        lines.append(f"| {r['rows']:,} | {r['mode']} | {r['peak_mb']:,} | {r['wall_s']} | {r['fit_s']} | "
                     f"{r['epoch_s']} | {r['rows_per_s']:,} | "
                     + (f"{fitted['rows']:,}-row sample |" if fitted else "all rows |"))
    lines += ["", "| table rows | row groups | file MB | uncompressed MB | write s |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {int(k):,} | {t['row_groups']} | {t['file_mb']} | {t['uncompressed_mb']} | {t['write_s']} |"
              for k, t in result["tables"].items()]
    others = result["other_jobs"]["before"] + result["other_jobs"]["after"]
    lines += ["", "Other jobs on the machine during the run: " + ("; ".join(sorted(set(others))) if others
                                                                  else "none seen (checked before and after).")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
