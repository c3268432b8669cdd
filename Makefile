# Two commands do everything on a fresh Debian/Ubuntu machine with Python 3.11:
#   make run    install what the service needs and start it on http://localhost:5000
#   make test   install the test dependencies and run the whole test suite (what CI runs)
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test setup setup-test apt apt-test lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

apt:
	@missing=$$(grep -v '^#' packages.apt | xargs -r -n1 sh -c 'dpkg -s "$$0" >/dev/null 2>&1 || echo "$$0"'); \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

apt-test: apt
	@missing=$$(grep -v '^#' packages-test.apt | xargs -r -n1 sh -c 'dpkg -s "$$0" >/dev/null 2>&1 || echo "$$0"'); \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

setup: apt $(BIN)/python
	$(BIN)/pip install -q -e '.[serve]'

setup-test: apt-test $(BIN)/python
	$(BIN)/pip install -q -e '.[train,serve,dev]'

run: setup
	$(BIN)/crnn-ocr serve --host $(HOST) --port $(PORT)

lint: setup-test
	$(BIN)/ruff check .

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
