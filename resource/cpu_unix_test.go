//go:build unix

package resource_test

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time this process has used, so
// benchmark ratios can be stated in CPU time, which other load on the
// machine does not inflate the way it inflates wall-clock time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
