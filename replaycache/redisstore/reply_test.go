package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// serveRESP runs a TCP server on 127.0.0.1 that speaks just enough RESP2 for
// a go-redis client, and answers SET with setReply. No real Redis sends such
// replies to SET NX, but a proxy in front of one might; this checks that the
// store treats anything but OK and nil as an error.
func serveRESP(t *testing.T, setReply string) string {
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
					case "set":
						reply = setReply
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
			client := redis.NewClient(&redis.Options{Addr: serveRESP(t, tt.reply), Protocol: 2, MaxRetries: -1})
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
