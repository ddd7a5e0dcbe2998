"""Encryption throughput: synthgen's chunked AES-256-GCM against cryptography's raw AES-GCM, one run.

On one file of ``--size-mb`` MB (default 200; random bytes), side by side and interleaved (each
repeat runs every variant once, so a load spike hits all of them; every other repeat in reverse
order; the in-memory variants' repeats first, then the file variants'), median over ``--repeats``:

* raw, in memory: cryptography's ``AESGCM.encrypt`` / ``decrypt`` over the same data in the same
  chunk size (1 MiB, synthgen's nonces and associated data), on zero-copy slices: the ceiling;
* raw, stream: a plain loop (read a chunk from an in-memory stream, ``AESGCM``, write it to
  ``/dev/null``): the least that taking each chunk out of a stream costs;
* synthgen ``encrypt_stream`` / ``decrypt_chunks`` between the same streams: the format's own cost
  (nonces, header, look-ahead) over that, no disk;
* raw, file to file: the same plain loop on files, fsync at the end: the least that the same disk
  work costs;
* synthgen ``encrypt_file`` / ``decrypt_file``: file to file with the atomic temporary file,
  fsync and rename.

Each file variant writes a new file: its previous output is deleted and ``os.sync()`` called
before the clock starts (on a file system mounted with ``discard``, freeing the previous 200 MB
otherwise lands, at random, in a later fsync). The source file is read from the page cache.
Reported in MB/s (1 MB = 10^6 bytes of plaintext), with each variant's ratio to the raw in-memory
figure (the issue's target: synthgen >= 0.80) and each synthgen variant's ratio to the raw loop
with the same I/O (synthgen's own overhead). A benchmark: a MISS does not fail.

Run (from the repository root)::

    PYTHONPATH=. python benchmarks/crypto_throughput.py              # 200 MB, 5 repeats: ~15 s
    PYTHONPATH=. python benchmarks/crypto_throughput.py --size-mb 1000 --repeats 9
    PYTHONPATH=. python benchmarks/crypto_throughput.py --quick --out /tmp/ct   # smoke run: 20 MB, 1 repeat
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from adult import cpu_name, version, write  # noqa: E402

MB = 1_000_000
TARGET = 0.80
QUICK_MB = 20


def make_data(size: int) -> bytes:
    """``size`` random-looking bytes: one random MiB, each copy stamped with its index."""
    block, out = os.urandom(1 << 20), bytearray()
    for index in range(-(-size // len(block))):
        out += struct.pack(">Q", index) + block[8:]
    return bytes(out[:size])


def fs_type(path: Path) -> str:
    """The file system that holds ``path`` (from /proc/mounts), e.g. ext4 or tmpfs."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                best, kind = mount, fstype
    except (OSError, ValueError):
        pass
    return kind


def cpu_flags() -> str:
    """The AES-related CPU flags (AES-GCM speed depends on them)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return " ".join(f for f in ("aes", "pclmulqdq", "vaes", "vpclmulqdq", "avx2", "avx512f") if f in have)
    except OSError:
        pass
    return "unknown"


class Bench:
    """The data, the key and every variant; each variant returns nothing and is timed from outside."""

    def __init__(self, size: int, folder: Path):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        from synthgen.crypto import keys, streams

        self.streams, self.size, self.folder = streams, size, folder
        self.data = make_data(size)
        self.digest = hashlib.sha256(self.data).hexdigest()
        self.key = keys.generate_key()
        self.aead = AESGCM(self.key)
        self.chunk = streams.CHUNK
        self.plain, self.enc, self.back = folder / "plain.bin", folder / "plain.bin.enc", folder / "back.bin"
        self.raw_enc, self.raw_back = folder / "raw.enc", folder / "raw.back"
        self.plain.write_bytes(self.data)
        out = io.BytesIO()
        streams.encrypt_stream(io.BytesIO(self.data), out, key=self.key)
        self.ciphertext = out.getvalue()
        (length,) = struct.unpack(">I", self.ciphertext[len(streams.MAGIC) + 1:len(streams.MAGIC) + 5])
        self.preamble = self.ciphertext[:len(streams.MAGIC) + 5 + length]  # synthgen's associated data
        self.prefix = os.urandom(streams.PREFIX_BYTES)
        self.chunks = -(-size // self.chunk) or 1
        self.raw_ciphertext = b"".join(self.aead.encrypt(self.nonce(i), self.data[i * self.chunk:(i + 1) * self.chunk],
                                                         self.preamble) for i in range(self.chunks))
        self.raw_enc.write_bytes(self.raw_ciphertext)
        self.devnull = open(os.devnull, "wb")  # closed in close()

    def settle(self, method: str) -> None:
        """Before timing ``method``: delete the file it writes, and flush every file system's pending work."""
        output = {"raw_file_encrypt": self.raw_enc, "raw_file_decrypt": self.raw_back,
                  "file_encrypt": self.enc, "file_decrypt": self.back}.get(method)
        if output is not None:
            output.unlink(missing_ok=True)
        os.sync()

    def nonce(self, index: int) -> bytes:
        return self.prefix + struct.pack(">I", index) + (b"\x01" if index == self.chunks - 1 else b"\x00")

    def close(self) -> None:
        self.devnull.close()
        for path in (self.plain, self.enc, self.back, self.raw_enc, self.raw_back):
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ raw, in memory (the ceiling)
    def raw_memory_encrypt(self) -> None:
        view, step = memoryview(self.data), self.chunk
        for i in range(self.chunks):
            self.aead.encrypt(self.nonce(i), view[i * step:(i + 1) * step], self.preamble)

    def raw_memory_decrypt(self) -> None:
        view, step = memoryview(self.raw_ciphertext), self.chunk + self.streams.TAG_BYTES
        for i in range(self.chunks):
            self.aead.decrypt(self.nonce(i), view[i * step:(i + 1) * step], self.preamble)

    # ------------------------------------------------------------------ raw, stream to /dev/null
    def raw_stream_encrypt(self) -> None:
        src = io.BytesIO(self.data)
        for i in range(self.chunks):
            self.devnull.write(self.aead.encrypt(self.nonce(i), src.read(self.chunk), self.preamble))

    def raw_stream_decrypt(self) -> None:
        src = io.BytesIO(self.raw_ciphertext)
        for i in range(self.chunks):
            self.devnull.write(self.aead.decrypt(self.nonce(i), src.read(self.chunk + self.streams.TAG_BYTES),
                                                 self.preamble))

    # ------------------------------------------------------------------ synthgen, stream to /dev/null
    def stream_encrypt(self) -> None:
        self.streams.encrypt_stream(io.BytesIO(self.data), self.devnull, key=self.key)

    def stream_decrypt(self) -> None:
        for block in self.streams.decrypt_chunks(io.BytesIO(self.ciphertext), key=self.key):
            self.devnull.write(block)

    # ------------------------------------------------------------------ raw, file to file
    def raw_file_encrypt(self) -> None:
        with open(self.plain, "rb") as fin, open(self.raw_enc, "wb") as fout:
            for i in range(self.chunks):
                fout.write(self.aead.encrypt(self.nonce(i), fin.read(self.chunk), self.preamble))
            fout.flush()
            os.fsync(fout.fileno())

    def raw_file_decrypt(self) -> None:
        with open(self.raw_enc, "rb") as fin, open(self.raw_back, "wb") as fout:
            for i in range(self.chunks):
                fout.write(self.aead.decrypt(self.nonce(i), fin.read(self.chunk + self.streams.TAG_BYTES),
                                             self.preamble))
            fout.flush()
            os.fsync(fout.fileno())

    # ------------------------------------------------------------------ synthgen, file to file
    def file_encrypt(self) -> None:
        self.streams.encrypt_file(self.plain, self.enc, key=self.key)

    def file_decrypt(self) -> None:
        self.streams.decrypt_file(self.enc, self.back, key=self.key)

    def verify(self) -> None:
        """Every variant did the real work: the decrypted files are the original."""
        for path in (self.back, self.raw_back):
            with open(path, "rb") as fh:
                if hashlib.file_digest(fh, "sha256").hexdigest() != self.digest:
                    raise RuntimeError(f"{path.name} does not match the plaintext")


#: (row key, label, (encrypt, decrypt) methods of Bench, the raw row with the same I/O or None)
ROWS = [
    ("raw_memory", "cryptography AESGCM, in memory, zero-copy slices (ceiling)",
     ("raw_memory_encrypt", "raw_memory_decrypt"), None),
    ("raw_stream", "cryptography AESGCM, memory stream to /dev/null", ("raw_stream_encrypt", "raw_stream_decrypt"),
     None),
    ("stream", "synthgen encrypt_stream / decrypt_chunks, memory stream to /dev/null",
     ("stream_encrypt", "stream_decrypt"), "raw_stream"),
    ("raw_file", "cryptography AESGCM, file to file + fsync", ("raw_file_encrypt", "raw_file_decrypt"), None),
    ("file", "synthgen encrypt_file / decrypt_file (atomic: temp file, fsync, rename)",
     ("file_encrypt", "file_decrypt"), "raw_file"),
]
#: the synthgen functions each synthgen row times, for the target lines
NAMES = {"stream": ("encrypt_stream", "decrypt_chunks"), "file": ("encrypt_file", "decrypt_file")}
OPS = ("encrypt", "decrypt")


def measure(bench: Bench, repeats: int) -> dict[str, dict[str, Any]]:
    times: dict[str, list[float]] = {f"{key}.{op}": [] for key, *_ in ROWS for op in OPS}
    # the in-memory rows first, then the file rows: the kernel's work after a file variant (freeing the
    # deleted file's pages and blocks) would slow whichever in-memory variant came next
    for phase in ([row for row in ROWS if "file" not in row[0]], [row for row in ROWS if "file" in row[0]]):
        for repeat in range(repeats):
            # every other repeat in reverse order: no row always runs right after the same one
            for key, _, methods, _ in phase if repeat % 2 == 0 else phase[::-1]:
                for op, method in zip(OPS, methods, strict=True):
                    fn: Callable[[], None] = getattr(bench, method)
                    bench.settle(method)
                    start = time.perf_counter()
                    fn()
                    times[f"{key}.{op}"].append(time.perf_counter() - start)
    bench.verify()
    rows: dict[str, dict[str, Any]] = {}
    for key, label, _, _ in ROWS:
        row: dict[str, Any] = {"label": label}
        for op in OPS:
            seconds = times[f"{key}.{op}"]
            row[op] = {"seconds": [round(s, 5) for s in seconds], "median_s": round(statistics.median(seconds), 5),
                       "best_s": round(min(seconds), 5), "mb_s": round(bench.size / MB / statistics.median(seconds), 1)}
        rows[key] = row
    for key, _, _, base in ROWS:
        for op in OPS:
            cell = rows[key][op]
            cell["vs_raw_memory"] = round(cell["mb_s"] / rows["raw_memory"][op]["mb_s"], 3)
            if base:
                cell["vs_raw_same_io"] = round(cell["mb_s"] / rows[base][op]["mb_s"], 3)
    return rows


def machine() -> dict[str, Any]:
    from cryptography.hazmat.backends.openssl import backend

    return {"platform": platform.platform(), "cpu": cpu_name(), "cores": os.cpu_count(), "cpu_flags": cpu_flags(),
            "python": platform.python_version(), "cryptography": version("cryptography"),
            "openssl": backend.openssl_version_text(), "synthgen": version("synthgen"),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def checks(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for key, names in NAMES.items():
        for op, name in zip(OPS, names, strict=True):
            ratio = rows[key][op]["vs_raw_memory"]
            lines.append(f"- {'MET' if ratio >= TARGET else 'MISS'}: {name}: {ratio:.2f} of raw in-memory AES-GCM, "
                         f"target >= {TARGET:.2f}")
    for key, names in NAMES.items():
        for op, name in zip(OPS, names, strict=True):
            ratio = rows[key][op]["vs_raw_same_io"]
            lines.append(f"- {'MET' if ratio >= TARGET else 'MISS'}: {name}: {ratio:.2f} of the raw loop with the same "
                         f"I/O (synthgen's own overhead), target >= {TARGET:.2f}")
    return lines


def report(rows: dict[str, dict[str, Any]], info: dict[str, Any], args: argparse.Namespace, size: int,
           folder: Path, seconds: float, date: str) -> str:
    def ratio(cell: dict[str, Any], key: str) -> str:
        return f"{cell[key]:.2f}" if key in cell else ""

    lines = [
        "# synthgen encryption throughput (AES-256-GCM, 1 MiB chunks)" + (" (quick smoke run: figures not meaningful)"
                                                                          if args.quick else ""), "",
        f"- date: {date} (run took {seconds:.0f} s)",
        f"- machine: {info['cpu']}, {info['cores']} cores ({info['cpu_flags']}), {info['platform']}, load average "
        f"{' '.join(str(x) for x in info['load_average'])} at the start",
        f"- python {info['python']}, cryptography {info['cryptography']} ({info['openssl']}), synthgen "
        f"{info['synthgen']}",
        f"- data: {size / MB:,.0f} MB of random bytes ({size:,} bytes); files on {fs_type(folder)}, the "
        "source read from the page cache; MB/s = plaintext MB per second, median of "
        f"{args.repeats} interleaved repeat{'s' if args.repeats != 1 else ''}",
        "",
        "| variant | encrypt MB/s | decrypt MB/s | encrypt / raw memory | decrypt / raw memory | "
        "encrypt / raw same I/O | decrypt / raw same I/O |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        enc, dec = row["encrypt"], row["decrypt"]
        lines.append(f"| {row['label']} | {enc['mb_s']:,.0f} | {dec['mb_s']:,.0f} | {enc['vs_raw_memory']:.2f} | "
                     f"{dec['vs_raw_memory']:.2f} | {ratio(enc, 'vs_raw_same_io')} | {ratio(dec, 'vs_raw_same_io')} |")
    lines += ["", "Targets:", "", *checks(rows)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=float, default=200, help="file size in MB (10^6 bytes; default 200)")
    p.add_argument("--repeats", type=int, default=5, help="repeats of every variant (default 5)")
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_MB} MB, 1 repeat")
    p.add_argument("--dir", default=None, help="folder for the test files (default: a temporary folder)")
    p.add_argument("--name", default="crypto_throughput", help="output file name (without suffix)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    if args.quick:
        args.size_mb, args.repeats = QUICK_MB, 1
    size = int(args.size_mb * MB)
    started, date, info = time.time(), datetime.now(UTC).isoformat(timespec="seconds"), machine()
    with tempfile.TemporaryDirectory(prefix="synthgen-crypto-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        bench = Bench(size, folder)
        try:
            rows = measure(bench, args.repeats)
        finally:
            bench.close()
        seconds = time.time() - started
        text = report(rows, info, args, size, folder, seconds, date)
        fs = fs_type(folder)
    out, name = Path(args.out), f"{args.name}-quick" if args.quick else args.name
    data = {"args": vars(args), "date": date, "seconds": round(seconds, 1), "size_bytes": size, "file_system": fs,
            "machine": info, "target": TARGET, "rows": rows, "checks": checks(rows)}
    write(out / f"{name}.md", text)
    write(out / f"{name}.json", json.dumps(data, indent=1) + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
