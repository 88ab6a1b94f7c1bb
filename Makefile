# mnistx: `make train` and `make test` do all the set-up (a venv in .venv, pip installs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: help install dev train serve test test-fast lint bench gpu-check schema tensorboard screenshot clean

help:
	@echo "make train [ARGS='model=cnn optimizer=adam']  train (default: MLP on MNIST)"
	@echo "make test                                     ruff check, ruff format --check, then the whole test suite with coverage, mypy beside it"
	@echo "make test-fast                                tests without the real-data ones"
	@echo "make bench                                    epoch-time, time-to-99%, pool-order, sweep-overhead, Optuna-pruning, tracker-cost, stacked-sweep benchmarks"
	@echo "make gpu-check                                GPU tests and timings (needs a CUDA GPU)"
	@echo "make schema                                   docs/config.schema.json from conf/ (editors check conf/ files with it)"
	@echo "make tensorboard                              serve outputs/ in TensorBoard"
	@echo "make serve ARGS='run=outputs/...'             the drawing app for a run or a sweep (http://127.0.0.1:7860)"
	@echo "make screenshot                               docs/app.png, the README's picture of the app (real runs, real Chromium)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools notes every editable install whose packages map to several folders (src/ and
# conf/): "Editable installation. Please be careful with folders ...". Information only, so it
# is not printed; every other warning is.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e ".[dev]"
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

train: $(VENV)/.installed
	$(BIN)/python -m mnistx.train $(ARGS)

serve: $(VENV)/.installed-dev
	$(BIN)/python -m mnistx.serve $(ARGS)

# The browser test trains two MLPs on the real MNIST, draws a zero in Chromium and saves the page.
screenshot: $(VENV)/.installed-dev
	MNISTX_SCREENSHOT=docs/app.png $(BIN)/python -m pytest tests/test_app.py -k chromium -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The coverage of src/ is printed at the end. WORKERS pytest-xdist workers (default 2, one per
# core here); the tests of one shared service (SLURM, PostgreSQL) run on one worker, in turn.
# ruff first (a second); mypy (~50 s on a fresh clone, which has no mypy cache) runs beside
# the tests, which leave part of a core idle while they wait on SLURM and on the commands
# they start. Its report is printed after theirs; either failing fails `make test`.
WORKERS ?= 2
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(BIN)/mypy > $(VENV)/mypy.out 2>&1 & typing=$$!; \
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup --cov --cov-report=term:skip-covered $(ARGS); \
	tests=$$?; wait $$typing; typed=$$?; \
	echo "$(BIN)/mypy (run beside the tests)"; cat $(VENV)/mypy.out; \
	exit $$(( tests || typed ))

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

bench: $(VENV)/.installed
	$(BIN)/python bench/epoch_time.py $(ARGS)
	$(BIN)/python bench/time_to_accuracy.py
	$(BIN)/python bench/pool_order.py
	$(BIN)/python bench/sweep_overhead.py
	$(BIN)/python bench/optuna_pruning.py
	$(BIN)/python bench/tracker_cost.py
	$(BIN)/python bench/stacked_sweep.py

gpu-check: $(VENV)/.installed-dev
	$(BIN)/python bench/gpu_check.py $(ARGS)

# docs/config.schema.json (and docs/schema/<group>.schema.json), the JSON schema editors check
# conf/ and experiment files with.
schema: $(VENV)/.installed
	$(BIN)/python -m mnistx.config.schema docs

tensorboard: $(VENV)/.installed
	$(BIN)/tensorboard --logdir outputs $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .coverage* src/*.egg-info
