package main

import (
	"context"
	"errors"
)

// Placeholder while runConform is written; this file is deleted when it lands.
func runConform(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
