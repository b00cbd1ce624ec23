package loadgen

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat. The
// kernel reports these times in USER_HZ whatever its internal tick rate,
// and USER_HZ is 100 on every Linux architecture Go supports.
const clockTicks = 100

// errProcStat is returned for a /proc/<pid>/stat line that is not in the
// kernel's format.
var errProcStat = errors.New("loadgen: malformed /proc stat line")

// parseProcStat returns the user and system CPU time in a /proc/<pid>/stat
// line (proc(5): fields 14 utime and 15 stime, in clock ticks). The second
// field, the command name in parentheses, may itself contain spaces and
// parentheses, so fields are counted from the last ')'. On error both
// durations are 0.
func parseProcStat(line string) (user, system time.Duration, err error) {
	open := strings.IndexByte(line, '(')
	end := strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return 0, 0, errProcStat
	}
	// After ")": state (field 3), ppid (4), ... utime (14), stime (15).
	fields := strings.Fields(line[end+1:])
	if len(fields) < 13 {
		return 0, 0, errProcStat
	}
	u, err1 := strconv.ParseUint(fields[11], 10, 63)
	s, err2 := strconv.ParseUint(fields[12], 10, 63)
	const maxTicks = (1<<63 - 1) / uint64(time.Second/clockTicks)
	if err1 != nil || err2 != nil || u > maxTicks || s > maxTicks {
		return 0, 0, errProcStat
	}
	tick := time.Second / clockTicks
	return time.Duration(u) * tick, time.Duration(s) * tick, nil
}
