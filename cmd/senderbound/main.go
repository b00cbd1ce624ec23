// Command senderbound runs the senderbound demo, an issuer and a resource
// server for sender-constrained (DPoP and mTLS-bound) OAuth access tokens,
// the conformance suite against any implementation, a load generator that
// speaks DPoP and mTLS, and the small tools around them: keys,
// certificates, thumbprints, proofs and token requests.
//
// Usage:
//
//	senderbound <command> [flags]
//
// Run "senderbound help" for the list of commands and
// "senderbound <command> -h" for the flags of one.
//
// Every command reports a problem on one line of standard error,
// "senderbound <command>: <what happened> (<what to do>)", and exits with
// status 1, or 2 for a usage error (an unknown or invalid flag). A TLS
// failure is named by its cause: a certificate for another host, an
// unknown certificate authority, an invalid certificate, plain HTTP sent
// to an HTTPS port or HTTPS to a plain HTTP one, or a refused client
// certificate. Algorithm names (--alg) are accepted in any case.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env carries the process's streams, environment variables and
// configuration directory so that tests can run commands in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// lookupEnv reads an environment variable; nil means os.LookupEnv.
	lookupEnv func(string) (string, bool)
	// configDir returns the user's configuration directory; nil means
	// os.UserConfigDir.
	configDir func() (string, error)
	// stdinTerminal reports whether standard input is a terminal; nil
	// means stdin is a terminal when it is an *os.File on a character
	// device.
	stdinTerminal func() bool
}

// stdinIsTerminal reports whether standard input is a terminal, where a
// command that reads it would wait for the user to type.
func (e *env) stdinIsTerminal() bool {
	if e.stdinTerminal != nil {
		return e.stdinTerminal()
	}
	f, ok := e.stdin.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// getenv returns the environment variable name and whether it is set.
func (e *env) getenv(name string) (string, bool) {
	if e.lookupEnv != nil {
		return e.lookupEnv(name)
	}
	return os.LookupEnv(name)
}

// userConfigDir returns the user's configuration directory.
func (e *env) userConfigDir() (string, error) {
	if e.configDir != nil {
		return e.configDir()
	}
	return os.UserConfigDir()
}

// errUsage marks an error already reported by a flag set (exit status 2).
var errUsage = errors.New("usage")

// exitStatus is an error already reported by the command that asks for a
// particular exit status.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func commands() []command {
	return []command{
		{"demo", "run an issuer and a resource server on loopback and walk through DPoP and mTLS, then the conformance suite", runDemo},
		{"serve-issuer", "serve a token endpoint, JWKS, introspection and metadata", runServeIssuer},
		{"serve-resource", "serve a resource protected by DPoP / mTLS-bound tokens", runServeResource},
		{"keygen", "generate a private signing key as a JWK", runKeygen},
		{"thumbprint", "print the RFC 7638 thumbprint of a JWK or the x5t#S256 of a PEM certificate", runThumbprint},
		{"ca", "create a certificate authority, revoke its certificates (ca create, ca revoke)", runCA},
		{"cert", "issue a certificate from a CA made by 'ca create' (cert issue), or obtain a fallback certificate from an issuer (cert request)", runCert},
		{"proof", "print a DPoP proof for one request", runProof},
		{"token", "request an access token (DPoP or mTLS) and print the JSON response", runToken},
		{"conform", "run the conformance suite against any issuer and resource server", runConform},
		{"load", "send DPoP, mTLS-bound, bearer or unauthenticated load to a resource and report rate, latency and CPU per request", runLoad},
		{"bench", "measure the hot paths beside the raw signature verification on this machine", runBench},
		{"version", "print the module version, VCS revision and Go toolchain of this binary", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit status:
// 0 success, 1 failure, 2 usage error, or the status a command asks for
// with exitStatus (conform: 3 when its preflight stops the run).
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var status exitStatus
		switch {
		case errors.As(err, &status):
			return int(status)
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(e.stderr, "senderbound %s: %s\n", c.name, userMessage(err))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "senderbound: unknown command %q (run 'senderbound help')\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "senderbound — sender-constrained OAuth access tokens (DPoP, RFC 9449; mTLS, RFC 8705)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: senderbound <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'senderbound <command> -h' for the flags of a command.")
}

// oneLine folds an error message onto a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// internalPrefix matches the package-name prefixes ("dpop: ",
// "keyfile: ", …) that library errors carry. A user reads the command's
// own prefix instead; the package names are an implementation detail.
var internalPrefix = regexp.MustCompile(`(^|: )(?:certs|conformance|dpop|issuer|jwkutil|jwsverify|keyfile|loadgen|mtlsbound|redisstore|replaycache|resource|trustedproxy): `)

// userMessage renders err as the one line a user reads after
// "senderbound COMMAND: ": folded onto one line, without the package-name
// prefixes of library errors.
func userMessage(err error) string {
	msg := oneLine(err.Error())
	for {
		next := internalPrefix.ReplaceAllString(msg, "$1")
		if next == msg {
			return msg
		}
		msg = next
	}
}

// newFlags returns a flag set that reports errors instead of exiting. Its
// Usage (printed for -h) writes the synopsis and the flags to standard
// error; errors are reported by parseFlags and usageError on one line.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: senderbound %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and maps flag errors to errUsage after one line
// naming the problem; stray positional arguments are refused unless
// allowArgs. -h prints the full usage and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, allowArgs int) error {
	out, usage := fs.Output(), fs.Usage
	// The flag package prints its error and then the whole usage; keep
	// both for -h only.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		return usageError(fs, err.Error())
	}
	if fs.NArg() > allowArgs {
		return usageError(fs, fmt.Sprintf("unexpected argument %q", printable(fs.Arg(allowArgs), 80)))
	}
	return nil
}

// usageError reports msg on one line, "senderbound COMMAND: msg (run
// 'senderbound COMMAND -h')", and returns errUsage (exit status 2).
func usageError(fs *flag.FlagSet, msg string) error {
	fmt.Fprintf(fs.Output(), "senderbound %s: %s (run 'senderbound %s -h')\n", fs.Name(), oneLine(msg), fs.Name())
	return errUsage
}

// cliAlgorithm returns the JWS algorithm among algs whose name equals alg
// ignoring case ("es256" is ES256, "eddsa" EdDSA), or false when none
// does.
func cliAlgorithm(alg string, algs []string) (string, bool) {
	for _, a := range algs {
		if strings.EqualFold(a, alg) {
			return a, true
		}
	}
	return "", false
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
