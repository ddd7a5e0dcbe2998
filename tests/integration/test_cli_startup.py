"""Commands that neither train nor sample start without importing torch (or pandas)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: runs the CLI in-process, then prints which heavy modules it imported
PROBE = """
import json, sys
from synthgen.cli import main
try:
    main(sys.argv[1:], prog_name="synthgen")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in ("torch", "pandas", "sklearn", "opacus") if m in sys.modules)))
"""


@pytest.mark.parametrize("args", [["--help"], ["keygen", "--out", "{tmp}/k.key"], ["keygen", "--public", "--out",
                                  "{tmp}/me"], ["encrypt", "--help"], ["models", "--help"], ["train", "--help"]])
def test_command_imports_no_torch(tmp_path, args):
    args = [a.format(tmp=tmp_path) for a in args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNTHGEN_KEY": ""}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=60)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], done.stdout + done.stderr
