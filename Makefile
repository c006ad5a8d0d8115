# VLA stack: `make demo` runs the simulated robot end to end, `make test` runs the test suite.
# Both install what they need on a fresh Debian 12 / Python 3.11 machine (venv in .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | md5sum | cut -c1-12)
APT_PKGS := libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri libgomp1
# With a sourced ROS 2 install (/opt/ros/<distro>), use its rclpy instead of the PyPI wheels.
ifdef ROS_DISTRO
VENV_FLAGS := --system-site-packages
REQS := <(grep -v '^ros-jazzy-' requirements.txt)
else
VENV_FLAGS :=
REQS := requirements.txt
endif

.PHONY: install apt demo test test-fast bench lint clean colcon

install: $(STAMP)

apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): requirements.txt pyproject.toml | apt
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) -m pip install -r $(REQS)
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*; touch $@

demo: install
	$(VENV)/bin/vla demo "pick up the red mug" --save results/demo

test: install
	@$(PY) -m pytest -q -ra tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests: failing"; fi; exit $$rc

test-fast: install
	$(PY) -m pytest -q -ra -m "not slow" tests

bench: install
	$(VENV)/bin/vla bench --out results

lint: install
	$(VENV)/bin/ruff check src tests launch

colcon: install
	source $(VENV)/bin/activate && colcon build --base-paths src --build-base build --install-base install

clean:
	rm -rf build install log .pytest_cache
