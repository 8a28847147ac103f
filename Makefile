# `make run` and `make test` set up .venv (Python 3.11 or 3.12, pinned
# packages) when it is missing or out of date, then do their job.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
STAMP := $(VENV)/.installed-python$(PYTHON_VERSION)

# Both names, so that the constraints bind the isolated build of Chainer's
# sdist with any pip (pip 26.2+ reads only PIP_BUILD_CONSTRAINT there).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_BUILD_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# `make bench` runs in its own environment: requirements.txt plus torch,
# the CPU build only, and only from a wheel on local disk (PyPI's default
# torch pulls gigabytes of CUDA libraries). Without one, no torch rows.
BENCH_VENV ?= .venv-bench
TORCH_VERSION := 2.13.0
TORCH_WHEELS ?= /opt/wheels
TORCH_WHEEL := $(firstword $(wildcard $(TORCH_WHEELS)/torch-$(TORCH_VERSION)+cpu-cp$(subst .,,$(PYTHON_VERSION))-*.whl))
BENCH_STAMP := $(BENCH_VENV)/.installed-python$(PYTHON_VERSION)

.PHONY: setup run test lint results bench capacity clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt chainer_compat.py
	@case "$(PYTHON_VERSION)" in \
	  3.11|3.12) ;; \
	  "") echo "$(PYTHON) was not found: install Python 3.11 or 3.12, or name one with make PYTHON=..." >&2; exit 1 ;; \
	  *) echo "This project needs Python 3.11 or 3.12, and $(PYTHON) is $(PYTHON_VERSION): name another with make PYTHON=python3.12" >&2; exit 1 ;; \
	esac
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# So that `import chainer` works in any script of the environment, on
	# Python 3.12 too (see chainer_compat.py).
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  cp chainer_compat.py "$$site/" && \
	  echo 'import chainer_compat' > "$$site/chainer_compat.pth"
	touch $@

run: setup
	$(BIN)/python train_rnn.py -a rnn

test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/python -m flake8

results: setup
	$(BIN)/python reference_runs.py

# Order-only on .venv's stamp: its recipe checks the Python version. torch
# goes in with --no-deps, since it asks for setuptools >= 77, which Chainer
# cannot run with; torch imports and trains without it.
$(BENCH_STAMP): requirements.txt constraints.txt benchmarks/requirements-torch.txt $(TORCH_WHEEL) | $(STAMP)
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements.txt
ifneq ($(TORCH_WHEEL),)
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-index --no-deps $(TORCH_WHEEL)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-torch.txt
else
	@echo "No torch-$(TORCH_VERSION)+cpu wheel for Python $(PYTHON_VERSION) in $(TORCH_WHEELS): the benchmark skips the torch rows."
endif
	touch $@

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/bench.py $(BENCH_ARGS)

# The capacity study from nothing, about 30 minutes on 2 cores: the grid,
# more seeds at the transition, a longer budget where no run of the grid
# converged, and the counter.
capacity: setup
	rm -f results/capacity.jsonl results/capacity_long/capacity.jsonl
	$(BIN)/python -m study.sweep -o results
	# Five more seeds where the cells sit at the transition.
	$(BIN)/python -m study.sweep -o results --vocab 20 30 --seed 5 6 7 8 9
	$(BIN)/python -m study.sweep -o results/capacity_long --arch rnn_relu gru \
	  --vocab 40 50 --bproplen 60 --tokens 800000 --eval-every 40000
	$(BIN)/python -m study.counter -o results

clean:
	rm -rf $(VENV) $(BENCH_VENV) result .pytest_cache
