package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// tagKey returns a distinct key whose hash tag is tag (0..63): the tag is
// the first base64url character, the top six bits of the first byte.
func tagKey(space string, tag int) [32]byte {
	k := key(space, tag)
	k[0] = byte(tag<<2) | k[0]&3
	return k
}

// TestClusterLossOnTagNotYetClaimed runs two Stores on a real 3-master
// Redis Cluster. Store A claims a key on each of the 64 hash tags, store B
// on one tag only; then a master is killed and restarted empty. B has
// never claimed on most tags, yet it must not take an epoch key that the
// restart erased as a fresh start: every proof A accepted before the loss
// is refused at B. Before the fix each Store learnt a tag's epoch at its
// first claim on that tag, so B accepted the replays on the restarted
// master's tags (DPOP-RS-15).
func TestClusterLossOnTagNotYetClaimed(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	ctx := context.Background()
	a := newStore(t, cluster.Client(), redisstore.Config{})
	b := newStore(t, cluster.Client(), redisstore.Config{})
	since := time.Now().Add(-time.Second)
	exp := time.Now().Add(time.Minute)
	for tag := 0; tag < 64; tag++ {
		if fresh, err := a.CheckAndStoreSince(ctx, tagKey("a", tag), since, exp); err != nil || !fresh {
			t.Fatalf("tag %d: first claim at A = %v, %v; want fresh", tag, fresh, err)
		}
	}
	if fresh, err := b.CheckAndStoreSince(ctx, tagKey("b", 0), since, exp); err != nil || !fresh {
		t.Fatalf("first claim at B = %v, %v; want fresh", fresh, err)
	}
	victim := cluster.Nodes[1]
	victim.Stop()
	victim.Restart()
	cluster.WaitOK()
	for tag := 0; tag < 64; tag++ {
		var (
			fresh bool
			err   error
		)
		// The client may still route to the restarted node through a
		// broken connection for a moment: retry while unavailable.
		for deadline := time.Now().Add(10 * time.Second); ; {
			fresh, err = b.CheckAndStoreSince(ctx, tagKey("a", tag), since, exp)
			if !errors.Is(err, redisstore.ErrUnavailable) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if fresh {
			t.Fatalf("DPOP-RS-15: tag %d: a key claimed at A before the loss is fresh at B", tag)
		}
		if err != nil && !errors.Is(err, replaycache.ErrStateLost) {
			t.Fatalf("tag %d: replay at B: %v, want a replay or ErrStateLost", tag, err)
		}
	}
}

// TestClusterKeysSpread claims many keys through a real 3-master Redis
// Cluster and counts the keys each master holds: every master holds some,
// so claims are spread over the cluster rather than on one slot.
func TestClusterKeysSpread(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client()
	s := newStore(t, cc, redisstore.Config{})
	exp := time.Now().Add(time.Minute)
	const n = 600
	for i := 0; i < n; i++ {
		if !claim(t, s, key("spread", i), exp) {
			t.Fatalf("claim %d not fresh", i)
		}
	}
	ctx := context.Background()
	total := int64(0)
	for _, node := range cluster.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: node.Addr})
		size, err := rdb.DBSize(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		// n/3 claims expected per master; each holding at least a sixth
		// of them rules out a tag scheme that favours one master.
		if size < n/6 {
			t.Errorf("master %s holds %d keys of %d claims, want at least %d", node.Addr, size, n, n/6)
		}
		total += size
	}
	if total < n {
		t.Errorf("the masters hold %d keys, want at least the %d claims", total, n)
	}
}

// TestNewRefusesBracesInPrefixForSharding checks that a prefix with a
// brace is refused for sharding clients: Redis takes the first {...} of a
// key as its hash tag, so a prefix such as "app{1}:" would put every key
// in one slot (one master takes all the load), and a lone "{" or "}" would
// move a claim and its epoch key to different slots. Before the fix such
// prefixes were accepted.
func TestNewRefusesBracesInPrefixForSharding(t *testing.T) {
	t.Parallel()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer single.Close()
	tests := []struct {
		name    string
		client  redis.UniversalClient
		prefix  string
		wantErr bool
	}{
		{name: "cluster/hash tag", client: cc, prefix: "app{1}:", wantErr: true},
		{name: "cluster/open brace", client: cc, prefix: "app{", wantErr: true},
		{name: "cluster/close brace", client: cc, prefix: "}app:", wantErr: true},
		{name: "cluster/plain", client: cc, prefix: "app:jti:"},
		{name: "single/braces", client: single, prefix: "app{1}:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := redisstore.New(tt.client, redisstore.Config{Prefix: tt.prefix})
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(prefix %q) error = %v, want error %v", tt.prefix, err, tt.wantErr)
			}
		})
	}
}

// TestClusterFirstClaimWithMasterDown starts a Store while one master of a
// real 3-master Redis Cluster is down: its claims fail closed with
// ErrUnavailable, even those whose keys live on the other masters, since
// it cannot read every tag's epoch; once the master is back they succeed
// (DPOP-RS-15, ADV-108).
func TestClusterFirstClaimWithMasterDown(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	cluster.Nodes[2].Stop()
	s := newStore(t, cluster.Client(), redisstore.Config{Timeout: 500 * time.Millisecond})
	exp := time.Now().Add(time.Minute)
	for tag := 0; tag < 64; tag += 16 {
		fresh, err := s.CheckAndStore(context.Background(), tagKey("down", tag), exp)
		wantUnavailable(t, fresh, err)
	}
	cluster.Nodes[2].Restart()
	cluster.WaitOK()
	var (
		fresh bool
		err   error
	)
	for deadline := time.Now().Add(10 * time.Second); ; {
		fresh, err = s.CheckAndStore(context.Background(), tagKey("up", 1), exp)
		if !errors.Is(err, redisstore.ErrUnavailable) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || !fresh {
		t.Fatalf("claim after the master returned = %v, %v; want fresh", fresh, err)
	}
}
