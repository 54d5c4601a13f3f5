# The commands that matter. `make run` runs the main job end to end on a fresh machine;
# `make test` starts the test stack, runs every test against it, and stops it (even on failure).
# uv from PATH, else the private one scripts/bootstrap.sh installs (it prints the path; set UV
# to use another). Computed once per make run.
ifeq ($(origin UV),undefined)
UV := $(shell bash scripts/bootstrap.sh --print-uv)
endif
ifeq ($(strip $(UV)),)
$(error uv is not available and scripts/bootstrap.sh could not install it (see above))
endif
# Commands that look for `uv` by name (e.g. the pgAdmin installer) find the same one.
ifneq ($(filter /%,$(UV)),)
export PATH := $(patsubst %/,%,$(dir $(UV))):$(PATH)
endif
export UV
TEST_ENV ?= tests/test.env
export HOSPITAL_TEST_ENV := $(abspath $(TEST_ENV))
DAYS ?= 7
LAKE ?= lake

.PHONY: setup run test test-unit lint format typecheck stack-up stack-down stack-status bench clean

setup:  ## system tools (scripts/bootstrap.sh), Python deps (uv.lock), Kafka/Debezium jars
	bash scripts/bootstrap.sh >/dev/null
	$(UV) sync --frozen
	$(UV) run hospital stack setup

# The main job: the `demo` profile (5,000,000 people, 14 simulated days at max speed) through
# every path with supervised workers, then the reconciliation report; the dashboard and pgAdmin
# stay up. Re-running continues the simulation where it stopped. PROFILE=walkthrough etc.
PROFILE ?= demo
run: setup  ## main job: stack up, `hospital run` (workers, live progress, report), dashboard + pgAdmin
	$(UV) run hospital stack up
	$(UV) run hospital run --profile $(PROFILE) --dashboard

.PHONY: stop
stop:  ## stop everything `make run` started: workers, dashboard, pgAdmin, then the stack
	$(UV) run hospital stack down

# The test stack's variables go to `stack up/down` only: pytest reads tests/test.env itself, and
# unit tests must see a clean environment.
TEST_STACK = set -a && . $(HOSPITAL_TEST_ENV) && set +a && $(UV) run hospital stack

test: setup  ## all tests (unit + integration) against the real test stack
	@($(TEST_STACK) up); up=$$?; \
	if [ $$up -eq 0 ]; then $(UV) run pytest; rc=$$?; else rc=$$up; fi; \
	($(TEST_STACK) down); \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; rc=1; fi; \
	exit $$rc

test-unit:  ## tests that need no services
	$(UV) run pytest -m "not integration"

lint:  ## ruff lint + format check + mypy
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run mypy src

format:
	$(UV) run ruff check --fix src tests bench
	$(UV) run ruff format src tests bench

stack-up:
	$(UV) run hospital stack up

stack-down:
	$(UV) run hospital stack down

stack-status:
	$(UV) run hospital stack status

bench:  ## every benchmark; results in bench/results/*.json
	@for b in bench/*.py; do echo "== $$b"; $(UV) run python $$b || exit 1; done

clean:  ## stop stacks and delete their state (data, logs, jars)
	-$(UV) run hospital stack down
	-($(TEST_STACK) down)
	rm -rf .stack .stack-test lake
