"""Human-readable text for a model manifest (what ``synthgen inspect`` prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthgen.artifact import Manifest
    from synthgen.dp.ledger import Ledger


def describe_manifest(manifest: Manifest) -> str:
    """Summarize a manifest in a few aligned lines."""
    if manifest.get("kind") == "relational":
        return describe_relational(dict(manifest))
    model, training, privacy = manifest["model"], manifest["training"], manifest["privacy"]
    columns = manifest["transformer"]["schema"]["columns"]
    hp = ", ".join(f"{k}={v}" for k, v in model["hyperparameters"].items())
    lines = [
        f"model          {model['name']} (format {manifest['format_version']}, synthgen "
        f"{manifest['synthgen_version']}, torch {manifest['torch_version']})",
        f"hyperparameters {hp}",
        f"trained on     {training['rows']:,} rows x {training['columns']} columns, {training['epochs']} epochs, "
        f"{training['seconds']:.1f} s, seed {training['seed']}, {training['device']} ({training.get('machine', '?')})",
    ]
    if training.get("streamed"):
        fitted = training["transformer_fitted_on"]
        outside = ", ".join(f"{k} {v}" for k, v in (training.get("outside_sample") or {}).items()) or "none"
        lines.append(f"streamed       from disk; schema and transformer fitted on {fitted['rows']:,} of "
                     f"{fitted['of_rows']:,} rows (uniform sample); values outside the sample: {outside}")
    history = training.get("history") or []
    if history and len(history[-1]) > 1:
        last = ", ".join(f"{k}={v}" for k, v in history[-1].items() if k not in ("epoch", "seconds"))
        lines.append(f"final losses   {last}")
    lines.append(f"columns ({len(columns)})")
    lines += [f"  {c['name']:<24} {c['kind']:<12} {c['dtype']}" for c in columns]
    lines += describe_privacy(privacy)
    return "\n".join(lines)


def describe_relational(manifest: dict[str, Any]) -> str:
    """A model of several tables: each table (rows, columns, model, how its rows are generated) and each
    relationship."""
    training = manifest["training"]
    tables = manifest["tables"]
    lines = [f"model          relational: {len(tables)} tables, {training['model']} per table (format "
             f"{manifest.get('format_version')}, synthgen {manifest['synthgen_version']}, torch "
             f"{manifest['torch_version']}), trained in {training['seconds']:.1f} s, seed {training['seed']}",
             "tables (parents first)"]
    for name in manifest["order"]:
        info, context = tables[name], manifest["contexts"].get(name)
        how = (f"per {context['parent_table_name']} row (context {context['child_foreign_key']})" if context
               else "root: scale x rows")
        model = info.get("model")
        epochs = f", {model['training']['epochs']} epochs" if model else ", keys only"
        rows = f"{info['rows']:>9,} rows" if info["rows"] is not None else "  (private) rows"  # a DP child's count
        lines.append(f"  {name:<16} {rows} x {len(info['columns'])} columns{epochs}; {how}")
    lines.append("relationships")
    lines += [f"  {r['child_table_name']}.{r['child_foreign_key']} -> {r['parent_table_name']}."
              f"{r['parent_primary_key']}" for r in manifest["metadata"]["relationships"]]
    return "\n".join(lines + describe_privacy(manifest["privacy"]))


def describe_privacy(privacy: Ledger) -> list[str]:
    """The privacy ledger as text lines."""
    raw = "taken from the data without noise: " + "; ".join(privacy.get("raw_quantities", []))
    if not privacy.get("differential_privacy"):
        return ["privacy        " + privacy["statement"], raw]
    if "tables" in privacy:  # entity-level DP over several tables: the whole, then each table's own ledger
        entities = privacy["entities"]
        lines = [f"privacy        differentially private per ENTITY (a row of {entities['table']} with all its rows): "
                 f"epsilon={privacy['epsilon']:.4g} (target {privacy['epsilon_target']:g}), delta="
                 f"{privacy['delta']:.3g}, {privacy['accountant']} accountant over every table's releases",
                 f"  entities     {entities['count']:,}; {entities['truncation']}",
                 f"  sensitivity  {privacy['sensitivity']}"]
        for table, part in privacy["tables"].items():
            lines.append(f"  table {table}: epsilon {part['epsilon']:.4g} of its share {part['epsilon_target']:.4g}, "
                         f"{_sampling(part)}, noise multiplier {part['noise_multiplier']:.4g}, {part['steps']} steps")
        return [*lines, raw, "  statement    " + privacy["statement"]]
    stats = privacy.get("domain_statistics", {})
    lines = [
        f"privacy        differentially private: epsilon={privacy['epsilon']:.4g} (target "
        f"{privacy['epsilon_target']:g}), delta={privacy['delta']:.3g}, {privacy['accountant']} accountant",
        f"  training     {privacy['mechanism']}: {_sampling(privacy)}, noise multiplier "
        f"{privacy['noise_multiplier']:.4g}, {privacy['sensitivity']}, {privacy['steps']} steps",
        f"  domain stats {stats.get('histograms', 0)} noisy histograms, epsilon share {stats.get('epsilon_share')}, "
        f"noise std {stats.get('noise_std', 0):.4g}, category threshold {stats.get('category_threshold')}",
        f"  noise        {'secure (OS-seeded, Opacus secure mode)' if privacy.get('secure_noise') else 'SEEDED'}"
        + (f"  *** {privacy['deterministic']} ***" if privacy.get("deterministic") else ""),
    ]
    sources: dict[str, dict[str, str]] = privacy.get("sources", {})
    for column, parts in sources.items():
        lines.append(f"  {column:<24} " + ", ".join(f"{k}: {v}" for k, v in parts.items()))
    if privacy.get("outside_domain"):
        lines.append(f"  outside      {privacy['outside_domain']}")
    return [*lines, raw, "  statement    " + privacy["statement"]]


def _sampling(privacy: Ledger) -> str:
    if privacy["sample_rate"] >= 1:
        return "no sampling (each noisy table reads every row once)"
    return f"Poisson sampling rate {privacy['sample_rate']:.4g} (expected batch {privacy['expected_batch_size']})"
