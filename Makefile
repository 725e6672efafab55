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

# Largest upload per file in MB: big on this machine, smaller when shared (the app then also asks
# for a secret, and limits jobs per browser session: see docs/dashboard.md).
ifeq ($(HOST),localhost)
UPLOAD_MB ?= 4096
else
UPLOAD_MB ?= 500
endif

# dashboard/serve.py = dashboard/app.py served with compressed bundles and a warm start.
demo: setup
	$(PY) -m decoding demo-data --out data/demo --if-missing
	NLP4NEURO_SHARED_UPLOAD_MB=$(UPLOAD_MB) $(PY) -m streamlit run dashboard/serve.py \
		--server.address $(HOST) --server.port $(PORT) --server.maxUploadSize $(UPLOAD_MB) \
		--browser.gatherUsageStats false

test:
	scripts/setup.sh --test
	tmp=$$(mktemp -d) && NLP4NEURO_CACHE=$$tmp/cache NLP4NEURO_SCREENSHOTS=$$tmp/screenshots $(PY) -m pytest -q

lint:
	.venv/bin/ruff check decoding dashboard tests bench

bench: setup
	for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f; done
