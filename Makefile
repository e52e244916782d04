# The two commands a newcomer needs:  `make run` (the service on the example city)  and  `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
CONFIG ?= config/wolfsburg.yaml
# The city of the docker-compose stack (what it mounts unless GRIDCOORD_CONFIG says otherwise).
STACK_CONFIG ?= config/production.example.yaml

.PHONY: run demo test lint unit bench clean broker-config docs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## run: set up, then run gridcoord on the example city (embedded store, local mosquitto)
run: $(BIN)/.installed
	bash scripts/ensure-services.sh mosquitto
	$(BIN)/gridcoord run --config $(CONFIG)

## demo: set up, then one simulated day of the demo city, KPIs against uncontrolled charging
## (needs no broker or database server: a local mosquitto binary, installed here when root)
demo: $(BIN)/.installed
	bash scripts/ensure-services.sh mosquitto
	$(BIN)/gridcoord demo --hours 24 --speed 0

## test: set up (venv + Debian services when root), lint, type-check, import contracts, every test
test: $(BIN)/.installed
	bash scripts/ensure-services.sh all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

## unit: the fast tests that need no services
unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

## lint: ruff, mypy and the import contracts (dependencies run one way, see pyproject.toml)
lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports

## broker-config: the production broker's passwd, acl and credentials into config/mosquitto/
## (docker-compose's mount points); passwords kept, `ROTATE=--rotate` replaces them
broker-config: $(BIN)/.installed
	$(BIN)/gridcoord broker-config --config $(STACK_CONFIG) --out config/mosquitto \
	  --broker-dir /mosquitto/config --data-dir /mosquitto/data $(ROTATE)

## docs: regenerate docs/configuration.md, docs/schemas/ and the command reference in docs/cli.md
docs: $(BIN)/.installed
	$(BIN)/python scripts/gen_docs.py

bench: $(BIN)/.installed
	bash scripts/ensure-services.sh all
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/optimizer.py
	$(BIN)/python bench/modbus.py
	$(BIN)/python bench/ocpp.py
	$(BIN)/python bench/broker_autosave.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
