# The two commands: `make run` and `make test`. Both install what is missing into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Keep a local Ray on loopback and without token files.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_AUTH_MODE := disabled

RUN_DATA := .ragline
EXAMPLE_QUESTION := How do I use a Qdrant server instead of the embedded engine?
SERVE_PORT ?= 8000

.PHONY: install run test test-fast lint typecheck clean browser

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# torch first, pinned to the CPU build: an unpinned torch pulls several GB of CUDA packages.
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	@# llama-cpp-python compiles from source (a few minutes); a portable build unless CMAKE_ARGS says otherwise.
	@# (-DGGML_NATIVE=ON on a CPU with AMX, llama-cpp-python 0.3.36: a 101-token prompt crashed it;
	@# AVX-512 flags without AMX read prompts no faster than this build.)
	CMAKE_ARGS="$${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/ragline ingest docs --url-template 'docs/{path}' --data-dir $(RUN_DATA)
	$(BIN)/ragline ask "$(EXAMPLE_QUESTION)" --data-dir $(RUN_DATA)
	@echo "(answered without a model; to let a local model write: RAGLINE_LLM__MODEL=qwen2.5-coder-1.5b-instruct, after"
	@echo " $(BIN)/pip install -e '.[qwen-1.5b]'; docs/answers.md compares them)"
	@echo "serving $(RUN_DATA) on http://127.0.0.1:$(SERVE_PORT) (Ray Serve; API docs at /docs; Ctrl-C to stop)"
	$(BIN)/ragline serve --host 127.0.0.1 --port $(SERVE_PORT) --data-dir $(RUN_DATA)

# The web page's test drives Debian's Chromium; install it when we can (root with apt-get), else say how.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: the browser test needs Chromium (Debian/Ubuntu: sudo apt-get install chromium)"; fi; }

test: install browser
	$(BIN)/python -m pytest

# The plumbing alone: no language model, server or Ray (README's "Tests" gives both lanes' times).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) $(RUN_DATA) .pytest_cache
