"""The ``synthgen`` command: a thin click layer over the Python API.

Parses options, calls the API, and maps every ``SynthgenError`` to one line on stderr and a
non-zero exit code. Defaults live in the API, not here (options default to None = "API default").
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from synthgen.errors import IdentifierWarning, SynthgenError

EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 3, 130


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into one clear line and a non-zero exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SynthgenError as exc:
            _fail(str(exc), EXIT_ERROR)
        except click.ClickException:  # usage errors: click prints them with the usage line, exit code 2
            raise
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)
        except MemoryError:
            _fail("out of memory (fix: use a smaller --batch-size or fewer rows)", EXIT_ERROR)
        except Exception as exc:  # an unexpected bug: still one line, with how to get details
            if os.environ.get("SYNTHGEN_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with SYNTHGEN_DEBUG=1 for the "
                  "traceback and please report it)", EXIT_INTERNAL)

    return wrapper


def _model_names() -> list[str]:
    from synthgen.models import available_models

    return available_models()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="synthgen")
def main() -> None:
    """synthgen: train a generator on a private table and share look-alike synthetic data.

    \b
    Example:
      synthgen mask patients.csv --suggest --out policy.json
      synthgen mask patients.csv --policy policy.json --out masked.parquet
      synthgen train masked.parquet --model ctgan --out patients.sgm
      synthgen sample patients.sgm --rows 10000 --out synthetic.parquet
    """
    warnings.showwarning = _show_warning


_default_showwarning = warnings.showwarning


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """synthgen's own warnings as one ``warning: ...`` line on stderr; others as Python prints them."""
    if issubclass(category, IdentifierWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, *args, **kwargs)


_TRAINING_OPTIONS = [
    click.option("--model", "-m", type=click.Choice(_model_names()), default="tvae", show_default=True,
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


def training_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The model and DP options shared by ``train`` and ``audit``."""
    for option in reversed(_TRAINING_OPTIONS):
        func = option(func)
    return func


def _synthesizer(opts: dict[str, Any], *, progress: bool) -> Any:
    """A Synthesizer from the shared training options (DP options only with --epsilon)."""
    from synthgen.synthesizer import Synthesizer

    dp_keys = ("epsilon", "delta", "max_grad_norm", "accountant", "stats_share", "deterministic")
    dp = {k: opts[k] for k in dp_keys}
    if opts["epsilon"] is None:
        given = [f"--{k.replace('_', '-')}" for k in ("delta", "stats_share") if dp[k] is not None]
        given += ["--deterministic"] * bool(dp["deterministic"])
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply with --epsilon (fix: add --epsilon E)")
        dp = {}
    return Synthesizer(model=opts["model"], epochs=opts["epochs"], batch_size=opts["batch_size"],
                       seed=opts["seed"], device=opts["device"], metadata=opts["metadata"], progress=progress,
                       allow=opts["allow"], **dp)


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Model file to write (.sgm).")
@training_options
@click.option("--encrypt", "encrypt_out", is_flag=True,
              help="Encrypt the model file with --key-file or $SYNTHGEN_KEY (AES-256-GCM).")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Key file from synthgen keygen, for --encrypt (default: $SYNTHGEN_KEY).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def train(data: Path, out: Path, encrypt_out: bool, key_file: Path | None, force: bool, quiet: bool,
          **opts: Any) -> None:
    """Train a generator on DATA (CSV or Parquet) and save it as a model file.

    \b
    Example:
      synthgen train adult.csv --model ctgan --epochs 300 --out adult.sgm
      synthgen train adult.csv --model pairwise --epsilon 1 --stats-share 0.1 --out adult-dp.sgm
    """
    from synthgen.io import check_writable

    check_writable(out, force=force)  # fail now, not after an hour of training
    key = None
    if encrypt_out or key_file is not None:
        from synthgen.privacy.keys import read_key

        key = read_key(key_file)  # before training, so a missing key fails now
    synth = _synthesizer(opts, progress=not quiet)
    synth.fit(data).save(out, force=force, key=key)
    s = synth.summary
    click.echo(f"trained {opts['model']} on {s['rows']:,} rows x {s['columns']} columns in {s['seconds']:.1f} s "
               f"({s['epochs']} epochs); model written to {out}")
    if synth.ledger is not None:
        led = synth.ledger
        click.echo(f"differential privacy: epsilon {led['epsilon']:.3g} (target {led['epsilon_target']:g}), "
                   f"delta {led['delta']:.2g}, {led['accountant']} accountant, {led['steps']} steps")
        if opts["deterministic"]:
            click.echo("warning: --deterministic: the DP noise is seeded and predictable; NOT FOR RELEASE", err=True)


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@training_options
@click.option("--canaries", type=click.IntRange(min=10), default=500, show_default=True,
              help="Canary rows, each planted in the training table with probability 1/2.")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the figures as JSON ('-' prints them).")
@click.option("--force", is_flag=True, help="Overwrite --json if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def audit(data: Path, canaries: int, confidence: float, json_out: Path | None, force: bool, quiet: bool,
          **opts: Any) -> None:
    """Check a privacy promise: train once on DATA with planted canaries and bound epsilon from below.

    \b
    Example:
      synthgen audit adult.csv --model pairwise --epsilon 1 --stats-share 0.1 --canaries 500
    """
    from synthgen.evaluation.audit import audit as run_audit
    from synthgen.io import check_writable, read_table

    if json_out is not None and str(json_out) != "-":
        check_writable(json_out, force=force)
    table = read_table(data)

    def fit_and_sample(train_table: Any) -> Any:
        synth = _synthesizer(opts, progress=not quiet).fit(train_table)
        return synth.sample(len(train_table), seed=opts["seed"])

    result = run_audit(table, fit_and_sample, canaries=canaries, confidence=confidence, seed=opts["seed"],
                       claimed_epsilon=opts["epsilon"])
    click.echo(result.summary())
    if json_out is not None:
        text = json.dumps(result.to_dict(), indent=2)
        if str(json_out) == "-":
            click.echo(text)
        else:
            from synthgen.io import write_bytes_atomic

            write_bytes_atomic(json_out, (text + "\n").encode(), force=force)
            click.echo(f"figures written to {json_out}")


def _model_key(model_file: Path, key_file: Path | None) -> bytes | None:
    """The key for an encrypted model file (--key-file or $SYNTHGEN_KEY); None for a plain one."""
    from synthgen.privacy.crypto import is_encrypted
    from synthgen.privacy.keys import read_key

    encrypted = model_file.is_file() and is_encrypted(model_file)
    if key_file is None and not encrypted:
        return None
    if key_file is None and not os.environ.get("SYNTHGEN_KEY"):
        raise SynthgenError(f"{model_file} is an encrypted model file (fix: --key-file PATH or set SYNTHGEN_KEY)")
    return read_key(key_file)


def _parse_where(items: tuple[str, ...]) -> dict[str, str]:
    conditions = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise click.BadParameter(f"{item!r} is not COLUMN=VALUE", param_hint="--where")
        conditions[column] = value
    return conditions


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rows", "-n", required=True, type=click.IntRange(min=0), help="Number of rows to generate.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: .csv, .csv.gz or .parquet (written in chunks, published atomically).")
@click.option("--seed", type=int, default=None, help="Seed: the same seed gives the same rows.")
@click.option("--where", "where", multiple=True, metavar="COLUMN=VALUE",
              help="Keep only rows with this value (repeatable); steers ctgan's conditional vector.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Key of an encrypted model file (default: $SYNTHGEN_KEY).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def sample(model_file: Path, rows: int, out: Path, seed: int | None, where: tuple[str, ...],
           key_file: Path | None, force: bool, quiet: bool) -> None:
    """Generate synthetic rows from MODEL_FILE.

    \b
    Example:
      synthgen sample adult.sgm --rows 100000 --out synthetic.parquet --seed 1 --where income='>50K'
    """
    from synthgen.io import check_writable
    from synthgen.sampler import Sampler

    conditions = _parse_where(where)
    check_writable(out, force=force)
    sampler = Sampler.load(model_file, key=_model_key(model_file, key_file))
    sampler.sample_to(out, rows, seed=seed, conditions=conditions, force=force, progress=not quiet)
    click.echo(f"wrote {rows:,} rows x {len(sampler.columns)} columns to {out}")


@main.command()
@click.argument("model_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Key of an encrypted model file (default: $SYNTHGEN_KEY).")
@handle_errors
def inspect(model_file: Path, as_json: bool, key_file: Path | None) -> None:
    """Show what a model file holds: model, schema, training summary, privacy ledger.

    \b
    Example:
      synthgen inspect adult.sgm --json
    """
    from synthgen.artifact import read_manifest
    from synthgen.describe import describe_manifest

    manifest = read_manifest(model_file, _model_key(model_file, key_file))
    if as_json:
        click.echo(json.dumps(manifest, indent=2, ensure_ascii=False))
    else:
        click.echo(describe_manifest(manifest))


@main.command()
@click.option("--real", "real", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Real rows the generator was trained on (CSV or Parquet).")
@click.option("--synthetic", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Synthetic rows to evaluate.")
@click.option("--test", "test", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Real holdout rows the generator never saw (default: split 20% off --real).")
@click.option("--target", required=True, help="Column a downstream model predicts.")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto",
              show_default=True, help="Prediction task (auto: from the target's kind).")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="MLP runs per side (figures are mean and spread).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write all figures as JSON ('-' prints them).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a self-contained HTML report.")
@click.option("--force", is_flag=True, help="Overwrite --json / --report if they exist.")
@handle_errors
def evaluate(real: Path, synthetic: Path, test: Path | None, target: str, task: str, seeds: int,
             json_out: Path | None, report: Path | None, force: bool) -> None:
    """Score SYNTHETIC against REAL: utility (TRTR vs TSTR), fidelity and privacy.

    \b
    Example:
      synthgen evaluate --real train.csv --synthetic synth.csv --test holdout.csv --target income \\
        --json figures.json --report report.html
    """
    from synthgen.evaluation import HOLDOUT_SHARE
    from synthgen.evaluation import evaluate as run_evaluation
    from synthgen.io import check_writable

    for path in (json_out, report):
        if path is not None and str(path) != "-":
            check_writable(path, force=force)
    if test is None:
        click.echo(f"note: no --test given: holding out {HOLDOUT_SHARE:.0%} of {real} (stratified, seed 0). "
                   "This is a fair test only if the generator was trained without those rows.", err=True)
    result = run_evaluation(real, synthetic, test, target=target, task=None if task == "auto" else task,
                            seeds=seeds)
    click.echo(result.summary())
    if json_out is not None:
        if str(json_out) == "-":
            click.echo(result.to_json())
        else:
            result.to_json(json_out, force=force)
            click.echo(f"figures written to {json_out}")
    if report is not None:
        result.to_html(report, force=force)
        click.echo(f"report written to {report}")


@main.command("mask")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--policy", "-p", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Masking policy JSON (write a first one with --suggest).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Masked table (.csv / .parquet); with --suggest, the policy JSON (default: print it).")
@click.option("--suggest", is_flag=True, help="Propose a policy for DATA from its content instead of masking.")
@click.option("--k", "k", type=click.IntRange(min=2), default=5, show_default=True,
              help="With --suggest: k of the proposed k-anonymity over the quasi-identifiers.")
@click.option("--reveal", is_flag=True, help="Undo the policy's reversible pseudonyms in DATA (needs the key).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write what masking did (per column, k-anonymity) as JSON.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Key that makes replacements and pseudonyms the same across runs, and reversible "
                   "pseudonyms revealable (default: $SYNTHGEN_KEY if set, else a one-run key).")
@click.option("--seed", type=int, default=None, help="Seed for the noise operation.")
@click.option("--force", is_flag=True, help="Overwrite --out / --report if they exist.")
@handle_errors
def mask_command(data: Path, policy: Path | None, out: Path | None, suggest: bool, k: int, reveal: bool,
                 report: Path | None, key_file: Path | None, seed: int | None, force: bool) -> None:
    """De-identify DATA before training: drop, replace, pseudonymize, mask, generalize, noise, k-anonymity.

    \b
    Example:
      synthgen mask patients.csv --suggest --out policy.json
      synthgen mask patients.csv --policy policy.json --out masked.parquet --key-file owner.key
      synthgen mask masked.parquet --policy policy.json --reveal --out revealed.parquet --key-file owner.key
    """
    from synthgen.io import read_table

    if suggest:
        return _suggest(read_table(data), k, out, force)
    if policy is None or out is None:
        raise click.UsageError("give --policy and --out (or --suggest to propose a policy)")
    from synthgen.io import check_writable, write_bytes_atomic, write_table
    from synthgen.privacy.masking import Masker

    for path in (out, report):
        if path is not None:
            check_writable(path, force=force)
    masker = Masker(policy, key=_optional_key(key_file), seed=seed)
    table = read_table(data)
    result = masker.reveal(table) if reveal else masker.apply(table)
    write_table(result, out, force=force)
    if reveal:
        return click.echo(f"revealed {len(result):,} rows to {out}")
    click.echo("\n".join(masker.report.lines()) + f"\nmasked table written to {out}")
    if report is not None:
        write_bytes_atomic(report, json.dumps(masker.report.to_dict(), indent=1).encode(), force=force)
        click.echo(f"report written to {report}")


def _suggest(table: Any, k: int, out: Path | None, force: bool) -> None:
    from synthgen.io import write_bytes_atomic
    from synthgen.privacy.identifiers import suggest_policy

    policy = suggest_policy(table, k=k)
    text = json.dumps(policy, indent=1)
    found = len(policy["columns"]) + len(policy.get("k_anonymity", {}).get("columns", []))
    if out is None:
        click.echo(text)
    else:
        write_bytes_atomic(out, text.encode() + b"\n", force=force)
        click.echo(f"policy for {found} columns written to {out}; review it, then run synthgen mask --policy")
    if not found:
        click.echo("no identifiers found (the policy masks nothing; check the columns yourself)", err=True)


def _optional_key(key_file: Path | None) -> bytes | None:
    """--key-file, else $SYNTHGEN_KEY, else None."""
    from synthgen.privacy.keys import KEY_ENV, read_key

    return read_key(key_file) if key_file is not None or os.environ.get(KEY_ENV) else None


PASSPHRASE_ENV = "SYNTHGEN_PASSPHRASE"


def _secret(key_file: Path | None, passphrase: bool, *, confirm: bool) -> dict[str, Any]:
    """Key (file or $SYNTHGEN_KEY) or passphrase ($SYNTHGEN_PASSPHRASE or a hidden prompt); never an argument."""
    from synthgen.privacy.keys import read_key

    if passphrase:
        if key_file is not None:
            raise click.UsageError("give --key-file or --passphrase, not both")
        text = os.environ.get(PASSPHRASE_ENV) or click.prompt("passphrase", hide_input=True,
                                                              confirmation_prompt=confirm, err=True)
        return {"passphrase": text}
    return {"key": read_key(key_file)}


_KEY_OPTIONS = [
    click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Key file from synthgen keygen (default: $SYNTHGEN_KEY)."),
    click.option("--passphrase", is_flag=True,
                 help=f"Use a passphrase (from ${PASSPHRASE_ENV}, or asked for without echo) through scrypt."),
]


def key_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_KEY_OPTIONS):
        func = option(func)
    return func


@main.command()
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Key file to write (created readable by you only).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@handle_errors
def keygen(out: Path, force: bool) -> None:
    """Make a random 256-bit key for encrypt / decrypt.

    \b
    Example:
      synthgen keygen --out owner.key
    """
    from synthgen.privacy.keys import write_key_file

    write_key_file(out, force=force)
    click.echo(f"key written to {out} (mode 0600; anyone holding it can decrypt: keep it secret, back it up)")


def crypt_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """SRC, --out, the key options and --force, with the usual error handling."""
    func = handle_errors(func)
    func = click.option("--force", is_flag=True, help="Overwrite --out if it exists.")(func)
    func = key_options(func)
    func = click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))(func)
    func = click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))(func)
    return main.command()(func)


@crypt_command
def encrypt(src: Path, out: Path, key_file: Path | None, passphrase: bool, force: bool) -> None:
    """Encrypt SRC (any file: a table, a model) with AES-256-GCM, in chunks.

    \b
    Example:
      synthgen encrypt adult.csv --out adult.csv.enc --key-file owner.key
    """
    from synthgen.privacy.crypto import encrypt_file

    encrypt_file(src, out, force=force, **_secret(key_file, passphrase, confirm=True))
    click.echo(f"encrypted {src} to {out}")


@crypt_command
def decrypt(src: Path, out: Path, key_file: Path | None, passphrase: bool, force: bool) -> None:
    """Decrypt SRC; any modification or a wrong key fails and leaves no output file.

    \b
    Example:
      synthgen decrypt adult.csv.enc --out adult.csv --key-file owner.key
    """
    from synthgen.privacy.crypto import decrypt_file

    decrypt_file(src, out, force=force, **_secret(key_file, passphrase, confirm=False))
    click.echo(f"decrypted {src} to {out}")


@main.command()
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_out"),
              show_default=True, help="Folder for the model file and the synthetic table.")
@click.option("--model", "-m", type=click.Choice(_model_names()), default="tvae", show_default=True)
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


if __name__ == "__main__":
    main()
