package redistest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal asks the kernel to kill redis-server if the test
// binary dies without running its cleanups (for example on a -timeout panic).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
