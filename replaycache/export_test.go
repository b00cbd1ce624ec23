package replaycache

import "unsafe"

// ShardOf reports the shard index key maps to, for tests that need to fill
// one shard.
func (c *LRU) ShardOf(key [32]byte) int {
	return int(hashKey(c, internalKey(key)) & c.mask)
}

// ShardCapacity reports the per-shard capacity.
func (c *LRU) ShardCapacity() int { return c.shards[0].capacity }

var DefaultShards = defaultShards

// ShardSize is the size of one shard, padded to a multiple of 128 bytes.
const ShardSize = unsafe.Sizeof(shard{})

// InternalKey is the key an LRU stores for a 32-byte key.
var InternalKey = internalKey
