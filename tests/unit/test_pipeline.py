"""The steps of a fit: a table in memory through every step, the sample's problems, when to stream by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthgen.errors import InvalidDataError
from synthgen.models import get_model
from synthgen.pipeline import Checkpointing, FitSettings, checked_schema, fit_table, streams_by_default


def _settings(model: str, tiny, **extra) -> FitSettings:
    return FitSettings(get_model(model)(**tiny(model, epochs=1)), **extra)


def test_a_table_goes_through_every_step(adult, tiny):
    fitted = fit_table(adult, _settings("tvae", tiny, seed=3), Checkpointing())
    assert fitted.ledger is None and fitted.transformer.schema.names == list(adult.columns)
    assert fitted.summary["rows"] == len(adult) and fitted.summary["seed"] == 3 and fitted.summary["epochs"] == 1


def test_problems_of_a_sample_say_so(adult, tiny):
    adult["sex"] = "Male"  # one value: refused
    settings = _settings("marginals", tiny)
    with pytest.raises(InvalidDataError, match=r"'sex': has a single value") as whole:
        checked_schema(adult, settings, of_rows=len(adult))
    assert "sample" not in str(whole.value)
    with pytest.raises(InvalidDataError, match=r"'sex': has a single value .*\(in a 600-row sample of 6,000 rows\)"):
        checked_schema(adult, settings, of_rows=6000)


@pytest.fixture
def parquet(adult, tmp_path) -> Path:
    path = tmp_path / "t.parquet"
    adult.to_parquet(path)
    return path


def test_streams_by_default_only_when_too_big_and_the_model_can(parquet, monkeypatch):
    assert streams_by_default(parquet, "ctgan", private=False) == (False, None)  # plenty of memory
    monkeypatch.setattr("synthgen.stream.available_memory", lambda: 1 << 10)
    stream, note = streams_by_default(parquet, "tvae", private=False)
    assert stream and note.endswith("streaming it from disk (--stream; --no-stream loads it whole)")
    stream, note = streams_by_default(parquet, "ctgan", private=False)
    assert not stream and "it may not fit in memory, and the ctgan model cannot train from a stream" in note
    assert "use one of: tvae" in note
    stream, note = streams_by_default(parquet, "tvae", private=True)
    assert not stream and "cannot train from a stream with differential privacy" in note
