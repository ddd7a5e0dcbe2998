"""Crafted model files cannot exhaust memory or time: ``synthgen sample`` refuses each one with one ``error:``
line, at about the cost of opening a valid file; ``synthgen inspect`` refuses the same way each one whose file is
unsound (sizes, list of tensors) and shows, without building a network, those whose manifest the weights do not fit.

For each file, both commands run in one fresh process (the CLI's ``main``, which ``python -m synthgen``
calls), measured on its own (``os.wait4``): its peak resident memory and CPU seconds must stay within
SLACK_MB and SLACK_SECONDS of the same two commands on a valid file (the imports alone take about 400 MB
and 3 s). CPU seconds, not wall time: other processes on a shared machine do not inflate them.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import pytest
import torch

import synthgen
from synthgen import Synthesizer, artifact
from synthgen.artifact import MANIFEST, WEIGHTS, read_model_file, write_model_file
from synthgen.models.pairwise import MAX_ENSEMBLE

pytestmark = pytest.mark.slow  # a fresh process per crafted file

SLACK_MB, SLACK_SECONDS = 300, 2.0
KILL_AFTER = 60  # seconds: a run still going by then has failed anyway
MEMORY_GUARD = 6 << 30  # address-space limit of each run, so that a failing one cannot take the machine down
BOMB_BYTES = 1 << 30  # what the zip bomb's weights unpack to (about 1 MB of deflate)
HUGE = 10**6
#: runs the synthgen CLI once per command line, in one process, printing each one's exit code after its output
DRIVER = """
import json, sys
from synthgen.cli import main
for args in json.loads(sys.argv[1]):
    try:
        main(args, prog_name="synthgen")
    except SystemExit as exit:
        print(f"-- exit {exit.code}", flush=True)
"""


def measured(*commands: list[str]) -> tuple[list[tuple[int, list[str]]], float, float]:
    """Each command's exit code and output lines, then the CPU seconds and peak resident MB of the process."""
    env = {**os.environ, "PYTHONPATH": str(Path(synthgen.__file__).parents[1]), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("SYNTHGEN_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(commands)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, preexec_fn=_guard)
    timer = threading.Timer(KILL_AFTER, proc.kill)
    timer.start()
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    results, lines = [], []
    for line in output.splitlines():
        if line.startswith("-- exit "):
            results.append((int(line.removeprefix("-- exit ")), lines))
            lines = []
        else:
            lines.append(line)
    assert proc.returncode == 0 and len(results) == len(commands), (proc.returncode, output[-2000:])
    return results, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def commands(model_file: Path, out: Path) -> list[list[str]]:
    return [["inspect", str(model_file)], ["sample", str(model_file), "--rows", "10", "--out", str(out), "-q"]]


def _guard() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_GUARD, MEMORY_GUARD))


def reseal(source: Path, dest: Path, change_manifest=None, change_tensors=None) -> Path:
    """A copy of ``source`` with its manifest or tensors changed and its checksums recomputed (they are
    unkeyed: anyone can do this)."""
    manifest, tensors = read_model_file(source)
    if change_manifest is not None:
        change_manifest(manifest)
    if change_tensors is not None:
        change_tensors(tensors)
    return write_model_file(dest, manifest, tensors)


def raw_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of already deflated members ``(name, deflated, declared size, crc)``: what an attacker writes."""
    out, central = bytearray(), bytearray()
    for name, deflated, size, crc in members:
        fields = struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, 0, crc, len(deflated), size, len(name), 0)
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHII", 0, 0, 0, 0, len(out))
        central += name.encode()
        out += b"PK\x03\x04" + fields + name.encode() + deflated
    end = struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + b"PK\x05\x06" + end)


def zeros_deflated(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes (size: a multiple of 1 MiB), built from one compressed MiB."""
    pack = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = pack.compress(bytes(1 << 20)) + pack.flush(zlib.Z_FULL_FLUSH)  # refers to nothing before it
    return block * (size >> 20) + b"\x03\x00"  # an empty final block


def bomb(source: Path, dest: Path) -> Path:
    """The valid manifest beside weights that unpack to BOMB_BYTES of zeros (the CRC does not matter:
    it is only checked once everything is unpacked)."""
    with zipfile.ZipFile(source) as zf:
        manifest = zf.read(MANIFEST)
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    manifest_raw = deflated.compress(manifest) + deflated.flush()
    dest.write_bytes(raw_zip([(MANIFEST, manifest_raw, len(manifest), zlib.crc32(manifest)),
                              (WEIGHTS, zeros_deflated(BOMB_BYTES), BOMB_BYTES, 0)]))
    return dest


def raw_weights(source: Path, dest: Path, header: bytes, data: bytes = b"") -> Path:
    """``source``'s manifest beside weights of a safetensors ``header`` (JSON) and ``data`` as an attacker writes
    them, resealed: ``write_model_file`` takes them as the weights' bytes."""
    manifest, _ = read_model_file(source)
    header += b" " * (-len(header) % 8)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("safetensors.torch.save", lambda tensors: len(header).to_bytes(8, "little") + header + data)
        patch.setattr(artifact, "_check_loadable", lambda *args: None, raising=False)  # write what loading refuses
        return write_model_file(dest, manifest, {})


def many_tensors(source: Path, dest: Path, count: int = 500_000) -> Path:
    """Weights listing ``count`` empty tensors (a 35 MB header that deflates to 3 MB; decoding them takes
    seconds)."""
    entries = ",".join(f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(count))
    return raw_weights(source, dest, ("{" + entries + "}").encode())


def phantom_tensor(source: Path, dest: Path) -> Path:
    """Weights listing a 4 GB tensor of which they hold 64 bytes."""
    size = 4 * HUGE * 1000
    header = json.dumps({"t": {"dtype": "F32", "shape": [HUGE, 1000], "data_offsets": [0, size]}}).encode()
    return raw_weights(source, dest, header, bytes(64))


def hyperparameters(**values):
    """A manifest change: set these hyperparameters (checksums recomputed by ``reseal``)."""
    def change(manifest):
        manifest["model"]["hyperparameters"].update(values)
    return change


def huge_span(manifest) -> None:
    """The layout claims a category span of a billion slots (the weights and transformer say otherwise)."""
    span = next(s for s in manifest["layout"]["spans"] if s["kind"] == "category")
    span["width"] = 10**9


def longer_frequencies(tensors) -> None:
    """A frequency table longer than its column's category span (sampling would write past it)."""
    key = next(k for k in tensors if k.startswith("freq."))
    tensors[key] = torch.cat([tensors[key], torch.ones(50, dtype=tensors[key].dtype)])


@pytest.fixture(scope="module")
def files(_ctgan_file, _adult, tiny, tmp_path_factory) -> dict[str, Path]:
    """The valid ctgan file and crafted ones made from valid ctgan, pairwise and marginals files."""
    root = tmp_path_factory.mktemp("crafted")
    pairwise = Synthesizer(model="pairwise", seed=0, **tiny("pairwise", epochs=1)).fit(_adult).save(root / "p.sgm")
    marginals = Synthesizer(model="marginals", seed=0).fit(_adult).save(root / "m.sgm")
    return {
        "valid": _ctgan_file,
        "zip bomb": bomb(_ctgan_file, root / "bomb.sgm"),
        "10^6-wide layer": reseal(_ctgan_file, root / "wide.sgm", hyperparameters(generator_dim=[HUGE])),
        "ensemble of 10^6": reseal(pairwise, root / "ensemble.sgm", hyperparameters(ensemble=HUGE)),
        # within the bounds on hyperparameters, but over 1 GB of weights each if built: the shapes refuse them
        # (larger ones would fail at once against MEMORY_GUARD, even unchecked)
        "two 16,384-wide layers": reseal(_ctgan_file, root / "deep.sgm",
                                         hyperparameters(generator_dim=[16384, 16384])),
        "ensemble of 64 wide ones": reseal(pairwise, root / "wide-ensemble.sgm",
                                           hyperparameters(ensemble=MAX_ENSEMBLE, hidden=[2048, 2048])),
        "half a million tensors": many_tensors(_ctgan_file, root / "tensors.sgm"),
        "a 4 GB tensor of 64 bytes": phantom_tensor(_ctgan_file, root / "phantom.sgm"),
        "layout lies about a width": reseal(_ctgan_file, root / "span.sgm", huge_span),
        "tensors unlike the layout": reseal(marginals, root / "freq.sgm", change_tensors=longer_frequencies),
    }


@pytest.fixture(scope="module")
def baseline(files, tmp_path_factory) -> tuple[float, float]:
    """CPU seconds and peak MB of both commands on the valid file."""
    results, seconds, peak = measured(*commands(files["valid"], tmp_path_factory.mktemp("out") / "rows.csv"))
    assert [code for code, _ in results] == [0, 0], results
    return seconds, peak


#: sound files whose manifest the weights do not fit: only building the networks (sample) finds it
UNFIT = ["10^6-wide layer", "ensemble of 10^6", "two 16,384-wide layers", "ensemble of 64 wide ones",
         "layout lies about a width", "tensors unlike the layout"]
CRAFTED = ["zip bomb", "half a million tensors", "a 4 GB tensor of 64 bytes", *UNFIT]


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_file_is_refused_cheaply(files, baseline, tmp_path, kind):
    results, seconds, peak = measured(*commands(files[kind], tmp_path / "rows.csv"))
    (inspected, shown), (code, lines) = results
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith(f"error: {files[kind]}: "), lines
    if kind in UNFIT:  # inspect builds no network: it shows the manifest
        assert inspected == 0 and shown[0].startswith("model "), shown
    else:
        assert (inspected, shown) == (code, lines)  # the same refusal
    assert seconds < baseline[0] + SLACK_SECONDS, (results, seconds, baseline)
    assert peak < baseline[1] + SLACK_MB, (results, peak, baseline)
    assert not (tmp_path / "rows.csv").exists()
