package main

import (
	"context"
	"errors"
)

// Placeholder while runDemo is written; this file is deleted when it lands.
func runDemo(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
