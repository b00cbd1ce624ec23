package main

import (
	"context"
	"errors"
)

// Placeholder while runCA is written; this file is deleted when it lands.
func runCA(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
