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

.PHONY: setup run test lint results clean

setup: $(STAMP)

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

run: setup
	$(BIN)/python train_rnn.py -a rnn

test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/python -m flake8

results: setup
	$(BIN)/python reference_runs.py

clean:
	rm -rf $(VENV) result .pytest_cache
