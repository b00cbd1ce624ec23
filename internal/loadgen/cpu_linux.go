package loadgen

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time (user plus system, all threads) that
// process pid has used so far, read from /proc/<pid>/stat. Its resolution
// is one clock tick (10 ms), so compare readings taken seconds apart.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	u, s, err := parseProcStat(string(data))
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return u + s, nil
}

// SelfCPU returns the CPU time (user plus system, all threads) this process
// has used so far, from getrusage(2).
func SelfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// rusageThread is RUSAGE_THREAD (linux/resource.h), which the syscall
// package does not name.
const rusageThread = 1

// threadCPU returns the CPU time of the calling OS thread, or -1 when it
// cannot be read. The caller locks its goroutine to the thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
