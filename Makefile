# Set-up and the two entry points: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
KB_HOST ?= 127.0.0.1
KB_PORT ?= 8000

export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install run test lint format browser

install: $(VENV)/.installed

# torch is installed first and pinned: the CPU wheel of 2.13.0 is what this
# project is tested with, and an unpinned install would pull a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/kb ingest --if-empty corpus/cases
	$(BIN)/kb serve --host $(KB_HOST) --port $(KB_PORT)

# Headless Chromium for the browser test, from Debian's packages when we are root.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) ; } || \
		echo "chromium is not installed; the browser test will be skipped"

lint: install
	$(BIN)/ruff format --check kb ingest api ui evals tests
	$(BIN)/ruff check kb ingest api ui evals tests

format: install
	$(BIN)/ruff format kb ingest api ui evals tests
	$(BIN)/ruff check --fix kb ingest api ui evals tests

test: install browser lint
	$(BIN)/python -m pytest
