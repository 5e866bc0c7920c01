package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

// storeFile is the SQLite file's name inside --data.
const storeFile = "herald.db"

// openStore opens the store --store names and says where its data lives.
func openStore(ctx context.Context, f *serveFlags, log *slog.Logger) (herald.Store, string, error) {
	if f.store == "memory" {
		return herald.NewMemoryStore(), describeData("memory", f.data), nil
	}
	level, err := sqlite.ParseLevel(f.durability)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("--durability %q: want full or normal", f.durability)}
	}
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return nil, "", fmt.Errorf("creating the data folder %s: %w", f.data, err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(f.data, storeFile), sqlite.Durability(level), sqlite.Logger(log))
	if err != nil {
		return nil, "", fmt.Errorf("opening the store: %w", err)
	}
	return st, describeData("sqlite", f.data), nil
}
