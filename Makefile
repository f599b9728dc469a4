# One command runs the server, one passes the whole suite. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: chromium (browser tests), espeak-ng (speech), ffmpeg (ffprobe).
system-deps:
	@missing=""; \
	for pair in chromium:chromium espeak-ng:espeak-ng ffprobe:ffmpeg sox:sox; do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
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

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/sfu_load.py
	$(BIN)/python bench/captions.py
	$(BIN)/python bench/scheduler.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
