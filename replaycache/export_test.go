package replaycache

// ShardOf reports the shard index key maps to, for tests that need to fill
// one shard.
func (c *LRU) ShardOf(key [32]byte) int {
	return int(hashKey(c, key) & c.mask)
}

// ShardCapacity reports the per-shard capacity.
func (c *LRU) ShardCapacity() int { return c.shards[0].capacity }

var DefaultShards = defaultShards
