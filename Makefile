# disclosure-mx — the two commands: `make run` and `make test`.
CONFIG ?=
CARGO ?= cargo

.PHONY: run test bench build deb fuzz

run:
	bash deploy/system-deps.sh run
	# The dev identity provider lets a newcomer sign in at
	# http://127.0.0.1:8080 (loopback only, labelled on every page).
	$(CARGO) run --release -- serve --dev-idp $(if $(CONFIG),--config $(CONFIG))

test:
	bash deploy/system-deps.sh test
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	# Every suite on SQLite (the default store), the browser tests in
	# headless Chromium and the real identity provider (SimpleSAMLphp)
	# among them; the shared-database test and then the storage, intake,
	# receipt, archive, audit, API, sign-in, logout, interface, conversation, search and
	# hostile-mail suites again on a throwaway PostgreSQL server.
	bash deploy/with-postgres.sh sh -c '\
	  $(CARGO) test --lib --bins --tests && \
	  DISCLOSURE_MX_TEST_BACKEND=postgres $(CARGO) test --test e2e_durability --test e2e_intake --test e2e_receipts --test e2e_archives --test e2e_plaintext --test e2e_at_rest --test e2e_audit --test e2e_api --test e2e_webhooks --test e2e_saml --test e2e_simplesamlphp --test e2e_logout --test e2e_web --test e2e_hostile --test e2e_poison --test e2e_parity --test e2e_conversation --test e2e_search --test e2e_sla --test e2e_feedback --test e2e_clocks --test e2e_retention --test e2e_openpgp --test e2e_sender_auth --test e2e_backup --test e2e_rotation --test e2e_tlsrpt'
	bash deploy/smoke-run.sh
	# The .deb from the smoke run's release binary: installed with dpkg,
	# run by a real systemd with the packaged unit, then purged.
	bash deploy/test-package.sh

# Throughput, latency and memory against Postfix, Exim and Haraka in the
# same run (peers installed by benches/peers/install.sh), on SQLite and
# PostgreSQL (a throwaway cluster); sign-in
# latency; the workspace over 100,000 seeded cases; retention and erasure
# over 10,000.
bench:
	bash deploy/system-deps.sh bench
	bash benches/peers/install.sh
	ulimit -Sn "$$(ulimit -Hn)"; bash deploy/with-postgres.sh $(CARGO) bench --bench smtp_load
	bash benches/signin.sh
	bash benches/workspace.sh
	bash benches/retention.sh

build:
	$(CARGO) build --release

# target/debian/disclosure-mx_<version>-1_<arch>.deb (cargo-deb).
deb: build
	bash deploy/package.sh

# Coverage-guided fuzzing of the parsers of hostile input (cargo-fuzz;
# libFuzzer needs nightly features, which RUSTC_BOOTSTRAP unlocks on the
# stable toolchain). Inputs up to 1 MiB; no single allocation may exceed
# the parse budget (256 MiB) and no input may take longer than it (2 s).
# The whole fuzzer process gets 512 MiB: libFuzzer keeps its corpus in the
# same process. AddressSanitizer only where C code runs (xmlsec, for
# saml_response, saml_logout); the other targets are Rust and run 3-5x
# faster without.
FUZZ_TARGET ?= smtp_session
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 1048576
FUZZ_MALLOC_MB ?= 256
FUZZ_RSS_MB ?= 512
FUZZ_TIMEOUT ?= 2
FUZZ_SANITIZER ?= $(if $(filter saml_response saml_logout,$(FUZZ_TARGET)),address,none)
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	python3 fuzz/make-seeds.py
	mkdir -p fuzz/corpus/$(FUZZ_TARGET)
	seeds=fuzz/seeds/$(FUZZ_TARGET); [ -d "$$seeds" ] || seeds=; \
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s $(FUZZ_SANITIZER) $(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET) $$seeds -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -malloc_limit_mb=$(FUZZ_MALLOC_MB) \
	  -rss_limit_mb=$(FUZZ_RSS_MB) -timeout=$(FUZZ_TIMEOUT)
