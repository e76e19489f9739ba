# Benchmark reproduction suite for prompt-based adaptation. `make help` lists the targets.
SHELL := /bin/bash
# imports of torch/transformers cost ~25 s per process without cached bytecode
unexport PYTHONDONTWRITEBYTECODE
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
MODELS ?= bert-base-cased
LAUNCHER ?= basic
TORCH_CPU ?= torch==2.13.0
# pip/uv find the local CPU torch wheel through this folder when it exists (PIP_FIND_LINKS)
FIND_LINKS := $(or $(PIP_FIND_LINKS),$(wildcard /opt/wheels))
UV_FIND := $(if $(FIND_LINKS),--find-links $(FIND_LINKS),)
ARGS ?=

.PHONY: bench bench-joint check-learning mini-models bench-pretrain help setup data models test test-gpu lint lama-manual tables figures bench-lama clean
BENCH_MODEL ?= tiny-bert
BENCH_ARGS ?=
BENCH_SIZE ?= default
BENCH_DEVICE ?= auto

help: ## list every target with a one-line description
	@grep -E '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'
	@echo "  variables: MODELS=$(MODELS) (comma-separated conf/model names), LAUNCHER=$(LAUNCHER) (basic|local|slurm|submitit), ARGS='extra hydra overrides'"

$(VENV)/.installed: pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
	@test -x $(PY) || uv venv -q -p python3 $(VENV)
	@# CUDA users: install the torch build for your driver into .venv first; it is kept as is.
	@$(PY) -c "import torch" 2>/dev/null || uv pip install -q -p $(PY) $(UV_FIND) "$(TORCH_CPU)"
	uv pip install -q --compile-bytecode -p $(PY) $(UV_FIND) -e ".[test]"
	@touch $@
	@echo "installed into $(VENV) (torch $$($(PY) -c 'import torch; print(torch.__version__)'))"

setup: $(VENV)/.installed ## create .venv and install the project (CPU torch==2.13.0 unless a torch is already there)

data: setup ## prepare every data family into data/ (idempotent; reads ../shared/data or the canonical URLs)
	$(PY) -m data_prep all

models: setup data ## build the tiny offline models (tiny-bert, tiny-roberta, tiny-albert, tiny-gpt2, tiny-t5)
	$(PY) -m bench.models.tiny all

mini-models: setup data ## pretrain the mini-world models mini-bert and mini-gpt2 offline (docs/mini-world.md; ~35 min each on 2 CPU cores)
	$(PY) -m bench.pretrain all

# make test: pytest-xdist worker processes, each test file whole on one worker, in the order tests/conftest.py
# gives (files of slow tests first); TEST_WORKERS=0: one process; the 25 slowest tests are listed at the end
TEST_WORKERS ?= 2
test: setup ## run the test suite (offline, tiny models, real data from ../shared/data; TEST_WORKERS=2 processes)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 $(ARGS)

test-gpu: setup ## on a CUDA machine: bf16 frozen storage, bf16 autocast training, the fp16 grad scaler and one study smoke run on the GPU
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'make test-gpu needs a CUDA GPU: torch.cuda.is_available() is False')"
	$(PY) -m pytest -q -rs tests/test_gpu.py "tests/test_precision.py::test_fp16_training_on_cuda_scales_the_loss_and_updates_the_fp32_masters" $(ARGS)

lint: setup ## ruff over the package, data_prep and tests
	$(VENV)/bin/ruff check bench data_prep tests

lama-manual: setup data ## LAMA-34k manual-prompt runs for MODELS (skips finished runs)
	@set -e; for m in $$(echo $(MODELS) | tr ',' ' '); do \
	  $(PY) -m bench.run experiment=lama34k_manual model=$$m $(ARGS); \
	done

reproduce-%: setup data ## run a study (conf/study/<name>.yaml) for MODELS through Hydra's multirun, then that study's tables and figures (LAUNCHER=basic|local|slurm|submitit; one wave per stage)
	@status=0; \
	$(PY) -m bench.study run $(subst -,_,$*) $(if $(filter command line environment,$(origin MODELS)),--models $(MODELS),) --launcher $(LAUNCHER) $(ARGS) || status=$$?; \
	$(PY) -m bench.tables --study $(subst -,_,$*) $(TABLE_FILTERS) && $(PY) -m bench.tables.figures --study $(subst -,_,$*) $(TABLE_FILTERS) || status=1; \
	exit $$status

status-%: setup ## list done / missing / failed runs of a study for MODELS (nothing runs)
	$(PY) -m bench.study status $(subst -,_,$*) $(if $(filter command line environment,$(origin MODELS)),--models $(MODELS),) $(ARGS)

figures: setup ## rebuild results/figures/ (PDF + PNG) from results/runs/ (conf/figures/*.yaml; filters: MODELS=a,b TAGS=smoke,none)
	$(PY) -m bench.tables.figures $(TABLE_FILTERS)

check-learning: setup data ## real learning check: CLS fine-tuning of all-MiniLM-L6-v2 on RTE beats every constant prediction on val (tens of minutes, CPU)
	BENCH_REAL=1 $(PY) -m pytest -q -s -m realmodel tests/test_real_learning.py

bench-pretrain: setup ## mini-model pretraining step time: selected-position output layer + bf16 autocast vs plain fp32
	$(PY) -m bench.bench_pretrain --recipe mini-bert
	$(PY) -m bench.bench_pretrain --recipe mini-gpt2 --vocab 27118

bench: setup data ## speed at the papers' model sizes (random weights): LAMA eval, P-Tuning vs PEFT, PET step, each / its baseline (BENCH_SIZE=small|default|paper|names, BENCH_DEVICE=cpu|cuda)
	TQDM_DISABLE=1 $(PY) -m bench.speed --size $(BENCH_SIZE) --device $(BENCH_DEVICE) $(BENCH_ARGS)
	TQDM_DISABLE=1 $(PY) -m bench.speed.joint --model $(BENCH_MODEL) --device $(BENCH_DEVICE)

bench-joint: setup data ## P-Tuning's LAMA study (every relation, fixed epochs) trained jointly vs one relation after another, same model, one process (BENCH_MODEL, plus random-weight shapes: mini-bert on CPU, the paper shapes and the joint step's share of the matmul peak on CUDA); BENCH_ARGS='--repeats 3 --threads 1'
	TQDM_DISABLE=1 $(PY) -m bench.speed.joint --model $(BENCH_MODEL) --device $(BENCH_DEVICE) $(BENCH_ARGS)

bench-lama: setup data ## LAMA evaluation facts/s vs a plain one-fact loop (identical predictions checked) and P-Tuning steps/s
	$(PY) -m bench.bench_lama --model $(BENCH_MODEL) $(BENCH_ARGS)

bench-autoprompt: setup data ## one AutoPrompt search iteration: all candidates in one pass vs the reference's pass per candidate (same candidates checked; BENCH_DEVICE, BENCH_ARGS='--model tiny-bert')
	TQDM_DISABLE=1 $(PY) -m bench.search.speed --device $(BENCH_DEVICE) $(BENCH_ARGS)

# tables/figures filter records only when MODELS / TAGS are given (TAGS=none: untagged records)
TABLE_FILTERS = $(if $(filter command line environment,$(origin MODELS)),--models $(MODELS),) $(if $(TAGS),--tags $(TAGS),)
tables: setup ## rebuild results/tables/ (Markdown, LaTeX, CSV) from results/runs/ (conf/tables/*.yaml; filters: MODELS=a,b TAGS=smoke,none)
	$(PY) -m bench.tables $(TABLE_FILTERS)

clean: ## remove built tables, figures and Hydra logs (keeps run records, data and .venv)
	rm -rf results/tables results/figures results/logs
