# Two commands do everything: `make demo` (the main job on the bundled demo) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed-stamp

.PHONY: demo test check lab bench clean llama-server postgresql

# Extra arguments for `make lab`, e.g. LAB_ARGS="--port 8899 --no-browser"
LAB_ARGS ?=

demo: $(STAMP)
	$(BIN)/workbench weekly --out reports

test: $(STAMP) llama-server postgresql
	$(BIN)/python -m pytest

# llama.cpp's llama-server and SmolLM2 for the real_model tests: built once per machine
# (about 6 minutes) into ~/.cache/workbench/llama, then a no-op
llama-server: $(STAMP)
	@$(BIN)/python scripts/llama_server.py --check >/dev/null 2>&1 || command -v cmake >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ make) >/dev/null; \
	  fi; }
	$(BIN)/python scripts/llama_server.py

# Debian's postgresql for the tests that run the store on a real PostgreSQL server
# (tests/pg.py starts a throwaway cluster from its initdb and pg_ctl): installed when missing
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null; \
	  else echo "note: install Debian's postgresql package (apt-get install postgresql) for tests/test_store_pg.py"; fi; }

check: $(STAMP)
	$(BIN)/ruff check workbench tests benchmarks notebooks
	$(BIN)/ruff format --check workbench tests benchmarks notebooks
	$(BIN)/mypy

lab: $(STAMP)
	@# Jupyter refuses to run as root unless told; in a container root is the usual user
	$(BIN)/jupyter lab notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_runner.py

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("workbench needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	@# pip's own chatter goes to a log, shown only when the install fails
	@echo "installing workbench and its dependencies into $(VENV) (log: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]'; } \
	  > $(VENV)/install.log 2>&1 || { tail -n 40 $(VENV)/install.log; exit 1; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)" >/dev/null
	@# Debian's chromium, for the tests that open published reports as a reader would
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	  else echo "note: install Debian's chromium package to run the browser tests"; fi; }
	touch $(STAMP)

clean:
	rm -rf $(VENV) reports .pytest_cache .mypy_cache .ruff_cache
