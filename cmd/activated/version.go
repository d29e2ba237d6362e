package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time (make build, make deb):
//
//	-ldflags "-X main.version=1.2.0 -X main.commit=0123abc"
//
// Without them, the module version (go install …@v1.2.0) and the VCS
// stamp of the build are used when the binary carries them.
var version, commit = "dev", ""

// buildInfo returns the version and commit this binary was built from.
func buildInfo() (v, c string) {
	v, c = version, commit
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v, c
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if c == "" {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				c = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if c != "" && dirty {
			c += "-dirty"
		}
	}
	return v, c
}

// versionString is the version alone (activated_build_info's label).
func versionString() string {
	v, _ := buildInfo()
	return v
}

func printVersion(w io.Writer) {
	v, c := buildInfo()
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(w, "activated %s\ncommit %s\n%s %s/%s\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
