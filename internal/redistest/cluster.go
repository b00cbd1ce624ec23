package redistest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterNodeTimeout is the cluster-node-timeout, in milliseconds, of the
// nodes StartCluster launches: short, so that a killed master is marked
// failed (and the cluster state turns to fail) within a second.
const clusterNodeTimeout = "500"

// Cluster is a Redis Cluster of masters without replicas, owned by one
// test. Nodes[i] can be stopped and restarted (empty, keeping its node id
// and slots, which live in its nodes.conf) to see what callers do while a
// master is down and after it comes back.
type Cluster struct {
	// Nodes are the masters, in the order given to redis-cli --cluster
	// create (which assigns them consecutive slot ranges).
	Nodes []*Server

	tb testing.TB
}

// StartCluster starts n ≥ 3 redis-server processes in cluster mode on
// 127.0.0.1, joins them with "redis-cli --cluster create ... --cluster-replicas 0",
// and waits until every node reports cluster_state:ok. It skips tb when
// redis-server or redis-cli is not on PATH, or fails it if
// SENDERBOUND_REQUIRE_REDIS is "1".
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 3 {
		tb.Fatalf("redistest: a Redis Cluster needs at least 3 masters, not %d", n)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("redis-cli not on PATH and %s=1: %v", RequireEnv, err)
		}
		tb.Skip("redis-cli not on PATH; install it (e.g. apt-get install redis-tools) to run the Redis Cluster tests")
	}
	c := &Cluster{tb: tb}
	args := []string{"--cluster", "create"}
	for i := 0; i < n; i++ {
		s := Start(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", clusterNodeTimeout)
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	c.WaitOK()
	return c
}

// WaitOK waits until every node answers CLUSTER INFO with cluster_state:ok
// and agrees on the slot map, failing the test after 20 seconds.
func (c *Cluster) WaitOK() {
	c.tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ready := true
		var last string
		for _, s := range c.Nodes {
			rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
			info, err := rdb.ClusterInfo(ctx).Result()
			_ = rdb.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ready = false
				last = s.Addr + ": " + info
				if err != nil {
					last = s.Addr + ": " + err.Error()
				}
				break
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("redistest: cluster not ok within 20s: %s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client returns a new go-redis ClusterClient seeded with every node's
// address, closed in tb.Cleanup.
func (c *Cluster) Client() *redis.ClusterClient {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	c.tb.Cleanup(func() { _ = cc.Close() })
	return cc
}
