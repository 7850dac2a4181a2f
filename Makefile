# Two commands: `make run` (chat with the default character on the bundled model) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test lint bench install install-test

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[llama,openai,hub]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[llama,openai,hub,test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(VENV)/bin/rolecraft chat

test: install-test
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks scripts

bench: install
	$(PY) benchmarks/decode_speed.py
	$(PY) benchmarks/turn_overhead.py
	$(PY) benchmarks/cold_start.py
	$(PY) benchmarks/catchphrase_bias.py
