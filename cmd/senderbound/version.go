package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// buildVersion describes the running binary from its embedded build
// information: the module version ("(devel)" for a build from a checkout),
// the VCS revision and commit time when the build recorded them, whether the
// work tree had uncommitted changes, and the Go toolchain.
type buildVersion struct {
	Module   string
	Version  string
	Revision string
	Time     string
	Modified bool
	Go       string
}

// readBuildVersion extracts a buildVersion from info; a nil info (a binary
// built without module support) yields "unknown" fields.
func readBuildVersion(info *debug.BuildInfo) buildVersion {
	v := buildVersion{Module: "github.com/senderbound/senderbound", Version: "unknown", Go: "unknown"}
	if info == nil {
		return v
	}
	v.Go = info.GoVersion
	if info.Main.Path != "" {
		v.Module = info.Main.Path
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// write prints v as one line: "senderbound VERSION (REVISION[, modified],
// TIME) GO".
func (v buildVersion) write(w io.Writer) {
	fmt.Fprintf(w, "senderbound %s", v.Version)
	if v.Revision != "" {
		fmt.Fprintf(w, " (%s", v.Revision)
		if v.Modified {
			fmt.Fprint(w, ", modified")
		}
		if v.Time != "" {
			fmt.Fprintf(w, ", %s", v.Time)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, " %s\n", v.Go)
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "version")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	info, _ := debug.ReadBuildInfo()
	readBuildVersion(info).write(e.stdout)
	return nil
}
