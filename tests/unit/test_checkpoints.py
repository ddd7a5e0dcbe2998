"""Checkpoints: a resumed fit is the uninterrupted fit; Ctrl-C saves and stops; bad resumes are refused."""

from __future__ import annotations

import signal
import zipfile

import pytest
import torch

from synthgen import Synthesizer
from synthgen.artifact import UNPACK_FLOOR
from synthgen.checkpoint_file import BODY, STATE, read_checkpoint, write_checkpoint
from synthgen.crypto.keys import generate_key
from synthgen.datasets import load_adult
from synthgen.errors import ConfigError, IntegrityError, TrainingInterrupted

SMALL = {"tvae": {"compress_dims": (32,), "decompress_dims": (32,)},
         "ctgan": {"generator_dim": (32, 32), "discriminator_dim": (32, 32)}}


@pytest.fixture(scope="module")
def table():
    return load_adult().sample(900, random_state=0)


def _settings(model: str, **extra):
    return {"model": model, "epochs": 3, "batch_size": 300, "seed": 4, **SMALL.get(model, {}), **extra}


def _losses(s: Synthesizer) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in s.model.history]


def _same_weights(a: Synthesizer, b: Synthesizer) -> bool:
    ta, tb = a.model.state_tensors(), b.model.state_tensors()
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tvae", "ctgan"])
def test_resumed_fit_equals_the_uninterrupted_one(tmp_path, table, model):
    whole = Synthesizer(**_settings(model)).fit(table)
    ckpt = tmp_path / "m.ckpt"
    Synthesizer(**_settings(model)).fit(table, checkpoint=ckpt, checkpoint_every=1)
    body, _ = read_checkpoint(ckpt)
    assert body["state"]["epoch"] == 2 and body["data"]["rows"] == len(table)
    resumed = Synthesizer.from_checkpoint(ckpt).fit(table, resume_from=ckpt)
    assert _same_weights(whole, resumed)
    assert _losses(resumed) == _losses(whole) and resumed.summary["resumed_from_epoch"] == 2


@pytest.mark.slow
def test_dp_resume_counts_every_step_once(tmp_path, table):
    from synthgen.datasets import adult_metadata_path

    settings = _settings("tvae", epsilon=4.0, metadata=adult_metadata_path(), deterministic=True)
    whole = Synthesizer(**settings).fit(table)
    ckpt, secret = tmp_path / "dp.ckpt", {"key": generate_key()}  # a DP checkpoint is always sealed
    Synthesizer(**settings).fit(table, checkpoint=ckpt, checkpoint_every=1, seal=secret)
    assert read_checkpoint(ckpt, secret=secret)[0]["state"]["dp"]["steps_taken"] == 2 * whole.ledger["steps"] // 3
    resumed = Synthesizer.from_checkpoint(ckpt, secret=secret).fit(table, resume_from=ckpt, secret=secret)
    assert _same_weights(whole, resumed)
    assert resumed.ledger["steps"] == resumed.ledger["steps_planned"] == whole.ledger["steps"]
    assert resumed.ledger["epsilon"] == whole.ledger["epsilon"]


@pytest.mark.slow
def test_ctrl_c_saves_after_the_current_step_and_resumes_exactly(tmp_path, table, monkeypatch):
    from synthgen.models.vae import TVAEModel

    whole = Synthesizer(**_settings("tvae")).fit(table)
    step, calls = TVAEModel._train_step, {"n": 0}

    def interrupted_step(self):
        calls["n"] += 1
        if calls["n"] == 5:  # mid-epoch 2 (3 steps per epoch)
            signal.raise_signal(signal.SIGINT)
        return step(self)

    monkeypatch.setattr(TVAEModel, "_train_step", interrupted_step)
    ckpt = tmp_path / "c.ckpt"
    with pytest.raises(TrainingInterrupted, match=r"epoch 2, step 2; checkpoint written to .*c.ckpt"):
        Synthesizer(**_settings("tvae")).fit(table, checkpoint=ckpt)
    assert read_checkpoint(ckpt)[0]["state"]["step"] == 2
    monkeypatch.setattr(TVAEModel, "_train_step", step)
    assert _same_weights(whole, Synthesizer.from_checkpoint(ckpt).fit(table, resume_from=ckpt))


def test_resume_refuses_other_settings_other_data_and_damage(tmp_path, table):
    ckpt = tmp_path / "m.ckpt"
    Synthesizer(**_settings("tvae")).fit(table, checkpoint=ckpt, checkpoint_every=1)
    with pytest.raises(ConfigError, match=r"other settings \(seed\)"):
        Synthesizer(**{**_settings("tvae"), "seed": 5}).fit(table, resume_from=ckpt)
    with pytest.raises(ConfigError, match="another table"):
        Synthesizer.from_checkpoint(ckpt).fit(table.iloc[1:], resume_from=ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(IntegrityError, match="not a synthgen checkpoint"):
        Synthesizer.from_checkpoint(ckpt)


def test_checkpoints_can_be_encrypted(tmp_path, table):
    from synthgen.crypto.keys import generate_key

    key, ckpt = generate_key(), tmp_path / "m.ckpt"
    write_checkpoint(ckpt, {"x": 1}, {"t": torch.zeros(2)}, seal={"key": key})
    with pytest.raises(Exception, match="encrypted checkpoint"):
        read_checkpoint(ckpt)
    body, tensors = read_checkpoint(ckpt, secret={"key": key})
    assert body["x"] == 1 and torch.equal(tensors["t"], torch.zeros(2))
    assert b"format" not in ckpt.read_bytes()


def test_cli_resume_reads_the_checkpoint_once(tmp_path, table, monkeypatch):
    from click.testing import CliRunner

    from synthgen import checkpoint_file
    from synthgen.cli import main
    from synthgen.io import read_table

    csv = tmp_path / "t.csv"
    table.to_csv(csv, index=False)
    ckpt = tmp_path / "m.sgm.ckpt"
    Synthesizer(**_settings("tvae")).fit(read_table(csv), checkpoint=ckpt, checkpoint_every=1)
    reads = []
    original = checkpoint_file.read_checkpoint
    monkeypatch.setattr(checkpoint_file, "read_checkpoint", lambda *a, **k: reads.append(a) or original(*a, **k))
    out = tmp_path / "m.sgm"
    result = CliRunner().invoke(main, ["train", str(csv), "--out", str(out), "--resume", str(ckpt), "-q"])
    assert result.exit_code == 0, result.output
    assert len(reads) == 1 and out.exists() and not ckpt.exists()


def test_checkpoint_zip_bomb_is_refused_before_unpacking(tmp_path):
    """Read under the model file's limits: state that unpacks to over 1000x its size is refused unread."""
    path = tmp_path / "bomb.ckpt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(BODY, "{}")
        zf.writestr(STATE, bytes(UNPACK_FLOOR + (1 << 20)))
    with pytest.raises(IntegrityError, match=r"bomb.ckpt: unpacks to 65.0 MiB from 0.1 MiB, more than the 64.0 MiB "
                       "allowed"):
        read_checkpoint(path)


def test_checkpoint_checks_a_resume_against_what_it_was_written_with(tmp_path):
    from pathlib import Path

    import numpy as np

    from synthgen.checkpoint_file import Checkpoint

    body = {"model": "tvae", "hyperparameters": {"compress_dims": [32]}, "seed": 4, "device": "cpu",
            "privacy": None, "data": {"rows": 9, "sha256": "ab"}, "stream": {"sample_rows": 5}}
    saved = Checkpoint(Path("m.ckpt"), body, {})
    saved.check_settings({"hyperparameters": {"compress_dims": (32,)}, "seed": np.int64(4)})  # as JSON stores them
    with pytest.raises(ConfigError, match=r"m.ckpt was written with other settings \(seed, device\)"):
        saved.check_settings({"model": "tvae", "seed": 5, "device": "cuda"})
    saved.check_table("ab")
    with pytest.raises(ConfigError, match=r"another table \(9 rows\)"):
        saved.check_table("cd")
    assert saved.streamed and saved.check_streaming(None) and saved.check_streaming(True)
    with pytest.raises(ConfigError, match=r"written by a streamed fit \(fix: drop --no-stream\)"):
        saved.check_streaming(False)
