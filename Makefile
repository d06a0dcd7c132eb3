# The two set-up commands of the README. Each creates its own virtualenv (.venv).
VENV ?= .venv

.PHONY: demo test lint bench clean

demo:
	scripts/setup.sh
	$(VENV)/bin/conductor-nb run examples/hello.yaml

test:
	scripts/setup.sh test
	$(VENV)/bin/ruff check conductor_nb tests bench
	$(VENV)/bin/ruff format --check conductor_nb tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	scripts/build-view.sh --check
	$(VENV)/bin/python -m pytest -q
	$(VENV)/bin/python bench/run.py --quick
	$(VENV)/bin/python bench/data.py --quick

bench:
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
