"""New primary keys of the same kind and format as the real ones, never copies of them.

Whole-number keys continue after the real maximum (so none can equal a real key). Text keys follow the
real keys' shape (length, and per position: digit, lower- or upper-case letter, or a fixed character);
one position where the real keys use only part of their character class is pinned to a character they
never use there (where every position uses its whole class, the keys get one digit more than the longest
real key), so no generated key can equal a real one. UUIDs are new random UUIDs.
"""

from __future__ import annotations

import re
import string
from typing import Any

import numpy as np
import pandas as pd

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CLASSES = {"d": string.digits, "l": string.ascii_lowercase, "u": string.ascii_uppercase}
#: text keys longer than this are generated as UUIDs' hex (no per-position shape kept)
MAX_TEMPLATE = 64


def key_format(values: pd.Series, *, table: str, column: str) -> dict[str, Any]:
    """How to generate keys like ``values`` of ``table.column`` (JSON): what it reads from them is named in the
    manifest's ledger."""
    values = values.dropna()
    if pd.api.types.is_integer_dtype(values.dtype) or (pd.api.types.is_float_dtype(values.dtype)
                                                        and bool((values == values.round()).all())):
        top = int(values.max()) if len(values) else 0
        return {"kind": "integer", "start": top + 1, "dtype": str(values.dtype)}
    text = values.astype(str)
    if len(text) and text.str.match(_UUID).all():
        return {"kind": "uuid"}
    lengths = text.str.len()
    if not len(text) or int(lengths.max()) > MAX_TEMPLATE:
        return {"kind": "uuid"}
    width = int(lengths.max())
    padded = text.str.pad(width, side="right", fillchar="\0")
    chars = np.array([list(v) for v in padded.tolist()]) if len(padded) <= 200_000 else \
        np.array([list(v) for v in padded.sample(200_000, random_state=0).tolist()])
    template, pinned = [], None
    for i in range(width):
        seen = set(chars[:, i].tolist()) - {"\0"}
        cls = _class_of(seen)
        if cls is None:
            template.append({"fixed": sorted(seen)[0] if len(seen) == 1 else "".join(sorted(seen))})
            continue
        template.append({"class": cls})
        unused = sorted(set(_CLASSES[cls]) - seen)
        if pinned is None and unused and not (cls == "d" and i == 0):
            pinned = (i, unused[len(unused) // 2])
    if pinned is None:  # every position uses its whole class: one character more than any real key
        template.append({"class": "d"})
        pinned = (len(template) - 1, "0")
    return {"kind": "text", "template": template, "pinned": list(pinned),
            "lengths": sorted({int(v) for v in lengths.unique()})[:64]}


def _class_of(seen: set[str]) -> str | None:
    for name, chars in _CLASSES.items():
        if seen and seen <= set(chars) and len(seen) > 1:
            return name
    return None


def generate_keys(fmt: dict[str, Any], n: int, rng: np.random.Generator) -> pd.Series:
    """``n`` unique new keys in the format ``fmt`` (from :func:`key_format`)."""
    kind = fmt["kind"]
    if kind == "integer":
        values = np.arange(fmt["start"], fmt["start"] + n, dtype=np.int64)
        return pd.Series(values, dtype=fmt.get("dtype", "int64"))
    if kind == "uuid":
        raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
        hexes = [r.tobytes().hex() for r in raw]
        return pd.Series([f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in hexes], dtype=object)
    template, (pin_at, pin_char) = _roomy(fmt["template"], fmt["pinned"][0], n), fmt["pinned"]
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        need = n - len(out)
        columns = []
        for i, slot in enumerate(template):
            if i == pin_at:
                columns.append(np.full(need, pin_char))
            elif "fixed" in slot:
                choices = list(slot["fixed"])
                columns.append(np.array(choices)[rng.integers(0, len(choices), need)])
            else:
                chars = np.array(list(_CLASSES[slot["class"]]))
                columns.append(chars[rng.integers(0, len(chars), need)])
        for key in map("".join, zip(*columns, strict=True)):
            if key not in seen:
                seen.add(key)
                out.append(key)
    return pd.Series(out[:n], dtype=object)


def _choices(slot: dict[str, Any]) -> int:
    return len(slot["fixed"]) if "fixed" in slot else len(_CLASSES[slot["class"]])


def _roomy(template: list[dict[str, Any]], pin_at: int, n: int) -> list[dict[str, Any]]:
    """``template``, widened until it has room for ``n`` keys twice over: fixed digits vary (last positions
    first; letters stay, as prefixes do), then digits are appended (a key of 12 rows' format rarely has
    room for a million)."""
    template = [dict(slot) for slot in template]

    def room() -> float:
        return float(np.prod([_choices(s) for i, s in enumerate(template) if i != pin_at], dtype=float))

    for i in reversed(range(len(template))):
        if room() >= 2 * n:
            break
        slot = template[i]
        if i != pin_at and "fixed" in slot and set(slot["fixed"]) <= set(string.digits):
            template[i] = {"class": "d"}
    while room() < 2 * n:
        template.append({"class": "d"})
    return template
