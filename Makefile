# Two commands set everything up on a fresh machine: `make book` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv data lint test unit nbval book notebooks bench clean

help:
	@echo "make book       build the static site into _build/html"
	@echo "make test       run every test (lint, unit, notebooks, book build)"
	@echo "make notebooks  re-execute the chapters and store their outputs"
	@echo "make bench      run the benchmark scripts"

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(STAMP)

# TinyShakespeare: copied from ../shared/input.txt when present, else downloaded and sha256-checked.
input.txt: | $(STAMP)
	$(PY) -m mingrok.data --place input.txt

data: input.txt

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

unit: $(STAMP) input.txt
	$(PY) -m pytest -q tests

test: lint unit nbval book

# The static site, from the committed notebook outputs, rebuilt from scratch (--all) so that every
# page is checked: any warning or broken reference fails it.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder html --all -W -n --keep-going

# Re-execute the chapters in place (outputs, widget state; no timing metadata). `make notebooks
# CHAPTERS="chapters/03_attention.ipynb"` runs only those.
notebooks: $(STAMP) input.txt
	$(PY) scripts/execute_notebooks.py $(CHAPTERS)

# Strict nbval: re-execute every chapter and compare each output with the stored one. With no
# chapter yet there is nothing to collect (pytest would exit 5), so say so instead; once chapters
# exist, every failure, including "no tests collected", fails the target.
nbval: $(STAMP) input.txt
	if compgen -G "chapters/*.ipynb" >/dev/null; then \
	  $(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg chapters/; \
	else \
	  echo "nbval: no chapters/*.ipynb yet, nothing to check"; \
	fi

bench: $(STAMP) input.txt
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf _build .pytest_cache
