"""The evaluation as text for a terminal and as one self-contained HTML file (PNG plots inline)."""

from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthgen.evaluation.prep import NUMERIC_KINDS, category_keys, numbers

if TYPE_CHECKING:
    from synthgen.evaluation import Evaluation
    from synthgen.io import SealLike

#: categories shown per column plot; plots per row of the distribution grid
TOP_CATEGORIES, GRID_COLUMNS = 12, 4
#: point masses listed by name beside a column's plot (the heaviest; the others are summed)
SHOWN_MASSES = 5


def headline(ev: Evaluation) -> list[tuple[str, str, Any, str]]:
    """(key, label, value, what is good) for the figures that matter most."""
    u = ev.figures["utility"]
    keys = ["accuracy", "macro_f1", "auc"] if u["task"] == "classification" else ["r2", "rmse"]
    rows = []
    for k in keys:
        rows.append((f"utility.trtr.{k}", f"MLP {k}, trained on real", _pm(u["trtr"], k), "reference"))
        rows.append((f"utility.tstr.{k}", f"MLP {k}, trained on synthetic", _pm(u["tstr"], k), "close to real"))
    f, p = ev.figures["fidelity"], ev.figures["privacy"]
    rows += [
        ("fidelity.quality", "quality score (sdmetrics definition)", f["quality"], "1 is ideal"),
        ("fidelity.column_shapes", "column shapes", f["column_shapes"], "1 is ideal"),
        ("fidelity.column_pair_trends", "column pair trends", f["column_pair_trends"], "1 is ideal"),
        ("fidelity.detection_auc", "detection AUC (gradient boosting)", f["detection_auc"], "0.5 is ideal"),
        ("privacy.dcr_train_share", "DCR: share closer to train than holdout", p["dcr_train_share"], "0.5 is ideal"),
        ("privacy.exact_copy_rate", "exact copies of training rows", p["exact_copy_rate"],
         f"holdout rows: {p['exact_copy_rate_holdout']}"),
        ("privacy.nndr_median", "NNDR median", p["nndr_median"], f"holdout rows: {p['nndr_holdout_median']}"),
        ("privacy.mia_auc", "membership-inference AUC", p["mia_auc"], "0.5 is ideal"),
    ]
    x = ev.figures.get("interpretability", {})
    if x.get("available"):
        rows += [
            ("interpretability.rank_correlation", "feature-importance rank correlation (Spearman)",
             x["rank_correlation"], "1 is ideal"),
            ("interpretability.top5_overlap", "top-5 features in common", x["top5_overlap"], "1 is ideal"),
            ("interpretability.pdp_distance", "partial-dependence distance, top features", x["pdp_distance"],
             "0 is ideal"),
        ]
    return rows


def _pm(side: dict, key: str) -> str:
    return f"{side[key]:.4f} ± {side[key + '_std']:.4f}"


def summary_lines(ev: Evaluation) -> list[str]:
    fig = ev.figures
    rows = fig["rows"]
    lines = [f"evaluated {rows['synthetic']:,} synthetic rows against {rows['real']:,} real training rows and "
             f"{rows['test']:,} real holdout rows (target {fig['target']!r}, {fig['task']}, holdout {fig['holdout']})"]
    width = max(len(label) for _, label, _, _ in headline(ev))
    for key, label, value, note in headline(ev):
        shown = value if isinstance(value, str) else _fmt(value)
        lines.append(f"  {label:<{width}}  {shown:<17}  {note}   [{key}]")
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


# ---------------------------------------------------------------------------------------- html

def write_report(ev: Evaluation, path: str | os.PathLike, *, force: bool = False,
                 seal: SealLike | None = None) -> Path:
    """Write the HTML report atomically (encrypted with ``seal`` if given); it needs no network to open."""
    import matplotlib

    from synthgen.io import write_bytes_atomic

    matplotlib.use("Agg", force=True)
    sections = [
        ("Summary", _summary_table(ev)),
        ("Utility: train on real vs train on synthetic, tested on real holdout", _img(_utility_plot(ev))
         + _baseline_table(ev)),
        ("Column distributions", _img(_distribution_plot(ev))),
        ("Correlations (Pearson for numeric pairs, Cramér's V otherwise)", _img(_correlation_plot(ev))),
        ("Distance to closest record", _img(_dcr_plot(ev))),
        ("Per-column scores", _column_table(ev)),
    ]
    if ev.figures.get("interpretability", {}).get("available"):
        x = ev.figures["interpretability"]
        sections.insert(2, ("Interpretability: what the MLPs rely on, explained on the real holdout",
                            f"<p>{html.escape(x['method'])}.</p>" + _img(_importance_plot(ev))
                            + _img(_dependence_plot(ev))))
    body = "".join(f"<h2>{html.escape(title)}</h2>\n{content}\n" for title, content in sections)
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>synthgen evaluation</title>"
           f"<style>{_CSS}</style></head><body><h1>synthgen evaluation</h1>"
           f"<p>{html.escape(summary_lines(ev)[0])}</p>{body}</body></html>")
    return write_bytes_atomic(path, doc.encode("utf-8"), force=force, seal=seal)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
        "th{background:#f3f3f3}img{max-width:100%}code{color:#555}")


def _img(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr>{cells}</table>"


def _summary_table(ev: Evaluation) -> str:
    return _table(["figure", "value", "what is good", "JSON key"],
                  [[label, value, note, key] for key, label, value, note in headline(ev)])


def _baseline_table(ev: Evaluation) -> str:
    u = ev.figures["utility"]
    rows = []
    for name in ("linear", "boosting"):
        if name in u:
            for metric, real in u[name]["trtr"].items():
                rows.append([name, metric, real, u[name]["tstr"][metric]])
    return _table(["model", "metric", "trained on real", "trained on synthetic"], rows) if rows else ""


def _column_table(ev: Evaluation) -> str:
    cols = ev.figures["fidelity"]["columns"]
    return _table(["column", "kind", "shape score (KS / TV complement)"],
                  [[name, ev.tables.schema[name].kind, score] for name, score in cols.items()])


def _utility_plot(ev: Evaluation):
    import matplotlib.pyplot as plt

    u = ev.figures["utility"]
    metrics = ["accuracy", "macro_f1", "auc"] if u["task"] == "classification" else ["r2"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(metrics))
    for shift, side, label in ((-0.2, "trtr", "trained on real"), (0.2, "tstr", "trained on synthetic")):
        ax.bar(x + shift, [u[side][m] for m in metrics], 0.4, yerr=[u[side][m + "_std"] for m in metrics],
               label=label, capsize=3)
    ax.set_xticks(x, metrics)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    ax.set_title(f"{u['model']}, {u['seeds']} seeds")
    return fig


def _distribution_plot(ev: Evaluation):
    import matplotlib.pyplot as plt

    t = ev.tables
    names = list(t.train.columns)
    rows = math.ceil(len(names) / GRID_COLUMNS)
    fig, axes = plt.subplots(rows, GRID_COLUMNS, figsize=(4 * GRID_COLUMNS, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        kind = t.schema[name].kind
        if kind in NUMERIC_KINDS:
            _numeric_panel(ax, numbers(t.train[name], kind), numbers(t.synthetic[name], kind),
                           ev.figures["fidelity"].get("point_masses", {}).get(name))
        else:
            real_keys, syn_keys = category_keys(t.train[name]), category_keys(t.synthetic[name])
            cats, counts = np.unique(real_keys, return_counts=True)
            top = cats[np.argsort(-counts)][:TOP_CATEGORIES]
            share_r = [np.mean(real_keys == c) for c in top]
            share_s = [np.mean(syn_keys == c) for c in top]
            x = np.arange(len(top))
            ax.bar(x - 0.2, share_r, 0.4, label="real")
            ax.bar(x + 0.2, share_s, 0.4, label="synthetic")
            ax.set_xticks(x, [c.replace("\x00null", "(null)")[:12] for c in top], rotation=60, fontsize=7)
        ax.set_title(str(name)[:40], fontsize=9)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _numeric_panel(ax, real: np.ndarray, syn: np.ndarray, masses: dict | None) -> None:
    """Histograms of a numeric column; a column with point masses shows the rest's histogram, each mass's
    share real vs synthetic beside it, and the synthetic share in the gaps next to them."""
    real, syn = real[~np.isnan(real)], syn[~np.isnan(syn)]
    if masses:
        values = [m["value"] for m in masses["masses"]]
        real, syn = real[~np.isin(real, values)], syn[~np.isin(syn, values)]
        top = sorted(masses["masses"], key=lambda m: -m["real"])
        lines = [f"={m['value']:g}: real {m['real']:.1%}, synth {m['synthetic']:.1%}" for m in top[:SHOWN_MASSES]]
        if len(top) > SHOWN_MASSES:  # a discrete column or many round amounts: the others together
            more = top[SHOWN_MASSES:]
            lines.append(f"{len(more)} more: real {sum(m['real'] for m in more):.1%}, "
                         f"synth {sum(m['synthetic'] for m in more):.1%}")
        lines.append(f"in gaps: synth {masses['gap_share']['synthetic']:.1%} (real 0%)")
        ax.text(0.98, 0.95, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=6,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    lo, hi = np.quantile(real, [0.005, 0.995]) if len(real) else (0, 1)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
    ax.hist(real, bins=bins, density=True, alpha=0.5, label="real" + (" (rest)" if masses else ""))
    ax.hist(syn, bins=bins, density=True, alpha=0.5, label="synthetic" + (" (rest)" if masses else ""))


def _correlation_plot(ev: Evaluation):
    import matplotlib.pyplot as plt

    from synthgen.evaluation.fidelity import correlation_matrix

    t = ev.tables
    real, syn = correlation_matrix(t.train, t), correlation_matrix(t.synthetic, t)
    diff = (real - syn).abs()
    n = len(real)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    panels = ((real, "real", "coolwarm", -1), (syn, "synthetic", "coolwarm", -1),
              (diff, "|real - synthetic|", "Reds", 0))
    for ax, (mat, title, cmap, lo) in zip(axes, panels, strict=True):
        im = ax.imshow(mat.to_numpy(dtype=float), cmap=cmap, vmin=lo, vmax=1)
        ax.set_title(title)
        if n <= 30:
            ax.set_xticks(range(n), [str(c)[:12] for c in mat.columns], rotation=90, fontsize=7)
            ax.set_yticks(range(n), [str(c)[:12] for c in mat.index], fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _dcr_plot(ev: Evaluation):
    import matplotlib.pyplot as plt

    h = ev.figures["privacy"]["histograms"]
    edges = np.asarray(h["edges"])
    mids, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(mids, h["dcr_train"], width, alpha=0.5, label="to closest training row")
    ax.bar(mids, h["dcr_holdout"], width, alpha=0.5, label="to closest holdout row")
    ax.set_xlabel("distance of a synthetic row")
    ax.legend()
    return fig


def _importance_plot(ev: Evaluation):
    """Each column's permutation importance, trained on real beside trained on synthetic, with the seed spread."""
    import matplotlib.pyplot as plt

    x = ev.figures["interpretability"]
    names = sorted(x["importance"]["real"], key=lambda f: x["importance"]["real"][f])
    pos = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.32 * len(names)))
    for shift, side, label in ((0.2, "real", "trained on real"), (-0.2, "synthetic", "trained on synthetic")):
        ax.barh(pos + shift, [x["importance"][side][f] for f in names], 0.4,
                xerr=[x["importance_std"][side][f] for f in names], label=label, capsize=2)
    ax.set_yticks(pos, [str(f)[:24] for f in names], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("increase of the holdout log-loss when the column is shuffled" if x["metric"] == "log_loss"
                  else "drop of the holdout R² when the column is shuffled")
    ax.set_title(f"rank correlation {_fmt(x['rank_correlation'])}, top-5 overlap {_fmt(x['top5_overlap'])}",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _dependence_plot(ev: Evaluation):
    """Partial dependence of the real model's top columns, both sides."""
    import matplotlib.pyplot as plt

    curves = ev.figures["interpretability"]["partial_dependence"]
    fig, axes = plt.subplots(1, max(len(curves), 1), figsize=(4.5 * max(len(curves), 1), 3.2), squeeze=False)
    for ax, (name, c) in zip(axes.flat, curves.items(), strict=False):
        pos = np.arange(len(c["grid"]))
        ax.plot(pos, c["real"], marker="o", label="trained on real")
        ax.plot(pos, c["synthetic"], marker="s", label="trained on synthetic")
        ax.set_xticks(pos, [str(v)[:12] for v in c["grid"]], rotation=60, fontsize=7)
        ax.set_title(f"{str(name)[:30]} (distance {_fmt(c['distance'])})", fontsize=9)
        ax.set_ylabel(c["shows"], fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
