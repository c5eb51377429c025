# The two commands of the README: `make reproduce` and `make test`.
# Both create .venv when missing and install everything into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.snnl-installed
CORES ?= all
CONFIG ?= config/default.yaml

.PHONY: setup debian-data debian-tools test reproduce pull bench clean-results

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)

# Debian's package dataset-fashion-mnist gives the full Fashion-MNIST offline (docs/DATA.md).
# Installed with apt-get when its files are missing; skipped, with a note, where apt-get
# is unavailable or we are not root (the full Fashion-MNIST test then skips or says how).
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
FASHION_MNIST_FILES := train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz

debian-data:
	@missing=0; for f in $(FASHION_MNIST_FILES); do [ -f "$(FASHION_MNIST_DIR)/$$f" ] || missing=1; done; \
	if [ "$$missing" -eq 0 ]; then \
		:; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "debian-data: apt-get unavailable; skipping dataset-fashion-mnist (the full Fashion-MNIST test will skip)"; \
	elif [ "$$(id -u)" -ne 0 ]; then \
		echo "debian-data: not root; skipping dataset-fashion-mnist (install it: sudo apt-get install dataset-fashion-mnist)"; \
	else \
		echo "debian-data: installing dataset-fashion-mnist with apt-get"; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dataset-fashion-mnist; } \
			|| echo "debian-data: warning: apt-get could not install dataset-fashion-mnist; the full Fashion-MNIST test will fail"; \
	fi

# Chromium renders results/report.html for `snnl check-report` (make reproduce, tests).
debian-tools:
	@if command -v chromium >/dev/null 2>&1; then \
		:; \
	elif ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" -ne 0 ]; then \
		echo "debian-tools: cannot apt-get install chromium here; the report's rendering check will be skipped"; \
	else \
		echo "debian-tools: installing chromium with apt-get"; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } \
			|| echo "debian-tools: warning: apt-get could not install chromium; the rendering check will be skipped"; \
	fi

test: $(STAMP) debian-data debian-tools
	$(PY) -m pytest

SNAKEMAKE := $(VENV)/bin/snakemake --profile workflow/profiles/default --configfile $(CONFIG)

# The whole pipeline, then the HTML report. Reruns reuse every finished output.
reproduce: $(STAMP) debian-data debian-tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SNAKEMAKE) --cores $(CORES)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SNAKEMAKE) --report results/report.html
	$(VENV)/bin/snnl check-report results/report.html --figures results/figures --screenshot results/report.png
	@echo "report: results/report.html; tables: results/tables/; claims: results/tables/claims.md"

# After a fresh clone: fetch data and results from the DVC remote, then mark them up to
# date for Snakemake (DVC does not restore timestamps, so Snakemake would rerun everything).
pull: $(STAMP)
	$(VENV)/bin/dvc pull
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SNAKEMAKE) --touch --cores 1

bench: $(STAMP)
	$(PY) benchmarks/bench_loss.py --write docs/BENCHMARKS.md
	$(PY) benchmarks/bench_train.py --threads 2 1 --reps 40 --write docs/BENCHMARKS.md

clean-results:
	rm -rf results/ .snakemake/
