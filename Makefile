# From One Neuron to GPT: every command a student, reader or instructor needs.
#   make lab    JupyterLab on the notebooks        make test   unit tests + nbval
#   make book   the executed website (_build/html)  make data   fetch and verify all data
# Each target creates or updates the virtual environment in .venv first.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch is installed before everything else. See book/setup.md for CUDA and CPU-only builds.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
JOBS ?= 2

# A relative data mirror becomes absolute, so notebooks running inside notebooks/ find it.
ifneq ($(strip $(COURSE_DATA_MIRROR)),)
export COURSE_DATA_MIRROR := $(abspath $(COURSE_DATA_MIRROR))
endif

# Fast and full builds keep separate execution caches, so neither serves the other's outputs.
ifeq ($(COURSE_FAST),1)
BOOK_OUT := _build/fast
else
BOOK_OUT := .
endif

.PHONY: install lab test book data bench clean
.DEFAULT_GOAL := help

help:
	@sed -n '2,4p' Makefile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install --quiet -e ".[lab,book,dev]"
	@touch $@

install: $(VENV)/.installed

lab: install
	$(BIN)/jupyter lab notebooks/

data: install
	$(BIN)/python -m course_lib.data fetch --all

test: install
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=600 -n $(JOBS) --dist loadfile -p no:cacheprovider

_build/assets/.complete: scripts/book_assets.py | install
	$(BIN)/python scripts/book_assets.py _build/assets

book: install _build/assets/.complete
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter-book build . --path-output $(BOOK_OUT) -W --keep-going
	@echo "The book is at $(BOOK_OUT)/_build/html/index.html"

bench: install
	@for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build .pytest_cache
