"""The per-column masking operations: replace, pseudonymize, mask, generalize, noise.

Each operation takes a column (a ``pd.Series``), its options from the policy and a ``MaskContext``
(keys and random state) and returns the masked column with the same index. Nulls stay null, and the
column keeps its type wherever the operation allows it (noted per operation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from synthgen.errors import ConfigError, IntegrityError

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
REVERSIBLE_PREFIX = "rv1."
TRUNCATE = {"year": "Y", "quarter": "Q", "month": "M", "week": "W", "day": "D", "hour": "h"}


@dataclass
class MaskContext:
    """Keys and random state for one masking run.

    Attributes:
        key: the owner's 256-bit key, or None; with it, replacements and pseudonyms are the same
            across runs and reversible pseudonyms can be revealed.
        seed: seed for noise (None draws one from the OS).
        locale: Faker locale for replacement values.
    """

    key: bytes | None = None
    seed: int | None = None
    locale: str = "en_US"
    run_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def subkey(self, purpose: str, length: int = 32) -> bytes:
        """A key for one purpose, from the owner's key (or this run's random key when there is none)."""
        return HKDF(hashes.SHA256(), length, salt=None, info=b"synthgen mask " + purpose.encode()).derive(
            self.key if self.key is not None else self.run_key)

    def rng(self, column: str) -> np.random.Generator:
        """Random state for noise on one column."""
        if self.seed is None:
            return np.random.default_rng(secrets.randbits(128))
        return np.random.default_rng([self.seed, int.from_bytes(hashlib.sha256(column.encode()).digest()[:8], "big")])


# ----------------------------------------------------------------------------- helpers
def _apply(series: pd.Series, func: Any) -> pd.Series:
    """``func`` over the distinct non-null values of ``series`` (computed once each); nulls stay null."""
    uniques = pd.unique(series.dropna())
    return series.map(dict(zip(uniques, (func(v) for v in uniques), strict=True)))


def is_text(series: pd.Series) -> bool:
    """Whether a column holds text (object or string dtype)."""
    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)


def _canonical(value: Any) -> bytes:
    """Bytes that identify a value (``5`` and ``5.0`` alike), for keyed hashing."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    if isinstance(value, pd.Timestamp):
        value = value.isoformat()
    return str(value).encode("utf-8")


def _restore_numeric(values: pd.Series, like: pd.Series) -> pd.Series:
    """Cast numeric results back to ``like``'s dtype (rounding for integers), nulls kept."""
    if pd.api.types.is_integer_dtype(like.dtype) or (like.dtype.kind == "f" and _all_integral(like)):
        rounded = values.round()
        if pd.api.types.is_integer_dtype(like.dtype) and not values.isna().any():
            return rounded.astype(like.dtype)
        return rounded.astype(like.dtype if like.dtype.kind == "f" else "Int64")
    return values.astype(like.dtype)


def _all_integral(series: pd.Series) -> bool:
    values = series.dropna().to_numpy(dtype=float)
    return len(values) > 0 and bool(np.all(values == np.round(values)))


# ----------------------------------------------------------------------------- replace
def replace(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Realistic fake values (Faker): the same fake for the same input, distinct fakes for distinct inputs.

    Fakes are drawn from a Faker seeded by a keyed hash of the input, so with the owner's key the
    mapping is the same in every run; integer columns get digit-only kinds (zip, phone) as integers.
    """
    from faker import Faker

    kind = opts["kind"]
    faker = Faker(opts.get("locale", ctx.locale))
    numeric = pd.api.types.is_numeric_dtype(series.dtype)
    dates = kind == "date" or pd.api.types.is_datetime64_any_dtype(series.dtype)
    span = _date_span(series) if dates else None
    key = ctx.subkey("replace")
    # a fake never repeats, and never equals a real value of the column (someone else's real email)
    used = set() if dates else set(pd.unique(series.dropna()).tolist())

    def fake(value: Any) -> Any:
        for attempt in range(100):
            faker.seed_instance(int.from_bytes(
                hmac.new(key, _canonical(value) + bytes([attempt]), hashlib.sha256).digest()[:8], "big"))
            made = faker.date_between(*span) if dates else getattr(faker, FAKE_KINDS[kind])()
            made = int(re.sub(r"\D", "", str(made))) if numeric else made
            if made not in used:
                used.add(made)
                return made
        raise ConfigError(f"replace kind {kind!r} ran out of distinct fake values (fix: use pseudonymize)")

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return pd.to_datetime(_apply(series, fake)).astype(series.dtype)
    if numeric:
        return _restore_numeric(_apply(series, fake).astype(float), series)
    return _apply(series, lambda v: str(fake(v)))


def _date_span(series: pd.Series) -> tuple[Any, Any]:
    dates = pd.to_datetime(series.dropna(), errors="coerce", format="mixed").dropna()
    if dates.empty:
        return ("-80y", "today")
    return dates.min().date(), dates.max().date()


# ----------------------------------------------------------------------------- pseudonymize
def pseudonymize(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Keyed tokens: HMAC-SHA256 (one-way), or with ``reversible`` deterministic AES-SIV the key holder undoes.

    One-way tokens of an integer column are integers (so the column stays integer); text and reversible
    tokens are strings. Equal inputs give equal tokens, so joins across tables masked with one key still work.
    """
    prefix = str(opts.get("prefix", ""))
    if opts.get("reversible"):
        if ctx.key is None:
            raise ConfigError("reversible pseudonyms need a key (fix: --key-file PATH or $SYNTHGEN_KEY)")
        siv = AESSIV(ctx.subkey("reversible", 64))
        return _apply(series, lambda v: prefix + REVERSIBLE_PREFIX + base64.urlsafe_b64encode(
            siv.encrypt(_typed(v), None)).decode().rstrip("="))
    key = ctx.subkey("pseudonym")
    digest = lambda v: hmac.new(key, _canonical(v), hashlib.sha256).digest()  # noqa: E731
    if pd.api.types.is_integer_dtype(series.dtype) and not prefix:
        return _apply(series, lambda v: int.from_bytes(digest(v)[:7], "big")).astype(series.dtype)
    length = int(opts.get("length", 16))
    return _apply(series, lambda v: prefix + base64.b32encode(digest(v)).decode().lower()[:length])


def _typed(value: Any) -> bytes:
    """A value with its type marker, so reveal returns ints as ints."""
    if isinstance(value, bool | np.bool_):
        return b"b:" + str(bool(value)).encode()
    if isinstance(value, int | np.integer):
        return b"i:" + str(int(value)).encode()
    if isinstance(value, float | np.floating):
        return b"f:" + repr(float(value)).encode()
    return b"s:" + str(value).encode("utf-8")


def reveal_values(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Undo ``pseudonymize(reversible=True)`` with the same key; any altered token raises IntegrityError."""
    siv, prefix = AESSIV(ctx.subkey("reversible", 64)), str(opts.get("prefix", "")) + REVERSIBLE_PREFIX

    def undo(token: Any) -> Any:
        text = str(token)
        if not text.startswith(prefix):
            raise IntegrityError(f"{text[:20]!r} is not a reversible pseudonym (fix: reveal only columns "
                                 "masked with reversible: true)")
        try:
            raw = siv.decrypt(base64.urlsafe_b64decode(text[len(prefix):] + "=" * (-len(text) % 4)), None)
        except Exception:
            raise IntegrityError("a pseudonym did not decrypt: wrong key or an altered token "
                                 "(fix: use the key the table was masked with)") from None
        tag, body = raw[:2], raw[2:].decode("utf-8")
        return {b"i:": int, b"f:": float, b"b:": lambda s: s == "True"}.get(tag, str)(body)

    values = _apply(series, undo)
    kinds = {type(v) for v in values.dropna()}
    if kinds == {int}:
        return values.astype("Int64" if values.isna().any() else "int64")
    return values.infer_objects()


# ----------------------------------------------------------------------------- mask
def mask(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Hide characters of text values, keeping the first/last few; separators stay by default."""
    first, last = int(opts.get("keep_first", 0)), int(opts.get("keep_last", 0))
    char, keep_punct = str(opts.get("char", "*")), bool(opts.get("keep_separators", True))

    def hide(value: Any) -> str:
        text = str(value)
        slots = [i for i, c in enumerate(text) if c.isalnum() or not keep_punct]
        shown = set(slots[:first]) | set(slots[len(slots) - last:] if last else [])
        return "".join(c if (i in shown or i not in slots) else char for i, c in enumerate(text))

    return _apply(series, hide)


# ----------------------------------------------------------------------------- generalize
def generalize(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Coarser values: numeric bins or top/bottom coding, date truncation, or category grouping."""
    if "hierarchy" in opts or "min_count" in opts:
        return _group_categories(series, opts)
    if "truncate" in opts:
        return _truncate_dates(series, opts["truncate"])
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
        edges = None
    elif "bins" in opts:
        edges = np.asarray(opts["bins"], dtype=float)
        index = np.searchsorted(edges, values.to_numpy(), side="right") - 1
        index = np.where(values.to_numpy() == edges[-1], len(edges) - 2, index)
        lower = pd.Series(np.where(values.notna(), edges[np.clip(index, 0, len(edges) - 2)], np.nan),
                          index=series.index)
        width = pd.Series(np.diff(edges)[np.clip(index, 0, len(edges) - 2)], index=series.index)
    else:
        return _restore_numeric(values, series)
    return _bin_output(series, lower, width, opts.get("as", "lower"), edges)


def _bin_output(series: pd.Series, lower: pd.Series, width: Any, style: str, edges: Any) -> pd.Series:
    if style == "label":
        upper = lower + width
        text = lambda lo, hi: f"[{_num(lo)}, {_num(hi)})"  # noqa: E731
        return pd.Series([None if pd.isna(lo) else text(lo, hi) for lo, hi in zip(lower, upper, strict=True)],
                         index=series.index, dtype=object)
    value = lower + width / 2 if style == "midpoint" else lower
    return _restore_numeric(value, series)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _truncate_dates(series: pd.Series, unit: str) -> pd.Series:
    as_dates = pd.api.types.is_datetime64_any_dtype(series.dtype)
    dates = series if as_dates else pd.to_datetime(series, errors="coerce", format="mixed")
    truncated = dates.dt.to_period(TRUNCATE[unit]).dt.start_time
    if as_dates:
        return truncated.astype(series.dtype)
    fmt = "%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d"
    return pd.Series(np.where(truncated.notna(), truncated.dt.strftime(fmt), None), index=series.index,
                     dtype=object)


def _group_categories(series: pd.Series, opts: dict) -> pd.Series:
    hierarchy = {str(k): v for k, v in opts.get("hierarchy", {}).items()}
    other = opts.get("other")
    out = series.astype(object).map(lambda v: v if pd.isna(v) else hierarchy.get(str(v), other if hierarchy
                                                                                     else v))
    if "min_count" in opts:
        counts = out.value_counts()
        rare = set(counts[counts < int(opts["min_count"])].index)
        out = out.map(lambda v: opts.get("other", "Other") if v in rare else v)
    return out


# ----------------------------------------------------------------------------- noise
def noise(series: pd.Series, opts: dict, ctx: MaskContext) -> pd.Series:
    """Add bounded random noise to numbers (or dates, scale in days), clipped to the column's range."""
    scale = float(opts["scale"])
    rng = ctx.rng(str(series.name))
    draw = {"laplace": rng.laplace, "gaussian": rng.normal}.get(opts.get("distribution", "laplace"))
    n = len(series)
    shift = rng.uniform(-scale, scale, n) if draw is None else draw(0.0, scale, n)
    bound = float(opts.get("bound", 3 * scale))
    shift = np.clip(shift, -bound, bound)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return (series + pd.to_timedelta(np.round(shift), unit="D")).astype(series.dtype)
    values = series.astype(float)
    lo, hi = opts.get("clip", [values.min(), values.max()])
    return _restore_numeric((values + shift).clip(float(lo), float(hi)), series)
