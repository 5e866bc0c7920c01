package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/heraldhq/herald"
)

// openStore opens the store --store names and says where its data lives.
func openStore(ctx context.Context, f *serveFlags, log *slog.Logger) (herald.Store, string, error) {
	switch f.store {
	case "memory":
		return herald.NewMemoryStore(), describeData("memory", f.data), nil
	}
	return nil, "", fmt.Errorf("--store %s is not available yet: use --store memory", f.store)
}
