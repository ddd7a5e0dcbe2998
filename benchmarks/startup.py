"""Start-up and crafted-file cost of the CLI: each command in a fresh process, wall seconds and peak memory.

* ``synthgen --help`` and ``synthgen keygen``: commands that train or sample nothing import no torch
  (target: under 0.3 s, median of 10).
* ``synthgen inspect`` and ``synthgen sample`` on crafted model files (a zip bomb, a 10^6-wide layer, an
  ensemble of 10^6, a manifest whose hyperparameters the weights do not fit): one ``error:`` line within
  2 s and under 300 MB resident (issue 15), median of 5; a valid file's figures beside them.

Run (from the repository root)::

    PYTHONPATH=. python benchmarks/startup.py [--repeats 10] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


TARGETS = {"start_s": 0.3, "crafted_s": 2.0, "crafted_mb": 300}


def run(args: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Wall seconds, peak resident MB, exit code and output of ``python -m synthgen ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNTHGEN_KEY": "", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "synthgen", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stdout.close()
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), output


def median_of(repeats: int, args: list[str], cwd: Path, before=None) -> dict:
    runs = []
    for _ in range(repeats):
        if before:
            before()
        runs.append(run(args, cwd))
    return {"seconds": statistics.median(r[0] for r in runs), "peak_mb": statistics.median(r[1] for r in runs),
            "exit": runs[-1][2], "output": runs[-1][3].strip().splitlines()[-1:]}


def cpu_name() -> str:
    return next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.machine())


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def make_files(folder: Path) -> None:
    """Write the valid and crafted files into ``folder`` (run in a child process: this one stays small, so the
    peak memory measured of each command's process is its own)."""
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from test_cli_load import HUGE, bomb, hyperparameters, reseal

    from synthgen import Synthesizer
    from synthgen.datasets import load_adult

    adult = load_adult().sample(600, random_state=0)
    small = {"epochs": 1, "batch_size": 100}
    ctgan = Synthesizer(model="ctgan", generator_dim=(32,), discriminator_dim=(32,), **small).fit(adult)
    ctgan = ctgan.save(folder / "valid.sgm")
    pairwise = Synthesizer(model="pairwise", epochs=1, steps_per_epoch=5, hidden=(32,)).fit(adult)
    pairwise = pairwise.save(folder / "pairwise.sgm")
    bomb(ctgan, folder / "bomb.sgm")
    reseal(ctgan, folder / "wide.sgm", hyperparameters(generator_dim=[HUGE]))
    reseal(pairwise, folder / "ensemble.sgm", hyperparameters(ensemble=HUGE))
    reseal(ctgan, folder / "deep.sgm", hyperparameters(generator_dim=[16384, 16384]))  # the weights do not fit


FILES = {"valid": "valid.sgm", "zip bomb": "bomb.sgm", "10^6-wide layer": "wide.sgm",
         "ensemble of 10^6": "ensemble.sgm", "shapes unlike the manifest": "deep.sgm"}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--label", default="", help="note on what was measured (e.g. before / after a change)")
    p.add_argument("--make-files", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.make_files:
        make_files(Path(args.make_files))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        key = folder / "k.key"
        rows.append(("synthgen --help", median_of(args.repeats, ["--help"], folder)))
        rows.append(("synthgen keygen", median_of(args.repeats, ["keygen", "--out", str(key)], folder,
                                                  before=lambda: key.unlink(missing_ok=True))))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, __file__, "--make-files", str(folder)], check=True, env=env)
        sample = ["--rows", "10", "--out", str(folder / "rows.csv"), "-q", "--force"]
        for name, file in FILES.items():
            for command, extra in (("inspect", []), ("sample", sample)):
                rows.append((f"{command} {name}", median_of(max(args.repeats // 2, 1),
                                                            [command, str(folder / file), *extra], folder)))
    flags = " ".join(sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))}))
    lines = ["# CLI start-up and crafted model files", "",
             f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}" + (f" ({args.label})" if args.label else ""),
             f"- machine: {cpu_name()}, {os.cpu_count()} cores, python {platform.python_version()}; CPU flags: {flags}",
             f"- each command in a fresh process; median of {args.repeats} (model files: {max(args.repeats // 2, 1)})",
             "", "| command | wall s | peak MB | exit | last line |", "|---|---:|---:|---:|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['exit']} | "
                     f"{(r['output'] or [''])[0][:90].replace('|', '/')} |")
    lines += ["", f"Targets: --help and keygen under {TARGETS['start_s']} s; a crafted file refused with one error "
              f"line within {TARGETS['crafted_s']} s and under {TARGETS['crafted_mb']} MB.", ""]
    for name, r in rows:
        if name.startswith(("synthgen --help", "synthgen keygen")):
            ok = r["seconds"] < TARGETS["start_s"]
        elif "valid" in name:
            continue
        else:
            ok = r["exit"] == 1 and r["seconds"] < TARGETS["crafted_s"] and r["peak_mb"] < TARGETS["crafted_mb"]
        lines.append(f"- {name}: {r['seconds']:.2f} s, {r['peak_mb']:.0f} MB {'PASS' if ok else 'MISS'}")
    text = "\n".join(lines) + "\n"
    write(Path(args.out) / "startup.md", text)
    write(Path(args.out) / "startup.json", json.dumps({"rows": dict(rows)}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
