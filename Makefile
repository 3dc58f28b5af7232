# `make demo` and `make test` both create or refresh .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.syq-installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
DEMO_OUT ?= demo
PYTEST_ARGS ?=

.PHONY: demo test bench venv datasets tcl clean

venv: $(STAMP)

# torch goes first and pinned, so pip takes the local CPU wheel instead of a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

datasets:
	@if [ ! -f $(FASHION_MNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing the Debian package dataset-fashion-mnist"; \
	    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	  else \
	    echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'" \
	         "(or pass --data-dir to syq)" >&2; exit 1; \
	  fi; \
	fi

# tclsh runs the generated Vitis HLS / Vivado scripts against the stand-ins in tests/tcl; those
# tests skip without it.
tcl:
	@if ! command -v tclsh >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing the Debian package tcl"; \
	    apt-get install -y -q tcl >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q tcl >/dev/null; }; \
	  else \
	    echo "tclsh is missing, so the Tcl script tests will be skipped: run" \
	         "'sudo apt-get install tcl'" >&2; \
	  fi; \
	fi

demo: venv datasets
	$(BIN)/syq flow --model tfc --dataset fashion-mnist --weight-bits 2 --act-bits 2 \
	    --granularity channel --epochs 10 --out $(DEMO_OUT)

# pytest's exit code 5 (no tests collected) fails this target like any other error.
test: venv datasets tcl
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv datasets
	$(BIN)/python bench/run_all.py --out docs/benchmarks.md

clean:
	rm -rf $(VENV) $(DEMO_OUT)
