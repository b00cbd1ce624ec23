//go:build !unix

package resource_test

import "time"

// processCPU is not measured on this platform; CPU ratios are omitted.
func processCPU() time.Duration { return 0 }
