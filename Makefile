# The README's two commands: `make demo` and `make test`. Each sets up what is missing first
# (system libraries, the virtual environment in .venv, the package and its test extras).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TCMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4))
RUN := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC) )

.PHONY: demo test setup ofx ofx-host

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

# The native OpenFX bundle (nodes/ofx/README.md): plain C, the system compiler, no OFX SDK needed. The
# plug-in starts its worker from this repository (or $LIPSYNC_ROOT) with .venv's Python (or $LIPSYNC_PYTHON).
OFX_BUNDLE := build/ofx/LipSync.ofx.bundle
OFX_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
OFX_CFLAGS := -std=c11 -O2 -Wall -Wextra
OFX_DEFINES := -DLIPSYNC_VERSION='"$(OFX_VERSION)"' -DLIPSYNC_VERSION_MAJOR=$(word 1,$(subst ., ,$(OFX_VERSION))) \
	-DLIPSYNC_VERSION_MINOR=$(word 2,$(subst ., ,$(OFX_VERSION))) -DLIPSYNC_BUILD_ROOT='"$(CURDIR)"'

ofx: $(OFX_BUNDLE)/Contents/Linux-x86-64/LipSync.ofx $(OFX_BUNDLE)/Contents/Info.plist

$(OFX_BUNDLE)/Contents/Linux-x86-64/LipSync.ofx: nodes/ofx/lipsync_ofx.c nodes/ofx/ofx_api.h nodes/ofx/params.h pyproject.toml
	mkdir -p $(@D)
	$(CC) $(OFX_CFLAGS) -fPIC -fvisibility=hidden -shared $(OFX_DEFINES) -o $@.partial $< -ldl -lpthread
	mv $@.partial $@

$(OFX_BUNDLE)/Contents/Info.plist: nodes/ofx/Info.plist pyproject.toml
	mkdir -p $(@D)
	sed 's/@VERSION@/$(OFX_VERSION)/' $< > $@.partial
	mv $@.partial $@

# The test host tests/test_ofx_native.py drives the bundle with.
ofx-host: build/ofx/ofx_host

build/ofx/ofx_host: tests/ofx_host/host.c nodes/ofx/ofx_api.h
	mkdir -p $(@D)
	$(CC) $(OFX_CFLAGS) -o $@.partial $< -ldl -lm
	mv $@.partial $@
