"""Human-readable text for a model manifest (what ``synthgen inspect`` prints)."""

from __future__ import annotations

from typing import Any


def describe_manifest(manifest: dict[str, Any]) -> str:
    """Summarize a manifest in a few aligned lines."""
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
    history = training.get("history") or []
    if history and len(history[-1]) > 1:
        last = ", ".join(f"{k}={v}" for k, v in history[-1].items() if k not in ("epoch", "seconds"))
        lines.append(f"final losses   {last}")
    lines.append(f"columns ({len(columns)})")
    lines += [f"  {c['name']:<24} {c['kind']:<12} {c['dtype']}" for c in columns]
    dp = privacy.get("differential_privacy")
    lines.append("privacy        " + (f"epsilon={privacy['epsilon']}, delta={privacy['delta']}" if dp
                                      else privacy["statement"]))
    lines.append("taken from the data without noise: " + "; ".join(privacy.get("raw_quantities", [])))
    return "\n".join(lines)
