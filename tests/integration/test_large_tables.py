"""Large tables: streamed training from a Parquet file read in chunks, on a reservoir sample's transformer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from scipy import stats

from synthgen import Sampler, Synthesizer
from synthgen.checkpoint_file import read_checkpoint
from synthgen.cli import main
from synthgen.datasets import load_adult
from synthgen.errors import ConfigError, DataWarning, InvalidDataError
from synthgen.models.training import StreamFeed
from synthgen.schema import TableSchema
from synthgen.stream import ParquetBatches, open_parquet, reservoir_sample
from synthgen.transform import TabularTransformer

ROWS, GROUP, SAMPLE = 50_000, 5_000, 2_000
TINY = {"compress_dims": (32,), "decompress_dims": (32,), "embedding_dim": 16, "batch_size": 500, "epochs": 1}
NEW_CATEGORIES = [f"Space-agency-{i}" for i in range(20)]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50,000 Adult-like rows in 10 row groups, with rare values in rows the seed-0 sample does not take
    (its rows depend only on the seed and the row count): 20 new workclass categories, 20 ages of 100
    and more, 3 nulls in hours-per-week, 2 in income."""
    df = load_adult().sample(ROWS, replace=True, random_state=0).reset_index(drop=True)
    path = tmp_path_factory.mktemp("big") / "big.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=GROUP)
    taken = reservoir_sample(open_parquet(path), SAMPLE, seed=0).positions
    rows = np.random.default_rng(0).choice(np.setdiff1d(np.arange(ROWS), taken), 45, replace=False)
    df.loc[rows[:20], "workclass"] = NEW_CATEGORIES
    df.loc[rows[20:40], "age"] = np.arange(100, 120)
    df["hours-per-week"] = df["hours-per-week"].astype(float)
    df.loc[rows[40:43], "hours-per-week"] = np.nan
    df.loc[rows[43:], "income"] = None
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=GROUP)
    return path


@pytest.fixture(scope="module")
def streamed(big: Path) -> Synthesizer:
    with pytest.warns(DataWarning) as caught:
        synth = Synthesizer(model="tvae", seed=0, **TINY).fit(big, stream=True, sample_rows=SAMPLE)
    warned = {str(w.message).split("'")[1] for w in caught}
    assert warned == {"hours-per-week", "income"}  # nulls in the file, none in the sample
    return synth


@pytest.mark.slow
def test_streamed_model_has_the_table_s_columns_and_dtypes_and_samples(streamed, big, tmp_path):
    real = pd.read_parquet(big)
    model = Sampler.load(streamed.save(tmp_path / "m.sgm"))
    fake = model.sample(1000, seed=0)
    assert list(fake.columns) == list(real.columns) and len(fake) == 1000
    assert fake.dtypes.equals(real.dtypes)
    assert set(fake["workclass"]) <= set(real["workclass"]) - set(NEW_CATEGORIES)  # sampled categories only
    summary = model.manifest["training"]
    assert summary["streamed"] is True and summary["rows"] == ROWS
    assert summary["transformer_fitted_on"]["rows"] == SAMPLE and summary["transformer_fitted_on"]["of_rows"] == ROWS
    assert any("sample" in q for q in model.manifest["privacy"]["raw_quantities"])
    assert len(summary["history"]) == 1 and np.isfinite(summary["history"][0]["loss"])


@pytest.mark.slow
def test_transformer_was_fitted_on_the_reservoir_sample(streamed, big):
    sample = reservoir_sample(open_parquet(big), SAMPLE, seed=0).frame
    alone = TabularTransformer(seed=0).fit(sample, TableSchema.detect(sample))
    assert streamed.transformer.to_dict() == alone.to_dict()
    assert streamed.transformer.to_dict() != TabularTransformer(seed=0).fit(
        pd.read_parquet(big), TableSchema.detect(pd.read_parquet(big))).to_dict()


@pytest.mark.slow
def test_values_outside_the_sample_are_mapped_and_counted(streamed, big):
    real, tr = pd.read_parquet(big), streamed.transformer
    expected: dict[str, dict[str, int]] = {}
    for name, col in zip(tr.schema.names, tr.to_dict()["columns"], strict=True):
        values, null = real[name], real[name].isna()
        if col["encoder"] == "onehot":
            counts = {"unseen_category": int((~values.isin([c for c in col["categories"] if c is not None])
                                              & ~null).sum()),
                      "unseen_null": int(null.sum()) if None not in col["categories"] else 0}
        else:
            counts = {"clipped": int(((values < col["min"]) | (values > col["max"])).sum()),
                      "unseen_null": int(null.sum()) if not col["nullable"] else 0}
        if any(counts.values()):
            expected[name] = {k: v for k, v in counts.items() if v}
    assert streamed.summary["outside_sample"] == expected
    outside = expected
    assert outside["workclass"]["unseen_category"] >= 20 and outside["age"]["clipped"] >= 20
    assert outside["hours-per-week"]["unseen_null"] == 3 and outside["income"] == {"unseen_null": 2}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::synthgen.errors.DataWarning")
def test_a_streamed_fit_reads_the_file_in_chunks_only(big, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("read the whole table")

    for owner, name in [(pq, "read_table"), (pd, "read_parquet"), (pq.ParquetFile, "read"),
                        (pq.ParquetFile, "read_row_group"), (pq.ParquetFile, "read_row_groups")]:
        monkeypatch.setattr(owner, name, refuse)
    seen: list[int] = []
    iter_batches = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        for batch in iter_batches(self, *args, **kwargs):
            seen.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr("synthgen.stream.SCAN_ROWS", 4096)
    Synthesizer(model="tvae", seed=0, **TINY).fit(big, stream=True, sample_rows=SAMPLE)
    # one sampling pass, one epoch, and one pass for the latent mixture and the calibration shares
    assert sum(seen) == 3 * ROWS
    assert max(seen) <= 8192


@pytest.mark.slow
def test_batches_cover_every_row_once_per_epoch_and_repeat_per_seed(big):
    pf = open_parquet(big)
    sample = reservoir_sample(pf, SAMPLE, seed=0).frame
    tr = TabularTransformer(seed=0).fit(sample, TableSchema.detect(sample))
    source = ParquetBatches(pf, tr, seed=3, chunk_rows=1500, window=3)
    sex = next(s for s in tr.layout.spans if s.column == tr.schema.names.index("sex"))
    start = int(tr.layout.starts[tr.layout.spans.index(sex)])
    epoch0 = list(source.batches(0, 700))
    assert [len(b) for b in epoch0] == [700] * (ROWS // 700) + [ROWS % 700]
    assert len(epoch0) == math.ceil(ROWS / 700)
    counts = np.concatenate(epoch0)[:, start:start + sex.width].sum(axis=0)
    expected = pd.read_parquet(big)["sex"].value_counts()
    assert dict(zip(tr.categories("sex"), counts.astype(int).tolist(), strict=True)) == expected.to_dict()
    again, other = list(source.batches(0, 700)), list(source.batches(1, 700))
    assert all(np.array_equal(a, b) for a, b in zip(epoch0, again, strict=True))
    assert not np.array_equal(epoch0[0], other[0])
    first = np.concatenate(epoch0)[:, start]  # one shuffled epoch: no long runs of the file's order
    assert 0.3 < first[:5000].mean() < 0.8
    feed = StreamFeed(source, 700, torch.device("cpu"))
    feed.start(0, skip=5)  # a resume inside an epoch replays it to the step it stopped at
    assert np.array_equal(feed.next().numpy(), epoch0[5])
    feed.close()


def test_reservoir_sample_is_uniform_and_deterministic(tmp_path):
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"i": np.arange(200)}), path, row_group_size=20)
    pf = open_parquet(path)
    hits = np.zeros(200)
    for seed in range(400):
        hits[reservoir_sample(pf, 20, seed=seed, batch_rows=32).frame["i"].to_numpy()] += 1
    assert stats.chisquare(hits).pvalue > 0.001  # each row in 10% of samples
    first = reservoir_sample(pf, 20, seed=5, batch_rows=7)
    assert first.frame["i"].tolist() == reservoir_sample(pf, 20, seed=5, batch_rows=150).frame["i"].tolist()
    assert first.frame["i"].is_monotonic_increasing and first.rows == 200 and len(first.frame) == 20
    assert first.frame["i"].tolist() != reservoir_sample(pf, 20, seed=6).frame["i"].tolist()
    everything = reservoir_sample(pf, 500, seed=0)
    assert everything.frame["i"].tolist() == list(range(200))


@pytest.mark.slow
def test_resumed_streamed_fit_equals_the_uninterrupted_one(big, tmp_path):
    settings = {"model": "tvae", "seed": 1, **TINY, "epochs": 2}
    with pytest.warns(DataWarning):
        whole = Synthesizer(**settings).fit(big, stream=True, sample_rows=SAMPLE)
        ckpt = tmp_path / "m.ckpt"
        Synthesizer(**settings).fit(big, stream=True, sample_rows=SAMPLE, checkpoint=ckpt, checkpoint_every=1)
    body, _ = read_checkpoint(ckpt)
    assert body["state"]["epoch"] == 1 and body["stream"]["fitted_on"] == SAMPLE
    resumed = Synthesizer.from_checkpoint(ckpt).fit(big, resume_from=ckpt)  # streams: the checkpoint says so
    a, b = whole.model.state_tensors(), resumed.model.state_tensors()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.summary["streamed"] and resumed.summary["resumed_from_epoch"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("settings,fix", [
    ({"epsilon": 1.0}, "drop --stream to train with DP in memory"),
    ({"model": "ctgan"}, "training-by-sampling"),
    ({"model": "pairwise"}, "use one of: tvae"),
])
def test_refusals_name_what_works(big, settings, fix):
    with pytest.raises(ConfigError, match=fix):
        Synthesizer(**{"model": "tvae", **settings}).fit(big, stream=True)


@pytest.mark.slow
def test_csv_dataframe_and_bad_samples_are_refused(big, tmp_path):
    csv = tmp_path / "big.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="convert it to Parquet"):
        Synthesizer().fit(csv, stream=True)
    with pytest.raises(ConfigError, match="DataFrame is already in memory"):
        Synthesizer().fit(pd.DataFrame({"a": [1]}), stream=True)
    const = tmp_path / "const.parquet"
    pq.write_table(pa.table({"a": np.arange(1000) % 7 * 1.5, "c": ["x"] * 999 + ["y"]}), const, row_group_size=100)
    with pytest.raises(InvalidDataError, match=r"'c': has a single value .*\(in a 100-row sample of 1,000 rows\)"):
        Synthesizer().fit(const, stream=True, sample_rows=100)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::synthgen.errors.DataWarning")
def test_cli_streams_says_so_and_refuses_in_one_line(big, tmp_path, monkeypatch):
    runner, out = CliRunner(), tmp_path / "m.sgm"
    result = runner.invoke(main, ["train", str(big), "--stream", "--sample-rows", str(SAMPLE), "--epochs", "1",
                                  "--batch-size", "1000", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert f"uniform sample of {SAMPLE:,} of {ROWS:,} rows" in result.output
    assert "workclass" in result.output and "unseen category" in result.output
    manifest = json.loads(runner.invoke(main, ["inspect", str(out), "--json"]).output)
    assert manifest["training"]["streamed"] is True
    for extra in (["--epsilon", "1"], ["--model", "ctgan"]):
        result = runner.invoke(main, ["train", str(big), "--stream", "--out", str(tmp_path / "x.sgm"), *extra])
        assert result.exit_code != 0 and "cannot train from a stream" in result.output
        assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setattr("synthgen.stream.available_memory", lambda: 1 << 20)  # 1 MiB free: stream on its own
    result = runner.invoke(main, ["train", str(big), "--sample-rows", "500", "--epochs", "1", "--out",
                                  str(tmp_path / "auto.sgm"), "-q"])
    assert result.exit_code != 0 and "only applies with --stream" in result.output
    result = runner.invoke(main, ["train", str(big), "--epochs", "1", "--batch-size", "1000", "--out",
                                  str(tmp_path / "auto.sgm"), "-q"])
    assert result.exit_code == 0, result.output
    assert "streaming it from disk" in result.output and "streamed from disk" in result.output
