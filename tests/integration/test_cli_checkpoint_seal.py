"""Checkpoints of protected runs: sealed to what protects the run, or not written at all (issue 15.1).

A checkpoint holds the schema, the transformer (exact category values, bounds), the table's
SHA-256 and the networks, and under DP the noise generators' state. When the data or the model
is encrypted, or training is differentially private, it is never written in plain text.
"""

from __future__ import annotations

import io
import signal
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.crypto.keypairs import read_public_key, write_keypair
from synthgen.crypto.keys import generate_key, read_key, write_key_file
from synthgen.crypto.streams import MAGIC, encrypt_file
from synthgen.datasets import adult_metadata_path, load_adult

#: a category of the training table that a plain checkpoint holds (in its transformer)
CATEGORY = b"Married-civ-spouse"
TRAIN = ("--model", "tvae", "--epochs", "2", "--batch-size", "100", "--seed", "1", "-q")
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seal") / "adult.csv"
    load_adult().sample(400, random_state=0).to_csv(path, index=False)
    return path


def _setup(way: str, plain: Path, folder: Path) -> tuple[Path, list[str], dict[str, str]]:
    """The data file, options and environment of one way of protecting a run."""
    key_path = write_key_file(folder / "owner.key", generate_key())
    env = {"SYNTHGEN_KEY": "", "SYNTHGEN_PASSPHRASE": ""}
    if way in ("key-file", "env-key"):
        data = encrypt_file(plain, folder / "adult.csv.enc", key=read_key(key_path))
        if way == "key-file":
            return data, ["--key-file", str(key_path)], env
        return data, [], {**env, "SYNTHGEN_KEY": key_path.read_text().strip()}
    if way == "identity":
        me = folder / "me"
        write_keypair(me)
        data = encrypt_file(plain, folder / "adult.csv.enc", recipient=read_public_key(f"{me}.pub"))
        return data, ["--identity", str(me)], env
    if way == "passphrase":
        data = encrypt_file(plain, folder / "adult.csv.enc", passphrase=PASSPHRASE)
        return data, [], {**env, "SYNTHGEN_PASSPHRASE": PASSPHRASE}
    if way == "recipient":  # plain data, model encrypted to someone else: nothing the owner can reopen
        partner = folder / "partner"
        write_keypair(partner)
        return plain, ["--recipient", f"{partner}.pub"], env
    if way == "recipient+key":  # ... unless the owner's key is at hand
        partner = folder / "partner"
        write_keypair(partner)
        return plain, ["--recipient", f"{partner}.pub"], {**env, "SYNTHGEN_KEY": key_path.read_text().strip()}
    if way == "dp":  # plain data, DP training, no secret at hand
        return plain, ["--epsilon", "8", "--metadata", str(adult_metadata_path())], env
    if way == "dp+passphrase":
        return plain, ["--epsilon", "8", "--metadata", str(adult_metadata_path())], \
            {**env, "SYNTHGEN_PASSPHRASE": PASSPHRASE}
    assert way == "none"
    return plain, [], env


def _readable(data: bytes) -> bytes:
    """A checkpoint's bytes as a reader without any key sees them: raw, plus every zip member inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return data + b"".join(zf.read(name) for name in zf.namelist())
    except zipfile.BadZipFile:
        return data


@pytest.fixture(autouse=True)
def terminal_sigint():
    """Python's own SIGINT handler, as in a terminal: a background job (``nohup ... &``) starts with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Ctrl-C during training step ``call`` (tvae, 4 steps per epoch here)."""
    from synthgen.models.vae import TVAEModel

    step, calls = TVAEModel._train_step, {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == call:
            signal.raise_signal(signal.SIGINT)
        return step(self)

    monkeypatch.setattr(TVAEModel, "_train_step", interrupted)


def _train(data: Path, out: Path, options: list[str], env: dict[str, str], *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["train", str(data), "--out", str(out), *TRAIN, *options, *extra], env=env)
    return result.exit_code, result.output


SEALED = ["key-file", "env-key", "identity", "passphrase", "recipient+key", "dp+passphrase"]
REFUSED = ["recipient", "dp"]


@pytest.mark.slow
@pytest.mark.parametrize("way", SEALED + REFUSED)
def test_ctrl_c_checkpoint_is_sealed_or_absent_and_resumes(tmp_path, plain, monkeypatch, way):
    data, options, env = _setup(way, plain, tmp_path)
    out = tmp_path / "m.sgm"
    ckpt = Path(f"{out}.ckpt")
    _interrupt_at(monkeypatch, 3)
    code, output = _train(data, out, options, env)
    assert code == 130, output
    if way in REFUSED:
        assert not ckpt.exists() and "no checkpoint was written" in output and "SYNTHGEN_PASSPHRASE" in output
        return
    assert "checkpoint written to" in output
    sealed = ckpt.read_bytes()
    assert sealed.startswith(MAGIC) and CATEGORY not in _readable(sealed)
    monkeypatch.undo()
    resume_options = [o for o in options if o not in ("--epsilon", "8", "--metadata", str(adult_metadata_path()))]
    result = CliRunner().invoke(main, ["train", str(data), "--out", str(out), "--resume", str(ckpt), "-q",
                                       *resume_options], env=env)
    assert result.exit_code == 0, result.output
    assert out.exists() and not ckpt.exists()


@pytest.mark.parametrize("way", [pytest.param(w, marks=pytest.mark.slow) for w in SEALED] + REFUSED)  # SEALED train
def test_checkpoint_every_is_sealed_or_refused_before_training(tmp_path, plain, monkeypatch, way):
    from synthgen import pipeline

    data, options, env = _setup(way, plain, tmp_path)
    out, written = tmp_path / "m.sgm", []
    original = pipeline.write_checkpoint

    def keep(path, *args, **kwargs):  # the checkpoint of every epoch, before the saved model removes it
        written.append(original(path, *args, **kwargs).read_bytes())
        return Path(path)

    monkeypatch.setattr(pipeline, "write_checkpoint", keep)
    code, output = _train(data, out, options, env, "--checkpoint-every", "1")
    if way in REFUSED:
        assert code == 2 and "--checkpoint-every" in output and "nothing can encrypt" in output
        assert not written and not out.exists()  # refused before training
        return
    assert code == 0, output
    assert written and all(w.startswith(MAGIC) and CATEGORY not in _readable(w) for w in written)


@pytest.mark.slow
def test_unprotected_run_keeps_a_plain_checkpoint_the_search_can_read(tmp_path, plain, monkeypatch):
    """The control for the searches above: a plain checkpoint does hold the training table's categories."""
    out = tmp_path / "m.sgm"
    _interrupt_at(monkeypatch, 3)
    code, output = _train(plain, out, [], {"SYNTHGEN_KEY": "", "SYNTHGEN_PASSPHRASE": ""})
    assert code == 130, output
    data = Path(f"{out}.ckpt").read_bytes()
    assert not data.startswith(MAGIC) and CATEGORY in _readable(data)


def test_api_refuses_a_plain_dp_checkpoint(tmp_path, plain):
    from synthgen import Synthesizer
    from synthgen.errors import ConfigError

    synth = Synthesizer(model="tvae", epochs=1, batch_size=100, epsilon=8, metadata=adult_metadata_path())
    with pytest.raises(ConfigError, match="never writes its checkpoint in plain text"):
        synth.fit(plain, checkpoint=tmp_path / "c.ckpt")
    assert not (tmp_path / "c.ckpt").exists()
