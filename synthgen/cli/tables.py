"""Several tables on the command line: ``metadata detect``, and what ``train`` and ``sample`` do when given a
folder of tables or a database URL, or a relational model file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from synthgen.cli.app import dp_options, handle_errors, main


def is_table_set(source: str) -> bool:
    """Whether ``source`` names several tables: a database URL or a folder."""
    return "://" in source or Path(source).is_dir()


def declares_sequences(metadata: Path | None) -> bool:
    """Whether a metadata file declares a sequential table (a ``sequence_key``): then a single table file is
    trained by the relational layer, its entities split off."""
    import json

    if metadata is None:
        return False
    try:
        data = json.loads(Path(metadata).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # the metadata's own reader reports it
    if not isinstance(data, dict):
        return False
    entries = list(data["tables"].values()) if isinstance(data.get("tables"), dict) else [data]
    return any(isinstance(e, dict) and e.get("sequence_key") is not None for e in entries)


@main.group()
def metadata() -> None:
    """Metadata of several tables (SDV multi-table JSON): detect it, then review it."""


@metadata.command()
@click.argument("source")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Metadata JSON file to write.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@handle_errors
def detect(source: str, out: Path, force: bool) -> None:
    """Detect the tables, keys and column kinds of SOURCE (a folder with a file per table, or a database URL)
    and write them as SDV multi-table metadata, printing each guess for review.

    \b
    Example:
      synthgen metadata detect ../shared/datasets/relational/berka --out berka.json
      synthgen metadata detect sqlite:///clinic.db --out clinic.json     # keys from the constraints
    """
    from synthgen.files import check_writable
    from synthgen.metadata import Metadata
    from synthgen.relational.tables_io import read_tables

    check_writable(out, force=force)
    tables, constraints = read_tables(source)
    meta, notes = Metadata.detect(tables, constraints)
    meta.save(out, force=force)
    for note in notes:
        click.echo(f"  {note}")
    click.echo(f"wrote {out}: {len(meta.tables)} tables, {len(meta.relationships)} relationships, "
               f"{meta.depth()} levels (review it, then: synthgen train {source} --metadata {out} --out MODEL)")


def train_tables(source: str, out: Path, opts: dict[str, Any], *, force: bool, quiet: bool,
                 seal: Any, signer: Any, opener: Any = None) -> None:
    """``synthgen train`` on several tables: one relational model file for all of them (``opener``: the secret
    of each encrypted file of a folder)."""
    from synthgen.relational.synthesizer import MAX_EVENTS, RelationalSynthesizer
    from synthgen.relational.tables_io import read_tables

    tables, constraints = read_tables(source, secret=opener)
    metadata: Any = opts["metadata"]
    if metadata is None:
        from synthgen.metadata import Metadata

        metadata, notes = Metadata.detect(tables, constraints)
        for note in notes:
            click.echo(f"  {note}")
    hyper = {k: opts[k] for k in ("batch_size",) if opts[k] is not None}
    hyper.update(dp_options(opts))  # entity-level DP: an entity with all its rows is the unit
    if opts["epsilon"] is not None:
        hyper["max_events"] = opts.get("max_events") or MAX_EVENTS
    synth = RelationalSynthesizer(model=opts["model"], epochs=opts["epochs"], seed=opts["seed"],
                                  device=opts["device"], progress=not quiet, **hyper)
    synth.fit(tables, metadata)
    key, to = (seal.key, seal.recipient) if seal is not None else (None, None)
    synth.save(out, force=force, key=key, recipient=to)
    meta = synth.metadata
    assert meta is not None
    if synth.ledger is not None:  # under DP the child tables' row counts are private: the entities are said
        size = f"{max(int(t['rows'] or 0) for t in synth.tables.values()):,} entities"
        dp = f", entity-level DP: epsilon {synth.ledger['epsilon']:.3g}, delta {synth.ledger['delta']:g}"
    else:
        size, dp = f"{sum(int(t['rows']) for t in synth.tables.values()):,} rows", ""
    click.echo(f"trained {len(meta.tables)} tables ({size}, {len(meta.relationships)} relationships{dp}) in "
               f"{synth.seconds:.1f}s -> {out}" + (" (encrypted)" if seal is not None else ""))
    if signer is not None:
        signer(out)


def sample_tables(sampler: Any, out: str, *, scale: float | None, seed: int | None, force: bool, file_format: str,
                  seal: Any, entities: int | None = None, conditions: dict[str, Any] | None = None) -> None:
    """``synthgen sample`` of a relational model: every table to a folder or a database."""
    from synthgen.relational.tables_io import write_tables

    tables = sampler.sample(scale=scale, seed=seed, entities=entities, conditions=conditions)
    where = write_tables(tables, out, sampler.output_metadata, force=force, file_format=file_format, seal=seal)
    sizes = ", ".join(f"{name} {len(df):,}" for name, df in tables.items())
    click.echo(f"wrote {len(tables)} tables ({sizes} rows) to {where}" + (" (encrypted)" if seal else ""))


def evaluate_tables(real: str, synthetic: str, metadata_path: Path | None, *, json_out: Path | None,
                    report: Path | None, force: bool, seal: Any, test: str | None = None, target: str | None = None,
                    entity: str | None = None, task: str | None = None, seeds: int = 3, opener: Any = None) -> None:
    """``synthgen evaluate`` of several tables: the multi-table quality score, key integrity, parent-child
    detection, and with held-out entities (``test``) entity-level privacy and the utility task on ``target``."""
    import json

    from synthgen.evaluation.entities import parent_child_detection
    from synthgen.evaluation.multitable import quality
    from synthgen.evaluation.multitable_report import write_multitable_report
    from synthgen.evaluation.sequences import sequence_figures
    from synthgen.io import write_bytes_atomic
    from synthgen.metadata import Metadata
    from synthgen.relational.tables_io import read_tables

    if test is None and target is not None:
        raise click.UsageError("--target needs --test: held-out entities the generator never saw (fix: split them "
                               "off before training and give them with --test)")
    real_tables, constraints = read_tables(real, secret=opener)
    synthetic_tables, _ = read_tables(synthetic, secret=opener)
    meta = Metadata.load(metadata_path) if metadata_path else Metadata.detect(real_tables, constraints)[0]
    meta.check(real_tables)
    for label, source, given in (("--synthetic", synthetic, synthetic_tables),):
        missing = [t for t in meta.tables if t not in given]
        if missing:
            raise click.UsageError(f"{label} {source} lacks table(s) {', '.join(missing)}")
    figures = quality(real_tables, synthetic_tables, meta)
    detection = parent_child_detection(real_tables, synthetic_tables, meta)
    for key, auc in detection.items():
        figures["relationships"][key]["detection_auc"] = auc
    figures["detection_auc"] = max(detection.values()) if detection else float("nan")
    click.echo(f"quality {figures['quality']} (column shapes {figures['column_shapes']}, pair trends "
               f"{figures['column_pair_trends']}, cardinality {figures['cardinality']}, intertable trends "
               f"{figures['intertable_trends']}); referential integrity {figures['referential_integrity']}, "
               f"primary keys unique: {figures['primary_keys_unique']}; parent-child detection AUC "
               f"{figures['detection_auc']} (highest; 0.5 ideal)")
    histories = sequence_figures(real_tables, synthetic_tables, meta)
    if histories:
        figures["sequences"] = histories
    for name, part in histories.items():
        click.echo(f"histories of {name}: score {part['score']} (lengths {part['length']}, gaps {part['gaps']}, "
                   f"column shapes {part['column_shapes']}, lag-1 {part['lag1']}, coherence {part['coherence']})")
    if test is not None:
        holdout, _ = read_tables(test, secret=opener)
        meta.check(holdout)
        figures.update(_entity_figures(real_tables, holdout, synthetic_tables, meta, entity=entity, target=target,
                                       task=task, seeds=seeds))
    if json_out is not None:
        text = json.dumps(figures, indent=1, default=float, allow_nan=True)
        if str(json_out) == "-":
            click.echo(text)
        else:
            write_bytes_atomic(json_out, text.encode(), force=force, seal=seal)
            click.echo(f"figures written to {json_out}")
    if report is not None:
        write_multitable_report(figures, real_tables, synthetic_tables, meta, report, force=force, seal=seal)
        click.echo(f"report written to {report}")


def _entity_figures(real: Any, holdout: Any, synthetic: Any, meta: Any, *, entity: str | None, target: str | None,
                    task: str | None, seeds: int) -> dict[str, Any]:
    """Entity-level privacy (and the utility task where ``target`` is given), printed and returned."""
    from synthgen.evaluation.entities import EntityFrame, entity_privacy, entity_utility

    held_out = [t for t in meta.tables if _held_out(meta, t, real, holdout)]
    if entity is None:
        if not held_out:
            raise click.UsageError("--test shares every keyed table's keys with --real: no entities were held out "
                                   "(fix: split the entities before training, e.g. synthgen.evaluation.entities."
                                   "split_entities)")
        tops = [t for t in held_out if not any(r.parent in held_out for r in meta.parents(t))]  # the split's table
        entity = max(tops or held_out, key=lambda t: len(real[t]))
    elif entity not in meta.tables:
        raise click.UsageError(f"--entity {entity}: not a table of the metadata ({', '.join(meta.tables)})")
    elif entity not in held_out:
        raise click.UsageError(f"--entity {entity}: --real and --test share its keys, so its rows were not held "
                               f"out (fix: one of the held-out tables: {', '.join(held_out) or 'none'})")
    frames = EntityFrame(meta, entity).fit(real)
    privacy = entity_privacy(frames.transform(real), frames.transform(holdout), frames.transform(synthetic))
    click.echo(f"entity privacy ({entity}, with descendants): DCR share {privacy['dcr_train_share']} "
               f"(0.5 ideal), membership-inference AUC {privacy['mia_auc']} (0.5 ideal)")
    out: dict[str, Any] = {"entity_privacy": {"entity": entity, **privacy}}
    if target is None:
        return out
    table = next((t for t in sorted(meta.tables, key=len, reverse=True) if target.startswith(t + ".")), None)
    if table is None:
        raise click.UsageError(f"--target {target}: give TABLE.COLUMN with TABLE one of {', '.join(meta.tables)}")
    column = target[len(table) + 1:]
    if table not in held_out:
        raise click.UsageError(f"--target {target}: --real and --test share {table}'s keys, so its rows were not "
                               f"held out (fix: a target of a held-out table: {', '.join(held_out) or 'none'})")
    task_frames = EntityFrame(meta, table).fit(real)
    train_frame = task_frames.transform(real)
    if column not in train_frame.columns:
        raise click.UsageError(f"--target {target}: {table}'s entity frame has no column {column!r} (it has: "
                               f"{', '.join(map(str, train_frame.columns[:30]))})")
    util = entity_utility(train_frame, task_frames.transform(holdout), task_frames.transform(synthetic),
                          target=column, task=task, seeds=seeds)
    metric = "auc" if util["task"] == "classification" else "r2"
    click.echo(f"utility ({target}, {util['task']}): TSTR {metric} {util['tstr'][metric]} vs TRTR "
               f"{util['trtr'][metric]} (gap {util['gap'][metric]})")
    out["entity_utility"] = {**util, "target": target}
    return out


def _held_out(meta: Any, table: str, real: Any, holdout: Any) -> bool:
    """Whether ``table`` has rows on both sides and no primary key on both (its rows were held out)."""
    pk = meta.primary_key(table)
    if pk is None or not len(real[table]) or not len(holdout[table]):
        return False
    return not bool(holdout[table][pk].isin(real[table][pk]).any())


def audit_tables(source: str, opts: dict[str, Any], *, canaries: int, confidence: float, quiet: bool,
                 opener: Any = None) -> Any:
    """``synthgen audit`` of several tables: whole canary entities (rows of the root table with their rows in each
    child table), the relational model trained once, with entity-level DP under --epsilon."""
    from synthgen.dp.accounting import default_delta
    from synthgen.evaluation.audit import audit_entities
    from synthgen.metadata import Metadata
    from synthgen.relational.synthesizer import RelationalSynthesizer
    from synthgen.relational.tables_io import read_tables

    tables, constraints = read_tables(source, secret=opener)
    meta = Metadata.load(opts["metadata"]) if opts["metadata"] is not None else Metadata.detect(tables,
                                                                                              constraints)[0]
    roots = meta.roots()
    if len(roots) != 1:
        raise click.UsageError(f"an audit of several tables needs one root table, whose rows are the entities; "
                               f"these have {', '.join(roots)} (fix: audit one entity table with its children)")
    dp = dp_options(opts)
    if dp:  # the claim the bound is set against: the default delta of the largest training data
        dp["delta"] = dp["delta"] or default_delta(len(tables[roots[0]]) + canaries)
    hyper = {k: opts[k] for k in ("batch_size",) if opts[k] is not None}

    def fit_and_sample(train: dict[str, Any]) -> Any:
        synth = RelationalSynthesizer(model=opts["model"], epochs=opts["epochs"], seed=opts["seed"],
                                      device=opts["device"], progress=not quiet, **dp, **hyper).fit(train, meta)
        return synth.sample(seed=opts["seed"])

    return audit_entities(tables, meta, roots[0], fit_and_sample, canaries=canaries, confidence=confidence,
                          seed=opts["seed"], claimed_epsilon=opts["epsilon"], claimed_delta=dp.get("delta", 0.0))
