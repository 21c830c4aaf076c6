# The two commands of the README. Each creates the virtual environment if it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TCMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4))
RUN := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC)) 

.PHONY: demo test venv

venv: $(BIN)/lipsync

$(BIN)/lipsync: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: venv
	$(RUN)$(BIN)/lipsync demo

test: venv
	QT_QPA_PLATFORM=offscreen $(RUN)$(BIN)/python -m pytest -q
