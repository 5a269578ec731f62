# Two commands for a fresh machine (only Python >= 3.11 and make needed):
#   make demo   set up .venv, then the main job on the embedded default store
#   make test   set up .venv, then the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
STORE  ?= ./timeline-data

.PHONY: install browser demo test bench docs clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "timeline needs Python >= 3.11")'
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium: the browser tests and the demo's screenshots (installed with apt when missing)
browser:
	@sh .ci/ensure-chromium

demo: install browser
	$(PY) -m timeline.demo --store $(STORE)

# one pytest worker per core (pytest-xdist); a single file or test runs as usual: .venv/bin/pytest tests/FILE
test: install browser
	$(PY) -m pytest -q -n auto

docs: install
	$(PY) -m timeline.docs

bench: install
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/projections.py
	$(PY) benchmarks/web.py
	$(PY) benchmarks/exchange.py
	$(PY) benchmarks/encryption.py
	$(PY) benchmarks/scale.py

clean:
	rm -rf $(VENV) timeline-data .pytest_cache .hypothesis
