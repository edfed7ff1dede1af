# The two commands of the README.
.PHONY: demo test lint

VENV ?= .venv
PY := $(VENV)/bin/python

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'

demo: $(PY)
	$(VENV)/bin/riskstream demo

lint: $(PY)
	$(VENV)/bin/ruff check riskstream tests bench
	$(VENV)/bin/mypy

test: $(PY) lint
	$(PY) -m pytest
