# netspec — developer entry points. `make setup` is idempotent and instant once done.
SHELL   := /bin/bash
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Installed before the project: pip takes this exact version from local disk as a CPU build,
# so the project's `torch>=2.2` is already met and no multi-GB CUDA build is downloaded.
TORCH   := torch==2.13.0
APT_PKGS := graphviz dataset-fashion-mnist chromium
MODEL   ?= googlenet

.PHONY: setup sysdeps venv run test test-torchvision clean distclean

setup: sysdeps $(STAMP)

# System packages: Graphviz's `dot` (for draw and view), the Fashion-MNIST files (for train) and chromium (the
# browser tests/test_view_browser.py drives; Playwright uses it, never downloading a browser of its own).
sysdeps:
	@if command -v dot >/dev/null 2>&1 && [ -d /usr/share/datasets/fashion-mnist ] \
	    && command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing system packages: $(APT_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS); \
	else \
	  echo "note: not root; please install the system packages: sudo apt-get install $(APT_PKGS)"; \
	fi

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# The main job. One command per line: each must succeed before the next runs.
# The train line is BN-LeNet's recipe (the course's, with its lr annealed: specs/bn_lenet.yaml), 2 epochs, the
# best epoch kept on 10% of the training set held out; eval then reports on the newest run folder.
run: setup
	@mkdir -p build
	$(BIN)/netspec validate specs/*.yaml
	$(BIN)/netspec train bn_lenet --epochs 2 --val-split 0.1 --device cpu --out build/runs
	$(BIN)/netspec eval "$$(ls -td build/runs/bn_lenet-* | head -1)" --device cpu
	$(BIN)/netspec draw bn_lenet -o build/bn_lenet.svg
	$(BIN)/netspec summary $(MODEL) --depth 1
	$(BIN)/netspec compile $(MODEL) -o build/$(MODEL).py

# The suite, then the torchvision parity tests in their own venv (`make test PARITY=0` skips them).
PARITY ?= 1
test: setup
	$(BIN)/python -m pytest -q
	@if [ "$(PARITY)" = 1 ]; then $(MAKE) --no-print-directory test-torchvision; fi

# torchvision's wheels on PyPI do not load beside the CPU torch above, so the parity tests run in a second venv
# with a torch/torchvision pair that does (on x86_64 a CUDA build, which runs on the CPU: about 5.5 GB, taken from
# local disk where the machine keeps it; on aarch64 a CPU build); netspec's `torch>=2.2` is then already met.
TVENV := .tvenv
TVSTAMP := $(TVENV)/.installed
TV_PAIR := $(if $(filter aarch64,$(shell uname -m)),torch==2.9.1 torchvision==0.24.1,torch==2.14.1 torchvision==0.29.1)

$(TVSTAMP): pyproject.toml
	$(PYTHON) -m venv $(TVENV)
	$(TVENV)/bin/pip install -q $(TV_PAIR)
	$(TVENV)/bin/pip install -q -e '.[dev]'
	@touch $@

test-torchvision: $(TVSTAMP)
	$(TVENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_torchvision.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Also removes the virtual environment (the next `make setup` rebuilds it).
distclean: clean
	rm -rf $(VENV) $(TVENV)

# Regenerates docs/gallery/: a diagram of every spec (tests/test_draw.py fails when it is stale).
.PHONY: gallery
gallery: setup
	$(BIN)/python -m netspec.generators.gallery

# Side-by-side benchmarks → bench/results.json and the "Benchmarks (bench/)" section of docs/benchmarks.md
# (< 10 minutes on a 2-core CPU). `make bench BENCH_ARGS=--quick` is a smoke run.
.PHONY: bench
bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)
