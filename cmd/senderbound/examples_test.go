package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/redistest"
)

// exampleWant is what the last command of each example's header prints on
// standard output when the chain works: the answer of a protected
// resource to a sender-constrained request. A new example must be added
// here, so that its header is run too.
var exampleWant = map[string]string{
	"oauth2-client":         `"binding":"dpop"`,
	"mtls-client":           `"binding":"mtls"`,
	"embedded-issuer":       `"binding":"dpop"`,
	"nethttp-service":       "dpop-bound",
	"echo-service":          `"binding":"dpop"`,
	"grpc-service":          "SERVING, caller orders-app (mtls-bound)",
	"prometheus-metrics":    "hello app (dpop-bound)",
	"authcode-server":       `"binding":"dpop"`,
	"introspection-service": "orders of app (client app, dpop-bound)",
}

// TestExamplesRunAsWritten runs the commands in every example's header
// comment, as written, in a fresh directory: "go run ./cmd/senderbound …"
// in-process, "go run ./examples/NAME …" as the built example. The only
// change is that each loopback port the header or an example's flag
// defaults name is swapped for a free one (and the Redis port for a test
// redis-server), consistently, with the defaults passed as flags; so a
// default that drifts from the header (another port, scope, audience,
// client or file name) fails here. Servers must print "listening on" and
// stop cleanly on SIGINT.
func TestExamplesRunAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the examples (-short)")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the examples")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mains, err := filepath.Glob(filepath.Join(root, "examples", "*", "main.go"))
	if err != nil || len(mains) == 0 {
		t.Fatalf("no examples under %s: %v", root, err)
	}
	bin := t.TempDir()
	build := exec.Command(goTool, "build", "-o", bin+string(os.PathSeparator), "./examples/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, out)
	}
	for _, m := range mains {
		name := filepath.Base(filepath.Dir(m))
		t.Run(name, func(t *testing.T) {
			want, ok := exampleWant[name]
			if !ok {
				t.Fatalf("examples/%s is not in exampleWant: say what its header's last command prints", name)
			}
			src, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			cmds := exampleHeaderCommands(string(src))
			if len(cmds) == 0 {
				t.Fatal("the header comment shows no command to run")
			}
			x := &exampleRun{t: t, bin: bin, vars: map[string]string{}}
			x.mapPorts(cmds)
			t.Chdir(t.TempDir())
			for i, c := range cmds {
				out := x.exec(c)
				if i == len(cmds)-1 && !strings.Contains(out, want) {
					t.Errorf("%s printed %q, want %q", c, out, want)
				}
			}
		})
	}
}

// exampleHeaderCommands returns the shell commands of the example's
// header comment: its lines indented by a tab, with lines ending in "\"
// joined to the next.
func exampleHeaderCommands(src string) []string {
	header, _, _ := strings.Cut(src, "\npackage ")
	var cmds []string
	var cur string
	for _, line := range strings.Split(header, "\n") {
		code, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			continue
		}
		cur += strings.TrimSpace(code)
		if c, cont := strings.CutSuffix(cur, `\`); cont {
			cur = c
			continue
		}
		cmds = append(cmds, cur)
		cur = ""
	}
	return cmds
}

// exampleRun runs the header commands of one example.
type exampleRun struct {
	t     *testing.T
	bin   string            // the built examples
	vars  map[string]string // exported shell variables
	ports map[string]string // loopback HOST:PORT of the header → free one
}

var exampleLoopback = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// mapPorts picks a free port for each loopback address in cmds and in the
// flag defaults of the examples they run; 6379 is a test redis-server.
func (x *exampleRun) mapPorts(cmds []string) {
	x.ports = map[string]string{}
	text := strings.Join(cmds, "\n")
	for _, c := range cmds {
		if name, sub, ok := exampleInvocation(c); ok {
			for _, d := range x.defaults(name, sub) {
				text += "\n" + d
			}
		}
	}
	for _, m := range exampleLoopback.FindAllStringSubmatch(text, -1) {
		if _, done := x.ports[m[0]]; done {
			continue
		}
		if m[1] == "6379" {
			x.ports[m[0]] = redistest.Start(x.t).Addr
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			x.t.Fatal(err)
		}
		x.ports[m[0]] = ln.Addr().String()
		ln.Close()
	}
}

// remap replaces every loopback address of s by its free counterpart.
func (x *exampleRun) remap(s string) string {
	return exampleLoopback.ReplaceAllStringFunc(s, func(a string) string { return x.ports[a] })
}

// exampleInvocation returns NAME and its subcommand SUB, if any, when c
// runs "go run ./examples/NAME [SUB] [-flags]".
func exampleInvocation(c string) (name, sub string, ok bool) {
	f := strings.Fields(c)
	for i, w := range f {
		if n, found := strings.CutPrefix(w, "./examples/"); found {
			if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") && f[i+1] != "&" {
				sub = f[i+1]
			}
			return n, sub, true
		}
	}
	return "", "", false
}

var exampleDefault = regexp.MustCompile(`(?m)^  -(\S+)[^\n]*\n[^\n]*\(default "([^"]*)"\)`)

// defaults returns the flags of the example (or of its subcommand sub)
// whose default names a loopback address, as "-name=value", read from its
// -h output.
func (x *exampleRun) defaults(name, sub string) []string {
	args := []string{"-h"}
	if sub != "" {
		args = []string{sub, "-h"}
	}
	out, _ := exec.Command(filepath.Join(x.bin, name), args...).CombinedOutput()
	var flags []string
	for _, m := range exampleDefault.FindAllStringSubmatch(string(out), -1) {
		if exampleLoopback.MatchString(m[2]) {
			flags = append(flags, "-"+m[1]+"="+m[2])
		}
	}
	return flags
}

var exampleRandHex = regexp.MustCompile(`\$\(openssl rand -hex (\d+)\)`)
var exampleVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// exec runs one header command and returns its standard output.
func (x *exampleRun) exec(c string) string {
	t := x.t
	t.Helper()
	line := exampleRandHex.ReplaceAllStringFunc(c, func(s string) string {
		n, _ := strconv.Atoi(exampleRandHex.FindStringSubmatch(s)[1])
		b := make([]byte, n)
		rand.Read(b)
		return hex.EncodeToString(b)
	})
	line = exampleVar.ReplaceAllStringFunc(line, func(s string) string {
		return x.vars[exampleVar.FindStringSubmatch(s)[1]]
	})
	if strings.ContainsAny(line, "\"'`|;<>$()") {
		t.Fatalf("%q: the test runs plain commands only", c)
	}
	words := strings.Fields(x.remap(line))
	background := words[len(words)-1] == "&"
	if background {
		words = words[:len(words)-1]
	}
	env := map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") && words[0] != "export" {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = v
		words = words[1:]
	}
	if len(words) > 0 && words[0] == "export" {
		for _, w := range words[1:] {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("%q: export NAME=VALUE only", c)
			}
			x.vars[k] = v
		}
		return ""
	}
	if len(words) < 3 || words[0] != "go" || words[1] != "run" {
		t.Fatalf("%q: not a go run command", c)
	}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		v, ok := x.vars[k]
		return v, ok
	}
	switch target, args := words[2], words[3:]; {
	case target == "./cmd/senderbound":
		return x.runCLI(c, args, lookup, background)
	case strings.HasPrefix(target, "./examples/"):
		return x.runExample(c, strings.TrimPrefix(target, "./examples/"), args, lookup, background)
	default:
		t.Fatalf("%q: runs neither the CLI nor an example", c)
	}
	return ""
}

// runCLI runs a senderbound command in-process; a background one must
// print its listening line and is stopped when the test ends.
func (x *exampleRun) runCLI(c string, args []string, lookup func(string) (string, bool), background bool) string {
	t := x.t
	t.Helper()
	dir := t.TempDir()
	e := &env{lookupEnv: lookup, configDir: func() (string, error) { return dir, nil }, stdin: strings.NewReader("")}
	if background {
		serveStartEnv(t, e, args...)
		return ""
	}
	out, errs := newServeOutput(), newServeOutput()
	e.stdout, e.stderr = out, errs
	if code := run(context.Background(), e, args); code != 0 {
		t.Fatalf("%s: exit %d: %s", c, code, errs)
	}
	return out.String()
}

// runExample runs the built example with the loopback defaults passed
// explicitly (remapped) unless args set them.
func (x *exampleRun) runExample(c, name string, args []string, lookup func(string) (string, bool), background bool) string {
	t := x.t
	t.Helper()
	var full []string
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
		full = append(full, sub)
	}
	for _, d := range x.defaults(name, sub) {
		flagName, _, _ := strings.Cut(d, "=")
		if !slices.ContainsFunc(args, func(a string) bool {
			return a == flagName || a == "-"+flagName || strings.HasPrefix(a, flagName+"=") || strings.HasPrefix(a, "-"+flagName+"=")
		}) {
			full = append(full, x.remap(d))
		}
	}
	full = append(full, args...)
	env := os.Environ()
	for _, k := range []string{"CLIENT_SECRET", "NONCE_SECRET", "INTROSPECTION_SECRET"} {
		if v, ok := lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	out, errs := newServeOutput(), newServeOutput()
	if !background {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(x.bin, name), full...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, out, errs
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s (run as %s %s): %v\n%s", c, name, strings.Join(full, " "), err, errs)
		}
		return out.String()
	}
	cmd := exec.Command(filepath.Join(x.bin, name), full...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, errs
	// A server: wait for its "listening on" log line, stop it with SIGINT
	// at the end and expect a clean exit.
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	listening := exampleWatch(errs, stopWatch)
	select {
	case <-listening:
	case err := <-exited:
		t.Fatalf("%s exited before listening: %v\n%s", c, err, errs)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not print a listening line:\n%s", c, errs)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil || !strings.Contains(errs.String(), "shut down") {
				t.Errorf("%s on SIGINT: %v, want a clean exit after \"shut down\":\n%s", c, err, errs)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGINT", c)
		}
	})
	return ""
}

// exampleWatch returns a channel closed once o holds a line containing
// "listening on"; it stops looking when stop is closed.
func exampleWatch(o *serveOutput, stop <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			sc := bufio.NewScanner(strings.NewReader(o.String()))
			for sc.Scan() {
				if strings.Contains(sc.Text(), "listening on ") {
					close(ch)
					return
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return ch
}
