"""The evaluator: how useful, how faithful and how private is a synthetic table?

    >>> from synthgen import evaluate
    >>> result = evaluate(real_train, synthetic, real_test, target="income")  # doctest: +SKIP
    >>> result["utility.tstr.accuracy"], result["privacy.dcr_train_share"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from synthgen.evaluation.prep import Tables, check_tables, split_holdout

if TYPE_CHECKING:
    from synthgen.io import SealLike

__all__ = ["Evaluation", "evaluate"]

#: share of the real table held out when no test table is given
HOLDOUT_SHARE = 0.2


class Evaluation:
    """The figures of one evaluation, as nested dicts with stable keys.

    Index with dotted keys (``result["utility.tstr.auc"]``); ``to_dict`` gives the whole tree.
    """

    def __init__(self, figures: dict[str, Any], tables: Tables):
        self.figures, self.tables = figures, tables

    def __getitem__(self, dotted: str) -> Any:
        node: Any = self.figures
        for part in dotted.split("."):
            node = node[part]
        return node

    def to_dict(self) -> dict[str, Any]:
        return _clean(self.figures)

    def to_json(self, path: str | os.PathLike | None = None, *, force: bool = False,
                seal: SealLike | None = None) -> str:
        """The figures as JSON (NaN written as null); written atomically when ``path`` is given
        (encrypted with ``seal``: a ``Seal``, or ``{"key": ...}`` or ``{"recipient": public_key}``)."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from synthgen.io import write_bytes_atomic

            write_bytes_atomic(path, text.encode(), force=force, seal=seal)
        return text

    def to_html(self, path: str | os.PathLike, *, force: bool = False, seal: SealLike | None = None) -> Path:
        """Write the self-contained HTML report (plots embedded as PNG), encrypted with ``seal`` if given."""
        from synthgen.evaluation.report import write_report

        return write_report(self, path, force=force, seal=seal)

    def summary(self) -> str:
        """A few lines for a terminal."""
        from synthgen.evaluation.report import summary_lines

        return "\n".join(summary_lines(self))


def evaluate(real_train: pd.DataFrame | str | os.PathLike, synthetic: pd.DataFrame | str | os.PathLike,
             real_test: pd.DataFrame | str | os.PathLike | None = None, *, target: str,
             task: str | None = None, seeds: int = 3, seed: int = 0, baselines: bool = True,
             interpretability: bool = True) -> Evaluation:
    """Evaluate ``synthetic`` against the real table it imitates.

    Args:
        real_train: the real rows the generator was trained on.
        synthetic: the generated rows.
        real_test: real rows the generator never saw. When None, 20% of ``real_train`` is held
            out (stratified, seeded); that is only a fair test if the generator was trained on
            the other 80% alone, and the result says so.
        target: the column a downstream model predicts.
        task: "classification" or "regression" (default: from the target's kind).
        seeds: MLP runs per side; figures are reported as mean and spread.
        seed: seed for subsampling and splits.
        baselines: also score logistic/ridge regression and gradient boosting.
        interpretability: also explain both sides' MLPs on the holdout (permutation importance,
            its rank agreement, partial dependence of the top columns).

    Returns:
        An :class:`Evaluation` with ``utility``, ``fidelity``, ``privacy`` and ``interpretability`` figures.

    Raises:
        InvalidDataError: empty tables, different columns, a missing target, a one-class target.
    """
    from synthgen.evaluation.fidelity import fidelity
    from synthgen.evaluation.interpretability import interpretability as explain
    from synthgen.evaluation.privacy import privacy
    from synthgen.evaluation.utility import fit_mlps, utility
    from synthgen.io import read_table

    real_train, synthetic = read_table(real_train), read_table(synthetic)
    holdout = "given"
    if real_test is None:
        if target in real_train.columns:
            real_train, real_test = split_holdout(real_train, target, test_size=HOLDOUT_SHARE, seed=seed)
        else:
            real_test = real_train.iloc[:0]
        holdout = f"split from the real table ({HOLDOUT_SHARE:.0%}, stratified, seed {seed})"
    tables = check_tables(real_train, synthetic, read_table(real_test), target=target, task=task)
    started = time.perf_counter()
    fitted = fit_mlps(tables, seeds=seeds)
    figures: dict[str, Any] = {
        "target": target, "task": tables.task, "holdout": holdout,
        "rows": {"real": len(tables.train), "synthetic": len(tables.synthetic), "test": len(tables.test)},
        "utility": utility(tables, baselines=baselines, fitted=fitted),
        "fidelity": fidelity(tables, seed=seed),
        "privacy": privacy(tables, seed=seed),
    }
    if interpretability:
        figures["interpretability"] = explain(tables, fitted, seed=seed)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return Evaluation(figures, tables)


def _clean(node: Any) -> Any:
    """JSON-safe copy: NaN / inf become None, numpy scalars plain numbers."""
    if isinstance(node, dict):
        return {str(k): _clean(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_clean(v) for v in node]
    if hasattr(node, "item") and not isinstance(node, (str, bytes)):
        node = node.item()
    if isinstance(node, float) and not math.isfinite(node):
        return None
    return node
