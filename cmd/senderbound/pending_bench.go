package main

import (
	"context"
	"errors"
)

// Placeholder while runBench is written; this file is deleted when it lands.
func runBench(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
