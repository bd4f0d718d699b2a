# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Test processes (pytest-xdist). Most of the suite's time is waiting on real Celery
# workers, SMTP servers and browsers, not CPU, so three share two cores well; every
# process gets its own PostgreSQL database, Redis database and ports (tests/conftest.py,
# tests/services.py). PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 3

.PHONY: install messages demo test lint serve bench bench-quick faults clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# gettext catalogs: .po is the source (translators edit it), .mo is built at install.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard engine/locale/*/LC_MESSAGES/*.po channels/locale/*/LC_MESSAGES/*.po))
%.mo: %.po $(STAMP)
	@$(VENV)/bin/pybabel compile -i $< -o $@ 2>/dev/null

messages: install
	$(PY) -m scripts.messages

install: $(STAMP) $(MO_FILES)

demo: install
	$(VENV)/bin/umkm demo

test: install
	@bash scripts/ensure-system-deps.sh
	@mkdir -p var/test-logs
	$(PY) -m pytest -m "not slow" -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS) --log-file=var/test-logs/pytest.log --log-file-level=DEBUG
	$(PY) -m tests.check_logs var/test-logs

# The fault and abuse suite in full (docs/reliability.md): the long cases (marked slow),
# ten times more hypothesis examples, and the real-worker/Redis faults.
faults: install
	@bash scripts/ensure-system-deps.sh
	@mkdir -p var/test-logs
	HYPOTHESIS_PROFILE=faults-long $(PY) -m pytest -q tests/faults tests/delivery/test_workers_integration.py -m "slow or not slow" $(PYTEST_ARGS) --log-file=var/test-logs/faults.log --log-file-level=DEBUG
	$(PY) -m tests.check_logs var/test-logs

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy engine channels workers web tests scripts

serve: install
	$(VENV)/bin/umkm serve

# End-to-end throughput (docs/performance.md): a personalized, DKIM-signed campaign
# through two real Celery workers into Postfix's smtp-sink, against raw smtplib.
# Needs PostgreSQL on 127.0.0.1:5432 and redis-server; BENCH_ARGS adds options.
BENCH_ARGS ?=
bench: install
	@bash scripts/ensure-system-deps.sh --bench
	$(PY) bench/e2e.py --recipients 100000 $(BENCH_ARGS)

# Everyday check (10,000 recipients): prints the table, keeps docs/performance.md as is.
bench-quick: install
	@bash scripts/ensure-system-deps.sh --bench
	$(PY) bench/e2e.py --recipients 10000 --output bench/results/quick.json --no-doc $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
