# Two entry points, each of which sets up everything it needs on a fresh machine:
#   make quickstart   build the default data, train a tiny model, sample and evaluate it
#   make test         lint, format check and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.editlm-installed

.PHONY: install quickstart test bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch first and pinned, so that no other package can pull a newer (CUDA, multi-GB) build.
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/editlm quickstart

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -n 2 -q
