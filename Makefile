# The two commands (see README):
#   make demo   set up, build the demo fish if missing, open the dashboard on it
#   make test   set up (incl. headless Chromium) and run the whole test suite
PY := .venv/bin/python
PORT ?= 8501
# The dashboard listens on this machine only; `make demo HOST=0.0.0.0` shares it on the network.
# (Set with `=`, not `?=`: a HOST in the environment, e.g. zsh's hostname, must not expose it.)
HOST = localhost
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test setup lint bench

setup:
	scripts/setup.sh

demo: setup
	$(PY) -m decoding demo-data --out data/demo --if-missing
	$(PY) -m streamlit run dashboard/app.py --server.address $(HOST) --server.port $(PORT) \
		--browser.gatherUsageStats false

test:
	scripts/setup.sh --test
	tmp=$$(mktemp -d) && NLP4NEURO_CACHE=$$tmp/cache NLP4NEURO_SCREENSHOTS=$$tmp/screenshots $(PY) -m pytest -q

lint:
	.venv/bin/ruff check decoding dashboard tests bench

bench: setup
	for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f; done
