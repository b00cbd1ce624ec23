package main

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuildVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "senderbound unknown unknown\n"},
		{"checkout build without VCS", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/senderbound/senderbound", Version: "(devel)"}}, "senderbound (devel) go1.26.0\n"},
		{"tagged module", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/senderbound/senderbound", Version: "v1.2.3"}}, "senderbound v1.2.3 go1.26.0\n"},
		{"VCS revision, clean", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "false"},
		}}, "senderbound (devel) (0123abcd, 2026-12-01T10:00:00Z) go1.26.0\n"},
		{"VCS revision, modified", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
		}}, "senderbound (devel) (0123abcd, modified) go1.26.0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			readBuildVersion(tt.info).write(&b)
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("test binary has no build info")
	}
	var want bytes.Buffer
	readBuildVersion(info).write(&want)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, args)
		if code != 0 || stdout.String() != want.String() || stderr.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0, %q", args, code, stdout.String(), stderr.String(), want.String())
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &stderr}, []string{"version", "extra"}); code != 2 {
		t.Errorf("version with an argument: exit %d, want 2", code)
	}
}
