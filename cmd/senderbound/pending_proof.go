package main

import (
	"context"
	"errors"
)

// Placeholder while runProof is written; this file is deleted when it lands.
func runProof(ctx context.Context, e *env, args []string) error { return errors.New("pending") }
