# Two commands set everything up on a fresh machine (see README.md):
#   make demo   - create .venv, install sredge, upscale a demo clip with the bundled default model (CPU)
#   make test   - create .venv, install sredge with the test tools, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-out

.PHONY: demo test clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[export,dev,openvino]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m sredge.demo $(DEMO_OUT)

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --durations=15

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
