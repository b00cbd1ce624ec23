package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// serveRESP runs a TCP server on 127.0.0.1 that speaks just enough RESP2 for
// a go-redis client, and answers the claim (EVALSHA or EVAL of the claim
// script) with whatever onSet returns (onSet may block). It stands in for Redis only where a real server cannot be made to
// behave as needed: replies no Redis sends to SET NX (a proxy in front of one
// might), and a claim that hangs while the server keeps serving.
func serveRESP(t *testing.T, onSet func() string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					var reply string
					switch strings.ToLower(args[0]) {
					case "hello":
						reply = "-ERR unknown command 'HELLO'\r\n"
					case "evalsha", "eval":
						reply = onSet()
					case "ping":
						reply = "+PONG\r\n"
					default:
						reply = "+OK\r\n"
					}
					if _, err := io.WriteString(conn, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not an array")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 || n > 64 {
		return nil, errors.New("bad array length")
	}
	args := make([]string, n)
	for i := range args {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil || size < 0 || size > 1<<16 {
			return nil, errors.New("bad bulk length")
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

func TestUnexpectedReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		reply     string
		wantFresh bool
		wantErr   bool
	}{
		{name: "OK is fresh", reply: "+OK\r\n", wantFresh: true},
		{name: "nil is a replay", reply: "$-1\r\n"},
		{name: "ADV-108/other status fails closed", reply: "+QUEUED\r\n", wantErr: true},
		{name: "ADV-108/error reply fails closed", reply: "-READONLY You can't write against a read only replica.\r\n", wantErr: true},
		{name: "ADV-108/integer reply fails closed", reply: ":1\r\n", wantErr: true},
		{name: "ADV-108/empty array fails closed", reply: "*0\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := redis.NewClient(&redis.Options{Addr: serveRESP(t, func() string { return tt.reply }), Protocol: 2, MaxRetries: -1})
			defer client.Close()
			s := newStore(t, client, redisstore.Config{Timeout: 2 * time.Second})
			fresh, err := s.CheckAndStore(context.Background(), key("reply", 1), time.Now().Add(time.Minute))
			if tt.wantErr {
				wantUnavailable(t, fresh, err)
				return
			}
			if err != nil || fresh != tt.wantFresh {
				t.Fatalf("CheckAndStore = %v, %v; want %v, nil", fresh, err, tt.wantFresh)
			}
		})
	}
}

// TestMaxInFlight checks that commands abandoned at their deadline keep their
// in-flight slot until the client is done with them, and that a claim which
// cannot get a slot fails closed without sending anything.
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var sets atomic.Int32
	addr := serveRESP(t, func() string {
		if sets.Add(1) == 1 {
			<-release // the first claim hangs until released
		}
		return "+OK\r\n"
	})
	client := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, ReadTimeout: time.Minute})
	defer client.Close()
	s := newStore(t, client, redisstore.Config{Timeout: 200 * time.Millisecond, MaxInFlight: 1})
	exp := time.Now().Add(time.Minute)

	// The first claim times out; its command stays outstanding.
	fresh, err := s.CheckAndStore(context.Background(), key("inflight", 1), exp)
	wantUnavailable(t, fresh, err)
	// The second cannot get a slot: it fails without reaching the server.
	fresh, err = s.CheckAndStore(context.Background(), key("inflight", 2), exp)
	wantUnavailable(t, fresh, err)
	if n := sets.Load(); n != 1 {
		t.Fatalf("server saw %d claims, want 1 (MaxInFlight 1)", n)
	}
	// Once the hung command completes, its slot is free again.
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		fresh, err = s.CheckAndStore(context.Background(), key("inflight", 3), exp)
		if err == nil && fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim after release = %v, %v; want fresh", fresh, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
