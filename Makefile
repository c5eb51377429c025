# The two commands of the README: `make reproduce` and `make test`.
# Both create .venv when missing and install everything into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.snnl-installed
CORES ?= all
CONFIG ?= config/default.yaml

.PHONY: setup debian-data debian-tools debian-services test reproduce pull bench drills clean-results

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

# The SLURM and DVC ssh-remote tests start their own daemons (tests/helpers/services.py) from
# Debian's slurm-wlm, munge and openssh-server. Installed without starting any service (a
# policy-rc.d denies it for the install's duration, then goes); skipped, with a note, where
# apt-get is unavailable or we are not root (those tests then skip and say why).
SERVICE_PROGRAMS := munged slurmctld slurmd sbatch srun squeue sshd ssh-keygen
SERVICE_PACKAGES := slurm-wlm munge openssh-server openssh-client

debian-services:
	@missing=0; for p in $(SERVICE_PROGRAMS); do PATH="$$PATH:/usr/sbin:/sbin" command -v $$p >/dev/null 2>&1 || missing=1; done; \
	if [ "$$missing" -eq 0 ]; then \
		:; \
	elif ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" -ne 0 ]; then \
		echo "debian-services: cannot apt-get install $(SERVICE_PACKAGES) here; the SLURM and ssh-remote tests will skip"; \
	else \
		echo "debian-services: installing $(SERVICE_PACKAGES) with apt-get (no service started)"; \
		norc=0; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
			chmod 755 /usr/sbin/policy-rc.d; norc=1; fi; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SERVICE_PACKAGES); } \
			|| echo "debian-services: warning: apt-get could not install $(SERVICE_PACKAGES); the SLURM and ssh-remote tests will skip"; \
		if [ "$$norc" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; \
		if [ -d /run/systemd/system ]; then systemctl disable --quiet ssh munge slurmctld slurmd 2>/dev/null || true; fi; \
	fi

test: $(STAMP) debian-data debian-tools debian-services
	$(PY) -m pytest

SNAKEMAKE := $(VENV)/bin/snakemake --profile workflow/profiles/default --configfile $(CONFIG)

# A run killed outright (SIGKILL, OOM killer, power cut) leaves Snakemake's lock behind and the
# next run would stop ("Directory cannot be locked"). Unlock only when `snnl stale-lock` finds
# no Snakemake run, job or make reproduce/pull working in this directory (docs/RELIABILITY.md).
UNLOCK_STALE = if [ -n "$$(ls -A .snakemake/locks 2>/dev/null)" ] && $(VENV)/bin/snnl stale-lock; then \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SNAKEMAKE) --unlock; fi

# The whole pipeline, then the HTML report. Reruns reuse every finished output; a killed run
# restarts where it stopped. data/raw (downloads, original files) is a DVC output: it must
# exist, even empty, for `dvc commit` after a run of the embedded config, which downloads nothing.
reproduce: $(STAMP) debian-data debian-tools
	@mkdir -p data/raw
	@$(VENV)/bin/snnl check-config $(CONFIG)
	@$(UNLOCK_STALE)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SNAKEMAKE) --cores $(CORES)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SNAKEMAKE) --report results/report.html --report-stylesheet workflow/report/style.css
	$(VENV)/bin/snnl check-report results/report.html --figures results/figures --screenshot results/report.png
	@echo "report: results/report.html (opens on the claims table); tables: results/tables/; claims: results/tables/claims.md"

# After a fresh clone: fetch data and results from the DVC remote, then mark them up to
# date for Snakemake (DVC does not restore timestamps, so Snakemake would rerun everything).
# verify: DVC then checks every pulled object's hash (off by default: a corrupted object in the
# remote would be placed silently; docs/RELIABILITY.md). Set in .dvc/config.local, untracked.
pull: $(STAMP)
	@remote="$$($(VENV)/bin/dvc remote default 2>/dev/null)"; \
	if [ -n "$$remote" ]; then $(VENV)/bin/dvc remote modify --local "$$remote" verify true; fi
	$(VENV)/bin/dvc pull
	@$(UNLOCK_STALE)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SNAKEMAKE) --touch --cores 1

bench: $(STAMP)
	$(PY) benchmarks/bench_loss.py --write docs/BENCHMARKS.md
	$(PY) benchmarks/bench_loss.py --large --write docs/BENCHMARKS.md
	$(PY) benchmarks/bench_train.py --threads 2 1 --reps 40 --write docs/BENCHMARKS.md

# The slow reliability drills of docs/RELIABILITY.md (SIGKILL at five moments and rerun, DVC
# sharing through a fresh clone, determinism): ~40 min on 2 cores, in scratch copies under /tmp,
# never in this checkout. DRILLS_ARGS passes options, e.g. DRILLS_ARGS="--only kill --keep".
drills: $(STAMP)
	$(PY) tests/reliability/drills.py $(DRILLS_ARGS)

clean-results:
	rm -rf results/ .snakemake/
