"""train, audit, sample, inspect, evaluate and demo: the model side of the command line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from synthgen.cli.app import dp_options, handle_errors, main, model_names
from synthgen.cli.secrets import input_secret, key_options, optional_key, output_seal, verify_key, verify_option
from synthgen.cli.secrets import signing_key as read_signer
from synthgen.errors import ConfigError, OutputExistsError, TrainingInterrupted
from synthgen.models.registry import DEFAULT_MODEL

if TYPE_CHECKING:
    from synthgen.artifact import Manifest, TrainingSummary
    from synthgen.checkpoint_file import Checkpoint
    from synthgen.crypto.sealing import Seal, Secret
    from synthgen.models import Model

_TRAINING_OPTIONS = [
    click.option("--model", "-m", type=click.Choice(model_names()), default=DEFAULT_MODEL, show_default=True,
                 help="Model family (pairwise: the DP model that wins at small epsilon)."),
    click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (model default)."),
    click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Rows per step (model default)."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed: same seed, same model on this machine."),
    click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True),
    click.option("--metadata", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                 help="SDV single-table metadata JSON to use instead of detecting column kinds; with "
                      '"public": true its bounds, categories and nullable flags cost no DP budget.'),
    click.option("--epsilon", type=float, default=None,
                 help="Train with differential privacy (Opacus accountant) at this total epsilon."),
    click.option("--delta", type=float, default=None, help="DP delta (default: at most 1/(10 n))."),
    click.option("--max-grad-norm", type=float, default=1.0, show_default=True,
                 help="DP-SGD: per-sample gradient clipping norm."),
    click.option("--accountant", type=click.Choice(["rdp", "prv"]), default="rdp", show_default=True,
                 help="DP: privacy accountant (prv is tighter and slower)."),
    click.option("--stats-share", type=float, default=None,
                 help="DP: share of epsilon for noisy bounds/categories of columns not declared public (e.g. 0.1)."),
    click.option("--deterministic", is_flag=True,
                 help="DP: seeded, reproducible noise for debugging. NOT FOR RELEASE."),
    click.option("--allow", multiple=True, metavar="COLUMN",
                 help="Train on COLUMN although it looks like an identifier (repeatable)."),
]


_TRAINING_NAMES = ("model", "epochs", "batch_size", "seed", "device", "metadata", "epsilon", "delta", "max_grad_norm",
                   "accountant", "stats_share", "deterministic", "allow")


def training_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The model and DP options shared by ``train`` and ``audit``."""
    for option in reversed(_TRAINING_OPTIONS):
        func = option(func)
    return func


def _synthesizer(opts: dict[str, Any], *, progress: bool) -> Any:
    """A Synthesizer from the shared training options (DP options only with --epsilon)."""
    from synthgen.synthesizer import Synthesizer

    dp = dp_options(opts)
    if opts.get("entity") is not None and opts["epsilon"] is None:
        raise click.UsageError("--entity sets the unit of differential privacy (fix: add --epsilon E)")
    if opts.get("entity") is not None:
        dp["entity"] = opts["entity"]
    return Synthesizer(model=opts["model"], epochs=opts["epochs"], batch_size=opts["batch_size"],
                       seed=opts["seed"], device=opts["device"], metadata=opts["metadata"], progress=progress,
                       allow=opts["allow"], target=opts.get("target"), **dp)


@main.command()
@click.argument("data")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Model file to write (.sgm).")
@training_options
@key_options(inputs=True, outputs=True)
@click.option("--signing-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sign the model file with this Ed25519 key (synthgen keygen --signing): writes <out>.sig.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, metavar="N",
              help="Save a checkpoint every N epochs (Ctrl-C always saves one), to <out>.ckpt.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Continue from a checkpoint (its settings are used) to the same result as an uninterrupted run.")
@click.option("--stream/--no-stream", default=None,
              help="Read a Parquet file larger than memory in batches (tvae, no --epsilon): the transformer is "
                   "fitted on a uniform sample, training batches stream from disk. Default: on when the file "
                   "would take more than half the free memory.")
@click.option("--sample-rows", type=click.IntRange(min=10), default=None, metavar="N",
              help="With --stream: rows of the sample the schema, validation and transformer see [200,000].")
@click.option("--entity", default=None, metavar="COLUMN",
              help="A single table with --epsilon: the column naming each row's entity (a customer id): the unit "
                   "of privacy is then the entity with all its rows; the column is not learned.")
@click.option("--max-events", type=click.IntRange(min=1), default=None, metavar="N",
              help="Several tables with --epsilon: the most rows an entity keeps in each child table (public) "
                   "[100].")
@click.option("--target", default=None, metavar="COLUMN",
              help="A categorical column a downstream model will predict (tvae, no --epsilon): each row is generated "
                   "given its class, drawn at the training class shares; --where on it then generates that class.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def train(data: str, out: Path, key_file: Path | None, identity: Path | None, encrypt: bool,
          recipient: Path | None, signing_key: Path | None, checkpoint_every: int | None, resume: Path | None,
          stream: bool | None, sample_rows: int | None, entity: str | None, max_events: int | None,
          target: str | None, force: bool, quiet: bool, **opts: Any) -> None:
    """Train a generator on DATA (CSV or Parquet, plain or encrypted) and save it as a model file.

    DATA may also be several related tables: a folder with one file per table, or a database URL
    (sqlite:///clinic.db, postgresql://user@host/db); --metadata is then SDV multi-table metadata
    (synthgen metadata detect writes it; without it keys are detected), and one model file holds
    every table. A table with a sequence_key and sequence_index (SDV's sequential metadata, also for a
    single file) is learned as ordered histories. With --epsilon the unit of privacy is then the entity:
    a root row with all its rows in every table.

    \b
    Example:
      synthgen train ../shared/datasets/relational/berka --metadata berka.json --out berka.sgm
      synthgen train sqlite:///clinic.db --out clinic.sgm
      synthgen train purchases.csv --metadata purchases.json --out purchases.sgm   # histories
      synthgen train cdnow/ --metadata cdnow.json --epsilon 4 --out cdnow-dp.sgm     # per customer
      synthgen train adult.csv --target income --out adult.sgm      # rows given their class
      synthgen train adult.csv --model ctgan --epochs 300 --out adult.sgm
      synthgen train adult.csv --model pairwise --epsilon 1 --stats-share 0.1 --out adult-dp.sgm
      synthgen train adult.csv.enc --key-file owner.key --encrypt --signing-key sign.key --out adult.sgm
      synthgen train adult.csv --out adult.sgm --checkpoint-every 10     # Ctrl-C or a crash: then
      synthgen train adult.csv --out adult.sgm --resume adult.sgm.ckpt
      torchrun --nproc_per_node 4 -m synthgen train adult.csv --model tvae --out adult.sgm
      synthgen train big.parquet --stream --sample-rows 200000 --out big.sgm   # larger than memory
    """
    from synthgen import distributed
    from synthgen.cli.tables import declares_sequences, is_table_set, train_tables
    from synthgen.crypto.streams import is_encrypted
    from synthgen.io import check_writable, read_table

    check_writable(out, force=force)  # fail now, not after an hour of training
    seal = output_seal(None, encrypt, recipient, key_file)  # keys first, so a missing one fails now
    signer = _signer(signing_key, out, force=force)
    if max_events is not None and not (is_table_set(data) or declares_sequences(opts["metadata"])):
        raise click.UsageError("--max-events applies to several tables or histories (fix: drop it)")
    if is_table_set(data) or declares_sequences(opts["metadata"]):  # several tables, or histories
        if entity is not None:
            raise click.UsageError("--entity applies to a single table; several tables take their entities from "
                                   "the metadata (fix: drop it)")
        opts["max_events"] = max_events
        for flag, given in (("--checkpoint-every", checkpoint_every), ("--resume", resume), ("--stream", stream),
                            ("--allow", opts["allow"]), ("--target", target)):
            if given:
                raise click.UsageError(f"{flag} applies to a single table (fix: drop it)")
        sign = None if signer is None else (lambda path: _signed(path, signer, force))
        train_tables(data, out, opts, force=force, quiet=quiet, seal=seal, signer=sign,
                     opener=lambda path: input_secret(path, key_file, identity))
        return
    opts["entity"], opts["target"] = entity, target
    path = Path(data)
    if sample_rows is not None and stream is not True:
        raise click.UsageError("--sample-rows only applies with --stream (fix: add --stream)")
    secret = input_secret(path, key_file, identity)
    saved = _read_resume(resume, secret, key_file, identity)
    stream = _streaming(path, stream, saved, opts)
    table = path if stream else read_table(path, secret=secret)
    ckpt = Path(f"{out}.ckpt")
    if resume is None and ckpt.exists() and not force:
        raise OutputExistsError(f"{ckpt} exists from an interrupted run (fix: --resume {ckpt} to continue it, or "
                                "--force to start over)")
    private = opts["epsilon"] is not None if saved is None else saved.private
    ckpt_seal, unsealed = _checkpoint_seal(seal, secret, key_file, identity, private=private,
                                           resumed_sealed=resume is not None and is_encrypted(resume))
    if unsealed and checkpoint_every:
        raise click.UsageError(f"--checkpoint-every: {unsealed}, and nothing can encrypt the checkpoint (fix: "
                               f"{_SEAL_FIX}, or drop --checkpoint-every)")
    synth = _resumed(saved, progress=not quiet) if saved is not None else _synthesizer(opts, progress=not quiet)
    stream_args = {"stream": True, **({"sample_rows": sample_rows} if sample_rows else {})} if stream else {}
    _fit(synth, table, f"synthgen train {data} --out {out} --resume {ckpt}", unsealed,
         checkpoint=None if unsealed else ckpt, checkpoint_every=checkpoint_every or 0, resume_from=saved,
         seal=ckpt_seal, **stream_args)
    if not distributed.current().main:  # under torchrun, rank 0 writes the model
        return
    key, to = (seal.key, seal.recipient) if seal is not None else (None, None)
    synth.save(out, force=force, key=key, recipient=to)
    for stale in (ckpt, resume):
        if stale is not None:  # it holds the critic / encoder: no longer needed once the model is saved
            stale.unlink(missing_ok=True)
    _report(synth, out, encrypted=seal is not None, signer=signer, force=force, deterministic=opts["deterministic"])


def _fit(synth: Any, table: Any, resume_hint: str, unsealed: str | None, **fit_args: Any) -> None:
    """``synth.fit(table, **fit_args)`` across processes; an interruption names how to resume (``resume_hint``),
    or why it cannot (``unsealed``: no checkpoint was written)."""
    from synthgen import distributed

    try:
        synth.fit(table, **fit_args)
        distributed.stop(wait=True)
    except TrainingInterrupted as exc:
        raise TrainingInterrupted(str(exc).replace("(fix: resume from it)", f"(fix: {resume_hint})")) from None
    except KeyboardInterrupt:
        if not unsealed:
            raise
        raise TrainingInterrupted(f"interrupted; no checkpoint was written: {unsealed}, and nothing can encrypt "
                                  f"one (fix: {_SEAL_FIX} to be able to resume)") from None
    finally:
        distributed.stop()


def _signer(signing_key: Path | None, out: Path, *, force: bool) -> Any:
    """The key that signs the model file (None: unsigned), read now so that a bad one fails before training."""
    if signing_key is None:
        return None
    from synthgen.io import check_writable

    check_writable(Path(f"{out}.sig"), force=force)
    return read_signer(signing_key)


def _signed(out: Path, signer: Any, force: bool) -> None:
    from synthgen.crypto.signing import sign_file

    click.echo(f"signature written to {sign_file(out, signer, force=force)}")


def _read_resume(resume: Path | None, secret: Secret | None, key_file: Path | None,
                 identity: Path | None) -> Checkpoint | None:
    """The checkpoint to resume from, read once (for its settings, whether it streamed, and its state)."""
    if resume is None:
        return None
    from synthgen.checkpoint_file import Checkpoint

    return Checkpoint.read(resume, secret=_resume_secret(resume, secret, key_file, identity))


def _streaming(data: Path, stream: bool | None, saved: Checkpoint | None, opts: dict[str, Any]) -> bool:
    """Whether to stream DATA: --stream / --no-stream, a streamed checkpoint, or a file too big for memory."""
    if saved is not None:
        try:
            return saved.check_streaming(stream)
        except ConfigError as exc:  # --stream / --no-stream against the checkpoint: a usage error
            raise click.UsageError(str(exc)) from None
    if stream is not None:
        return stream
    from synthgen.pipeline import streams_by_default

    stream, note = streams_by_default(data, opts["model"], private=opts["epsilon"] is not None)
    if note is not None:
        click.echo(f"note: {note}", err=True)
    return stream


def _report(synth: Any, out: Path, *, encrypted: bool, signer: Any, force: bool, deterministic: bool) -> None:
    """What ``train`` did: the fit, the file written (and signed), the privacy ledger."""
    s = synth.summary
    click.echo(f"trained {synth.model.name} on {s['rows']:,} rows x {s['columns']} columns in {s['seconds']:.1f} s "
               f"({s['epochs']} epochs); model written to {out}" + (" (encrypted)" if encrypted else ""))
    if s.get("streamed"):
        click.echo(_streamed_note(s))
    if signer is not None:
        from synthgen.crypto.signing import sign_file

        click.echo(f"signature written to {sign_file(out, signer, force=force)}")
    if synth.ledger is not None:
        led = synth.ledger
        click.echo(f"differential privacy: epsilon {led['epsilon']:.3g} (target {led['epsilon_target']:g}), "
                   f"delta {led['delta']:.2g}, {led['accountant']} accountant, {led['steps']} steps")
        click.echo(f"statement: {led['statement']}")
        if deterministic:
            click.echo("warning: --deterministic: the DP noise is seeded and predictable; NOT FOR RELEASE", err=True)


def _streamed_note(summary: TrainingSummary) -> str:
    """What a streamed fit read, for the train command's output."""
    fitted = summary["transformer_fitted_on"]
    outside = summary.get("outside_sample") or {}
    parts = [f"{col} {n:,} {kind.replace('_', ' ')}" for col, kinds in outside.items() for kind, n in kinds.items()]
    seen = (f"outside the sample's domain: {', '.join(parts)} (clipped or mapped to known values, see inspect "
            "--json)" if parts else "no value outside the sample's domain")
    return (f"streamed from disk: schema and transformer fitted on a uniform sample of {fitted['rows']:,} of "
            f"{fitted['of_rows']:,} rows; {seen}")


def _resumed(saved: Checkpoint, *, progress: bool) -> Any:
    """A Synthesizer with the checkpoint's settings; training options given with --resume are refused."""
    from synthgen.synthesizer import Synthesizer

    ctx = click.get_current_context()
    given = [f"--{name.replace('_', '-')}" for name in _TRAINING_NAMES
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(f"--resume takes the settings from the checkpoint; drop {', '.join(given)}")
    return Synthesizer.from_checkpoint(saved, progress=progress)


_SEAL_FIX = "give --key-file or set SYNTHGEN_KEY (your key), --identity (your key pair), or set SYNTHGEN_PASSPHRASE"


def _resume_secret(resume: Path, data_secret: Secret | None, key_file: Path | None,
                   identity: Path | None) -> Secret | None:
    """The secret that opens the checkpoint: the data's own when it is of the kind the checkpoint asks
    for (a passphrase is asked for once), else the one its header names."""
    from synthgen.crypto.streams import encryption_mode, is_encrypted

    if data_secret is not None and is_encrypted(resume):
        kind = {"key": "key", "scrypt": "passphrase", "x25519": "private_key"}[encryption_mode(resume)]
        if data_secret.kind == kind:
            return data_secret
    return input_secret(resume, key_file, identity)


def _checkpoint_seal(seal: Seal | None, secret: Secret | None, key_file: Path | None,
                     identity: Path | None, *, private: bool, resumed_sealed: bool) -> tuple[Seal | None, str | None]:
    """How a checkpoint is encrypted, and why it cannot be written when nothing can encrypt it.

    A checkpoint holds what the model file holds and more (the critic / encoder, exact category
    values and bounds, under DP the noise generators' state), so it is never written in plain text
    when the data or the model is encrypted, or under DP. It is sealed with what the owner can open
    again: the owner's key, the public key of ``--identity``, or the passphrase (the data's own, or
    ``$SYNTHGEN_PASSPHRASE``); never to a ``--recipient``, who could not resume it.
    """
    from synthgen.cli.secrets import PASSPHRASE_ENV
    from synthgen.crypto.sealing import Seal

    why = ("the data is encrypted" if secret is not None else "the model file is encrypted" if seal is not None
           else "training is differentially private (the checkpoint holds the noise generators' state)"
           if private else "the checkpoint resumed from was encrypted" if resumed_sealed else None)
    if why is None:
        return None, None
    key = ((seal.key if seal is not None else None) or (secret.key if secret is not None else None)
           or optional_key(key_file))
    if key is not None:
        return Seal(key=key), None
    if secret is not None and secret.private_key is not None:
        return Seal(recipient=secret.private_key.public_key()), None
    if identity is not None:
        from synthgen.cli.secrets import private_key

        return Seal(recipient=private_key(identity).public_key()), None
    phrase = (secret.passphrase if secret is not None else None) or os.environ.get(PASSPHRASE_ENV)
    if phrase:
        return Seal(passphrase=phrase), None
    return None, why


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@training_options
@click.option("--canaries", type=click.IntRange(min=10), default=500, show_default=True,
              help="Canary rows (for several tables: canary entities, each with its rows in every child table), "
                   "each planted in the training data with probability 1/2.")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the figures as JSON ('-' prints them).")
@key_options(inputs=True)
@click.option("--force", is_flag=True, help="Overwrite --json if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def audit(data: Path, canaries: int, confidence: float, json_out: Path | None, key_file: Path | None,
          identity: Path | None, force: bool, quiet: bool, **opts: Any) -> None:
    """Check a privacy promise: train once on DATA with planted canaries and bound epsilon from below.

    DATA may be several tables (a folder or database URL, with --metadata): the canaries are then whole
    entities, rows of the root table with their rows in each child table, as entity-level DP protects them.

    \b
    Example:
      synthgen audit adult.csv --model pairwise --epsilon 1 --stats-share 0.1 --canaries 500
      synthgen audit cdnow/ --metadata cdnow.json --epsilon 4 --canaries 200
    """
    from synthgen.cli.tables import is_table_set
    from synthgen.evaluation.audit import audit as run_audit
    from synthgen.io import check_writable, read_table

    if json_out is not None and str(json_out) != "-":
        check_writable(json_out, force=force)
    if is_table_set(str(data)):
        from synthgen.cli.tables import audit_tables

        result = audit_tables(str(data), opts, canaries=canaries, confidence=confidence, quiet=quiet,
                              opener=lambda path: input_secret(path, key_file, identity))
        _echo_audit(result, json_out, force)
        return
    table = read_table(data, secret=input_secret(data, key_file, identity))
    if opts["epsilon"] is not None and opts["delta"] is None:  # the default for the largest training table
        from synthgen.dp.accounting import default_delta

        opts["delta"] = default_delta(len(table) + canaries)

    def fit_and_sample(train_table: Any) -> Any:
        synth = _synthesizer(opts, progress=not quiet).fit(train_table)
        return synth.sample(len(train_table), seed=opts["seed"])

    result = run_audit(table, fit_and_sample, canaries=canaries, confidence=confidence, seed=opts["seed"],
                       claimed_epsilon=opts["epsilon"], claimed_delta=opts["delta"] or 0.0)
    _echo_audit(result, json_out, force)


def _echo_audit(result: Any, json_out: Path | None, force: bool) -> None:
    click.echo(result.summary())
    if json_out is not None:
        text = json.dumps(result.to_dict(), indent=2)
        if str(json_out) == "-":
            click.echo(text)
        else:
            from synthgen.io import write_bytes_atomic

            write_bytes_atomic(json_out, (text + "\n").encode(), force=force)
            click.echo(f"figures written to {json_out}")


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit()):
        raise click.BadParameter(f"{text!r} is not I/K, e.g. 0/4", param_hint="--shard")
    return int(index), int(count)


def _parse_where(items: tuple[str, ...]) -> dict[str, str]:
    conditions = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise click.BadParameter(f"{item!r} is not COLUMN=VALUE", param_hint="--where")
        conditions[column] = value
    return conditions


def _open(model_file: Path, key_file: Path | None, identity: Path | None, verify: Path | None,
          signature: Path | None, allow_rename: bool = False) -> tuple[Path, Manifest, Model]:
    """The path, manifest and model of a plain, encrypted and/or signed model file, checked and built
    before the data layer (pandas) loads: a crafted file is refused at a valid file's cost."""
    from synthgen.artifact import open_model

    model_file, data = _locate(model_file, verify, signature, allow_rename)
    manifest, model = open_model(model_file, input_secret(model_file, key_file, identity), data=data)
    return model_file, manifest, model


def _locate(model_file: Path, verify: Path | None, signature: Path | None,
            allow_rename: bool) -> tuple[Path, bytes | None]:
    """MODEL_FILE's path (a shipped model's, given its name) and, with --verify, its bytes once their signature
    checked (the bytes verified are the bytes then read), else None."""
    from synthgen.artifact import read_file_bytes

    for flag, given in (("--signature", signature is not None), ("--allow-rename", allow_rename)):
        if given and verify is None:
            raise click.UsageError(f"{flag} needs --verify SIGNER_PUB")
    if not model_file.exists() and model_file.parent == Path(".") and not model_file.suffix:
        from synthgen.shipped import models_dir  # a shipped model by name: synthgen sample adult-tvae

        if (models_dir() / f"{model_file}.sgm").is_file():
            model_file = models_dir() / f"{model_file}.sgm"
    data = None
    if verify is not None:  # read once: the bytes verified are the bytes loaded
        from synthgen.crypto.signing import verify_data

        data = read_file_bytes(model_file, "model file")
        verify_data(model_file, data, verify_key(verify), signature=signature, allow_rename=allow_rename)
    return model_file, data


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rows", "-n", type=click.IntRange(min=0), default=None,
              help="Number of rows to generate (a single-table model).")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="A model of several tables: root rows relative to training [1.0]; the other tables follow.")
@click.option("--entities", type=click.IntRange(min=0), default=None,
              help="A model of several tables: this many entities (rows of the sequential table's parent, or of the "
                   "only root table), instead of --scale; --where then conditions on their columns.")
@click.option("--format", "file_format", type=click.Choice(["csv", "csv.gz", "parquet"]), default="csv",
              show_default=True, help="A model of several tables written to a folder: each table's file format.")
@click.option("--out", "-o", required=True,
              help="Output file: .csv, .csv.gz or .parquet, + .enc when encrypted (written in chunks, atomically); "
                   "for several tables a folder (one file per table) or a database URL.")
@click.option("--seed", type=int, default=None, help="Seed: the same seed gives the same rows.")
@click.option("--where", "where", multiple=True, metavar="COLUMN=VALUE",
              help="Keep only rows with this value (repeatable); steers ctgan's conditional vector, and a tvae "
                   "trained with --target on that column.")
@click.option("--shard", default=None, metavar="I/K",
              help="Write only shard I of K (0-based; same --rows and --seed on every shard): the shards in order "
                   "are exactly the unsharded sample.")
@key_options(inputs=True, outputs=True)
@verify_option
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def sample(model_file: Path, rows: int | None, scale: float | None, entities: int | None, file_format: str, out: str,
           seed: int | None,
           where: tuple[str, ...], shard: str | None, key_file: Path | None, identity: Path | None, encrypt: bool,
           recipient: Path | None, verify_key: Path | None, signature: Path | None, allow_rename: bool, force: bool,
           quiet: bool) -> None:
    """Generate synthetic rows from MODEL_FILE (or, from a model of several tables, every table).

    \b
    Example:
      synthgen sample berka.sgm --scale 1.0 --out synthetic_berka/          # one file per table
      synthgen sample clinic.sgm --scale 0.5 --out postgresql://partner@host/db   # tables created, keys kept
      synthgen sample cdnow.sgm --entities 5000 --out histories/            # 5,000 users and their purchases
      synthgen sample baseball.sgm --entities 100 --where bats=L --out left_handed/
      synthgen sample adult.sgm --rows 100000 --out synthetic.parquet --seed 1 --where income='>50K'
      synthgen sample adult.sgm --rows 1000 --out rows.csv.enc --recipient partner.pub --verify owner-sign.pub
      synthgen sample adult.sgm --rows 10000000 --seed 7 --shard 0/4 --out part-0.parquet   # ... 3/4
    """
    from synthgen.artifact import build_model, read_model_file
    from synthgen.files import check_writable

    conditions, part = _parse_where(where), _parse_shard(shard)
    located, data = _locate(model_file, verify_key, signature, allow_rename)
    manifest, tensors = read_model_file(located, input_secret(located, key_file, identity), data=data)
    if manifest.get("kind") == "relational":
        from synthgen.cli.tables import sample_tables
        from synthgen.relational.sampler import RelationalSampler

        for flag, given in (("--rows", rows is not None), ("--shard", shard)):
            if given:
                raise click.UsageError(f"{flag} applies to a single-table model; {model_file} holds several tables "
                                       "(fix: --scale S or --entities N)")
        if scale is not None and entities is not None:
            raise click.UsageError("--scale and --entities both set the number of rows (fix: give one)")
        seal = output_seal(None if "://" in out else Path(out), encrypt, recipient, key_file)
        sample_tables(RelationalSampler.assemble(located, manifest, tensors), out, scale=scale, entities=entities,
                      conditions=conditions, seed=seed, force=force, file_format=file_format, seal=seal)
        return
    if rows is None:
        raise click.UsageError("--rows is required for a single-table model (fix: --rows N)")
    for flag, given in (("--scale", scale is not None), ("--entities", entities is not None)):
        if given:
            raise click.UsageError(f"{flag} applies to a model of several tables (fix: --rows N)")
    check_writable(Path(out), force=force)
    seal = output_seal(Path(out), encrypt, recipient, key_file)
    model = build_model(located, manifest, tensors)  # before the data layer loads
    from synthgen.sampler import Sampler

    sampler = Sampler.assemble(located, manifest, model)
    sampler.sample_to(out, rows, seed=seed, conditions=conditions, force=force, progress=not quiet, seal=seal,
                      shard=part)
    what = f"shard {part[0]}/{part[1]} of {rows:,} rows" if part else f"{rows:,} rows"
    click.echo(f"wrote {what} x {len(sampler.columns)} columns to {out}" + (" (encrypted)" if seal else ""))


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
@key_options(inputs=True)
@verify_option
@handle_errors
def inspect(model_file: Path, as_json: bool, key_file: Path | None, identity: Path | None,
            verify_key: Path | None, signature: Path | None, allow_rename: bool) -> None:
    """Show what a model file holds: model, schema, training summary, privacy ledger.

    The file is checked (size limits, checksums, signature, its list of tensors) without building the
    model; sample also checks that the weights fit the model the manifest describes.

    \b
    Example:
      synthgen inspect adult.sgm --json
    """
    from synthgen.artifact import read_manifest
    from synthgen.describe import describe_manifest

    model_file, data = _locate(model_file, verify_key, signature, allow_rename)
    manifest = read_manifest(model_file, input_secret(model_file, key_file, identity), data=data)
    if as_json:
        click.echo(json.dumps(manifest, indent=2, ensure_ascii=False))
    else:
        click.echo(describe_manifest(manifest))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list with every card figure as JSON.")
@handle_errors
def models(as_json: bool) -> None:
    """List the trained models shipped in trained_models/ (one line each; the card is NAME.md beside it).

    \b
    Example:
      synthgen models
      synthgen sample trained_models/adult-tvae.sgm --rows 1000 --out adult.csv   # or just: adult-tvae
    """
    from synthgen.shipped import list_models

    entries = list_models()
    if as_json:
        click.echo(json.dumps([{**e, "path": str(e["path"])} for e in entries], indent=2))
        return
    for e in entries:
        fig = e["card"].get("figures", {})
        eps = "no DP" if e["epsilon"] is None else f"epsilon {e['epsilon']:.3g}"
        tstr = (f"TSTR acc {fig['tstr_accuracy']:.3f} (real {fig['trtr_accuracy']:.3f})"
                if fig.get("tstr_accuracy") is not None else "no card figures")
        click.echo(f"{e['name']:<16} {e['model']:<9} {eps:<12} {e['rows']:>6} rows  {tstr}  {e['path']}")


@main.command()
@click.option("--real", "real", required=True,
              help="Real rows the generator was trained on (CSV or Parquet); several tables: a folder or database URL.")
@click.option("--synthetic", required=True, help="Synthetic rows to evaluate (several tables: a folder or URL).")
@click.option("--test", "test", default=None,
              help="Real holdout rows the generator never saw (default: split 20% off --real); several tables: a "
                   "folder or database of held-out entities, for the utility task and entity-level privacy.")
@click.option("--target", default=None, help="Column a downstream model predicts (a single table: required); "
                                             "several tables: TABLE.COLUMN of that table's entity frame.")
@click.option("--entity", default=None, help="Several tables: the table whose rows are the entities of the "
                                             "privacy figures (default: the root table with the most rows).")
@click.option("--metadata", "metadata_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Several tables: their SDV multi-table metadata JSON (default: detected).")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto",
              show_default=True, help="Prediction task (auto: from the target's kind).")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="MLP runs per side (figures are mean and spread).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write all figures as JSON ('-' prints them).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a self-contained HTML report.")
@key_options(inputs=True, outputs=True)
@click.option("--force", is_flag=True, help="Overwrite --json / --report if they exist.")
@handle_errors
def evaluate(real: str, synthetic: str, test: str | None, target: str | None, entity: str | None,
             metadata_path: Path | None, task: str, seeds: int, json_out: Path | None, report: Path | None,
             key_file: Path | None, identity: Path | None, encrypt: bool, recipient: Path | None,
             force: bool) -> None:
    """Score SYNTHETIC against REAL: utility (TRTR vs TSTR), fidelity and privacy.

    Several tables (folders or database URLs): the multi-table quality score (column shapes, pair trends,
    cardinality, intertable trends), key integrity and parent-child detection, per table and relationship;
    with --test (held-out entities), entity-level privacy and, with --target, the utility task on entity
    frames (each row with its ancestors' columns and its descendants' aggregates).

    \b
    Example:
      synthgen evaluate --real berka/ --synthetic synthetic_berka/ --metadata berka.json --report r.html
      synthgen evaluate --real train/ --synthetic synth/ --test holdout/ --metadata berka.json \
        --entity account --target loan.status
      synthgen evaluate --real train.csv --synthetic synth.csv --test holdout.csv --target income \\
        --json figures.json --report report.html
    """
    from synthgen.evaluation import HOLDOUT_SHARE
    from synthgen.evaluation import evaluate as run_evaluation
    from synthgen.io import check_writable, read_table

    for path in (json_out, report):
        if path is not None and str(path) != "-":
            check_writable(path, force=force)
    seal = output_seal(None, encrypt, recipient, key_file)
    from synthgen.cli.tables import evaluate_tables, is_table_set

    if is_table_set(real):
        evaluate_tables(real, synthetic, metadata_path, json_out=json_out, report=report, force=force, seal=seal,
                        test=test, target=target, entity=entity,
                        task=None if task == "auto" else task, seeds=seeds,
                        opener=lambda path: input_secret(path, key_file, identity))
        return
    if entity is not None:
        raise click.UsageError("--entity applies to several tables (fix: drop it)")
    if target is None:
        raise click.UsageError("--target is required for a single table (fix: --target COLUMN)")
    if test is None:
        click.echo(f"note: no --test given: holding out {HOLDOUT_SHARE:.0%} of {real} (stratified, seed 0). "
                   "This is a fair test only if the generator was trained without those rows.", err=True)
    tables = [None if p is None else read_table(p, secret=input_secret(Path(p), key_file, identity))
              for p in (real, synthetic, test)]
    result = run_evaluation(*tables, target=target, task=None if task == "auto" else task, seeds=seeds)
    click.echo(result.summary())
    if json_out is not None:
        if str(json_out) == "-":
            click.echo(result.to_json())
        else:
            result.to_json(json_out, force=force, seal=seal)
            click.echo(f"figures written to {json_out}")
    if report is not None:
        result.to_html(report, force=force, seal=seal)
        click.echo(f"report written to {report}")


@main.command()
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_out"),
              show_default=True, help="Folder for the model file and the synthetic table.")
@click.option("--model", "-m", type=click.Choice(model_names()), default=DEFAULT_MODEL, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (model default).")
@click.option("--rows", "-n", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite files from an earlier demo.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def demo(out: Path, model: str, epochs: int | None, rows: int, force: bool, quiet: bool) -> None:
    """Train on the bundled Adult table, sample rows, and evaluate them against held-out real rows.

    \b
    Example:
      synthgen demo --model ctgan --epochs 50 --out demo_out
    """
    from synthgen.demo import run_demo

    click.echo(run_demo(out, model=model, epochs=epochs, rows=rows, force=force, progress=not quiet))
