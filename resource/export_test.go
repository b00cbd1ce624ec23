package resource

// WaitIdle blocks until no fetch of s is under way, so that tests can
// observe the outcome of a background revalidation deterministically.
func (s *RemoteKeySet) WaitIdle() { s.cache.WaitIdle() }
