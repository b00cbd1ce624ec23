package main

import (
	"context"
	"errors"
)

// Placeholder while runToken is written; this file is deleted when it lands.
func runToken(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
