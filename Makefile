# One command runs the server, one passes the whole suite. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

AXE     = .cache/npm/node_modules/axe-core/axe.min.js
# Test processes: most tests wait on sockets, browsers and timers, so two share 2 cores
# well; a module's tests stay in one process (its fixtures and servers are its own).
# Tests marked solo (memory per cycle, loop lag, live recognition in pages) run after,
# alone: beside another test process they would measure it too.
TEST_WORKERS ?= 2

.PHONY: run test lint typecheck unit bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: chromium (browser tests), espeak-ng (speech), ffmpeg (ffprobe),
# npm (axe-core for the accessibility checks), redis-server (the multi-node, outage and
# restart tests run a real one they stop and start), fonts-noto-cjk (Korean, Japanese and Chinese
# text in screenshots: without it a minimal machine draws boxes).
system-deps:
	@missing=""; \
	for pair in chromium:chromium espeak-ng:espeak-ng ffprobe:ffmpeg sox:sox npm:npm redis-server:redis-server; do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; \
	  fi; \
	fi

run: $(STAMP)
	$(BIN)/seoulbridge serve --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# axe-core from npm, into a cache the browser tests find (tests/browser/axe.py).
$(AXE): | system-deps
	mkdir -p .cache/npm
	cd .cache/npm && npm install --no-save --no-audit --no-fund --prefix . axe-core@4

test: $(STAMP) system-deps $(AXE) lint typecheck
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m 'not solo' --durations=15
	$(BIN)/python -m pytest -q -m solo --durations=10

bench: $(STAMP)
	$(BIN)/python bench/sfu_load.py
	$(BIN)/python bench/captions.py
	$(BIN)/python bench/scheduler.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .cache
