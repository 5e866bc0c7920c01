package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
)

// EmbeddedConfig configures a JetStream server run inside the process (see
// StartEmbedded). Zero fields take the defaults named on each.
type EmbeddedConfig struct {
	// Dir is where JetStream keeps its files. Required.
	Dir string
	// Host and Port are the client listener. Default 127.0.0.1 and a
	// random free port (ClientURL tells which); Port -1 also means random.
	Host string
	Port int
	// ServerName names the server; required in a cluster, where it must be
	// stable across restarts. Default: generated.
	ServerName string

	// ClusterName, ClusterHost, ClusterPort and Routes form a JetStream
	// cluster: every node lists the others' route URLs
	// ("nats-route://host:port"). Default: no cluster.
	ClusterName string
	ClusterHost string
	ClusterPort int
	Routes      []string

	// SyncAlways makes the server fsync every write before it acknowledges
	// it, so an acknowledged event survives a power failure of this node.
	// It costs most of the write throughput (tens of times fewer appends
	// per second on ordinary disks). Default false: JetStream's own
	// default, an fsync every SyncInterval.
	SyncAlways bool
	// SyncInterval is how often the server fsyncs when SyncAlways is off.
	// Default 2 minutes (JetStream's default).
	SyncInterval time.Duration

	// MaxStore caps JetStream's file storage in bytes. Default: no cap.
	MaxStore int64
	// MaxPayload is the largest message the server takes. Default 4 MiB,
	// room for herald's largest event (1 MiB by default) and its headers;
	// NATS's own default is 1 MiB.
	MaxPayload int32
	// Logs turns on the server's own logging to stderr. Default off.
	Logs bool
	// Monitor is the address ("host:port") of the node's HTTP monitoring
	// endpoint: nats-server's /varz, /jsz, /routez, /healthz and the rest,
	// unauthenticated, so keep it on loopback or a private network. Port 0
	// picks a free port (MonitorAddr tells which). Default: off.
	Monitor string
}

// Embedded is a JetStream server running inside the process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a JetStream server in this process and waits until
// it accepts clients (and, in a cluster, until JetStream is ready or 30 s
// pass). Shut it down with Shutdown.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("nats embedded: Dir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = server.RANDOM_PORT
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 4 << 20
	}
	opts := &server.Options{
		ServerName:   cfg.ServerName,
		Host:         cfg.Host,
		Port:         cfg.Port,
		JetStream:    true,
		StoreDir:     cfg.Dir,
		SyncAlways:   cfg.SyncAlways,
		SyncInterval: cfg.SyncInterval,
		NoSigs:       true,
		NoLog:        !cfg.Logs,
		MaxPayload:   cfg.MaxPayload,
	}
	if cfg.Monitor != "" {
		h, p, err := net.SplitHostPort(cfg.Monitor)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("nats embedded: monitor address %q: want host:port", cfg.Monitor)
		}
		if n == 0 {
			n = server.RANDOM_PORT
		}
		opts.HTTPHost, opts.HTTPPort = h, n
	}
	if cfg.MaxStore > 0 {
		opts.JetStreamMaxStore = cfg.MaxStore
	}
	if cfg.ClusterName != "" {
		if cfg.ServerName == "" {
			return nil, errors.New("nats embedded: a cluster node needs a ServerName")
		}
		host := cfg.ClusterHost
		if host == "" {
			host = cfg.Host
		}
		opts.Cluster = server.ClusterOpts{Name: cfg.ClusterName, Host: host, Port: cfg.ClusterPort}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("nats embedded: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats embedded: %w", err)
	}
	if cfg.Logs {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("nats embedded: server did not start within 30s")
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// MonitorAddr is the address the monitoring endpoint listens on
// ("127.0.0.1:8222"), or "" when EmbeddedConfig.Monitor is not set.
func (e *Embedded) MonitorAddr() string {
	if a := e.srv.MonitorAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Server returns the nats-server instance.
func (e *Embedded) Server() *server.Server { return e.srv }

// Connect opens an in-process client connection to the server (no network).
// The caller closes it.
func (e *Embedded) Connect(opts ...natsgo.Option) (*natsgo.Conn, error) {
	opts = append([]natsgo.Option{natsgo.InProcessServer(e.srv), natsgo.Name("herald")}, opts...)
	return natsgo.Connect("", opts...)
}

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// OpenEmbedded starts a JetStream server in this process (see
// StartEmbedded), connects to it in-process and opens the store on it. In a
// cluster it keeps trying to open while the cluster forms, until ctx ends.
// The store owns the server: Close closes the store, then shuts the server
// down. Use WithReplicas(3) with a three-node cluster.
func OpenEmbedded(ctx context.Context, cfg EmbeddedConfig, opts ...Option) (*Store, error) {
	e, err := StartEmbedded(cfg)
	if err != nil {
		return nil, err
	}
	nc, err := e.Connect(natsgo.MaxReconnects(-1), asyncErrorsTo(opts))
	if err != nil {
		e.Shutdown()
		return nil, fmt.Errorf("nats embedded: connecting: %w", err)
	}
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := open(actx, nc, true, opts)
		cancel()
		if err == nil {
			s.onClose = e.Shutdown
			if a := e.MonitorAddr(); a != "" {
				s.cfg.logger.Info("herald nats store: the node's monitoring endpoint listens", "url", "http://"+a)
			}
			if cfg.ClusterName == "" {
				return s, nil
			}
			if err = waitReady(ctx, s); err == nil {
				return s, nil
			}
			s.Close()
			return nil, fmt.Errorf("nats embedded: the cluster did not form: %w", err)
		}
		if cfg.ClusterName == "" || errors.Is(err, herald.ErrIncompatibleStore) {
			nc.Close()
			e.Shutdown()
			return nil, err
		}
		select {
		case <-ctx.Done():
			nc.Close()
			e.Shutdown()
			return nil, fmt.Errorf("nats embedded: the cluster did not form: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitReady waits until the store's streams and buckets answer: in a
// forming cluster they exist before their replicas have elected a leader,
// and until then reads fail with "no responders". It returns ctx's error
// with the last failure when ctx ends first.
func waitReady(ctx context.Context, s *Store) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := s.Head(pctx)
		if err == nil {
			_, err = s.Checkpoints(pctx)
		}
		if err == nil {
			if _, err = s.GetValue(pctx, "herald", "ready"); errors.Is(err, herald.ErrNotFound) {
				err = nil
			}
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
