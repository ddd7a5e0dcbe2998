"""Several tables through real storage: a folder of files, SQLite, and a real PostgreSQL server (started for
the tests). Keys are reflected from the database; writing creates the constraints, in one transaction."""

from __future__ import annotations

import pandas as pd
import pg_server
import pytest
import sqlalchemy as sa
from shop_data import shop_metadata, shop_tables

from synthgen.errors import OutputExistsError, SynthgenError
from synthgen.metadata import Metadata
from synthgen.relational.tables_io import read_tables, write_tables


@pytest.fixture(scope="module")
def postgres_url():
    why = pg_server.missing()
    if why:
        pytest.skip(why)
    with pg_server.server() as url:
        yield url


def _roundtrip(url: str) -> None:
    tables, meta = shop_tables(customers=80), shop_metadata()
    write_tables(tables, url, meta)
    back, constraints = read_tables(url)
    assert set(back) == set(tables)
    for name, df in tables.items():
        got = back[name].sort_values(meta.primary_key(name)).reset_index(drop=True)
        assert len(got) == len(df)
        assert got[meta.primary_key(name)].tolist() == sorted(df[meta.primary_key(name)].tolist())
    assert constraints is not None
    assert constraints["purchase"]["primary_key"] == "purchase_id"
    assert sorted(constraints["purchase"]["foreign_keys"]) == [("customer_id", "customer", "customer_id"),
                                                              ("store_id", "store", "store_id")]
    detected, notes = Metadata.detect(back, constraints)
    assert set(map(str, detected.relationships)) == set(map(str, meta.relationships))
    assert any("declared by the database" in n for n in notes)
    # existing tables are refused, and --force replaces them in one transaction
    with pytest.raises(OutputExistsError, match="already has table"):
        write_tables(tables, url, meta)
    write_tables(shop_tables(seed=1, customers=40), url, meta, force=True)
    assert len(read_tables(url)[0]["customer"]) == 40


def _all_or_nothing(url: str) -> None:
    """A failing insert (a foreign key pointing nowhere) leaves no table behind."""
    tables, meta = shop_tables(customers=30), shop_metadata()
    tables["item"].loc[0, "purchase_id"] = -1
    with pytest.raises(SynthgenError, match="nothing was written"):
        write_tables(tables, url, meta, force=True)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_sqlite_round_trip_with_constraints(tmp_path):
    _roundtrip(f"sqlite:///{tmp_path / 'shop.db'}")


def test_postgres_round_trip_with_constraints(postgres_url):
    _roundtrip(postgres_url)


def test_postgres_write_is_one_transaction(postgres_url):
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for name in ("item", "purchase", "store", "customer"):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()
    _all_or_nothing(postgres_url)


def test_folder_round_trip_refuses_overwrite(tmp_path):
    tables, meta = shop_tables(customers=50), shop_metadata()
    out = write_tables(tables, tmp_path / "out", meta, file_format="parquet")
    back, constraints = read_tables(out)
    assert constraints is None and set(back) == set(tables)
    pd.testing.assert_frame_equal(back["purchase"], tables["purchase"], check_dtype=False)
    with pytest.raises(OutputExistsError):
        write_tables(tables, tmp_path / "out", meta)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "customer.parquet", "item.parquet", "purchase.parquet", "store.parquet"]
