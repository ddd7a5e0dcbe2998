"""CPU vs GPU: seconds per epoch and sampling rows/s for synthgen's models on the Adult train split.

Runs each (model, device) pair one after another in this process, at the models' default
hyperparameters, on the 80/20 stratified Adult split (seed 0) of ``benchmarks/adult.py``. Seconds
per epoch are the median of the epochs after the first (the first holds CUDA's warm-up); sampling
is the median of three calls. With ``--full MODEL`` it also trains MODEL at its default epochs on
the GPU and scores the sample with the evaluator (TSTR on the real holdout), to show the GPU
model is as good as the CPU one in ``results/adult.md``. A benchmark, not a test.

Run (from the repository root, on a machine with a CUDA GPU)::

    PYTHONPATH=. python benchmarks/device_speed.py --epochs 10 --full tvae --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from adult import TARGET, load_split


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's thread count."""
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads of {os.cpu_count()} cores"


def measure(model: str, device: str, train, epochs: int, sample_rows: int) -> dict[str, Any]:
    """Fit ``model`` on ``device`` for ``epochs``; time epochs and sampling."""
    from synthgen import Synthesizer

    start = time.perf_counter()
    synth = Synthesizer(model=model, epochs=epochs, seed=0, device=device, progress=False).fit(train)
    fit_s = time.perf_counter() - start
    epoch_s = [float(h["seconds"]) for h in synth.summary["history"]]
    rates = []
    for repeat in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = synth.sample(sample_rows, seed=repeat)
        rates.append(len(out) / (time.perf_counter() - t0))
    return {"model": model, "device": device, "epochs": epochs, "fit_s": round(fit_s, 2),
            "s_per_epoch": round(statistics.median(epoch_s[1:] or epoch_s), 4),
            "first_epoch_s": round(epoch_s[0], 4), "sample_rows_s": round(statistics.median(rates))}


def full_run(model: str, train, test) -> dict[str, Any]:
    """Train ``model`` at its defaults on the GPU, then sample on the CPU from the saved file and evaluate."""
    import tempfile

    from synthgen import Sampler, Synthesizer, evaluate

    start = time.perf_counter()
    synth = Synthesizer(model=model, seed=0, device="cuda", progress=False).fit(train)
    fit_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        sampler = Sampler.load(synth.save(Path(tmp) / "m.sgm"))
    synthetic = sampler.sample(len(train), seed=1000)
    ev = evaluate(train, synthetic, test, target=TARGET, seeds=3)
    tstr = ev["utility"]["tstr"]
    return {"model": model, "device": "cuda", "epochs": len(synth.summary["history"]), "fit_s": round(fit_s, 1),
            "tstr_accuracy": round(tstr["accuracy"], 4), "tstr_auc": round(tstr["auc"], 4),
            "quality": round(ev["fidelity"]["quality"], 4)}


def report(rows: list[dict[str, Any]], full: list[dict[str, Any]], names: dict[str, str]) -> str:
    """Markdown: one row per model with CPU and GPU side by side."""
    lines = ["# synthgen on CPU vs GPU (Adult train split, 26,048 rows, default hyperparameters)", "",
             f"- date: {datetime.now(UTC).isoformat(timespec='minutes')}",
             f"- torch {torch.__version__}; " + "; ".join(f"{d}: {n}" for d, n in names.items()),
             "- s/epoch: median of the epochs after the first; sampling: median of 3 calls", "",
             "| model | CPU s/epoch | GPU s/epoch | GPU speed-up | CPU sample rows/s | GPU sample rows/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        cpu = next((r for r in rows if r["model"] == model and r["device"] == "cpu"), None)
        gpu = next((r for r in rows if r["model"] == model and r["device"] == "cuda"), None)
        if cpu and gpu:
            lines.append(f"| {model} | {cpu['s_per_epoch']:.3f} | {gpu['s_per_epoch']:.3f} | "
                         f"{cpu['s_per_epoch'] / gpu['s_per_epoch']:.2f}x | {cpu['sample_rows_s']:,} | "
                         f"{gpu['sample_rows_s']:,} |")
    for f in full:
        lines += ["", f"Full run: {f['model']} trained on the GPU ({f['epochs']} epochs, {f['fit_s']} s), saved, "
                      f"sampled on the CPU from the file: TSTR accuracy {f['tstr_accuracy']}, AUC {f['tstr_auc']}, "
                      f"quality {f['quality']} (real holdout, 3 MLP seeds)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tvae,ctgan,pairwise")
    p.add_argument("--devices", default="cpu,cuda")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--sample-rows", type=int, default=200_000)
    p.add_argument("--full", default="", help="comma-separated models to train at their defaults on the GPU")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    train, test = load_split(None)
    rows, names = [], {}
    for device in args.devices.split(","):
        names[device] = device_name(device)
        for model in args.models.split(","):
            rows.append(measure(model, device, train, args.epochs, args.sample_rows))
            print(json.dumps(rows[-1]), flush=True)
    full = [full_run(m, train, test) for m in args.full.split(",") if m]
    for f in full:
        print(json.dumps(f), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "device_speed.json").write_text(json.dumps({"names": names, "rows": rows, "full": full}, indent=1) + "\n")
    (out / "device_speed.md").write_text(report(rows, full, names))
    print(report(rows, full, names))


if __name__ == "__main__":
    main()
