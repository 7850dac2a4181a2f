# Two commands: `make run` (the server and web app on the bundled model) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test lint bench install install-test system-deps bytecode

EXTRAS := llama,openai,hub,vision,audio,whisper,voice,expressions,embeddings,eval,server,postgres,transformers,train

# llama-cpp-python is built once per machine into a wheel folder outside the checkout. A portable
# x86-64 build (AVX2, no AMX): native builds on AMX-capable CPUs crash in VMs that forbid AMX tiles.
WHEELS ?= $(HOME)/.cache/rolecraft/wheels
LLAMA_VERSION := 0.3.36
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
endif
LLAMA_STAMP := $(WHEELS)/.llama-cpp-python-$(LLAMA_VERSION)

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel

$(LLAMA_STAMP): | $(VENV)/bin/python
	mkdir -p $(WHEELS)
	ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --no-cache-dir --no-deps -w $(WHEELS) \
		llama-cpp-python==$(LLAMA_VERSION)
	touch $@

$(VENV)/.installed: pyproject.toml $(LLAMA_STAMP) | $(VENV)/bin/python
	$(PIP) install -q --find-links $(WHEELS) -e '.[$(EXTRAS)]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q --find-links $(WHEELS) -e '.[$(EXTRAS),test]'
	touch $@

# Debian packages the tests use: espeak-ng (speech), chromium + fonts-noto-cjk (web app; Chinese names), postgresql
# (second database), nginx (load balancer in front of replicas).
system-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing="$$missing nginx"; \
	ls /usr/share/fonts/opentype/noto/NotoSansCJK-* >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
		else echo "missing Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Bytecode for our own modules, as a wheel install has: every process (a CLI call, a server, a test's
# subprocess) then skips compiling them, even where PYTHONDONTWRITEBYTECODE is set (~0.25 s each).
bytecode:
	$(PY) -m compileall -q src

run: install bytecode
	$(VENV)/bin/rolecraft serve

test: install-test system-deps bytecode
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q
	url=$$(scripts/postgres.sh reset) && ROLECRAFT_TEST_DATABASE_URL=$$url \
		$(PY) -m pytest -q tests/test_store.py tests/store tests/server tests/scale/test_shared_limits.py \
		tests/scale/test_replicas.py; \
		status=$$?; scripts/postgres.sh stop; exit $$status

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks scripts

bench: install
	$(PY) benchmarks/decode_speed.py
	$(PY) benchmarks/batched_decode.py
	$(PY) benchmarks/turn_overhead.py
	$(PY) benchmarks/cold_start.py
	$(PY) benchmarks/busy_cpu.py
	$(PY) benchmarks/catchphrase_bias.py
	$(PY) benchmarks/ttft_flat.py
	$(PY) benchmarks/pipeline_overhead.py
	$(PY) benchmarks/long_session.py
	$(PY) benchmarks/perception_speed.py
	$(PY) benchmarks/speech_speed.py
	$(PY) benchmarks/expression_accuracy.py
	$(PY) benchmarks/server_load.py
	$(PY) benchmarks/eval_throughput.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/sampler_speed.py
	$(PY) benchmarks/tool_validity.py
	$(PY) benchmarks/model_catalog.py
	$(PY) benchmarks/scene_latency.py
	$(PY) benchmarks/voice_latency.py
	$(PY) benchmarks/stt_accuracy.py
