"""The checkpoint file (``.ckpt``): everything needed to continue a fit exactly, no pickle.

A zip with ``checkpoint.json`` (settings, a SHA-256 of the training table, the fitted
transformer, the DP domain if any, and the loop's position, history and accountant) and
``state.safetensors`` (networks, optimizer moments, random generator states). It holds no
training row, but unlike a model file it holds the critic / encoder that read the rows: keep it
as private as the data (``seal``: encrypted like a model file), and delete it once the model is
saved (``synthgen train`` does).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import save as save_tensors

from synthgen.artifact import MAX_FILE_BYTES, load_tensors_bounded, read_file_bytes, unzip_bounded
from synthgen.errors import ConfigError, IntegrityError, SynthgenError
from synthgen.io import SealLike, SecretLike, as_secret, write_bytes_atomic
from synthgen.schema import TableSchema, python_value

FORMAT, VERSION = "synthgen-checkpoint", 1
BODY, STATE = "checkpoint.json", "state.safetensors"
#: the most ``checkpoint.json`` may unpack to (the transformer, as in a model's manifest, plus the history)
MAX_BODY_BYTES = 32 << 20


def table_sha256(df: pd.DataFrame) -> str:
    """SHA-256 over a table's column names and values: resuming must see the same table."""
    digest = hashlib.sha256(json.dumps([str(c) for c in df.columns]).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def write_checkpoint(path: str | os.PathLike, body: dict[str, Any], tensors: dict[str, torch.Tensor], *,
                     seal: SealLike | None = None) -> Path:
    """Write a checkpoint atomically (temp file, fsync, rename), replacing the previous one (encrypted with
    ``seal``: a ``Seal`` or ``{"key": ...}``, ``{"passphrase": ...}``, ``{"recipient": ...}``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(BODY, json.dumps({**body, "format": FORMAT, "format_version": VERSION}, allow_nan=False,
                                     default=_json_value))
        zf.writestr(STATE, save_tensors({k: v.contiguous() for k, v in tensors.items()}))
    return write_bytes_atomic(path, buffer.getvalue(), force=True, seal=seal)


def read_checkpoint(path: str | os.PathLike, *, secret: SecretLike | None = None
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The body and tensors of a checkpoint (``secret`` for an encrypted one: a ``Secret`` or ``{"key": ...}``,
    ...), unpacked within the limits a model file is (``synthgen.artifact.unzip_bounded``)."""
    from synthgen.crypto.streams import MAGIC, decrypt_bytes

    data = read_file_bytes(Path(path), "checkpoint")
    if data.startswith(MAGIC):
        opener = as_secret(secret)
        if opener is None:
            raise SynthgenError(f"{path} is an encrypted checkpoint (fix: give its key: --key-file or --identity)")
        data = decrypt_bytes(data, opener)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = unzip_bounded(zf, len(data), {BODY: MAX_BODY_BYTES, STATE: MAX_FILE_BYTES}, path)
        body = json.loads(members[BODY])
        tensors = load_tensors_bounded(members[STATE], f"{path}: {STATE}")
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError, KeyError,
            ValueError, RecursionError, SafetensorError):
        raise IntegrityError(f"{path} is not a synthgen checkpoint or is damaged (fix: start training over)") from None
    if body.get("format") != FORMAT or body.get("format_version") != VERSION:
        raise IntegrityError(f"{path}: checkpoint format {body.get('format')!r} version {body.get('format_version')}"
                             f"; this synthgen reads {FORMAT} version {VERSION} (fix: resume with the synthgen "
                             "that wrote it)")
    return body, tensors


def _json_value(value: Any) -> Any:
    """``json.dumps``' fallback for stragglers in domains and histories: numpy scalars, sets."""
    if isinstance(value, tuple | set):
        return list(value)
    plain = python_value(value)
    if plain is value:
        raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")
    return plain


@dataclass(frozen=True, eq=False)  # no field-wise == / hash over tensors
class Checkpoint:
    """A checkpoint read into memory once (``synthgen train --resume`` needs it three times: for the
    settings, for whether the fit streamed, and for the state), and the checks that a fit may resume
    from it: the same settings, the same table, streamed or not as it was."""

    path: Path
    body: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @classmethod
    def read(cls, path: str | os.PathLike, *, secret: SecretLike | None = None) -> Checkpoint:
        """Read and check ``path`` (see :func:`read_checkpoint`)."""
        body, tensors = read_checkpoint(path, secret=secret)
        return cls(Path(path), body, tensors)

    @classmethod
    def of(cls, source: str | os.PathLike | Checkpoint, *, secret: SecretLike | None = None) -> Checkpoint:
        """``source`` itself when already read, else :meth:`read` it."""
        return source if isinstance(source, Checkpoint) else cls.read(source, secret=secret)

    @property
    def streamed(self) -> bool:
        """Whether a streamed fit wrote it (resuming it streams too)."""
        return bool(self.body.get("stream"))

    @property
    def private(self) -> bool:
        """Whether a differentially private fit wrote it."""
        return bool(self.body.get("privacy"))

    def settings(self) -> dict[str, Any]:
        """The ``Synthesizer`` keyword arguments it was written with (its hyperparameters and DP settings
        spread among them)."""
        body = self.body
        return {"model": body["model"], "seed": body["seed"], "device": body["device"],
                "metadata": TableSchema.from_dict(body["schema"]), "allow": tuple(body.get("allow", ())),
                "target": body.get("target"),
                **(body["privacy"] or {}), **body["hyperparameters"]}

    def check_settings(self, settings: dict[str, Any], *, defaults: dict[str, Any] | None = None) -> None:
        """Refuse to resume with ``settings`` (model, hyperparameters, seed, ...) other than its own; a
        hyperparameter its body lacks (added to the model since) counts as its value in ``defaults``."""
        body = dict(self.body)
        if defaults is not None and isinstance(body.get("hyperparameters"), dict):
            known = json.loads(json.dumps(defaults, default=_json_value))
            body["hyperparameters"] = {**{k: v for k, v in known.items() if k in settings.get("hyperparameters", {})},
                                       **body["hyperparameters"]}
        differ = [k for k, v in settings.items() if body.get(k) != json.loads(json.dumps(v, default=_json_value))]
        if differ:
            raise ConfigError(f"{self.path} was written with other settings ({', '.join(differ)}) (fix: resume with "
                              "Synthesizer.from_checkpoint(path), or synthgen train --resume without changing options)")

    def check_table(self, digest: str | None) -> None:
        """Refuse to resume on a table whose SHA-256 is not ``digest`` (``table_sha256`` or ``file_sha256``)."""
        data = self.body["data"]
        if data["sha256"] != digest:
            raise ConfigError(f"{self.path} was written while training on another table ({data['rows']} rows) (fix: "
                              "resume on the same table, or start over without --resume)")

    def check_streaming(self, stream: bool | None) -> bool:
        """Whether resuming it streams (as the fit that wrote it did); ``stream`` (None: not said) must agree."""
        if stream is not None and stream != self.streamed:
            raise ConfigError(f"{self.path} was written by {'a streamed' if self.streamed else 'an in-memory'} fit "
                              f"(fix: drop --{'no-' if self.streamed else ''}stream)")
        return self.streamed
