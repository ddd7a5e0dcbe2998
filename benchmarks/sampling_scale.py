"""Sampling at scale: 10,000,000 rows to Parquet with `synthgen sample`, whole and in shards.

Trains the default tvae on Adult for a few epochs (sampling cost does not depend on how long it
trained), then runs `synthgen sample` in fresh processes under `/usr/bin/time -v` and reports wall
time, rows/s and peak resident memory, for the whole sample and for K shards run one after the
other (their union is the whole sample; on K machines they would run at once).

    python benchmarks/sampling_scale.py                 # 10,000,000 rows, 4 shards
    python benchmarks/sampling_scale.py --quick         # 200,000 rows, 2 shards (CI smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from measure import timed_synthgen  # noqa: E402  (benchmarks/ is the script folder)


def run_sample(model: Path, rows: int, out: Path, shard: str | None) -> dict:
    """One `synthgen sample` process: wall seconds and peak RSS (MB) from /usr/bin/time -v."""
    wall, peak_mb, _ = timed_synthgen("sample", str(model), "--rows", str(rows), "--seed", "0", "--out", str(out), "-q",
                                   "--force", *(["--shard", shard] if shard else []))
    return {"shard": shard, "seconds": round(wall, 2), "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 2 shards")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rows, shards = (200_000, 2) if args.quick else (args.rows, args.shards)
    from synthgen import Synthesizer
    from synthgen.datasets import load_adult

    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        folder = Path(tmp)
        model = Synthesizer(model="tvae", epochs=2 if args.quick else 5, seed=0).fit(load_adult()).save(
            folder / "adult.sgm")
        whole = run_sample(model, rows, folder / "all.parquet", None)
        parts = [run_sample(model, rows, folder / f"part-{i}.parquet", f"{i}/{shards}") for i in range(shards)]
        import pyarrow.parquet as pq

        counts = [pq.ParquetFile(folder / f"part-{i}.parquet").metadata.num_rows for i in range(shards)]
        assert sum(counts) == rows == pq.ParquetFile(folder / "all.parquet").metadata.num_rows
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "rows": rows, "shards": shards,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "whole": {**whole, "rows_per_s": round(rows / whole["seconds"])},
        "parts": [{**p, "rows": c, "rows_per_s": round(c / p["seconds"])} for p, c in zip(parts, counts, strict=True)],
    }
    name = "sampling_scale-quick" if args.quick else "sampling_scale"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Sampling {rows:,} rows to Parquet ({result['date']}, {result['machine']})", "",
             "| run | rows | wall s (incl. start-up) | rows/s | peak RSS MB |", "|---|---:|---:|---:|---:|",
             f"| whole | {rows:,} | {whole['seconds']} | {result['whole']['rows_per_s']:,} | {whole['peak_mb']} |"]
    lines += [f"| shard {p['shard']} | {p['rows']:,} | {p['seconds']} | {p['rows_per_s']:,} | {p['peak_mb']} |"
              for p in result["parts"]]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
