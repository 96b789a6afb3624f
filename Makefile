# Entry points for a fresh Debian 12 host, run as root. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
TOPOLOGY ?= topologies/s2s-route-based.yml

.PHONY: setup image demo test unit lint

setup:
	scripts/host-setup.sh
	$(PYTHON) -m pip install -q -e '.[dev]'

image: setup
	$(PYTHON) -m lab.runtime.image

demo: image
	scripts/demo.sh $(TOPOLOGY)

test: image
	$(PYTHON) -m pytest -q -rs tests

unit:
	$(PYTHON) -m pytest -q -m 'not integration' tests

lint:
	$(PYTHON) -m ruff check .
