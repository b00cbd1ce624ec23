// Package redistest runs a real redis-server for tests.
//
// [Start] launches redis-server on a free 127.0.0.1 port with persistence
// off and its working directory in t.TempDir(), waits until it answers PING,
// and kills it when the test ends. [Server.Stop] kills it mid-test (to check
// that callers fail closed) and [Server.Restart] brings it back, empty, on
// the same port. Extra redis-server arguments start other kinds of server,
// for example a one-node cluster ("--cluster-enabled", "yes") or a Sentinel
// (a config file path, then "--sentinel").
//
// When redis-server is not on PATH, Start skips the test, unless the
// environment variable SENDERBOUND_REQUIRE_REDIS is "1" (as in CI), in which
// case it fails it.
//
//	func TestX(t *testing.T) {
//		srv := redistest.Start(t)
//		rdb := srv.Client()
//		// ... use rdb ...
//		srv.Stop() // the server is gone: calls now fail
//	}
//
// This package is for tests only. Its functions report problems through
// t.Fatal and must be called from the test's goroutine.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RequireEnv is the environment variable that, when set to "1", turns a
// missing redis-server from a skipped test into a failed one.
const RequireEnv = "SENDERBOUND_REQUIRE_REDIS"

// startTimeout bounds how long Start and Restart wait for PING to answer.
const startTimeout = 10 * time.Second

// Server is a redis-server process owned by one test. Its methods are safe
// for concurrent use, but Start, Stop and Restart may call t.Fatal and so
// belong on the test's goroutine.
type Server struct {
	// Addr is the server's host:port, for example "127.0.0.1:40123". It
	// stays the same across Restart.
	Addr string

	tb    testing.TB
	bin   string
	dir   string
	port  int
	extra []string

	mu   sync.Mutex
	proc *process
}

// process is one running redis-server.
type process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
}

// Start starts a redis-server for tb and stops it in tb.Cleanup. It skips tb
// when redis-server is not on PATH, or fails it if SENDERBOUND_REQUIRE_REDIS
// is "1". Extra arguments are appended to the redis-server command line, for
// example "--cluster-enabled", "yes"; they cannot change the port, bind
// address or directory.
func Start(tb testing.TB, extraArgs ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("redis-server not on PATH and %s=1: %v", RequireEnv, err)
		}
		tb.Skip("redis-server not on PATH; install it (e.g. apt-get install redis-server) to run the Redis tests")
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), extra: append([]string(nil), extraArgs...)}
	tb.Cleanup(s.Stop)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err := s.launch()
		if err == nil {
			s.mu.Lock()
			s.proc = p
			s.mu.Unlock()
			return s
		}
		// Most likely another process took the port between freePort and
		// redis-server's bind; try another one.
		lastErr = err
	}
	tb.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// Client returns a new go-redis client connected to the server, closed in
// tb.Cleanup. Each call returns a distinct client with its own pool.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// URL returns the server's address as a redis:// URL for redis.ParseURL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop kills the server (SIGKILL, no shutdown handshake) and waits for it to
// exit, so that later commands fail as they would when a shared Redis goes
// away. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Restart starts a stopped server again on the same address, empty. It
// fails the test if the server is running or the port was taken meanwhile.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		s.tb.Fatalf("redistest: Restart of a running server at %s", s.Addr)
	}
	p, err := s.launch()
	if err != nil {
		s.tb.Fatalf("redistest: restart redis-server: %v", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
}

// launch starts redis-server on s.port and waits until it answers PING.
func (s *Server) launch() (*process, error) {
	args := append(append([]string(nil), s.extra...),
		// Last, so that extra arguments cannot override them.
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	cmd := exec.Command(s.bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(s.Addr)
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("redis-server exited: %s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-p.done
			return nil, fmt.Errorf("no PONG within %v (last error: %v): %s", startTimeout, err, out.String())
		}
	}
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return errors.New("unexpected reply to PING: " + strconv.Quote(line))
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the server's output, keeping the last 8 KiB.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if n := b.buf.Len(); n > 8<<10 {
		b.buf.Next(n - 8<<10)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
