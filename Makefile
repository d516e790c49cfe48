# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every dependency (the package's and the test extras') pinned to the versions the tests ran with.
LOCK   := requirements.lock
# `make lock` takes the newest releases the ranges in pyproject.toml allow; `make lock LOCK_ARGS=`
# keeps the current pins and only adds what a changed range needs.
LOCK_ARGS ?= --upgrade

# The Codex CLI the MCP test drives (tests/test_mcp_codex.py), pinned; it lives in the venv folder.
CODEX_VERSION := 0.171.0
CODEX         := $(VENV)/codex/node_modules/.bin/codex

.PHONY: demo stop test lint lock install bench clean codex

$(STAMP): pyproject.toml $(LOCK)
	@echo "Installing NexusLeads Lab and its pinned dependencies into $(VENV) (the first time takes a minute or two)..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nexus-lab demo $(DEMO_ARGS)

# The embedded PostgreSQL outlives `make demo` (a kernel restart then costs a connection, not a start).
stop:
	test ! -x $(BIN)/nexus-lab || $(BIN)/nexus-lab db stop

# Lint first: a tree that does not pass ruff and mypy does not get to the tests.
test: lint codex
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Without npm the Codex test skips, saying why (unless NEXUS_REQUIRE_CODEX=1, as .ci/run sets).
codex: $(STAMP)
	@if [ -x $(CODEX) ] && $(CODEX) --version 2>/dev/null | grep -q " $(CODEX_VERSION)$$"; then :; \
	elif command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/codex @openai/codex@$(CODEX_VERSION); \
	else echo "npm not found: tests/test_mcp_codex.py will be skipped (install Node.js and npm, then make codex)"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy nexusleads_lab

lock: $(STAMP)
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet $(LOCK_ARGS) --extra test --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) pyproject.toml

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py
	$(BIN)/python benchmarks/update_readme.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
