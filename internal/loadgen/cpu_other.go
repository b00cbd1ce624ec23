//go:build !linux

package loadgen

import (
	"errors"
	"time"
)

// errNoProc is returned where /proc and getrusage are not available.
var errNoProc = errors.New("loadgen: CPU times are read from /proc and getrusage, which need Linux")

// ProcessCPU reports that reading another process's CPU time needs Linux.
func ProcessCPU(pid int) (time.Duration, error) { return 0, errNoProc }

// SelfCPU reports that reading this process's CPU time is supported on
// Linux only.
func SelfCPU() (time.Duration, error) { return 0, errNoProc }

// threadCPU reports that a thread's CPU time is not read here; callers
// time in wall time instead.
func threadCPU() time.Duration { return -1 }
