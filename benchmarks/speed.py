"""Speed side by side: synthgen vs SDV seconds per epoch and sampling rows/s, interleaved in one process.

`adult.py` times each library in its own process, minutes apart; on this machine the speed of a
process drifts by up to a third over that time, which moves the ratios. Here synthgen's `ctgan`
and `tvae` and SDV's CTGAN and TVAE are trained on the same Adult split in rounds (each round fits
every model once for a few epochs), then sampled in rounds (each round times one call of every
model). Reported: median seconds per epoch over all rounds' epochs, median rows/s, and the
synthgen / SDV ratios against the core issue's targets (epoch <= 0.5x, sampling >= 5x). synthgen's
epoch seconds cover the epoch's steps; SDV's are the time between its loop's iterations, which
also holds its per-epoch bookkeeping: a slight edge to synthgen in the epoch ratio.

    PYTHONPATH=. python benchmarks/speed.py            # 3 fit rounds of 10 epochs, 9 sampling rounds of 50,000 rows
    PYTHONPATH=. python benchmarks/speed.py --quick    # CI smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from adult import Sample, cpu_name, fit_sdv, fit_synthgen, load_split, time_call  # noqa: E402  (the script folder)

PAIRS = (("ctgan", "CTGAN"), ("tvae", "TVAE"))


def fit_rounds(train: pd.DataFrame, epochs: int, rounds: int) -> tuple[dict[str, list[float]], dict[str, Sample]]:
    """Every model fitted once per round, in turn: epoch seconds of all rounds, and the last fits' samplers."""
    epochs_s: dict[str, list[float]] = {}
    samplers: dict[str, Sample] = {}
    for _ in range(rounds):
        for mine, theirs in PAIRS:
            for name, fit in ((f"synthgen {mine}", fit_synthgen), (f"SDV {theirs}", fit_sdv)):
                figures, samplers[name] = fit(mine, train, epochs, 0)
                epochs_s.setdefault(name, []).extend(figures["epoch_s"])
    return epochs_s, samplers


def sample_rounds(samplers: dict[str, Sample], rows: int, rounds: int) -> dict[str, float]:
    """Median rows/s of each sampler over ``rounds`` rounds; every round calls each one once, in turn."""
    for sample in samplers.values():
        time_call(sample, min(rows, 2_000))  # warm-up: lazy set-up, first allocations
    times: dict[str, list[float]] = {name: [] for name in samplers}
    for _ in range(rounds):
        for name, sample in samplers.items():
            times[name].append(time_call(sample, rows))
    return {name: rows / statistics.median(t) for name, t in times.items()}


def report(epoch_s: dict[str, float], rates: dict[str, float], args: argparse.Namespace) -> tuple[str, list[dict]]:
    lines = [f"# Speed side by side ({datetime.now(UTC).isoformat(timespec='seconds')}, {cpu_name()}, "
             f"{platform.machine()})", "",
             f"Adult train split. Training: {args.fit_rounds} interleaved rounds of {args.epochs} epochs per model, "
             f"median s/epoch. Sampling: {args.rounds} interleaved rounds of {args.rows:,} rows, median rows/s.", "",
             "| model | synthgen s/epoch | SDV s/epoch | ratio (target <= 0.5) | synthgen rows/s | SDV rows/s "
             "| ratio (target >= 5) |", "|---|---:|---:|---:|---:|---:|---:|"]
    rows = []
    for mine, theirs in PAIRS:
        a, b = f"synthgen {mine}", f"SDV {theirs}"
        e, r = epoch_s[a] / epoch_s[b], rates[a] / rates[b]
        rows.append({"model": mine, "synthgen_s_per_epoch": epoch_s[a], "sdv_s_per_epoch": epoch_s[b],
                     "epoch_ratio": e, "synthgen_rows_s": rates[a], "sdv_rows_s": rates[b], "sampling_ratio": r})
        lines.append(f"| {mine} | {epoch_s[a]:.3f} | {epoch_s[b]:.3f} | {e:.2f}x {'PASS' if e <= 0.5 else 'MISS'} "
                     f"| {rates[a]:,.0f} | {rates[b]:,.0f} | {r:.2f}x {'PASS' if r >= 5 else 'MISS'} |")
    return "\n".join(lines) + "\n", rows


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI smoke run: 3,000 rows, 1 round of 1 epoch, 3 of 5,000 rows")
    p.add_argument("--epochs", type=positive, default=None, help="epochs per fit (default 10)")
    p.add_argument("--fit-rounds", type=positive, default=None, help="interleaved fit rounds (default 3)")
    p.add_argument("--rows", type=positive, default=None, help="rows per timed sampling call (default 50,000)")
    p.add_argument("--rounds", type=positive, default=None, help="interleaved sampling rounds (default 9)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for speed.md / speed.json")
    args = p.parse_args(argv)
    defaults = {"epochs": (1, 10), "fit_rounds": (1, 3), "rows": (5_000, 50_000), "rounds": (3, 9)}
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    train, _ = load_split(3_000 if args.quick else None)
    epochs_s, samplers = fit_rounds(train, args.epochs, args.fit_rounds)
    rates = sample_rounds(samplers, args.rows, args.rounds)
    epoch_s = {name: statistics.median(s) for name, s in epochs_s.items()}
    text, rows = report(epoch_s, rates, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "speed-quick" if args.quick else "speed"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps({"args": vars(args), "epoch_seconds": epochs_s, "rates": rates,
                                                  "rows": rows}, indent=1))
    print(text, end="")


if __name__ == "__main__":
    main()
