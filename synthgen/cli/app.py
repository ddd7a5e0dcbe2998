"""The ``synthgen`` command group: a thin click layer over the Python API.

Parses options, calls the API, and maps every ``SynthgenError`` to one line on stderr and a
non-zero exit code. Defaults live in the API, not here (options default to None = "API default").
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import click

from synthgen.errors import SynthgenError, SynthgenWarning, TrainingInterrupted

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
        except TrainingInterrupted as exc:
            _fail(str(exc), EXIT_INTERRUPTED)
        except SynthgenError as exc:
            _fail(str(exc), EXIT_ERROR)
        except click.ClickException:  # usage errors: click prints them with the usage line, exit code 2
            raise
        except click.exceptions.Abort:  # a prompt got end-of-input (no terminal) or Ctrl-C
            _fail("aborted: no answer to a prompt (fix: run in a terminal, or set SYNTHGEN_PASSPHRASE for "
                  "passphrases)", EXIT_ERROR)
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


def model_names() -> list[str]:
    """The registered model names (for --model choices)."""
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
    if issubclass(category, SynthgenWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, *args, **kwargs)


#: the training options that ask for differential privacy (``DPSettings``' fields)
DP_OPTIONS = ("epsilon", "delta", "max_grad_norm", "accountant", "stats_share", "deterministic")


def dp_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The DP settings of ``train`` / ``audit`` (empty without --epsilon, where --delta, --stats-share and
    --deterministic are refused)."""
    if opts["epsilon"] is not None:
        return {k: opts[k] for k in DP_OPTIONS}
    given = [f"--{k.replace('_', '-')}" for k in ("delta", "stats_share") if opts[k] is not None]
    given += ["--deterministic"] * bool(opts["deterministic"])
    if given:
        raise click.UsageError(f"{', '.join(given)} only apply with --epsilon (fix: add --epsilon E)")
    return {}
