# The two commands of the README: `make reproduce` and `make test`.
# Both create .venv when missing and install everything into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.snnl-installed
CORES ?= all
CONFIG ?= config/default.yaml

.PHONY: setup test reproduce bench clean-results

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

reproduce: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG)

bench: $(STAMP)
	$(PY) benchmarks/bench_loss.py --write docs/BENCHMARKS.md

clean-results:
	rm -rf results/ .snakemake/
