# Two commands set up and check everything on a fresh machine: `make demo`, `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch (this pin resolves to the local CPU wheel; elsewhere PyPI's).
	$(BIN)/pip install -q torch==2.13.0
	# FaceMesh + SelfieSegmentation models ship inside this wheel; its own deps are not needed.
	$(BIN)/pip install -q --no-deps mediapipe==0.10.21
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/talkinghead demo -o demo

# The live page's browser test drives Debian's chromium (installed here where missing; never downloaded by playwright).
CHROMIUM := $(shell command -v chromium || command -v chromium-browser)

test: $(STAMP)
ifeq ($(CHROMIUM),)
	-(apt-get install -y -q chromium >/dev/null 2>&1 || sudo -n apt-get install -y -q chromium >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) || true
endif
	$(BIN)/python -m pytest -q tests

# The fast lane (under two minutes): everything but the tests that train engines, prepare whole videos, serve or
# drive a browser (marked slow).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

clean:
	rm -rf $(VENV) demo out
