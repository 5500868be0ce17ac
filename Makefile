# Two commands do everything on a fresh machine:
#   make run    creates .venv if missing and runs the pipeline on the embedded default data
#   make test   creates .venv if missing and runs the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv run test test-fast bench clean

venv: $(STAMP)

# The whole stack is pinned by constraints.txt so a fresh install resolves the same versions.
# The tests compile the Kubeflow v2 pipeline and run Beam on Dask: they need both extras.
$(STAMP): setup.py constraints.txt
	@test -x $(PY) || "$$(.ci/python310)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,kfp,dask,bench]'
	@touch $@

run: venv
	$(PY) pipeline/local_runner.py $(ARGS)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# On-demand measurements, minutes each: protocols and dated results in benchmarks/README.md.
# One of them: make bench BENCH=data_pipeline ARGS="--repeats 1"
BENCH ?= data_pipeline full_pipeline model_quality
bench: venv
	@for name in $(BENCH); do \
	  echo "== benchmarks/$$name.py $(ARGS)"; $(PY) benchmarks/$$name.py $(ARGS) || exit 1; \
	done

clean:
	rm -rf $(VENV) kiko_home .pytest_cache
