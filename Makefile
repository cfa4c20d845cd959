# The two commands of the README: `make run` (the product on its embedded
# default) and `make test` (the whole suite on this machine's PostgreSQL/Redis).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The suite runs in TEST_WORKERS pytest-xdist processes (each with its own test database, Redis
# db, emulator and Celery worker: settings/test.py, tests/conftest.py); TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 3

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) bin/run_dev.py

test: $(STAMP)
	bash bin/ensure_services.sh
	bash bin/ensure_browser.sh
	bash bin/ensure_axe.sh
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	bash bin/ensure_services.sh
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf var .pytest_cache
