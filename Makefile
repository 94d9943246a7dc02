# The front door: `make demo` and `make test` work on a fresh machine with Rust, Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEPS   := $(VENV)/.deps-installed
# Tests and the editable build share one release profile, so dependencies compile once.
CARGO_PROFILE := --release

# The NVRTC wheel's libraries, for the Rust tests that compile the GPU kernels (ferrox.gpu finds them
# by itself from Python). FERROX_REQUIRE_NVRTC turns a missing NVRTC from a skip into a failure.
NVRTC_LIB = $(shell $(PY) -c "import nvidia.cuda_nvrtc as n, os; print(os.path.join(list(n.__path__)[0], 'lib'))")
GPU_ENV = FERROX_CUDA_LIB_DIRS=$(NVRTC_LIB) FERROX_REQUIRE_NVRTC=1

.PHONY: all build demo test test-rust test-python stubtest bench gpu-check clean

all: test

$(DEPS): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Build the extension and install the package into .venv (editable: python/ is used in place).
build: $(DEPS)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop $(CARGO_PROFILE) --quiet

demo: build
	$(PY) examples/demo.py

test: build test-rust stubtest test-python

test-rust:
	$(GPU_ENV) cargo test $(CARGO_PROFILE) --features serve

stubtest: build
	$(PY) -m mypy.stubtest ferrox._ferrox

test-python: build
	FERROX_REQUIRE_NVRTC=1 $(PY) -m pytest -q

bench: build
	$(VENV)/bin/pip install --quiet -r requirements-bench.txt
	$(PY) benches/dataset.py
	$(PY) benches/gbdt.py
	$(PY) benches/predict.py
	$(PY) benches/transforms.py
	$(PY) benches/linear.py
	$(PY) benches/drift.py

# On a machine with an NVIDIA GPU: the GPU tests, then GPU against CPU and XGBoost's GPU path.
gpu-check: build
	$(PY) benches/gpu.py

clean:
	rm -rf $(VENV) target
