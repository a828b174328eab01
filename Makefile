# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 is the CPU build this workplace keeps on local disk; any other spec pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test model paper-table bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[export,bench,dev]"
	touch $(STAMP)

# The Sports2D walking clip (BSD-3-Clause, see NOTICE): the demo's input and the runtime's end-to-end test clip.
DEMO_CLIP := .cache/demo.mp4

$(DEMO_CLIP): | $(STAMP)
	mkdir -p .cache
	$(BIN)/pip download -q --no-deps sports2d==0.8.34 -d .cache/
	$(BIN)/python -c "import zipfile; z = zipfile.ZipFile('.cache/sports2d-0.8.34-py3-none-any.whl'); \
		open('$(DEMO_CLIP).part', 'wb').write(z.read('Sports2D/Demo/demo.mp4'))"
	mv $(DEMO_CLIP).part $(DEMO_CLIP)

demo: $(STAMP) $(DEMO_CLIP)
	$(BIN)/python -m cpgait.demo

test: $(STAMP) $(DEMO_CLIP)
	$(BIN)/python -m pytest -q

# Speed of the reference model on every backend (unavailable ones listed with the reason) and of the live loop on
# the demo clip, written to bench/results/ (JSON + markdown + PNG; the commands are in bench/results/README.md).
BENCH_OUT := bench/results
bench: $(STAMP) $(DEMO_CLIP)
	$(BIN)/cpgait-bench model reference --batch 1 --threads 1,2 --seconds 4 --overwrite \
		--json $(BENCH_OUT)/model-cpu.json --md $(BENCH_OUT)/model-cpu.md --png $(BENCH_OUT)/model-cpu.png
	$(BIN)/cpgait-bench pipeline $(DEMO_CLIP) --model reference --overwrite \
		--json $(BENCH_OUT)/pipeline-cpu.json --md $(BENCH_OUT)/pipeline-cpu.md --png $(BENCH_OUT)/pipeline-cpu.png
	$(BIN)/cpgait-bench pipeline $(DEMO_CLIP) --model reference --live --overwrite \
		--json $(BENCH_OUT)/pipeline-live-cpu.json --md $(BENCH_OUT)/pipeline-live-cpu.md \
		--png $(BENCH_OUT)/pipeline-live-cpu.png

clean:
	rm -rf $(VENV) build *.egg-info
