# Two commands set everything up on a fresh machine (see README.md):
#   make demo   - create .venv, install sredge, run the main job
#   make test   - create .venv, install sredge with the test tools, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ASSETS ?= ../shared/assets
DEMO_OUT ?= demo-out

.PHONY: demo test clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[export,dev]"
	touch $@

demo: $(VENV)/.installed
	@test -f "$(ASSETS)/weights/fsrcnn/fsrcnn_x3.pth" || { echo "make demo: no checkpoint at $(ASSETS)/weights/fsrcnn/fsrcnn_x3.pth; run: make demo ASSETS=/path/to/assets" >&2; exit 2; }
	mkdir -p $(DEMO_OUT)
	$(VENV)/bin/sr-export "$(ASSETS)/weights/fsrcnn/fsrcnn_x3.pth" -o $(DEMO_OUT)/fsrcnn_x3.onnx
	@echo "demo output: $(DEMO_OUT)/fsrcnn_x3.onnx"

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --durations=15

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
