# Entry points for a fresh Debian 12 host, run as root. `make demo` and `make test` are the README's two commands.
# Python deps go into a virtual environment (.venv) made from Debian's own python3: Debian's python3 is
# "externally managed" (PEP 668) and refuses `pip install` outside one. Every target runs the venv's python
# by path, so another python3 earlier on PATH (pyenv, conda) changes nothing.
# Debian's python3 by path (host-setup.sh installs it and python3-venv); override with BASE_PYTHON=...
BASE_PYTHON ?= /usr/bin/python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.lab-installed
TOPOLOGY ?= topologies/s2s-route-based.yml

.PHONY: setup image demo test test-kernel test-kernel-smoke test-kernel-all unit lint

setup: $(STAMP)
	scripts/host-setup.sh

# Re-made when pyproject.toml changes (new dependency) or the venv is missing.
$(STAMP): pyproject.toml scripts/host-setup.sh
	scripts/host-setup.sh
	$(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $@

image: setup
	$(PYTHON) -m lab.runtime.image

# demo.sh calls `lab` and `python3`: the venv's bin comes first on PATH
demo: image
	PATH="$(abspath $(VENV))/bin:$$PATH" scripts/demo.sh $(TOPOLOGY)

test: image
	$(PYTHON) -m pytest -q -rsR --reruns 1 --reruns-delay 5 tests

# The kernel data plane (kernel ESP, XFRM) in a QEMU guest with Debian's stock kernel: this host's kernel has
# no ESP. Builds the guest image once (cached in /var/cache/lab-guest), boots it without network, runs the
# core `kernel` variants of the integration tests inside and exits with their status (docs/kernel-dataplane.md).
test-kernel: image
	$(PYTHON) -m lab.guest

# CI's subset (.ci/run): the guest and the reference lab's `lab verify` on the kernel data plane. The guest
# image and the loaded node image stay cached in LAB_GUEST_CACHE (default /var/cache/lab-guest) between runs.
test-kernel-smoke: image
	nice -n 10 $(PYTHON) -m lab.guest --smoke --timeout 2700

# Every `kernel` variant of the integration tests (an hour or more under emulation).
test-kernel-all: image
	$(PYTHON) -m lab.guest --all

unit: $(STAMP)
	$(PYTHON) -m pytest -q -m 'not integration' tests

lint: $(STAMP)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy lab tests/fakes.py
