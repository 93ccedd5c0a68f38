# Open Lab CRM: `make run` starts the app on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
JS_STAMP := node_modules/.installed
export FLASK_APP := wsgi:app

.PHONY: install run test test-quick test-faults load prod-local prod-local-stop screenshots lint format clean

install: $(PY_STAMP) $(JS_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(JS_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

run: install
	$(BIN)/python -m crm.devstack

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/pytest -m "not faults" -p no:cacheprovider

test-quick: install
	$(BIN)/pytest -m "not faults and not browser" -x -q

# The fault suite and the load run start their own production layout (deploy/prod_local.py):
# PostgreSQL and Redis of their own on free ports of 127.0.0.1, a few minutes each.
test-faults: install
	$(BIN)/pytest -m faults tests/faults -p no:cacheprovider -s

load: install
	$(BIN)/python bench/load.py

# The production layout of docker-compose.yml on this machine, without Docker (Ctrl-C stops).
prod-local: install
	$(BIN)/python -m deploy.prod_local

prod-local-stop:
	$(BIN)/python -m deploy.prod_local --stop

# The user guide's screenshots (docs/guide.md), taken by a browser test from the real pages.
screenshots: install
	CRM_SCREENSHOTS_DIR=docs/images $(BIN)/pytest tests/e2e/test_screenshots.py -p no:cacheprovider

format: $(PY_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
