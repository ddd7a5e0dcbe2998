"""The HTML report of a multi-table evaluation: the summary, a section per table and per relationship."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthgen.evaluation.multitable import children_per_parent
from synthgen.evaluation.report import _CSS, _img, _table
from synthgen.io import SealLike
from synthgen.metadata import Metadata

_PROPERTIES = [("quality", "Quality (mean of the four properties)"), ("column_shapes", "Column shapes"),
               ("column_pair_trends", "Column pair trends"), ("cardinality", "Cardinality (children per parent)"),
               ("intertable_trends", "Intertable trends (parent-child pairs)"),
               ("referential_integrity", "Referential integrity (lowest of the relationships)"),
               ("primary_keys_unique", "Primary keys unique"),
               ("detection_auc", "Parent-child detection AUC (highest of the relationships; 0.5 ideal)")]


def write_multitable_report(figures: Mapping[str, Any], real: Mapping[str, pd.DataFrame],
                            synthetic: Mapping[str, pd.DataFrame], metadata: Metadata, path: str | os.PathLike, *,
                            force: bool = False, seal: SealLike | None = None) -> Path:
    """Write the report atomically (encrypted with ``seal`` if given); it needs no network to open."""
    import matplotlib

    from synthgen.io import write_bytes_atomic

    matplotlib.use("Agg", force=True)
    sections = [("Summary", _table(["figure", "value"], [[label, figures[key]] for key, label in _PROPERTIES
                                                         if key in figures]))]
    for table in metadata.order():
        part = figures["tables"][table]
        rows = [[name, score] for name, score in part["columns"].items()]
        sections.append((f"Table {table}: {len(real[table]):,} real rows, {len(synthetic[table]):,} synthetic",
                         _table(["figure", "value"], [["column shapes", part["column_shapes"]],
                                                      ["column pair trends", part["column_pair_trends"]]])
                         + _table(["column", "shape score (KS / TV complement)"], rows)))
    for rel in metadata.relationships:
        part = figures["relationships"][str(rel)]
        worst = sorted((p for p in part["pairs"] if p["counted"]), key=lambda p: p["score"])[:10]
        pairs = _table(["parent column", "child column", "metric", "score"],
                       [[p["columns"][0], p["columns"][1], p["metric"], p["score"]] for p in worst])
        sections.append((f"Relationship {rel}",
                         _table(["figure", "value"], [["cardinality", part["cardinality"]],
                                                      ["intertable trends", part["intertable_trends"]],
                                                      ["referential integrity", part["referential_integrity"]],
                                                      ["detection AUC (child rows with their parent; 0.5 ideal)",
                                                       part.get("detection_auc", "-")]])
                         + _img(_cardinality_plot(real, synthetic, rel))
                         + "<p>Least alike of the related parent-child pairs:</p>" + pairs))
    for table, part in figures.get("sequences", {}).items():
        sections.append(_history_section(table, part, real[table], synthetic[table]))
    sections += _entity_sections(figures)
    body = "".join(f"<h2>{html.escape(title)}</h2>\n{content}\n" for title, content in sections)
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>synthgen multi-table evaluation</title>"
           f"<style>{_CSS}</style></head><body><h1>synthgen multi-table evaluation</h1>{body}</body></html>")
    return write_bytes_atomic(path, doc.encode("utf-8"), force=force, seal=seal)


def _cardinality_plot(real: Mapping[str, pd.DataFrame], synthetic: Mapping[str, pd.DataFrame], rel: Any):
    import matplotlib.pyplot as plt

    r, s = children_per_parent(real, rel), children_per_parent(synthetic, rel)
    top = int(max(np.percentile(r, 99) if len(r) else 0, np.percentile(s, 99) if len(s) else 0, 1))
    bins = [b - 0.5 for b in range(top + 2)]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.hist(r.clip(max=top), bins=bins, alpha=0.5, density=True, label="real")
    ax.hist(s.clip(max=top), bins=bins, alpha=0.5, density=True, label="synthetic")
    ax.set_xlabel(f"{rel.child} rows per {rel.parent} row (top 1% in the last bar)")
    ax.legend()
    return fig


#: histories shown side by side per side (real, synthetic), and events shown of each
SHOWN_HISTORIES, SHOWN_EVENTS = 3, 8


def _history_section(table: str, part: Mapping[str, Any], real: pd.DataFrame, synthetic: pd.DataFrame
                     ) -> tuple[str, str]:
    """A sequential table: its sequence scores, the histograms of history lengths and of gaps, and a few real and
    synthetic histories side by side."""
    key, index = part["key"], part["index"]
    labels = [("score", "sequence score (mean of the five)"), ("length", "lengths (KS complement)"),
              ("gaps", "gaps between consecutive events (KS complement)"), ("column_shapes", "column shapes"),
              ("lag1", "lag-1 relations (autocorrelation, transitions)"),
              ("coherence", "coherence (how often a category changes)")]
    rows = [[c, v["shape"], v["lag1"]["score"], v.get("coherence", {}).get("score", "-")]
            for c, v in part["columns"].items()]
    shown = "".join(f"<div style='display:inline-block;vertical-align:top;margin-right:2em'><p>{side}</p>"
                    f"{_histories(df, key, index)}</div>" for side, df in (("real", real), ("synthetic", synthetic)))
    return (f"Histories: {table} (each {key}'s events by {index})",
            _table(["figure", "value"], [[label, part[k]] for k, label in labels])
            + _table(["column", "shape", "lag-1", "coherence"], rows)
            + _img(_history_plot(real, synthetic, key, index)) + shown)


def _histories(df: pd.DataFrame, key: str, index: str) -> str:
    """The first events of a few histories of median-like length, in order."""
    sizes = df[key].value_counts()
    if not len(sizes):
        return "<p>no events</p>"
    middle = sizes[sizes >= max(2, int(sizes.median()))].index[:SHOWN_HISTORIES]
    picked = df[df[key].isin(middle)].sort_values([key, index], kind="stable")
    picked = picked.groupby(key, sort=False).head(SHOWN_EVENTS)
    return _table([str(c) for c in picked.columns], picked.astype(str).to_numpy().tolist())


def _history_plot(real: pd.DataFrame, synthetic: pd.DataFrame, key: str, index: str):
    """History lengths and gaps between consecutive events, real against synthetic."""
    import matplotlib.pyplot as plt

    from synthgen.evaluation.sequences import gaps, lengths

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 2.8))
    r, s = lengths(real, key), lengths(synthetic, key)
    top = int(max(np.percentile(r, 99) if len(r) else 1, np.percentile(s, 99) if len(s) else 1, 1))
    bins = [b + 0.5 for b in range(top + 1)]
    left.hist(r.clip(max=top), bins=bins, alpha=0.5, density=True, label="real")
    left.hist(s.clip(max=top), bins=bins, alpha=0.5, density=True, label="synthetic")
    left.set_xlabel("events per history (top 1% in the last bar)")
    left.legend()
    kind = "datetime" if not pd.api.types.is_numeric_dtype(real[index].dtype) else "numerical"
    gr, gs = gaps(real, key, index, kind), gaps(synthetic, key, index, kind)
    both = np.concatenate([gr, gs])
    high = float(np.percentile(both, 99)) if len(both) else 1.0
    right.hist(np.clip(gr, None, high), bins=40, alpha=0.5, density=True, label="real")
    right.hist(np.clip(gs, None, high), bins=40, alpha=0.5, density=True, label="synthetic")
    right.set_xlabel(f"gap between consecutive events{' (days)' if kind == 'datetime' else ''} (top 1% last)")
    return fig


def _entity_sections(figures: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Entity-level privacy and the utility task, where the evaluation had held-out entities."""
    out = []
    privacy = figures.get("entity_privacy")
    if privacy:
        keys = [("dcr_train_share", "DCR share (0.5 ideal)"), ("mia_auc", "membership-inference AUC (0.5 ideal)"),
                ("exact_copy_rate", "exact copies of a training entity"),
                ("exact_copy_rate_holdout", "the same rate for holdout entities"),
                ("nndr_median", "NNDR median"), ("nndr_holdout_median", "NNDR median of holdout entities")]
        out.append((f"Privacy: entities of {privacy['entity']} with their descendants",
                    _table(["figure", "value"], [[label, privacy[key]] for key, label in keys if key in privacy])))
    utility = figures.get("entity_utility")
    if utility:
        rows = [[metric, utility["trtr"][metric], utility["tstr"][metric], utility["gap"].get(metric, "-")]
                for metric in utility["trtr"] if not metric.endswith("_std") and metric != "per_seed"]
        out.append((f"Utility: {utility['target']} ({utility['task']}), trained on entity frames, tested on the "
                    "held-out entities", _table(["metric", "TRTR (real)", "TSTR (synthetic)", "gap"], rows)))
    return out
