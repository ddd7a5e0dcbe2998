"""The per-column masking operations: replace, pseudonymize, mask, generalize, noise.

Each operation takes a column (a ``pd.Series``), its options from the policy and a ``MaskContext``
(keys and random state) and returns the masked column with the same index. Nulls stay null. Text
keeps its dtype family (``string`` stays ``string`` with ``pd.NA``, ``category`` stays ``category``
without the replaced values among its categories); integer results that do not fit the column's
integer type are widened to int64, never wrapped around. Where an operation must change the dtype
(tokens for numbers, dates or booleans; labels for bins) the ``MaskReport`` shows it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from synthgen.errors import ConfigError, IntegrityError
from synthgen.masking import dates
from synthgen.masking.dates import TRUNCATE
from synthgen.masking.values import all_integral, apply, canonical, distinct, int64_for, like_text, restore_numeric

__all__ = ["FAKE_KINDS", "NUMERIC_KINDS", "TRUNCATE", "MaskContext", "replace", "pseudonymize", "mask",
           "generalize", "noise", "reveal_values", "is_text", "distinct", "uncovered"]

#: policy ``kind`` of a replacement -> Faker provider method
FAKE_KINDS = {
    "name": "name", "first_name": "first_name", "last_name": "last_name", "email": "email",
    "phone": "phone_number", "address": "address", "street": "street_address", "city": "city",
    "state": "state", "zip": "postcode", "postcode": "postcode", "country": "country", "company": "company",
    "ssn": "ssn", "ip": "ipv4", "url": "url", "username": "user_name", "uuid": "uuid4", "iban": "iban",
    "credit_card": "credit_card_number", "text": "sentence", "job": "job", "date": "date",
}
#: kinds whose fakes are digits only once separators are removed, so they can fill integer columns
NUMERIC_KINDS = {"zip", "postcode", "phone", "ssn", "credit_card"}
#: token versions of reversible pseudonyms: rv2 (padded, per key domain) is written; rv1 (neither) is still revealed
REVERSIBLE_PREFIX, LEGACY_REVERSIBLE_PREFIX = "rv2.", "rv1."
#: reversible plaintexts are padded to 16, 32, 64, ... bytes, so a token shows a length bucket, not the length
PAD_BUCKET = 16
#: draws per value before a replacement gives up finding a fake that differs from the value itself
ATTEMPTS = 20
_EXTENSION = re.compile(r"\s*(x|ext\.?)\s*\d+$", re.IGNORECASE)
_INT64_MAX = np.iinfo(np.int64).max


@dataclass
class MaskContext:
    """Keys and random state for one masking run.

    Attributes:
        key: the owner's 256-bit key, or None; with it, replacements and pseudonyms are the same
            across runs and reversible pseudonyms can be revealed.
        seed: seed for noise, for reproducible runs only: anyone who knows it can regenerate the
            noise and subtract it. None (the default) draws fresh OS randomness.
        locale: Faker locale for replacement values.
    """

    key: bytes | None = None
    seed: int | None = None
    locale: str = "en_US"
    run_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        if self.key is not None and (not isinstance(self.key, bytes) or len(self.key) != 32):
            raise ConfigError("a masking key is 32 random bytes (fix: synthgen.crypto.keys.read_key(path) or "
                              "generate_key())")

    def subkey(self, purpose: str, length: int = 32) -> bytes:
        """A key for one purpose, from the owner's key (or this run's random key when there is none)."""
        return HKDF(hashes.SHA256(), length, salt=None, info=b"synthgen mask " + purpose.encode()).derive(
            self.key if self.key is not None else self.run_key)

    def rng(self, column: str) -> np.random.Generator:
        """Random state for noise on one column: OS randomness, or derived from the seed when one is given."""
        if self.seed is None:
            return np.random.default_rng(secrets.randbits(128))
        return np.random.default_rng([self.seed, int.from_bytes(hashlib.sha256(column.encode()).digest()[:8], "big")])


# ----------------------------------------------------------------------------- values
def is_text(series: pd.Series) -> bool:
    """Whether a column holds text (object or string dtype)."""
    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)


# ----------------------------------------------------------------------------- replace
def replace(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Realistic fake values (Faker), a pure function of (key, value).

    The fake of a value is drawn from a Faker seeded by ``HMAC(key, value, attempt)``, drawn again
    only while it equals the value itself. So the same value gets the same fake in every table and
    run masked with one key, whatever else the table holds. Distinct values may share a fake (small
    pools: states, countries, first names), and a fake may equal another row's real value.
    Numeric columns get digit-only kinds (zip, phone, ssn, credit_card) as int64 (``Int64`` with
    nulls); dates are drawn within the column's span (with times of day when it has them) and keep
    the column's unit and time zone.
    """
    from faker import Faker

    faker = Faker(opts.get("locale", ctx.locale))
    key = ctx.subkey("replace")
    if opts["kind"] == "date" or dates.is_datetime(series):
        return _replace_dates(series, faker, key)
    method = getattr(faker, FAKE_KINDS[opts["kind"]])
    if pd.api.types.is_numeric_dtype(series.dtype):
        return apply(series, _keyed_fake(key, faker, lambda: _digits(method())), dtype=int64_for(series))
    return apply(series, _keyed_fake(key, faker, lambda: str(method())))


def _keyed_fake(key: bytes, faker: Any, draw: Callable[[], Any]) -> Callable[[Any], Any]:
    """The fake of one value: ``draw()`` from ``faker`` seeded by HMAC(key, attempt, value)."""

    def fake(value: Any) -> Any:
        for attempt in range(ATTEMPTS):
            seed = hmac.new(key, bytes([attempt]) + canonical(value), hashlib.sha256).digest()[:8]
            faker.seed_instance(int.from_bytes(seed, "big"))
            made = draw()
            if made is not None and canonical(made) != canonical(value):
                return made
        raise ConfigError(f"replace found no fake that differs from {str(value)[:20]!r} in {ATTEMPTS} draws "
                          "(fix: use pseudonymize for this column)")

    return fake


def _digits(made: Any) -> int | None:
    """A digit-only fake as an int (phone extensions removed); None when it has no digits or exceeds int64."""
    digits = re.sub(r"\D", "", _EXTENSION.sub("", str(made)))
    return int(digits) if digits and int(digits) <= _INT64_MAX else None


def _replace_dates(series: pd.Series, faker: Any, key: bytes) -> pd.Series:
    within = dates.span(series)
    if dates.is_datetime(series):  # fakes in wall time, localized back to the column's zone
        fake = _keyed_fake(key, faker, lambda: dates.draw(faker, within))
        return dates.relocalize(apply(dates.wall(series), fake, dtype="datetime64[ns]"), series)
    as_text = lambda: dates.as_text(dates.draw(faker, within), within[2])  # noqa: E731
    return apply(series, _keyed_fake(key, faker, as_text))


# ----------------------------------------------------------------------------- pseudonymize
def pseudonymize(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Keyed tokens: HMAC-SHA256 (one-way), or with ``reversible`` deterministic AES-SIV the key holder undoes.

    One-way tokens of an integer column are 56-bit integers, as int64 (``Int64`` with nulls); text
    and reversible tokens are strings (text columns keep their dtype family; numbers, dates and
    booleans become object). Equal inputs give equal tokens (``1`` and ``1.0`` alike, ``"1"`` and
    ``True`` apart), so joins across tables masked with one key still work. A reversible token
    (``rv2.``) encrypts the value padded to a length bucket (16, 32, 64, ... bytes) with its key
    domain as associated data: the column's name (``series.name``), or the policy's ``domain`` for
    columns that must stay joinable (a primary key and the foreign keys that reference it), so equal
    values in other domains give unrelated tokens and a token moved to another domain does not reveal.
    """
    prefix = str(opts.get("prefix", ""))
    if opts.get("reversible"):
        if ctx.key is None:
            raise ConfigError("reversible pseudonyms need a key (fix: --key-file PATH or $SYNTHGEN_KEY)")
        siv, domain = AESSIV(ctx.subkey("reversible", 64)), _key_domain(series, opts)
        return apply(series, lambda v: prefix + REVERSIBLE_PREFIX + base64.urlsafe_b64encode(
            siv.encrypt(_pad(canonical(v)), domain)).decode().rstrip("="))
    key = ctx.subkey("pseudonym")
    digest = lambda v: hmac.new(key, canonical(v), hashlib.sha256).digest()  # noqa: E731
    if pd.api.types.is_integer_dtype(series.dtype) and not prefix:
        return apply(series, lambda v: int.from_bytes(digest(v)[:7], "big"), dtype=int64_for(series))
    length = int(opts.get("length", 16))
    return apply(series, lambda v: prefix + base64.b32encode(digest(v)).decode().lower()[:length])


def _key_domain(series: pd.Series, opts: dict) -> list[bytes]:
    """The associated data of a column's reversible tokens: its key domain (the policy's, else the column name)."""
    domain = opts.get("domain", series.name)
    if domain is None:
        raise ConfigError("reversible pseudonyms need a key domain (fix: give the column a name, or a domain in "
                          "the policy)")
    return [b"synthgen pseudonym domain\0" + str(domain).encode("utf-8")]


def _pad(data: bytes) -> bytes:
    """``data``, a 0x80 byte and zeros up to the next bucket: 16, 32, 64, ... bytes (ISO/IEC 7816-4 padding)."""
    size = PAD_BUCKET
    while size <= len(data):
        size *= 2
    return data + b"\x80" + bytes(size - len(data) - 1)


def _unpad(data: bytes) -> bytes:
    body = data.rstrip(b"\0")
    if not body.endswith(b"\x80"):
        raise ValueError("bad padding")
    return body[:-1]


def reveal_values(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Undo ``pseudonymize(reversible=True)`` with the same key and key domain; tokens from before padding and
    key domains (``rv1.``) reveal too. Any altered token, or one from another domain, raises IntegrityError."""
    siv, prefix = AESSIV(ctx.subkey("reversible", 64)), str(opts.get("prefix", ""))
    domain = _key_domain(series, opts)

    def undo(token: Any) -> Any:
        raw = _open_token(siv, str(token), prefix, domain)
        tag, body = raw[:2], raw[2:].decode("utf-8")
        return {b"i:": int, b"f:": float, b"b:": lambda s: s == "True", b"t:": pd.Timestamp}.get(tag, str)(body)

    values = apply(series, undo)
    kinds = {type(v) for v in values.dropna()}
    if kinds == {int}:
        return values.astype("Int64" if values.isna().any() else "int64")
    return values if values.dtype != object else values.infer_objects()


def _open_token(siv: AESSIV, text: str, prefix: str, domain: list[bytes]) -> bytes:
    """The typed plaintext of one reversible token: ``rv2.`` (padded, bound to ``domain``) or ``rv1.``."""
    version = text[len(prefix):len(prefix) + len(REVERSIBLE_PREFIX)] if text.startswith(prefix) else None
    if version not in (REVERSIBLE_PREFIX, LEGACY_REVERSIBLE_PREFIX):
        raise IntegrityError(f"{text[:20]!r} is not a reversible pseudonym (fix: reveal only columns "
                             "masked with reversible: true)")
    body = text[len(prefix) + len(version):]
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if version == LEGACY_REVERSIBLE_PREFIX:
            return siv.decrypt(sealed, None)
        return _unpad(siv.decrypt(sealed, domain))
    except Exception:
        raise IntegrityError("a pseudonym did not decrypt: wrong key, another key domain, or an altered token "
                             "(fix: use the key and the policy the table was masked with)") from None


# ----------------------------------------------------------------------------- mask
def mask(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Hide characters of text values, keeping the first/last few; separators stay by default.

    A value with no more characters than ``keep_first + keep_last`` is hidden entirely (keeping
    them would show it whole).
    """
    first, last = int(opts.get("keep_first", 0)), int(opts.get("keep_last", 0))
    char, keep_punct = str(opts.get("char", "*")), bool(opts.get("keep_separators", True))

    def hide(value: Any) -> str:
        text = str(value)
        slots = [i for i, c in enumerate(text) if c.isalnum() or not keep_punct]
        shown = set(slots[:first]) | set(slots[len(slots) - last:] if last else [])
        if len(slots) <= first + last:
            shown = set()
        return "".join(c if (i in shown or i not in slots) else char for i, c in enumerate(text))

    return apply(series, hide)


# ----------------------------------------------------------------------------- generalize
def generalize(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Coarser values: numeric bins or top/bottom coding, date truncation, or category grouping.

    Integer midpoints are ``floor(lower + width / 2)``.
    """
    if "hierarchy" in opts or "min_count" in opts:
        return _group_categories(series, opts)
    if "truncate" in opts:
        cut = dates.truncate(series, opts["truncate"])
        return cut if dates.is_datetime(series) else like_text(series, cut.to_numpy())
    return _bin_numbers(series, opts)


def _bin_numbers(series: pd.Series, opts: dict) -> pd.Series:
    values = series.astype(float)
    if "bottom" in opts:
        values = values.clip(lower=float(opts["bottom"]))
    if "top" in opts:
        values = values.clip(upper=float(opts["top"]))
    if "width" in opts:
        width, origin = float(opts["width"]), float(opts.get("origin", 0))
        lower = np.floor((values - origin) / width) * width + origin
    elif "bins" in opts:
        edges = np.asarray(opts["bins"], dtype=float)
        index = np.searchsorted(edges, values.to_numpy(), side="right") - 1
        index = np.clip(np.where(values.to_numpy() == edges[-1], len(edges) - 2, index), 0, len(edges) - 2)
        lower = pd.Series(np.where(values.notna(), edges[index], np.nan), index=series.index)
        width = pd.Series(np.diff(edges)[index], index=series.index)
    else:
        return restore_numeric(values, series)
    return _bin_output(series, lower, width, opts.get("as", "lower"))


def _bin_output(series: pd.Series, lower: pd.Series, width: Any, style: str) -> pd.Series:
    if style == "label":
        upper = lower + width
        text = lambda lo, hi: f"[{_num(lo)}, {_num(hi)})"  # noqa: E731
        return pd.Series([None if pd.isna(lo) else text(lo, hi) for lo, hi in zip(lower, upper, strict=True)],
                         index=series.index, dtype=object)
    value = lower + width / 2 if style == "midpoint" else lower
    integral = pd.api.types.is_integer_dtype(series.dtype) or (series.dtype.kind == "f" and all_integral(series))
    return restore_numeric(np.floor(value) if integral else value, series)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def uncovered(series: pd.Series, hierarchy: dict) -> list[str]:
    """The values of a column (as ``str``, the way hierarchy keys match them) that ``hierarchy`` misses."""
    keys = {str(k) for k in hierarchy}
    return sorted({str(v) for v in distinct(series)} - keys)


def _group_categories(series: pd.Series, opts: dict) -> pd.Series:
    """Hierarchy groups (values matched by ``str``) and/or rare values (< ``min_count``) -> ``other``."""
    present = series.notna().to_numpy()
    out = series.astype(object).to_numpy(copy=True)
    if "hierarchy" in opts:
        missing = uncovered(series, opts["hierarchy"])
        if missing and "other" not in opts:
            raise ConfigError(f"column {series.name!r}: hierarchy does not cover {missing[:5]} (fix: add them, "
                              'or give "other": "<group>" for the rest)')
        groups = {str(k): v for k, v in opts["hierarchy"].items()}
        out[present] = [groups.get(str(v), opts.get("other")) for v in out[present]]
    if "min_count" in opts:
        counts = Counter(zip(map(type, out[present]), out[present], strict=True))
        rare = [counts[(type(v), v)] < int(opts["min_count"]) for v in out[present]]
        out[np.flatnonzero(present)[rare]] = opts.get("other", "Other")
    return like_text(series, out, keep=_kept_categories(series, out))


def _kept_categories(series: pd.Series, out: np.ndarray) -> list[Any] | None:
    """A category column's categories less the values grouped away (they would still be listed in the dtype)."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        return None
    gone = {str(v) for v in distinct(series)} - {str(v) for v in distinct(pd.Series(out, dtype=object))}
    return [c for c in series.cat.categories if str(c) not in gone]


# ----------------------------------------------------------------------------- noise
def noise(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Add bounded random noise to numbers (or dates, scale in days, in wall time), clipped to the column's
    range (or to ``clip`` for numbers); integers are rounded and keep their type. With a known seed the
    noise can be regenerated and subtracted (see ``MaskContext.seed``)."""
    scale = float(opts["scale"])
    rng = ctx.rng(str(series.name))
    draw = {"laplace": rng.laplace, "gaussian": rng.normal}.get(opts.get("distribution", "laplace"))
    n = len(series)
    shift = rng.uniform(-scale, scale, n) if draw is None else draw(0.0, scale, n)
    bound = float(opts.get("bound", 3 * scale))
    shift = np.clip(shift, -bound, bound)
    if dates.is_datetime(series):
        return dates.shift(series, shift)
    values = series.astype(float)
    lo, hi = opts.get("clip", [values.min(), values.max()])
    return restore_numeric((values + shift).clip(float(lo), float(hi)), series)
