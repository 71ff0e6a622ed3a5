# Everything runs from a project-local virtualenv that the first target creates.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SPEC := openapi/.cache/upstream.json
HAND_WRITTEN := ksef_facade scripts tests

.DEFAULT_GOAL := help
.PHONY: help venv spec spec-update generate check-generated spec-diff unasync \
	check-unasync lint format typecheck test demo bench ci clean

help:
	@echo "make demo             run the demo against the built-in KSeF simulator"
	@echo "make test             run the test suite"
	@echo "make spec             fetch the upstream spec (KSEF_SPEC_FILE or download) and check the pin"
	@echo "make spec-update      accept a new upstream spec, rewrite the pin, print the diff"
	@echo "make generate         regenerate generated/ksef_api from the pinned spec"
	@echo "make check-generated  fail if generated/ is not what the pinned spec produces"
	@echo "make spec-diff OLD=a.json NEW=b.json   summarise what changed between two specs"
	@echo "make lint typecheck   ruff and mypy --strict"
	@echo "make bench            run the benchmarks and print their tables"

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(INSTALLED)

spec: $(INSTALLED)
	$(PY) scripts/fetch_spec.py

spec-update: $(INSTALLED)
	$(PY) scripts/fetch_spec.py --update
	@if [ -f openapi/.cache/previous.json ]; then \
		$(PY) scripts/spec_diff.py openapi/.cache/previous.json $(SPEC); \
	else \
		echo "spec-update: no previous spec in openapi/.cache to diff against"; \
	fi
	@echo "spec-update: now run 'make generate' and review the change"

generate: spec
	$(PY) scripts/generate.py $(SPEC)

check-generated: spec
	$(PY) scripts/generate.py $(SPEC) --check

spec-diff: $(INSTALLED)
	@test -n "$(OLD)" -a -n "$(NEW)" || { echo "usage: make spec-diff OLD=a.json NEW=b.json"; exit 2; }
	$(PY) scripts/spec_diff.py $(OLD) $(NEW)

unasync: $(INSTALLED)
	$(PY) scripts/unasync.py

check-unasync: $(INSTALLED)
	$(PY) scripts/unasync.py --check

lint: $(INSTALLED)
	$(VENV)/bin/ruff format --check $(HAND_WRITTEN)
	$(VENV)/bin/ruff check $(HAND_WRITTEN)

format: $(INSTALLED)
	$(VENV)/bin/ruff format $(HAND_WRITTEN)
	$(VENV)/bin/ruff check --fix $(HAND_WRITTEN)

typecheck: $(INSTALLED)
	$(VENV)/bin/mypy ksef_facade

test: $(INSTALLED)
	$(PY) -m pytest

demo: $(INSTALLED)
	$(PY) scripts/demo.py

bench: $(INSTALLED)
	$(PY) scripts/bench_tokens.py
	$(PY) scripts/bench_batch.py
	$(PY) scripts/bench_upload.py

ci: check-generated check-unasync lint typecheck test

clean:
	rm -rf $(VENV) openapi/.cache .mypy_cache .ruff_cache .pytest_cache
