# fatlib — two commands on a fresh machine:
#   make book   set up .venv, unpack the data, execute every notebook (papermill), render the book
#   make test   set up .venv, lint, run every test (unit tier + smoke runs of every notebook and the book)
# for developers:
#   make test-fast   the unit tier without the slow exactness checks (about a minute)
#   make lint        ruff's linter and formatter check;  make format  applies both
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
# torch/torchvision pair that installs from this machine's local wheel cache (see README);
# elsewhere pip resolves the ranges of pyproject.toml.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
SHARED_DATA ?= ../shared/data
DATA_CACHE ?= $(HOME)/.cache/fatlib/data
# use the offline data when it is beside the checkout and FATLIB_DATA is not set
ifeq ($(FATLIB_DATA),)
ifneq ($(wildcard $(SHARED_DATA)/build.py),)
export FATLIB_DATA := $(DATA_CACHE)
NEED_DATA := data
endif
endif

.PHONY: book test test-fast lint format setup data clean help device-check
help:
	@echo "make book   # set up, run every notebook at PROFILE=$(PROFILE), render _build/html"
	@echo "make test   # set up, lint, run the whole test suite (as CI does)"
	@echo "make test-fast  # the unit tier without notebooks, the book and slow exactness checks"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN) || $(PY) -m pip install -q "torch>=2.6" "torchvision>=0.21"
	$(PY) -m pip install -q -e ".[book,test,export,dask]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

data: setup
	@if [ -f "$(SHARED_DATA)/build.py" ]; then $(PY) $(SHARED_DATA)/build.py "$(FATLIB_DATA)"; \
	else echo "no $(SHARED_DATA): data comes from FATLIB_DATA or is downloaded by torchvision"; fi

# make book EDITION=cpu renders the committed editions/cpu (nothing executed, no data needed)
# make book WORKERS=2 runs trainings, campaigns and pages on a local Dask cluster of 2 workers
ifeq ($(EDITION),)
book: setup $(NEED_DATA)
	$(PY) -m fatlib.book --profile $(PROFILE) $(if $(WORKERS),--workers $(WORKERS))
else
book: setup
	$(PY) -m fatlib.book --edition $(EDITION)
endif

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint $(NEED_DATA)
	$(PY) -m pytest -q -ra

# on a GPU: CUDA tests, engine vs naive_campaign bit for bit, training and campaign throughput in
# one table (benchmarks/device_check.py); without CUDA its CPU part, saying what it skipped
device-check: setup
	$(PY) benchmarks/device_check.py

test-fast: setup $(NEED_DATA)
	$(PY) -m pytest -q -ra -m "not slow and not exhaustive"

clean:
	rm -rf _build book/generated results
