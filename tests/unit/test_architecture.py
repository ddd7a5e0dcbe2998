"""The import contract (pyproject.toml, [tool.importlinter]): imports run downward only, no cycles.

import-linter reads every import statement, including those inside functions and under
TYPE_CHECKING, so a lazy import of a higher layer breaks the contract as a top-level one does.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package and the contract under ``root`` (its ``synthgen``, not an installed one)."""
    if importlib.util.find_spec("importlinter") is None:
        pytest.fail("import-linter is not installed (fix: pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_contract_is_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("schema.py", "from synthgen.synthesizer import Synthesizer", "synthgen.schema is not allowed to import "
                                                                  "synthgen.synthesizer"),
    ("crypto/keys.py", "from synthgen.crypto import keypairs", ".keys -> .keypairs"),
])
def test_a_function_level_import_that_breaks_the_contract_fails(tmp_path, module, line, broken):
    """A lower layer importing a higher one inside a function, and a cycle inside a package, are both caught."""
    shutil.copytree(ROOT / "synthgen", tmp_path / "synthgen", ignore=shutil.ignore_patterns("__pycache__", "*.gz"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "synthgen" / module, "a") as fh:
        fh.write(f"\n\ndef _upward():\n    {line}  # noqa: F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0 and broken in result.stdout, result.stdout + result.stderr
