# samlora: environment setup, demo and tests.
#   make demo   set up .venv (if needed) and run the CPU demo through Snakemake
#   make test   set up .venv (if needed) and run every test that needs no GPU (incl. slow; CI)
#   make test-fast   the same without the tests marked slow (>= 10 s each)
# Setup follows the toolchain recipe: torch + torchvision first, then the rest with
# SAM2_BUILD_CUDA=0 and --no-build-isolation (sam2 ships an sdist that would otherwise try
# to build a CUDA extension against a second copy of torch).

PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.samlora-installed
CORES  ?= 2

.PHONY: venv chromium jemalloc demo test test-fast test-all bench clean-demo

venv: $(STAMP)

$(STAMP): requirements.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1"
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	SAM2_BUILD_CUDA=0 $(BIN)/pip install --quiet --no-build-isolation \
		-c requirements.lock -r requirements.txt
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

demo: venv
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake all --profile workflow/profiles/local \
		--cores $(CORES) --configfile params.yaml presets/demo.yaml

# The browser test (tests/reporting/test_browser.py, marker `browser`) opens the rendered
# reports in Debian's headless Chromium; installed here when missing (needs root, as in CI).
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		chromium chromium-driver; }

# The speed benchmark compares allocators; jemalloc comes from Debian's libjemalloc2.
jemalloc:
	@/sbin/ldconfig -p | grep -q 'libjemalloc\.so\.2 ' || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libjemalloc2; }

test: venv chromium jemalloc
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -m "not gpu" -q --durations=10

test-fast: venv
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -m "not gpu and not slow" -q --durations=10

test-all: venv
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -q

bench: venv jemalloc
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_train_step.py --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_prepare.py --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_methods.py --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_dag.py --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_metrics.py --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_cache.py --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_cost.py --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_speed.py --size 1024 --pairs 2 \
		--rounds 2 --variants chunked sdpa bf16 --allocators auto hugepages glibc-thresholds \
		--allocator-variant chunked --peak samlora chunked --predict samlora chunked \
		--out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_speed.py --method sam2lora \
		--backbone sam2_hiera_t --size 1024 --pairs 2 --rounds 2 --variants bf16 --allocators auto \
		--predict samlora --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_speed.py --backbone litemedsam \
		--size 256 --variants tinyvit tinyvit+bf16 --allocators auto --allocator-variant tinyvit \
		--predict samlora tinyvit --out benchmarks/results.json
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_speed.py --size 512 --pairs 3 \
		--variants compile --allocators --out benchmarks/results.json
