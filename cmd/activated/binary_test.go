package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The production binary carries no test code: no package it is built from
// imports testing. The demo's slapd comes from internal/slapd, whose test
// helper lives apart in internal/slapd/slapdtest. (`make build` checks the
// built binary itself with go tool nm.)
func TestBinaryLinksNoTestingPackage(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on the PATH (install Go 1.26.8 or later): %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(l, ": ")
		for _, imp := range strings.Fields(imports) {
			if imp == "testing" || strings.HasPrefix(imp, "testing/") {
				t.Errorf("%s imports %s: the binary would link it", pkg, imp)
			}
		}
	}
}
