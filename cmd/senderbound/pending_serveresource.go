package main

import (
	"context"
	"errors"
)

// Placeholder while runServeResource is written; this file is deleted when it lands.
func runServeResource(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
