"""Find identifiers in a table from its content: direct identifiers, near-unique IDs, quasi-identifiers.

``scan`` looks at up to ``SAMPLE`` values per column: emails, phone numbers, social security and card
numbers (Luhn-checked), IP addresses, URLs, person names (accented too) and free text are *direct*
identifiers, in text columns (object, string, or category of text); integer columns hold card numbers
(13-19 digits, Luhn-valid) or, when the column name says so (phone, tel, ssn, ...), phone or social
security numbers; near-unique strings or integers are *ID-like*; age, sex, race, marital status,
postcodes, birth dates, nationality and occupation (by column name) are *quasi*-identifiers, which
single people out in combination. ``suggest_policy`` turns the findings into a masking policy with a
reason per entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

SAMPLE = 5000
MATCH_SHARE = 0.8  # share of non-null values that must match a pattern
Role = Literal["direct", "id", "quasi"]

_PATTERNS: list[tuple[str, re.Pattern, dict[str, Any]]] = [
    ("email addresses", re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+$"), {"op": "replace", "kind": "email"}),
    ("social security numbers", re.compile(r"^\d{3}-\d{2}-\d{4}$"), {"op": "mask", "keep_last": 4}),
    ("IP addresses", re.compile(r"^(\d{1,3}\.){3}\d{1,3}$"), {"op": "pseudonymize"}),
    ("URLs", re.compile(r"^(https?|ftp)://\S+$", re.IGNORECASE), {"op": "drop"}),
    ("phone numbers", re.compile(r"^(?=(?:\D*\d){7,15}\D*$)\+?[\d\s().-]*[\s().+-][\d\s().-]*$"),
     {"op": "replace", "kind": "phone"}),
]
_DATE = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?$")
_EXTENSION = re.compile(r"\s*(x|ext\.?)\s*\d+$", re.IGNORECASE)
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_LETTER = r"[^\W\d_]"  # any letter, accented or not
_PERSON = re.compile(rf"^{_LETTER}(?:{_LETTER}|['’-])+(?: {_LETTER}\.?)?"
                     rf"(?: (?:(?:de|del|la|van|von|der|da|di|du|le|y) )?{_LETTER}(?:{_LETTER}|['’-])+){{1,3}}$")
#: lower-case particles allowed inside a person name ("Juan de la Cruz")
_PARTICLES = {"de", "del", "la", "van", "von", "der", "da", "di", "du", "le", "y"}
_NAME_HINT = re.compile(r"(^|[_\W])(name|first_?name|last_?name|surname|full_?name|given_?name|family_?name)"
                        r"($|[_\W])", re.IGNORECASE)
_ID_HINT = re.compile(r"(^|[_\W])(id|uuid|guid|key|ssn|number|no|account|mrn|record)$", re.IGNORECASE)
#: integer columns: (what, name hint, digit counts, Luhn-checked, policy entry); phones and SSNs need the hint
_NUMBER_KINDS: list[tuple[str, re.Pattern | None, range, bool, dict[str, Any]]] = [
    ("payment card numbers", None, range(13, 20), True, {"op": "replace", "kind": "credit_card"}),
    ("phone numbers", re.compile(r"phone|(^|[_\W])(tel|mobile|cell|fax)", re.IGNORECASE), range(7, 16), False,
     {"op": "replace", "kind": "phone"}),
    ("social security numbers", re.compile(r"ssn|social_?sec", re.IGNORECASE), range(7, 10), False,
     {"op": "replace", "kind": "ssn"}),
]
#: (column-name pattern, what[, policy entry per kind of column]): quasi-identifiers go to k-anonymity
_QUASI_HINTS: list[tuple[Any, ...]] = [
    (re.compile(r"(^|[_\W])age($|[_\W])", re.IGNORECASE), "age"),
    (re.compile(r"(^|[_\W])(sex|gender)($|[_\W])", re.IGNORECASE), "sex"),
    (re.compile(r"(^|[_\W])(race|ethnic\w*)($|[_\W])", re.IGNORECASE), "race or ethnicity"),
    (re.compile(r"marital", re.IGNORECASE), "marital status"),
    (re.compile(r"(zip|post_?code|postal)", re.IGNORECASE), "postcode",
     {"text": {"op": "mask", "keep_first": 3}, "number": {"op": "generalize", "width": 100}}),
    (re.compile(r"(birth|dob)", re.IGNORECASE), "birth date",
     {"text": {"op": "generalize", "truncate": "year"}, "date": {"op": "generalize", "truncate": "year"}}),
    (re.compile(r"(native|nationality|citizenship|country_?of_?birth)", re.IGNORECASE), "nationality"),
    (re.compile(r"(occupation|job|profession)", re.IGNORECASE), "occupation"),
]


@dataclass(frozen=True)
class Finding:
    """One column that looks like an identifier.

    Attributes:
        column: the column name.
        role: ``direct`` (names, emails, ...), ``id`` (near-unique values) or ``quasi``.
        what: what the values look like, in words.
        evidence: why, e.g. "97% of 5000 values match".
        suggestion: a masking-policy entry for it (quasi-identifiers mostly have none: they go to k-anonymity).
    """

    column: str
    role: Role
    what: str
    evidence: str
    suggestion: dict[str, Any] = field(default_factory=dict)


def scan(df: pd.DataFrame) -> list[Finding]:
    """Every column of ``df`` that looks like a direct identifier, an ID, or a quasi-identifier."""
    findings = []
    for name in df.columns:
        finding = _classify(df[name], str(name))
        if finding is not None:
            findings.append(finding)
    return findings


def suggest_policy(df: pd.DataFrame, *, k: int = 5) -> dict[str, Any]:
    """A masking policy for ``df`` from ``scan``: one entry per identifier, k-anonymity over the quasi ones."""
    findings = scan(df)
    columns = {f.column: {**f.suggestion, "reason": f"{f.what} ({f.role}): {f.evidence}"}
               for f in findings if f.suggestion}
    policy: dict[str, Any] = {"version": 1, "columns": columns}
    quasi = [f.column for f in findings if f.role == "quasi"]
    if quasi:
        policy["k_anonymity"] = {"columns": quasi, "k": k, "max_suppression": 0.01,
                                 "reason": "quasi-identifiers: " + "; ".join(
                                     f"{f.column} ({f.what})" for f in findings if f.role == "quasi")}
    return policy


# ----------------------------------------------------------------------------- classification
def _classify(series: pd.Series, name: str) -> Finding | None:
    values = series.dropna()
    if len(values) == 0 or pd.api.types.is_bool_dtype(series.dtype):
        return None
    if len(values) > SAMPLE:
        values = values.sample(SAMPLE, random_state=0)
    # object, not pandas' arrow-backed str (future.infer_string): its regex engine has no lookarounds
    text = values.astype(str).astype(object).str.strip() if _is_text(series) else None
    integer = text is None and _integral(values)
    direct = _direct(text, name) if text is not None else _direct_number(values, name) if integer else None
    kind = "text" if text is not None else "date" if pd.api.types.is_datetime64_any_dtype(series.dtype) else "number"
    return direct or _quasi(name, kind) or _id_like(values, text, name)


def _is_text(series: pd.Series) -> bool:
    """Object or string columns, and category columns whose categories are text."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return _is_text(pd.Series(series.cat.categories))
    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)


def _integral(values: pd.Series) -> bool:
    """Integer values: an integer dtype, or floats that are all whole."""
    if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        return False
    return pd.api.types.is_integer_dtype(values.dtype) or bool(np.all(values == np.round(values)))


def _direct(text: pd.Series, name: str) -> Finding | None:
    n = len(text)
    if text.str.match(_DATE).mean() >= MATCH_SHARE:
        return None
    bare = text.str.replace(_EXTENSION, "", regex=True)
    for what, pattern, suggestion in _PATTERNS:
        share = (bare if what == "phone numbers" else text).str.match(pattern).mean()
        if share >= MATCH_SHARE:
            return Finding(name, "direct", what, _share(share, n), suggestion)
    cards = text[text.str.match(_CARD)]
    if len(cards) >= MATCH_SHARE * n and cards.map(_luhn).mean() >= MATCH_SHARE:
        return Finding(name, "direct", "payment card numbers", _share(len(cards) / n, n) + ", Luhn-valid",
                       {"op": "mask", "keep_last": 4})
    distinct = text.nunique() / n
    person = text.map(_person).mean()
    if person >= MATCH_SHARE and (distinct >= 0.3 or _NAME_HINT.search(name)):
        return Finding(name, "direct", "person names", _share(person, n) + f", {distinct:.0%} distinct",
                       {"op": "replace", "kind": "name"})
    words = text.str.count(r"\s+") + 1
    if words.mean() >= 6 and text.str.len().mean() >= 40 and distinct >= 0.5:
        return Finding(name, "direct", "free text", f"{words.mean():.0f} words per value on average",
                       {"op": "drop"})
    if _NAME_HINT.search(name) and distinct >= 0.3:
        return Finding(name, "direct", "names (by column name)", f"{distinct:.0%} distinct",
                       {"op": "replace", "kind": "name"})
    return None


def _person(value: str) -> bool:
    """A person's name: two to four capitalized words (accents welcome), an initial and particles allowed."""
    if not _PERSON.match(value):
        return False
    return all(w[0].isupper() and not w[1:].isupper() for w in value.split(" ") if w not in _PARTICLES)


def _direct_number(values: pd.Series, name: str) -> Finding | None:
    """Integers that are card numbers (Luhn-valid), or phone / social security numbers by column name."""
    digits = values.map(lambda v: str(abs(int(v))))
    for what, hint, counts, luhn, suggestion in _NUMBER_KINDS:
        if hint is not None and not hint.search(name):
            continue
        fits = digits.str.len().isin(counts)
        share = (fits & digits.map(_luhn)).mean() if luhn else fits.mean()
        if share >= MATCH_SHARE:
            evidence = f"{share:.0%} of {len(values)} values have {counts.start}-{counts.stop - 1} digits"
            return Finding(name, "direct", what, evidence + (", Luhn-valid" if luhn else ""), suggestion)
    return None


def _id_like(values: pd.Series, text: pd.Series | None, name: str) -> Finding | None:
    n = len(values)
    if n <= 20:
        return None
    distinct = values.nunique() / n
    integer = _integral(values)
    if text is not None and distinct >= 0.9 and text.str.match(_DATE).mean() < MATCH_SHARE:
        return Finding(name, "id", "near-unique text (an ID)", f"{distinct:.0%} of {n} values distinct",
                       {"op": "pseudonymize"})
    if integer and distinct >= 0.99 and (_dense(values) or _ID_HINT.search(name)):
        return Finding(name, "id", "near-unique integers (an ID)", f"{distinct:.0%} of {n} values distinct",
                       {"op": "pseudonymize"})
    if _ID_HINT.search(name) and distinct >= 0.5:
        return Finding(name, "id", "an identifier (by column name)", f"{distinct:.0%} of {n} values distinct",
                       {"op": "pseudonymize"})
    return None


def _dense(values: pd.Series) -> bool:
    """Integers that fill their range (1, 2, 3, ... row numbers, sequential keys)."""
    return float(values.max()) - float(values.min()) + 1 <= 2 * len(values)


def _quasi(name: str, kind: str) -> Finding | None:
    """A quasi-identifier by column name; ``kind`` (text, number or date) picks its policy entry, if any."""
    for pattern, what, *entries in _QUASI_HINTS:
        if pattern.search(name):
            return Finding(name, "quasi", what, "column name", entries[0].get(kind, {}) if entries else {})
    return None


def _luhn(number: str) -> bool:
    digits = [int(d) for d in re.sub(r"\D", "", number)][::-1]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def _share(share: float, n: int) -> str:
    return f"{share:.0%} of {n} values match"
