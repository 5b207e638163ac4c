# Two entry points, each sets up .venv first (idempotent):
#   make report   run the conformance suite, write reports/latest/{results.jsonl,report.html}
#   make test     lint and format check (ruff), then the project's own tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup report test clean

setup: $(STAMP)

# torch==2.13.0 first: it resolves to the local CPU build; anything installed after
# that needs torch is then satisfied and pulls no CUDA packages.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

report: setup
	$(BIN)/lossparity run

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) reports/latest
