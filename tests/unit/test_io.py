"""Reading tables, atomic writes and the chunked TableWriter."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from synthgen.errors import InvalidDataError, OutputExistsError, SynthgenError
from synthgen.io import TableWriter, atomic_path, read_table, write_bytes_atomic, write_table


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": np.arange(7, dtype=np.int64),
            "x": [0.1, np.nan, 1 / 3, 4.0, -5.5, 6e10, 7e-9],
            "s": ["a", "b", "c, with comma", 'd "quoted"', "e", "f", "g"],
        }
    )


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- reading
def test_dataframe_passes_through(frame):
    assert read_table(frame) is frame


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet", "t.pq", "T.CSV"])
def test_read_round_trip(tmp_path, frame, name):
    path = write_table(frame, tmp_path / name)
    pd.testing.assert_frame_equal(read_table(path), frame)
    pd.testing.assert_frame_equal(read_table(str(path)), frame)


def test_read_tsv(tmp_path, frame):
    path = tmp_path / "t.tsv"
    frame.to_csv(path, sep="\t", index=False)
    pd.testing.assert_frame_equal(read_table(path), frame)


def test_missing_file(tmp_path):
    with pytest.raises(SynthgenError, match=r"nope.csv: no such file \(fix: check the path\)"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(SynthgenError, match="no such file"):
        read_table(tmp_path)  # a folder is not a table


def test_unknown_suffix(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(
        SynthgenError,
        match=r"data.xlsx: unknown table format \(fix: use a file ending in "
        r"\.csv, \.csv\.gz or \.parquet, plus \.enc if encrypted\)",
    ):
        read_table(path)


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(
        InvalidDataError, match=r"empty.csv is empty \(fix: give a file with a header row"
    ):
        read_table(path)


def test_corrupt_files(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(SynthgenError, match="bad.parquet: cannot read it as parquet"):
        read_table(bad)
    binary = tmp_path / "bin.csv.gz"
    binary.write_bytes(b"\x00\x01 not gzip")
    with pytest.raises(SynthgenError, match="bin.csv.gz: cannot read it as csv"):
        read_table(binary)


# ----------------------------------------------------------------------------- atomic writes
def test_atomic_write_and_overwrite(tmp_path):
    path = write_bytes_atomic(tmp_path / "f.bin", b"one")
    assert path.read_bytes() == b"one"
    with pytest.raises(
        OutputExistsError,
        match=r"f.bin already exists \(fix: choose another path or "
        r"pass --force\)",
    ):
        write_bytes_atomic(path, b"two")
    assert path.read_bytes() == b"one"
    write_bytes_atomic(path, b"two", force=True)
    assert path.read_bytes() == b"two"
    assert leftovers(tmp_path) == ["f.bin"]


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"partial")
            assert tmp.parent == tmp_path and tmp.name != "out.bin"
            raise RuntimeError("disk on fire")
    assert leftovers(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path):
    path = write_bytes_atomic(tmp_path / "out.bin", b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path, force=True) as tmp:
            tmp.write_bytes(b"new, half written")
            raise RuntimeError("stop")
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["out.bin"]


def test_missing_folder(tmp_path):
    with pytest.raises(SynthgenError, match=r"no such folder \(fix: create it first\)"):
        write_bytes_atomic(tmp_path / "no" / "f.bin", b"x")


# ----------------------------------------------------------------------------- TableWriter
@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_table_writer_appends_chunks(tmp_path, frame, name):
    path = tmp_path / name
    with TableWriter(path) as writer:
        assert not path.exists()  # published only on close
        for start in range(0, len(frame), 3):
            writer.write(frame.iloc[start : start + 3])
    assert writer.rows == len(frame)
    pd.testing.assert_frame_equal(read_table(path), frame)
    assert leftovers(tmp_path) == [name]


def test_table_writer_gzip_really_compressed(tmp_path, frame):
    path = write_table(frame, tmp_path / "out.csv.gz")
    with gzip.open(path, "rt") as fh:
        assert fh.readline().strip() == "n,x,s"


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_table_writer_failure_leaves_nothing(tmp_path, frame, name):
    with pytest.raises(ValueError, match="generator broke"):
        with TableWriter(tmp_path / name) as writer:
            writer.write(frame)
            raise ValueError("generator broke")
    assert leftovers(tmp_path) == []


def test_table_writer_refuses_overwrite(tmp_path, frame):
    path = write_table(frame, tmp_path / "out.parquet")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_table(frame.head(2), path)
    write_table(frame.head(2), path, force=True)
    assert len(read_table(path)) == 2


def test_table_writer_unknown_suffix(tmp_path):
    with pytest.raises(SynthgenError, match="unknown table format"):
        TableWriter(tmp_path / "out.json")


def test_parquet_text_column_all_null_in_the_first_chunk(tmp_path):
    path = tmp_path / "out.parquet"
    first = pd.DataFrame({"city": pd.Series([None, None], dtype=object), "n": [1, 2]})
    second = pd.DataFrame({"city": pd.Series(["Oslo", None], dtype=object), "n": [3, 4]})
    with TableWriter(path) as writer:
        writer.write(first)
        writer.write(second)
    back = pd.read_parquet(path)
    assert back["city"].tolist()[2] == "Oslo" and back["city"].isna().sum() == 3


@pytest.mark.parametrize("name", ["t.csv.enc", "t.csv.gz.enc", "t.parquet.enc"])
def test_encrypted_tables_never_touch_disk_in_plaintext(tmp_path, name):
    from synthgen.crypto.keys import generate_key
    from synthgen.crypto.streams import MAGIC
    from synthgen.errors import IntegrityError
    from synthgen.io import TableWriter

    key = generate_key()
    df = pd.DataFrame({"secret": [f"patient-{i:05d}" for i in range(30_000)], "x": range(30_000)})
    with TableWriter(tmp_path / name, seal={"key": key}) as writer:
        for start in range(0, len(df), 10_000):
            writer.write(df.iloc[start:start + 10_000])
            for part in tmp_path.iterdir():  # the temporary file being written is ciphertext from its first byte
                data = part.read_bytes()
                assert (not data or data.startswith(MAGIC)) and b"patient-" not in data
    assert b"patient-" not in (tmp_path / name).read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [name]
    back = read_table(tmp_path / name, secret={"key": key})
    pd.testing.assert_frame_equal(back, df)
    with pytest.raises(SynthgenError, match="is encrypted"):
        read_table(tmp_path / name)
    with pytest.raises(IntegrityError, match="failed authentication"):
        read_table(tmp_path / name, secret={"key": generate_key()})
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes((tmp_path / name).read_bytes()[:-5])
    with pytest.raises(IntegrityError):
        read_table(cut, secret={"key": key})


def test_a_failed_close_publishes_nothing(tmp_path, monkeypatch):
    from synthgen.crypto import streams
    from synthgen.crypto.keys import generate_key
    from synthgen.io import TableWriter

    def full_disk(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(streams.EncryptingWriter, "close", full_disk)
    with pytest.raises(SynthgenError, match=r"t.csv.enc: cannot write \(No space left on device\)"):
        with TableWriter(tmp_path / "t.csv.enc", seal={"key": generate_key()}) as writer:
            writer.write(pd.DataFrame({"a": range(10)}))
    assert list(tmp_path.iterdir()) == []
