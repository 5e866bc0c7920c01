package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/nats"
	"github.com/heraldhq/herald/store/sqlite"
)

// redactURL hides the passwords and tokens of a list of NATS URLs.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("***")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// storeFile is the SQLite file's name inside --data.
const storeFile = "herald.db"

// openStore opens the store --store names and says where its data lives.
func openStore(ctx context.Context, f *serveFlags, log *slog.Logger) (herald.Store, string, error) {
	switch f.store {
	case "memory":
		return herald.NewMemoryStore(), describeData("memory", f.data), nil
	case "nats":
		st, err := nats.Connect(ctx, f.nats, nats.WithLogger(log))
		if err != nil {
			return nil, "", fmt.Errorf("opening the NATS store: %w", err)
		}
		return st, "NATS JetStream at " + redactURL(f.nats), nil
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
