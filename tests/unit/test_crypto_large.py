"""Encryption at rest streams: a 200 MiB file is encrypted and decrypted in under 200 MB of memory.

The work runs in a fresh process (``python -c``), whose whole peak resident size, imports included,
is its ``VmHWM`` in ``/proc/self/status`` (a new program starts a new count). ``ru_maxrss`` would
not do: on Linux a child's starts at its parent's size at spawn (pytest with torch: hundreds of MB).
The crypto path must not import torch (``synthgen/__init__`` loads its exports lazily).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.crypto import streams

pytestmark = pytest.mark.slow  # 200 MiB through a fresh process

ROOT = Path(__file__).resolve().parents[2]
MB = 1 << 20
SIZE = 200 * MB + 12_345  # 200 MiB and a partial last chunk: a whole-file buffer alone exceeds the limit
LIMIT_KIB = 200 * 1024  # 200 MiB

CHILD = r"""
import json, re, sys, time

start = time.perf_counter()
from synthgen.crypto.streams import decrypt_file, encrypt_file
from synthgen.crypto.keys import generate_key
import_s = time.perf_counter() - start


def status(field):
    with open("/proc/self/status") as fh:
        return int(re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M).group(1))


src, enc, out = sys.argv[1:4]
key = generate_key()
start = time.perf_counter()
encrypt_file(src, enc, key=key)
middle = time.perf_counter()
decrypt_file(enc, out, key=key)
end = time.perf_counter()
print(json.dumps({"rss_kib": status("VmRSS"), "peak_kib": status("VmHWM"), "torch": "torch" in sys.modules,
                  "import_s": import_s, "encrypt_s": middle - start, "decrypt_s": end - middle}))
"""


def write_plain(path: Path, size: int) -> str:
    """Write ``size`` random-looking bytes (one random MiB, each copy stamped with its index); their SHA-256."""
    block, digest = os.urandom(MB), hashlib.sha256()
    with open(path, "wb") as fh:
        for index in range(math.ceil(size / MB)):
            part = (struct.pack(">Q", index) + block[8:])[:size - index * MB]
            fh.write(part)
            digest.update(part)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def test_200_mib_file_round_trips_in_under_200_mb(tmp_path):
    plain, enc, back = tmp_path / "plain.bin", tmp_path / "plain.bin.enc", tmp_path / "back.bin"
    try:
        expected = write_plain(plain, SIZE)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([sys.executable, "-c", CHILD, str(plain), str(enc), str(back)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        figures = (f"encrypt_file + decrypt_file of a {SIZE / MB:.0f} MiB file in a fresh process: peak resident "
                   f"size {got['peak_kib'] / 1024:.0f} MiB, imports included (torch loaded: {got['torch']}); "
                   f"encrypt {got['encrypt_s']:.2f} s, decrypt {got['decrypt_s']:.2f} s, "
                   f"imports {got['import_s']:.2f} s")
        print(figures)
        assert not got["torch"], figures
        assert got["peak_kib"] < LIMIT_KIB, f"over the {LIMIT_KIB // 1024} MiB limit: {figures}"

        with open(enc, "rb") as fh:
            head = fh.read(len(streams.MAGIC) + 5)
        (header_len,) = struct.unpack(">I", head[len(streams.MAGIC) + 1:])
        chunks = math.ceil(SIZE / streams.CHUNK)
        assert enc.stat().st_size == len(head) + header_len + SIZE + streams.TAG_BYTES * chunks
        assert back.stat().st_size == SIZE
        assert sha256(back) == expected
        assert sorted(p.name for p in tmp_path.iterdir()) == ["back.bin", "plain.bin", "plain.bin.enc"]  # no .part
    finally:
        for path in (plain, enc, back):
            path.unlink(missing_ok=True)
