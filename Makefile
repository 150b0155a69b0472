# disclosure-mx — the two commands: `make run` and `make test`.
CONFIG ?=
CARGO ?= cargo

.PHONY: run test bench build lint

run:
	bash deploy/system-deps.sh run
	$(CARGO) run --release -- serve $(if $(CONFIG),--config $(CONFIG))

test:
	bash deploy/system-deps.sh test
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

# Throughput, latency and memory against Postfix in the same run.
bench:
	bash deploy/system-deps.sh bench
	ulimit -Sn "$$(ulimit -Hn)"; $(CARGO) bench --bench smtp_load

build:
	$(CARGO) build --release
