//go:build !linux

package redistest

import "os/exec"

// setParentDeathSignal does nothing outside Linux; servers are stopped in
// the test's cleanup.
func setParentDeathSignal(*exec.Cmd) {}
