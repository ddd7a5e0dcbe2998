# Two entry points (see README): `make demo` runs the main job, `make test` runs the tests.
# `make test-fast` is the inner loop: every test not marked slow (no model fits beyond a moment, no
# torchrun or training subprocesses), under a minute on two cores; `make test` and CI still run everything.
PYTHON ?= python3

.PHONY: install demo test test-fast lint bench-quick bench-smoke

# torch first, as the CPU build: a bare `torch` requirement would pull the multi-GB CUDA build.
install:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "torch==2.13.0"
	$(PYTHON) -m pip install -q -e ".[dev]"

demo: install
	$(PYTHON) -m synthgen demo --out demo_out --force

# `make test` runs the files on one worker per core (pytest-xdist; a file's tests stay on one worker, so
# module fixtures are built once); each worker, and each synthgen it starts, uses one thread (tests/conftest.py).
test: install
	$(PYTHON) -m pytest tests -n auto --dist loadfile

test-fast:
	$(PYTHON) -m pytest tests -m "not slow"

# ruff, the import contract and the type check (mypy on synthgen/, configured in pyproject.toml); CI runs it
lint:
	$(PYTHON) -m ruff check synthgen tests benchmarks
	lint-imports --no-cache
	$(PYTHON) -m mypy

# CI's benchmark smoke run (76 s here; the full test suite, in parallel, takes about 6 minutes): the three-table suite on
# Adult and the start-up / crafted-file checks; bench-quick runs every benchmark's quick mode (about 7 minutes)
bench-smoke:
	$(PYTHON) benchmarks/suite.py --quick --tables adult --only synthgen:tvae-target,sdv:gaussiancopula --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/startup.py --repeats 1 --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/relational.py --quick --libraries synthgen --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/sequences.py --quick --out $${BENCH_OUT:-benchmarks/results}

bench-quick:
	$(PYTHON) benchmarks/adult.py --quick --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/privacy_utility.py --quick --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/crypto_throughput.py --quick --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/sampling_scale.py --quick --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/speed.py --quick --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/large_table.py --quick --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/suite.py --quick --only synthgen:tvae-target,sdv:gaussiancopula --out $${BENCH_OUT:-benchmarks/results}
	$(PYTHON) benchmarks/startup.py --repeats 1 --out $${BENCH_OUT:-benchmarks/results}
