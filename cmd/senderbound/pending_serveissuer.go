package main

import (
	"context"
	"errors"
)

// Placeholder while runServeIssuer is written; this file is deleted when it lands.
func runServeIssuer(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
