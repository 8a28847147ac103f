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

.PHONY: setup run test lint results bench capacity capacity-from-nothing ui ui-setup clean

SITE_STAMP := $(VENV)/.site-modules
setup: $(SITE_STAMP)

$(STAMP): requirements.txt constraints.txt
	@case "$(PYTHON_VERSION)" in \
	  3.11|3.12) ;; \
	  "") echo "$(PYTHON) was not found: install Python 3.11 or 3.12, or name one with make PYTHON=..." >&2; exit 1 ;; \
	  *) echo "This project needs Python 3.11 or 3.12, and $(PYTHON) is $(PYTHON_VERSION): name another with make PYTHON=python3.12" >&2; exit 1 ;; \
	esac
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# So that `import chainer` works in any script of the environment, on
# Python 3.12 too (see chainer_compat.py); and so that Ctrl-C is quiet from
# the moment Python starts our scripts (see quiet_start.py), its .pth named
# to run first. Copied again alone when they change: an edit rebuilt the
# whole environment, and a sweep running from it lost its workers.
$(SITE_STAMP): chainer_compat.py quiet_start.py $(STAMP)
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  for module in chainer_compat.py quiet_start.py; do \
	    cp $$module "$$site/.$$module.new" && \
	    mv -f "$$site/.$$module.new" "$$site/$$module" || exit; \
	  done && \
	  echo 'import chainer_compat' > "$$site/chainer_compat.pth" && \
	  echo 'import quiet_start; quiet_start.install_for_scripts()' > "$$site/_quiet_start.pth"
	touch $@

run: setup
	$(BIN)/python train_rnn.py -a rnn

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/python -m flake8

results: setup
	$(BIN)/python reference_runs.py

# Order-only on .venv's stamp: its recipe checks the Python version. torch
# goes in with --no-deps, since it asks for setuptools >= 77, which Chainer
# cannot run with; torch imports and trains without it. It goes in last:
# after an install that resolves dependencies pip checks every package
# there, and would report torch's unmet setuptools as an ERROR.
$(BENCH_STAMP): requirements.txt constraints.txt benchmarks/requirements-torch.txt $(TORCH_WHEEL) | $(SITE_STAMP)
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
ifneq ($(TORCH_WHEEL),)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements.txt -r benchmarks/requirements-torch.txt
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-index --no-deps $(TORCH_WHEEL)
else
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements.txt
	@echo "No torch-$(TORCH_VERSION)+cpu wheel for Python $(PYTHON_VERSION) in $(TORCH_WHEELS): the benchmark skips the torch rows."
endif
	touch $@

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/bench.py $(BENCH_ARGS)

# The capacity study (docs/capacity.md): each frontier searched, the LSTM's
# choices undone one at a time, two more learning rates at bproplen 20's
# deciding cells (N = 25 for all, where lstm1 ranked above the rest; N = 20
# for the others, their frontier), the counter. The record files resume:
# `make capacity` goes on from what they hold, and `make
# capacity-from-nothing` first removes them.
CAPACITY_ALPHAS := 0.0003 0.003
capacity: setup
	@started=$$(date +%s) && \
	$(BIN)/python -m study.sweep -o results/capacity && \
	$(BIN)/python -m study.sweep -o results/capacity --bproplen 20 \
	  --arch lstm_nodropout lstm_onelayer lstm_chainerinit && \
	for alpha in $(CAPACITY_ALPHAS); do \
	  $(BIN)/python -m study.sweep -o results/capacity_alpha/$$alpha \
	    --alpha $$alpha --grid --bproplen 20 --seed 0 1 2 3 4 --vocab 25 && \
	  $(BIN)/python -m study.sweep -o results/capacity_alpha/$$alpha \
	    --alpha $$alpha --grid --bproplen 20 --seed 0 1 2 3 4 --vocab 20 \
	    --arch rnn rnn_relu lstm gru || exit; \
	done && \
	$(BIN)/python -m study.counter -o results && \
	echo "make capacity took $$(( ($$(date +%s) - started) / 60 )) min"

capacity-from-nothing:
	rm -f results/capacity/capacity.jsonl \
	  $(foreach alpha,$(CAPACITY_ALPHAS),results/capacity_alpha/$(alpha)/capacity.jsonl)
	$(MAKE) capacity

# ChainerUI over the runs under UI_DIRS, on this machine alone unless
# UI_HOST says otherwise (docs/ui.md). Its extras go into .venv.
UI_DIRS ?= result
UI_PORT ?= 5000
UI_HOST ?= 127.0.0.1
UI_STAMP := $(VENV)/.installed-ui

$(UI_STAMP): requirements-ui.txt | $(SITE_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-ui.txt
	touch $@

ui-setup: $(UI_STAMP)

# Ctrl-C ends it with the dashboard's one line: make adds its own unless
# the line is `-` and its shell survives (trap), so the dashboard's exit
# status comes back on the next line.
ui: ui-setup
	-@trap : INT; $(BIN)/python dashboard.py --host $(UI_HOST) \
	  --port $(UI_PORT) $(UI_DIRS); echo $$? > $(VENV)/.ui-status
	@exit "$$(cat $(VENV)/.ui-status)"

clean:
	rm -rf $(VENV) $(BENCH_VENV) result .pytest_cache
