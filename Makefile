# Two commands on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   install everything, then run vaudit on the shipped samples
#   make test   install everything, then run the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := ffmpeg fonts-noto-cjk chromium chromium-driver postgresql

.PHONY: setup system-deps demo test bench lint clean

system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || missing="$$missing fonts-noto-cjk"; \
	command -v chromium >/dev/null || missing="$$missing chromium chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(BIN)/vaudit: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: these wheels are the CPU-capable builds available on this machine
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[web,export,test]'
	touch $(BIN)/vaudit

setup: system-deps $(BIN)/vaudit

demo: setup
	$(BIN)/vaudit demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/pipeline.py

lint:
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/python -m pipeline.configdoc --check

clean:
	rm -rf vaudit-workspace .pytest_cache
