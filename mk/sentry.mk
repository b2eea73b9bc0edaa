# sentry: the application kernel's packages.
FUZZTIME ?= 60s

.PHONY: test-sentry fuzz-loader

test-sentry: ## the sentry's tests (needs gcc and libc6-dev)
	$(GO) test -count=1 ./sentry/...

fuzz-loader: ## fuzz the ELF parser and the #! parser (FUZZTIME each, default 60s)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./sentry/loader
	$(GO) test -run '^$$' -fuzz '^FuzzParseInterpreterLine$$' -fuzztime $(FUZZTIME) ./sentry/loader
