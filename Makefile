# activated — the two commands of the README: `make demo` and `make test`.
# Both install what they need on a Debian machine (as root) first.
GO ?= go
PKGS := slapd ldap-utils openssh-client 389-ds-base

.PHONY: deps demo test build fuzz bench load

# deps installs the Debian packages the demo and the tests run against:
# a real slapd, a real 389 Directory Server (the tests start ns-slapd
# themselves: no systemd needed) and OpenSSH's client. /etc/ldap/noslapd keeps the packaged
# slapd service from starting: we run our own, on our own port.
deps:
	@missing=""; for p in $(PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		mkdir -p /etc/ldap && touch /etc/ldap/noslapd; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# build also checks that the binary links no test code (the testing
# package, which the demo's slapd helpers once pulled in).
build:
	$(GO) build -o activated ./cmd/activated
	@if $(GO) tool nm activated | grep -q ' testing\.'; then \
		echo "activated links the testing package:"; $(GO) tool nm activated | grep ' testing\.' | head; exit 1; fi

demo: deps build
	./activated demo

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run XXX -fuzz FuzzNormalizeCode -fuzztime 60s ./flow/

bench:
	$(GO) test -run XXX -bench . -benchmem ./storage/ ./flow/

# load runs cmd/activated-load: activated against a bare wish + bubbletea
# server, interleaved, figures and ratios as a Markdown table (README,
# "Benchmarks"). Minutes long; not part of test. LOAD_FLAGS adds flags,
# e.g. make load LOAD_FLAGS="-idle 1000,10000 -modes idle".
LOAD_FLAGS ?=
load: deps
	$(GO) run ./cmd/activated-load $(LOAD_FLAGS)
