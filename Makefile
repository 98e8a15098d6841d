# The README's two commands: `make run` (the whole DAG on the default config, then the report)
# and `make test`. Both bootstrap the project's virtual environment from requirements.lock.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
TEST_WORKERS ?= auto
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-demo venv lint bench clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

# Unit tests, the tiny test-config DAG and the SLURM tests, on one pytest worker per core.
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not demo"

# The user's demo (the default config's whole DAG) run once and its outputs checked: what
# `make run` does, in a scratch folder; and the latent family's DAG on the real BUSI cases of
# tests/data. CI runs it after `make test`.
test-demo: $(STAMP)
	$(BIN)/python -m pytest -m demo

lint: $(STAMP)
	$(BIN)/snakemake --lint

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_diffusion.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_phantom.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_prepare.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_train_sample.py --dataset phantom_camus --synthetic
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_metrics.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_imports.py
	$(BIN)/python benchmarks/bench_demo.py results

clean:
	rm -rf results .snakemake
