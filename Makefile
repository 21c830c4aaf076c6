# The README's two commands: `make demo` and `make test`. Each sets up what is missing first
# (system libraries, the virtual environment in .venv, the package and its test extras).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TCMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4))
RUN := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC) )

.PHONY: demo test setup

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml tools/system-deps.sh
	PYTHON=$(PYTHON) bash tools/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The demo's own files in out/: running it again replaces them.
demo: setup
	$(RUN)$(BIN)/lipsync demo --overwrite

test: setup
	QT_QPA_PLATFORM=offscreen $(RUN)$(BIN)/python -m pytest -q
