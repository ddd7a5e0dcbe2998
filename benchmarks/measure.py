"""Run a `synthgen` command in a fresh process under `/usr/bin/time -v`: wall seconds and peak RSS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_synthgen(*args: str) -> tuple[float, int, str]:
    """(wall seconds, peak resident MB, stdout) of ``python -m synthgen ARGS``; exits with its output if it fails."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "synthgen", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, round(peak_kb / 1024), proc.stdout
