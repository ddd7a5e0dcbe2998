"""The model file (``.sgm``): a zip of ``manifest.json`` and ``weights.safetensors``. No pickle.

The manifest carries everything but tensors (format version, versions, model and
hyperparameters, transformer parameters, training summary, privacy ledger) plus a sha256 of the
weights and of its own canonical JSON. Loading checks the format version and every hash before
anything is built, executes no code from the file, and never needs the training data.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from synthgen.errors import ConfigError, IntegrityError, SynthgenError

if TYPE_CHECKING:  # torch, pandas and the models load only when a file is written or its weights read
    import torch

    from synthgen.crypto.sealing import Seal, Secret
    from synthgen.dp.ledger import Ledger
    from synthgen.models import Model

FORMAT = "synthgen-model"
FORMAT_VERSION = 1
MANIFEST, WEIGHTS = "manifest.json", "weights.safetensors"
#: what opening a file may cost, whatever it claims: the file itself and all it unpacks to are at most
#: MAX_FILE_BYTES; it unpacks to at most UNPACK_RATIO times its size (weights barely compress: about 1.1x)
#: or UNPACK_FLOOR, whichever is more; the manifest is at most MAX_MANIFEST_BYTES, and the weights' header at
#: most MAX_HEADER_BYTES: about 24,000 tensors as synthgen names them (each costs some 12 us to decode, whatever
#: its size: 2 MiB of the tiniest entries, 37,000 tensors, took 0.4 s on the 2-core dev machine)
MAX_FILE_BYTES = 4 << 30
UNPACK_RATIO, UNPACK_FLOOR = 20, 64 << 20
MAX_MANIFEST_BYTES = 8 << 20
MAX_HEADER_BYTES = 2 << 20
CHUNK = 1 << 20
#: bytes per element of each safetensors dtype a torch tensor can have
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class ModelEntry(TypedDict):
    """``manifest["model"]``: the registered model's name and its hyperparameters."""

    name: str
    hyperparameters: dict[str, Any]


class SampleInfo(TypedDict):
    """``TrainingSummary["transformer_fitted_on"]``: the sample a streamed fit's transformer saw."""

    rows: int
    of_rows: int
    how: str


class StreamInfo(TypedDict):
    """``TrainingSummary["stream"]``: how a streamed fit read its file."""

    row_groups: int
    chunk_rows: int
    window_row_groups: int


class TrainingSummary(TypedDict):
    """``manifest["training"]``: what a fit did (built by ``synthgen.pipeline.summary``; JSON, a dict at run time).

    The keys marked ``NotRequired``: ``resumed_from_epoch`` when the fit resumed from a checkpoint; ``target``
    when rows were generated given a target column's class; the
    ``streamed`` ones (``streamed``, ``transformer_fitted_on``, ``outside_sample``, ``outside_sample_handling``,
    ``stream``) when it read a Parquet file in batches.
    """

    rows: int
    columns: int
    seed: int
    device: str
    precision: str
    epochs: int
    seconds: float
    transformer_seconds: float
    machine: str
    finished: str
    history: list[dict[str, float]]
    resumed_from_epoch: NotRequired[int]
    target: NotRequired[str]
    streamed: NotRequired[bool]
    transformer_fitted_on: NotRequired[SampleInfo]
    outside_sample: NotRequired[dict[str, dict[str, int]]]
    outside_sample_handling: NotRequired[str]
    stream: NotRequired[StreamInfo]


class Integrity(TypedDict):
    """``manifest["integrity"]``: SHA-256 of the members (the weights) and of the rest of the manifest."""

    algorithm: str
    members: dict[str, str]
    manifest: str


class Manifest(TypedDict):
    """``manifest.json`` of a model file (a dict at run time): everything but the weights.

    ``Synthesizer.manifest`` builds it without ``format``, ``format_version`` and ``integrity``, which
    :func:`write_model_file` adds; every file read has them. ``card`` only when a model card was saved.
    A file from an older synthgen may lack a key added since (readers use ``.get`` for those).
    """

    format: NotRequired[str]
    format_version: NotRequired[int]
    synthgen_version: str
    torch_version: str
    model: ModelEntry
    transformer: dict[str, Any]
    layout: dict[str, Any]
    training: TrainingSummary
    privacy: Ledger
    card: NotRequired[dict[str, Any]]
    integrity: NotRequired[Integrity]


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_model_file(path: str | os.PathLike, manifest: Manifest, tensors: dict[str, torch.Tensor],
                     *, force: bool = False, seal: Seal | None = None) -> Path:
    """Write a model file atomically; refuses to overwrite unless ``force``.

    With ``seal`` (the owner's key, or an X25519 public ``recipient``) the whole file is encrypted
    (``synthgen.crypto.streams``): nothing of it, manifest included, is readable without the
    key, and any modified byte is refused.
    """
    from safetensors.torch import save as save_tensors

    from synthgen.io import write_bytes_atomic

    weights = save_tensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()})  # GPU-trained: loads on CPU
    body: Manifest = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION}
    body.pop("integrity", None)
    body["integrity"] = {"algorithm": "sha256", "members": {WEIGHTS: _sha256(weights)},
                         "manifest": _sha256(_canonical(body))}
    text = json.dumps(body, indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, text)
        zf.writestr(WEIGHTS, weights)
    packed = buffer.getvalue()
    _check_loadable(len(text), weights, len(packed))
    return write_bytes_atomic(path, packed, force=force, seal=seal)


def _check_loadable(manifest: int, weights: bytes, packed: int) -> None:
    """Refuse to write a model file that loading would refuse (see MAX_FILE_BYTES)."""
    too_big = [f"{what} would take {_mib(size)}, more than the {_mib(cap)} allowed" for what, size, cap in (
        ("its manifest", manifest, MAX_MANIFEST_BYTES),
        ("its list of tensors", int.from_bytes(weights[:8], "little"), MAX_HEADER_BYTES),
        ("the file unpacked", manifest + len(weights), unpack_allowance(packed))) if size > cap]
    if too_big:
        raise SynthgenError(f"cannot save a model file that synthgen could not load: {'; '.join(too_big)} (fix: "
                            "fewer columns, or fewer categories in them)")


def read_manifest(path: str | os.PathLike, secret: Secret | None = None, *, data: bytes | None = None) -> Manifest:
    """Open and verify a model file without decoding its weights (for ``inspect`` and ``models``: no torch).

    Everything :func:`read_model_file` checks short of building tensors: the bounds, the checksums and the
    weights' list of tensors (:func:`check_tensor_list`). Whether the networks the manifest describes fit
    the weights is checked only where they are built (:func:`open_model`).

    Raises:
        SynthgenError: as :func:`read_model_file`.
        IntegrityError: as :func:`read_model_file`.
    """
    path = Path(path)
    manifest, weights = _verified_members(path, secret, data)
    check_tensor_list(weights, f"{path}: {WEIGHTS}")
    return manifest


def read_model_file(path: str | os.PathLike, secret: Secret | None = None, *,
                    data: bytes | None = None) -> tuple[Manifest, dict[str, torch.Tensor]]:
    """Open, verify and decode a model file (``secret``: what opens an encrypted one).

    ``data``: the file's bytes when the caller already read them (e.g. to check a signature).

    Raises:
        SynthgenError: the file does not exist; an encrypted file without a key.
        IntegrityError: not a model file, corrupted or tampered with, a wrong key, or from a newer synthgen.
    """
    from safetensors import SafetensorError

    path = Path(path)
    manifest, weights = _verified_members(path, secret, data)
    try:
        tensors = load_tensors_bounded(weights, f"{path}: {WEIGHTS}")
    except SafetensorError as exc:
        raise IntegrityError(f"{path}: cannot decode the weights ({exc})") from None
    return manifest, tensors


def _verified_members(path: Path, secret: Secret | None, data: bytes | None) -> tuple[Manifest, bytes]:
    """The manifest and the weights' bytes of the model file at ``path`` (decrypted, unpacked within the
    bounds, checksums verified)."""
    from synthgen.crypto.streams import MAGIC, decrypt_bytes

    if data is None:
        data = read_file_bytes(path, "model file")
    if data.startswith(MAGIC):
        if secret is None:
            raise SynthgenError(f"{path} is an encrypted model file (fix: give its key: --key-file PATH, "
                                "$SYNTHGEN_KEY or --identity PATH; in Python Sampler.load(path, key=...))")
        data = decrypt_bytes(data, secret)  # no longer than the ciphertext: the same limits hold
    members = _read_members(path, data)
    manifest = _parse_manifest(path, members[MANIFEST])
    integrity = manifest.get("integrity", {})
    body = {k: v for k, v in manifest.items() if k != "integrity"}
    if integrity.get("manifest") != _sha256(_canonical(body)):
        raise IntegrityError(f"{path}: the manifest does not match its checksum (the file was modified)")
    if integrity.get("members", {}).get(WEIGHTS) != _sha256(members[WEIGHTS]):
        raise IntegrityError(f"{path}: {WEIGHTS} does not match its checksum (the file was modified)")
    return manifest, members[WEIGHTS]


def open_model(path: str | os.PathLike, secret: Secret | None = None, *,
               data: bytes | None = None) -> tuple[Manifest, Model]:
    """Read, verify and build the model a file holds, without its transformer (torch, but no pandas).

    The networks are built from the manifest's layout and hyperparameters on the meta device and
    checked against the weights' shapes before any memory is allocated (``Model.restore``), so a
    crafted file costs no more than a valid one and is refused before the data layer loads.

    Raises:
        IntegrityError: as :func:`read_model_file`, or a manifest the weights do not fit.
    """
    manifest, tensors = read_model_file(path, secret, data=data)
    if manifest.get("kind") == "relational":
        raise ConfigError(f"{path} holds several tables (a relational model) (fix: open it with "
                          "synthgen.relational.RelationalSampler.load, or synthgen sample)")
    return manifest, build_model(path, manifest, tensors)


def build_model(path: str | os.PathLike, manifest: Manifest | dict[str, Any], tensors: dict[str, torch.Tensor]
                ) -> Model:
    """The model a verified manifest (or one table's part of a relational manifest) describes, filled with
    ``tensors``: checked against the weights' shapes before any memory is allocated.

    Raises:
        IntegrityError: a manifest the weights do not fit.
    """
    from synthgen.models import get_model
    from synthgen.transform.layout import OutputLayout

    try:
        # every output slot has weights of its own: a layout claiming more lies (checked before indexing it)
        dim = sum(int(s["width"]) for s in manifest["layout"]["spans"])
        weights = sum(t.numel() for t in tensors.values())
        if dim > weights:
            raise ValueError(f"its layout claims {dim:,} outputs, more than the {weights:,} weights")
        layout = OutputLayout.from_dict(manifest["layout"])
        return get_model(manifest["model"]["name"]).restore(manifest["model"]["hyperparameters"], layout, tensors)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, ConfigError) as exc:
        raise IntegrityError(f"{path}: the model file is malformed ({type(exc).__name__}: {exc})") from None


def _read_members(path: Path, data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if names != {MANIFEST, WEIGHTS}:
                raise IntegrityError(f"{path}: not a synthgen model file (members {sorted(names)}; "
                                     f"expected {MANIFEST} and {WEIGHTS})")
            return unzip_bounded(zf, len(data), {MANIFEST: MAX_MANIFEST_BYTES, WEIGHTS: MAX_FILE_BYTES}, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, EOFError,
            OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: not a readable synthgen model file, or corrupted ({exc})") from None


def read_file_bytes(path: Path, what: str) -> bytes:
    """The bytes of the ``what`` (model file, checkpoint) at ``path``; one over MAX_FILE_BYTES is refused unread."""
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size <= MAX_FILE_BYTES:
                data = fh.read(MAX_FILE_BYTES + 1)  # the file may grow meanwhile
                if len(data) <= MAX_FILE_BYTES:
                    return data
    except OSError:  # missing, a directory, unreadable
        raise SynthgenError(f"{path}: no such {what} (fix: check the path)") from None
    raise IntegrityError(f"{path}: more than the {_mib(MAX_FILE_BYTES)} a {what} may take (fix: check the path)")


def unzip_bounded(zf: zipfile.ZipFile, packed: int, caps: dict[str, int], label: Any) -> dict[str, bytes]:
    """The members of ``zf`` (``packed`` bytes) named in ``caps``, each unpacked to at most its cap.

    Refused before anything is unpacked: a member over its cap, members adding up to more than
    :func:`unpack_allowance` allows, a compression other than deflate (bzip2 and lzma are not read in
    bounded steps). Sizes declared in the zip can lie: each member is unpacked in chunks and refused at
    its cap (zipfile also stops at the declared size).

    Raises:
        IntegrityError: one of the above, the message starting with ``label`` (the file's path).
    """
    infos = zf.infolist()
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise IntegrityError(f"{label}: member {info.filename} is not deflated (compression "
                                 f"{info.compress_type}); synthgen writes and reads only deflate")
        if info.filename in caps and info.file_size > caps[info.filename]:
            raise IntegrityError(_too_big(label, info.filename, info.file_size, caps[info.filename]))
    unpacked, allowed = sum(info.file_size for info in infos), unpack_allowance(packed)
    if unpacked > allowed:
        raise IntegrityError(f"{label}: unpacks to {_mib(unpacked)} from {_mib(packed)}, more than the "
                             f"{_mib(allowed)} allowed ({UNPACK_RATIO}x the packed size, at least "
                             f"{_mib(UNPACK_FLOOR)}) (fix: use an intact file written by synthgen)")
    out = {}
    for name, cap in caps.items():
        parts, size = [], 0
        with zf.open(name) as member:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise IntegrityError(_too_big(label, name, size, cap))
                parts.append(chunk)
        out[name] = b"".join(parts)
    return out


def load_tensors_bounded(raw: bytes, label: str) -> dict[str, torch.Tensor]:
    """The tensors of safetensors bytes ``raw``, refused (``IntegrityError``, after ``label``) when its header is
    over MAX_HEADER_BYTES (a header of a million tiny tensors deflates well and takes seconds to decode) or
    malformed (:func:`check_tensor_list`, so that reading the manifest alone refuses the same files)."""
    check_tensor_list(raw, label)
    from safetensors.torch import load as load_tensors

    return load_tensors(raw)


def check_tensor_list(raw: bytes, label: str) -> int:
    """Check safetensors bytes ``raw`` without decoding a tensor (no torch); return how many it holds.

    The format: an 8-byte little-endian header length, a JSON header naming each tensor's ``dtype``,
    ``shape`` and ``data_offsets`` (begin and end, from the end of the header), then the data. Refused:
    a header over MAX_HEADER_BYTES or past the end, not a JSON object, an entry with an unknown dtype, a
    malformed shape or offsets, a byte count unlike its shape's, tensors that overlap or leave gaps, and
    data that does not end where the bytes do.

    Raises:
        IntegrityError: one of the above, the message starting with ``label``.
    """
    size = _header_length(raw, label)
    if 8 + size > len(raw):
        raise _malformed(label, f"its header claims {size:,} bytes, more than the {max(len(raw) - 8, 0):,} that "
                         "follow")
    try:
        header = json.loads(raw[8:8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _malformed(label, f"its header is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise _malformed(label, "its header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _malformed(label, "its __metadata__ is not an object of strings")
    end = 0
    for (begin, stop), name in sorted((_tensor_span(label, name, entry), name) for name, entry in header.items()):
        if begin != end:
            raise _malformed(label, f"tensor {name!r} starts at byte {begin:,}, not at {end:,} where the data "
                             "before it ends")
        end = stop
    if end != len(raw) - 8 - size:
        raise _malformed(label, f"its tensors take {end:,} bytes, but {len(raw) - 8 - size:,} follow the header")
    return len(header)


def _tensor_span(label: str, name: str, entry: Any) -> tuple[int, int]:
    """The (begin, end) byte offsets of one header entry, checked against its dtype and shape."""
    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(entry, dict):
        raise _malformed(label, f"tensor {name!r} is described by {json.dumps(entry)}, not an object")
    if entry.get("dtype") not in DTYPE_BYTES:
        raise _malformed(label, f"tensor {name!r} has dtype {json.dumps(entry.get('dtype'))}, not one of "
                         f"{', '.join(DTYPE_BYTES)}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(whole(d) for d in shape):
        raise _malformed(label, f"tensor {name!r} has shape {json.dumps(shape)}, not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(whole(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise _malformed(label, f"tensor {name!r} has data_offsets {json.dumps(offsets)}, not [begin, end]")
    expected = math.prod(shape) * DTYPE_BYTES[entry["dtype"]]
    if offsets[1] - offsets[0] != expected:
        raise _malformed(label, f"tensor {name!r} takes {offsets[1] - offsets[0]:,} bytes, but a {entry['dtype']} "
                         f"tensor of shape {shape} takes {expected:,}")
    return offsets[0], offsets[1]


def _header_length(raw: bytes, label: str) -> int:
    """The length of the safetensors header of ``raw``, refused over MAX_HEADER_BYTES."""
    header = int.from_bytes(raw[:8], "little")
    if header > MAX_HEADER_BYTES:
        raise IntegrityError(f"{label} lists tensors in {_mib(header)}, more than the {_mib(MAX_HEADER_BYTES)} "
                             "allowed (fix: use an intact file written by synthgen)")
    return header


def _malformed(label: str, problem: str) -> IntegrityError:
    return IntegrityError(f"{label} is malformed: {problem} (fix: use an intact file written by synthgen)")


def unpack_allowance(packed: int) -> int:
    """The most ``packed`` bytes of zip may unpack to: UNPACK_RATIO times as many, at least UNPACK_FLOOR, at
    most MAX_FILE_BYTES (a few MB of deflate could otherwise claim gigabytes)."""
    return min(MAX_FILE_BYTES, max(UNPACK_FLOOR, UNPACK_RATIO * packed))


def _too_big(label: Any, name: str, size: int, cap: int) -> str:
    return (f"{label}: member {name} unpacks to {_mib(size)}, more than the {_mib(cap)} allowed (fix: use an "
            "intact file written by synthgen)")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _parse_manifest(path: Path, raw: bytes) -> Manifest:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON, too long an integer
        raise IntegrityError(f"{path}: the manifest is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"{path}: not a synthgen model file (no '{FORMAT}' manifest)")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IntegrityError(f"{path}: model file format {version} is newer than this synthgen reads "
                             f"({FORMAT_VERSION}) (fix: upgrade synthgen: pip install -U synthgen)")
    return cast("Manifest", manifest)  # its format is checked; its sections are checked where they are used


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as pretty JSON (what ``inspect --json`` prints)."""
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")


__all__ = ["FORMAT_VERSION", "Manifest", "TrainingSummary", "check_tensor_list", "read_manifest", "read_model_file",
           "write_model_file",
           "manifest_bytes"]
