# Two commands set everything up on a fresh machine (see README.md):
#   make demo   - create .venv, install sredge, upscale a demo clip with the bundled default model (CPU)
#   make test   - create .venv, install sredge with the test tools, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-out

.PHONY: demo test gpu-check clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[export,dev,openvino]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m sredge.demo $(DEMO_OUT)

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --durations=15

# On a machine with an NVIDIA GPU (and a CUDA build of torch): PyTorch on CUDA vs the CPU golden outputs,
# and the TensorRT backend's pinned/double-buffered copies through cuda-python. See tools/gpu_check.py.
gpu-check: $(VENV)/.installed
	$(PY) tools/gpu_check.py --report gpu_check.json

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
