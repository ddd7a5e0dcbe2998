"""Start-up and crafted-file cost of the CLI: each command in a fresh process, wall seconds and peak memory.

* ``synthgen --help`` and ``synthgen keygen``: commands that train or sample nothing import no torch
  (target: under 0.3 s, median of 10); ``inspect`` of a valid file, ``models`` and ``verify`` beside them.
* ``synthgen inspect`` and ``synthgen sample`` on crafted model files (a zip bomb, a 4 GB tensor of 64
  bytes, a 10^6-wide layer, an ensemble of 10^6, a manifest whose hyperparameters the weights do not
  fit): one ``error:`` line within 2 s and under 300 MB resident (issue 15), median of 5; ``inspect``
  builds no network, so it shows the files whose only fault is a manifest the weights do not fit (in
  as little); a valid file's figures beside them.
* ``--compare LABEL=PATH``: the start-up commands also run from another checkout of synthgen (e.g. one
  made with ``git archive REV``), in a column of their own.

The load average (1, 5, 15 minutes) before and after is recorded: another process on the machine slows
every figure.

Run (from the repository root)::

    PYTHONPATH=. python benchmarks/startup.py [--repeats 10] [--out benchmarks/results] [--compare before=PATH]
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


def run(args: list[str], cwd: Path, root: Path = ROOT) -> tuple[float, float, int, str]:
    """Wall seconds, peak resident MB, exit code and output of ``python -m synthgen ARGS`` in a fresh process,
    synthgen imported from the checkout at ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root), "SYNTHGEN_KEY": "", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "synthgen", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stdout.close()
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), output


def median_of(repeats: int, args: list[str], cwd: Path) -> dict:
    return summary([run(args, cwd) for _ in range(repeats)])


def summary(runs: list[tuple[float, float, int, str]]) -> dict:
    """Median seconds and peak MB of ``runs``, the last one's exit code and last line of output."""
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
    from test_cli_load import HUGE, bomb, hyperparameters, phantom_tensor, reseal

    from synthgen import Synthesizer
    from synthgen.crypto.signing import read_signing_key, sign_file, write_signing_keypair
    from synthgen.datasets import load_adult

    adult = load_adult().sample(600, random_state=0)
    small = {"epochs": 1, "batch_size": 100}
    ctgan = Synthesizer(model="ctgan", generator_dim=(32,), discriminator_dim=(32,), **small).fit(adult)
    ctgan = ctgan.save(folder / "valid.sgm")
    pairwise = Synthesizer(model="pairwise", epochs=1, steps_per_epoch=5, hidden=(32,)).fit(adult)
    pairwise = pairwise.save(folder / "pairwise.sgm")
    write_signing_keypair(folder / "sign.key")
    sign_file(ctgan, read_signing_key(folder / "sign.key"))
    bomb(ctgan, folder / "bomb.sgm")
    phantom_tensor(ctgan, folder / "phantom.sgm")
    reseal(ctgan, folder / "wide.sgm", hyperparameters(generator_dim=[HUGE]))
    reseal(pairwise, folder / "ensemble.sgm", hyperparameters(ensemble=HUGE))
    reseal(ctgan, folder / "deep.sgm", hyperparameters(generator_dim=[16384, 16384]))  # the weights do not fit


FILES = {"valid": "valid.sgm", "zip bomb": "bomb.sgm", "4 GB tensor of 64 bytes": "phantom.sgm",
         "10^6-wide layer": "wide.sgm", "ensemble of 10^6": "ensemble.sgm", "shapes unlike the manifest": "deep.sgm"}
#: crafted files whose only fault is a manifest the weights do not fit: inspect shows them, sample refuses them
UNFIT = {"10^6-wide layer", "ensemble of 10^6", "shapes unlike the manifest"}
#: the start-up rows: (name, arguments, a step before each run); {f} is the folder of files, {root} the checkout's
START = [("synthgen --help", ["--help"]), ("synthgen keygen", ["keygen", "--out", "{f}/k.key"]),
         ("synthgen inspect (valid file)", ["inspect", "{f}/valid.sgm"]), ("synthgen models", ["models"]),
         ("synthgen verify (valid file)", ["verify", "{f}/valid.sgm", "--signer", "{f}/sign.key.pub"])]


def start_rows(repeats: int, folder: Path, roots: dict[str, Path]) -> dict[str, dict[str, dict]]:
    """The start-up rows of synthgen run from each checkout of ``roots`` (by label), the checkouts taking turns
    run after run, so that a change in the machine's load falls on all of them alike."""
    rows: dict[str, dict[str, dict]] = {label: {} for label in roots}
    for name, args in START:
        runs: dict[str, list] = {label: [] for label in roots}
        for _ in range(repeats):
            for label, root in roots.items():
                (folder / "k.key").unlink(missing_ok=True)
                runs[label].append(run([a.format(f=folder) for a in args], folder, root))
        for label in roots:
            rows[label][name] = summary(runs[label])
    return rows


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--label", default="", help="note on what was measured (e.g. before / after a change)")
    p.add_argument("--compare", action="append", default=[], metavar="LABEL=PATH",
                   help="also run the start-up commands from the synthgen checkout at PATH (repeatable)")
    p.add_argument("--make-files", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.make_files:
        make_files(Path(args.make_files))
        return
    compare = dict(c.split("=", 1) for c in args.compare)
    loads = [load_average()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, __file__, "--make-files", str(folder)], check=True, env=env)
        loads.append(load_average())
        roots = {"": ROOT, **{label: Path(path).resolve() for label, path in compare.items()}}
        start = start_rows(args.repeats, folder, roots)
        loads.append(load_average())
        rows = list(start[""].items())
        sample = ["--rows", "10", "--out", str(folder / "rows.csv"), "-q", "--force"]
        for name, file in FILES.items():
            for command, extra in (("inspect", []), ("sample", sample)):
                rows.append((f"{command} {name}", median_of(max(args.repeats // 2, 1),
                                                            [command, str(folder / file), *extra], folder)))
        loads.append(load_average())
    text = report(args, rows, start, compare, loads)
    write(Path(args.out) / "startup.md", text)
    write(Path(args.out) / "startup.json", json.dumps({"rows": dict(rows), "load_average": loads, "compare": {
        label: {"path": str(compare[label]), "rows": start[label]} for label in compare}}, indent=1))
    print(text)


def report(args: argparse.Namespace, rows: list[tuple[str, dict]], start: dict[str, dict[str, dict]],
           compare: dict[str, str], loads: list[str]) -> str:
    """startup.md: the table, the other checkouts' start-up figures beside it, and each target met or missed."""
    flags = " ".join(sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))}))
    other = "".join(f" {label} s |" for label in compare)
    lines = ["# CLI start-up and crafted model files", "",
             f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}" + (f" ({args.label})" if args.label else ""),
             f"- machine: {cpu_name()}, {os.cpu_count()} cores, python {platform.python_version()}; CPU flags: {flags}",
             f"- load average (1 / 5 / 15 min; this benchmark's own process counts 1) before making the files, before "
             f"the start-up rows, after them and at the end: {'; '.join(loads)}",
             f"- each command in a fresh process; median of {args.repeats} (model files: {max(args.repeats // 2, 1)})",
             *(f"- {label}: the same start-up commands run from {path}" for label, path in compare.items()),
             "", f"| command | wall s | peak MB | exit |{other} last line |",
             f"|---|---:|---:|---:|{'---:|' * len(compare)}---|"]
    for name, r in rows:
        then = "".join(f" {_seconds(start[label].get(name))} |" for label in compare)
        lines.append(f"| {name} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['exit']} |{then} "
                     f"{(r['output'] or [''])[0][:90].replace('|', '/')} |")
    lines += ["", f"Targets: --help and keygen under {TARGETS['start_s']} s; a crafted file refused with one error "
              f"line (inspect: shown, if its only fault is a manifest the weights do not fit) within "
              f"{TARGETS['crafted_s']} s and under {TARGETS['crafted_mb']} MB.", ""]
    for name, r in rows:
        if name.startswith(("synthgen --help", "synthgen keygen")):
            ok = r["seconds"] < TARGETS["start_s"]
        elif "valid" in name or name.startswith("synthgen"):
            continue
        else:
            shown = name.startswith("inspect") and name.removeprefix("inspect ") in UNFIT
            ok = (r["exit"] == (0 if shown else 1) and r["seconds"] < TARGETS["crafted_s"]
                  and r["peak_mb"] < TARGETS["crafted_mb"])
        lines.append(f"- {name}: {r['seconds']:.2f} s, {r['peak_mb']:.0f} MB {'PASS' if ok else 'MISS'}")
    return "\n".join(lines) + "\n"


def _seconds(row: dict | None) -> str:
    """A compared checkout's figure, or why there is none (its command failed)."""
    if row is None:
        return ""
    return f"{row['seconds']:.2f}" if row["exit"] == 0 else f"(exit {row['exit']})"


if __name__ == "__main__":
    main()
