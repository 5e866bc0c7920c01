package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
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
		opts := []nats.Option{nats.WithLogger(log)}
		if r := f.natsReplicas; r > 0 || f.natsCluster != "" {
			if r == 0 {
				r = 3
			}
			opts = append(opts, nats.WithReplicas(r))
		}
		if f.natsEmbedded {
			cfg, err := embeddedConfig(f)
			if err != nil {
				return nil, "", err
			}
			st, err := nats.OpenEmbedded(ctx, cfg, opts...)
			if err != nil {
				return nil, "", fmt.Errorf("starting the embedded NATS JetStream node: %w", err)
			}
			return st, "embedded NATS JetStream node at " + f.natsListen + ", files in " + cfg.Dir, nil
		}
		st, err := nats.Connect(ctx, f.nats, opts...)
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
	st, err := sqlite.Open(ctx, filepath.Join(f.data, storeFile), sqlite.WithDurability(level), sqlite.WithLogger(log),
		sqlite.WithQuickCheck(f.quickCheck))
	if err != nil {
		return nil, "", fmt.Errorf("opening the store: %w", err)
	}
	return st, describeData("sqlite", f.data), nil
}

// embeddedConfig is the JetStream node --nats-embedded runs.
func embeddedConfig(f *serveFlags) (nats.EmbeddedConfig, error) {
	hostPort := func(flag, v string) (string, int, error) {
		h, p, err := net.SplitHostPort(v)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			return "", 0, usageError{fmt.Errorf("--%s %q: want host:port", flag, v)}
		}
		return h, n, nil
	}
	cfg := nats.EmbeddedConfig{
		Dir:        filepath.Join(f.data, "nats"),
		ServerName: f.natsName,
		SyncAlways: f.natsSyncAlways,
	}
	var err error
	if cfg.Host, cfg.Port, err = hostPort("nats-listen", f.natsListen); err != nil {
		return cfg, err
	}
	if f.natsMonitor != "" {
		if _, _, err = hostPort("nats-monitor", f.natsMonitor); err != nil {
			return cfg, err
		}
		cfg.Monitor = f.natsMonitor
	}
	if f.natsCluster != "" {
		if cfg.ClusterHost, cfg.ClusterPort, err = hostPort("nats-cluster", f.natsCluster); err != nil {
			return cfg, err
		}
		cfg.ClusterName = "herald"
		cfg.Routes = f.natsRoutes
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return cfg, fmt.Errorf("creating the NATS data folder %s: %w", cfg.Dir, err)
	}
	return cfg, nil
}
