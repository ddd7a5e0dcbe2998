"""Identifier detection from content, the suggested policy, and training's refusal / warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from synthgen.datasets import load_adult
from synthgen.errors import IdentifierWarning, InvalidDataError
from synthgen.masking.identifiers import scan, suggest_policy
from synthgen.masking.policy import mask
from synthgen.schema import TableSchema, validate


@pytest.fixture(scope="module")
def contacts() -> pd.DataFrame:
    fake, n = Faker("en_US"), 300
    fake.seed_instance(0)
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "customer": [fake.name() for _ in range(n)], "email": [fake.email() for _ in range(n)],
        "phone": [fake.phone_number() for _ in range(n)], "ssn": [fake.ssn() for _ in range(n)],
        "card": [fake.credit_card_number() for _ in range(n)], "ip": [fake.ipv4() for _ in range(n)],
        "homepage": [fake.url() for _ in range(n)], "notes": [fake.paragraph(nb_sentences=3) for _ in range(n)],
        "row_id": np.arange(n), "token": [fake.uuid4() for _ in range(n)],
        "zip": [fake.postcode() for _ in range(n)], "birth_date": [str(fake.date_of_birth()) for _ in range(n)],
        "age": rng.integers(18, 90, n), "sex": rng.choice(["F", "M"], n),
        "amount": rng.normal(100, 10, n), "plan": rng.choice(["basic", "plus", "pro"], n),
        "visit_date": [str(fake.date_this_decade()) for _ in range(n)],
    })


def test_scan_finds_each_kind_of_identifier(contacts):
    found = {f.column: (f.role, f.what) for f in scan(contacts)}
    assert found["customer"] == ("direct", "person names")
    assert found["email"] == ("direct", "email addresses")
    assert found["phone"] == ("direct", "phone numbers")
    assert found["ssn"] == ("direct", "social security numbers")
    assert found["card"] == ("direct", "payment card numbers")
    assert found["ip"] == ("direct", "IP addresses")
    assert found["homepage"] == ("direct", "URLs")
    assert found["notes"] == ("direct", "free text")
    assert found["row_id"][0] == found["token"][0] == "id"
    assert found["zip"] == ("quasi", "postcode") and found["birth_date"] == ("quasi", "birth date")
    assert found["age"][0] == found["sex"][0] == "quasi"
    assert not {"amount", "plan", "visit_date"} & set(found)  # ordinary columns (dates are not phones)


def test_scan_works_on_arrow_backed_strings(contacts):
    # pandas' future default (str columns on pyarrow, whose regex engine has no lookarounds)
    expected = {f.column: (f.role, f.what) for f in scan(contacts)}
    with pd.option_context("future.infer_string", True):
        frame = contacts.astype({c: "str" for c in contacts.columns if contacts[c].dtype == object})
        assert {f.column: (f.role, f.what) for f in scan(frame)} == expected


def test_adult_has_quasi_identifiers_only():
    findings = scan(load_adult())
    assert {f.role for f in findings} == {"quasi"}
    assert {"age", "sex", "race", "marital-status", "native-country"} <= {f.column for f in findings}


def test_suggested_policy_masks_every_direct_identifier(contacts):
    policy = suggest_policy(contacts, k=3)
    assert all("reason" in entry for entry in policy["columns"].values())
    assert {"zip", "age", "sex", "birth_date"} <= set(policy["k_anonymity"]["columns"])
    masked = mask(contacts, policy)
    direct = {f.column for f in scan(contacts) if f.role in ("direct", "id")}
    assert direct <= set(policy["columns"])
    for column in direct:  # replace keeps no row's own value (a fake may still equal another row's value)
        assert column not in masked or (masked[column] != contacts[column]).all(), column
    assert masked.groupby(policy["k_anonymity"]["columns"], dropna=False).size().min() >= 3


def test_training_validation_refuses_id_like_columns_unless_allowed(contacts):
    table = contacts[["row_id", "token", "amount", "plan"]]
    schema = TableSchema.detect(table)
    with pytest.raises(InvalidDataError, match="--allow token") as info:
        validate(table, schema, findings=scan(table))
    assert {p.column for p in info.value.problems} == {"row_id", "token"}
    validate(table, schema, findings=scan(table), allow=("row_id", "token"))


def test_scan_only_ids_are_refused_too():
    table = pd.DataFrame({"account_no": np.r_[np.arange(600), np.arange(400)], "x": np.linspace(0, 1, 1000)})
    findings = scan(table)
    assert [(f.column, f.role) for f in findings] == [("account_no", "id")]
    with pytest.raises(InvalidDataError, match="account_no"):
        validate(table, TableSchema.detect(table), findings=findings)


def test_synthesizer_warns_about_direct_identifiers(contacts):
    from synthgen.pipeline import identifiers
    from synthgen.synthesizer import Synthesizer

    with pytest.warns(IdentifierWarning, match="'email' looks like email addresses"):
        identifiers(contacts[["email", "amount"]], Synthesizer(model="marginals")._settings())
    with pytest.raises(Exception, match="--allow names"):
        identifiers(contacts, Synthesizer(model="marginals", allow=("nope",))._settings())


def test_scan_reads_category_columns_as_text(contacts):
    table = contacts[["email", "customer"]].astype("category")
    found = {f.column: f.what for f in scan(table)}
    assert found == {"email": "email addresses", "customer": "person names"}


def test_scan_finds_phone_card_and_ssn_integers_by_name_and_content():
    fake, rng, n = Faker("en_US"), np.random.default_rng(1), 300
    fake.seed_instance(1)
    table = pd.DataFrame({
        "phone_int": rng.integers(2_000_000_000, 9_999_999_999, n),
        "card": [int(fake.credit_card_number(card_type="visa16")) for _ in range(n)],
        "ssn_int": rng.integers(100_000_000, 999_999_999, n),
        "amount_cents": rng.integers(2_000_000_000, 9_999_999_999, n),  # no name hint: not a phone
        "weight": rng.integers(100_000_000, 999_999_999, n).astype(float),  # no hint: not an SSN
    })
    found = {f.column: (f.role, f.what, f.suggestion) for f in scan(table)}
    assert found["phone_int"] == ("direct", "phone numbers", {"op": "replace", "kind": "phone"})
    assert found["card"][:2] == ("direct", "payment card numbers")
    assert found["ssn_int"][:2] == ("direct", "social security numbers")
    assert "amount_cents" not in found and "weight" not in found
    masked = mask(table, suggest_policy(table), key=bytes(32))
    for column in ("phone_int", "card", "ssn_int"):
        assert masked[column].dtype == np.int64 and (masked[column] != table[column]).all()


def test_person_names_with_accents_are_names():
    firsts = ["José", "Zoë", "Łukasz", "Ana María", "François L.", "Søren", "Iñaki"]
    lasts = ["Álvarez", "Müller", "Żółć", "de la Cruz", "Dupré", "Kierkegård", "Núñez Peña"]
    names = [f"{first} {last}" for first in firsts for last in lasts]
    found = {f.column: f.what for f in scan(pd.DataFrame({"cliente": names}))}
    assert found == {"cliente": "person names"}
    lower = pd.DataFrame({"item": ["the quick brown", "lazy dog here", "fox jumps over"] * 10})
    assert scan(lower) == []


def test_datetime_birth_dates_get_truncated_to_the_year():
    fake = Faker("en_US")
    fake.seed_instance(2)
    table = pd.DataFrame({"dob": pd.to_datetime([fake.date_of_birth() for _ in range(100)])})
    (finding,) = scan(table)
    assert finding.role == "quasi" and finding.suggestion == {"op": "generalize", "truncate": "year"}
    masked = mask(table, suggest_policy(table, k=2))
    assert (masked["dob"].dt.dayofyear == 1).all() and masked["dob"].dtype == table["dob"].dtype
