# activated — the two commands of the README: `make demo` and `make test`.
# Both install what they need on a Debian machine (as root) first.
# `make deb` builds the Debian package (dist/activated_<version>_<arch>.deb).
GO ?= go
PKGS := slapd ldap-utils openssh-client 389-ds-base systemd

# The version: the latest vX.Y.Z tag (git describe), else 0.0.0~git<date>.<commit>.
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo $${v\#v} || echo 0.0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null).$(COMMIT))
ARCH := $(shell $(GO) env GOARCH)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB := dist/activated_$(VERSION)_$(ARCH).deb

.PHONY: deps demo test build fuzz bench load deb deb-check

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
	$(GO) build -ldflags "$(LDFLAGS)" -o activated ./cmd/activated
	@if $(GO) tool nm activated | grep -q ' testing\.'; then \
		echo "activated links the testing package:"; $(GO) tool nm activated | grep ' testing\.' | head; exit 1; fi

demo: deps build
	./activated demo

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# deb: a static binary and nfpm (run from the module proxy, not vendored).
deb:
	mkdir -p dist
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o dist/activated ./cmd/activated
	VERSION=$(VERSION) ARCH=$(ARCH) $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p deb -t $(DEB)
	@echo "built $(DEB)"

# deb-check: the package holds what the README says, its unit passes
# systemd-analyze verify, and its exposure level is printed.
deb-check: deb
	packaging/check-deb.sh $(DEB)

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
