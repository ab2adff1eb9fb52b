# Two commands set everything up on a fresh machine (see README.md):
#   make demo   - create .venv-demo with the core install only (no torch), upscale a demo clip and a still with
#                 the bundled default model on the CPU, and print where the comparison image and the video are
#   make test   - create .venv, install sredge with the test tools, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_VENV ?= .venv-demo
DEMO_PY := $(DEMO_VENV)/bin/python
DEMO_OUT ?= demo-out
# PyPI's torch for Linux x86-64 is the CUDA build (several GB with its nvidia-* packages). Where no CPU wheel is at hand
# (this project's machines keep one in pip's find-links), name PyTorch's CPU index:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
# pip then takes torch 2.13.0+cpu for the 2.13.0 pin (a local version matches it and sorts above it).
TORCH_INDEX ?=

.PHONY: demo test gpu-check clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) \
		-e ".[export,dev,openvino]"
	touch $@

# The demo runs on the core runtime (numpy, OpenCV, ONNX, ONNX Runtime, PyAV: about 470 MB installed), not the test
# environment (torch, OpenVINO, pytest).
$(DEMO_VENV)/.installed: pyproject.toml constraints.txt
	@echo "demo: creating $(DEMO_VENV) with the core install (numpy, OpenCV, ONNX, ONNX Runtime, PyAV; no torch)"
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_PY) -m pip install --quiet --progress-bar off -c constraints.txt -e .
	touch $@

demo: $(DEMO_VENV)/.installed
	$(DEMO_PY) -m sredge.demo $(DEMO_OUT)

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --durations=15

# On a machine with an NVIDIA GPU (and a CUDA build of torch): PyTorch on CUDA and sr-run's TensorRT backend (real
# cuda-python, a stand-in engine) vs the CPU's outputs. See tools/gpu_check.py and docs/tensorrt.md.
gpu-check: $(VENV)/.installed
	$(PY) -m pip install --quiet "cuda-python>=12"
	$(PY) tools/gpu_check.py --report gpu_check.json

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(DEMO_OUT) .pytest_cache
