# The two commands a new user runs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A pinned torch takes the CPU build on this project's machines and keeps a fresh install fast;
# GPU users: see README, "GPU".
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.mofn2logic-installed
SYSTEM_TOOLS := swipl:swi-prolog-nox dot:graphviz
BROWSER_TOOLS := chromium:chromium
FAST := -m "not slow and not browser"

.PHONY: demo demo-tabular test test-slow lint ci setup system clean bench paper gpu

demo: setup
	$(BIN)/mofn2logic demo -o demo-out

# The tabular example: a scikit-learn MLP on breast cancer, its 30 features and 2 classes named.
demo-tabular: setup
	$(BIN)/mofn2logic demo --tabular -o demo-tabular-out

# The fast suite: no browser, no package builds.
test: setup
	$(BIN)/python -m pytest -q $(FAST)

# The second step of CI: the report in headless Chromium, wheel and editable installs.
test-slow: setup
	@$(MAKE) --no-print-directory system SYSTEM_TOOLS="$(BROWSER_TOOLS)"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test-slow]'
	$(BIN)/python -m pytest -q -m "slow or browser"

lint: setup
	$(BIN)/pip install -q --disable-pip-version-check -e '.[lint]'
	$(BIN)/ruff check .
	$(BIN)/mypy

# What .ci/run does: lint, the fast suite, then the slow and browser tests.
ci: lint test test-slow

setup: system $(STAMP)

# System programs the toolkit runs (SWI-Prolog, Graphviz): installed with apt when missing and
# running as root, otherwise a one-line instruction (the tests that need them then fail in CI,
# skip elsewhere). `test-slow` adds Chromium for the report's browser test.
system:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "mofn2logic: missing system packages; install them with: sudo apt-get install$$missing"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH)"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Replace the CPU onnxruntime by the GPU build (never both: they share one import folder).
gpu: setup
	$(BIN)/pip uninstall -y onnxruntime
	$(BIN)/pip install -q onnxruntime-gpu

# Benchmarks (not CI): the search against the plain method, full extraction, verify per engine.
bench: setup
	$(BIN)/python benchmarks/bench_search.py
	test -f benchmarks/_work/mnist_cnn_relu.onnx || (cd benchmarks && ../$(BIN)/python train_mnist_cnn.py)
	$(BIN)/python benchmarks/bench_extract.py
	$(BIN)/python benchmarks/bench_verify.py

# The paper's experiments on MNIST (../shared/data/mnist); writes benchmarks/paper/RESULTS.md.
paper: setup
	cd benchmarks/paper && ../../$(BIN)/python reproduce.py

clean:
	rm -rf $(VENV) build dist *.egg-info demo-out demo-tabular-out
