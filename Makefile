# Chapter 14, Containerisation: build the book and run the tests.
# `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Tool config and cache folders are pointed inside the project by the package
# (containerlab.config.isolated_environment); these two are used before it exists.
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export UV_CACHE_DIR := $(CURDIR)/.cache/uv

.PHONY: help env engine images book test lock clean bench exercises lab

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/course.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python >= 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements/course.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

env: $(VENV)/.installed ## create .venv from the course lockfile

engine: ## make sure a Docker engine answers (installs one on Debian/Ubuntu as root)
	@bash scripts/ensure-engine.sh

images: env engine ## make sure the base images exist (pull, or build stand-ins offline)
	$(BIN)/containerlab images

book: images ## build the book into _build/html, executing every notebook
	$(BIN)/containerlab book

# The graded corpus's grading starts first, on a grading engine of its own (tests/corpus_grading.py):
# it uses the core the book's page runs leave idle, and pytest takes it over.
test: images ## run the whole test suite (builds the book first)
	$(BIN)/python tests/corpus_grading.py start
	$(BIN)/containerlab book || { $(BIN)/python tests/corpus_grading.py stop; exit 1; }
	$(BIN)/pytest tests --durations=25

bench: images ## print measured build times, image sizes and class grading speed (benchmarks/)
	$(BIN)/python benchmarks/layers.py
	$(BIN)/python benchmarks/sizes.py
	$(BIN)/python benchmarks/book.py
	$(BIN)/python benchmarks/grading.py
	$(BIN)/python benchmarks/class_tools.py

lock: ## re-pin requirements/course.lock and every image's requirements.txt
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --quiet -o requirements/course.lock
	for req in $$(find docker solutions -name requirements.in 2>/dev/null); do \
	  $(BIN)/uv pip compile "$$req" --universal --python-version 3.13 --no-header --quiet -o "$${req%.in}.txt"; \
	done

# The students' JupyterLab: Jupyter's own folders inside the project, not the home folder, and the
# course's config folder first on the config path: it hides nbgrader's instructor tools and the news
# pop-up (src/containerlab/student_lab/). LAB_ARGS adds options (tests: port, token, root folder).
LAB_DIRS ?= $(CURDIR)/.cache/lab
LAB_ARGS ?=
lab: env ## open the exercises in JupyterLab (the server runs from the repository root, for nbgrader; its terminals find containerlab)
	PATH="$(CURDIR)/$(BIN):$$PATH" JUPYTER_CONFIG_PATH=$(CURDIR)/src/containerlab/student_lab JUPYTER_CONFIG_DIR=$(LAB_DIRS)/config \
	  JUPYTER_DATA_DIR=$(LAB_DIRS)/data JUPYTER_RUNTIME_DIR=$(LAB_DIRS)/runtime IPYTHONDIR=$(LAB_DIRS)/ipython \
	  MPLCONFIGDIR=$(LAB_DIRS)/matplotlib \
	  $(BIN)/jupyter lab --LabApp.default_url=/lab/tree/exercises/ch14 $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

exercises: env ## regenerate the student versions exercises/ch14 from solutions/ch14 (nbgrader)
	$(BIN)/containerlab exercises generate

clean: ## remove the built book and caches (keeps .venv and images)
	rm -rf _build .cache
