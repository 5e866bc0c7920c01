package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/store/sqlite"
)

// serveFlags are the settings of `herald serve`.
// pruneEvery is how often herald serve applies its retention rules.
const pruneEvery = 10 * time.Minute

type serveFlags struct {
	addr            string
	data            string
	store           string
	nats            string
	natsEmbedded    bool
	natsListen      string
	natsName        string
	natsCluster     string
	natsRoutes      []string
	natsReplicas    int
	natsSyncAlways  bool
	natsMonitor     string
	config          string
	insecure        bool
	tlsCert         string
	tlsKey          string
	corsOrigins     []string
	durability      string
	quickCheck      time.Duration
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	maxConnsPerAddr int
	auditMaxSize    int64
	auditKeep       int
	metricsToken    string
	webhookLoopback string
	webhookPrivate  string
	webhookAllow    []string
}

func newServeCmd(g *globals) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the herald server",
		Long: `Run the herald server: the event bus over HTTP, with a durable log, push
subscriptions to webhooks, a dead-letter queue, Server-Sent Events and
Prometheus metrics.

With no configuration it keeps its data in SQLite under ./herald-data and
listens on 127.0.0.1:7480, open to anyone on this machine. To listen on
another address, configure tokens (--config) or pass --insecure.

Every flag is also an environment variable: --addr is HERALD_ADDR, --data
is HERALD_DATA, and so on. Flags win over the environment, which wins over
the configuration file.

Examples:

  # start with no configuration
  herald serve

  # keep everything in memory (gone when the server stops)
  herald serve --store memory

  # listen on every interface over HTTPS, with tokens from a configuration file
  herald serve --addr 0.0.0.0:7480 --config herald.yaml --tls-cert cert.pem --tls-key key.pem

  # keep the log in an existing NATS JetStream cluster; several herald
  # servers may share it (and their push subscriptions)
  herald serve --nats nats://h1:4222,nats://h2:4222,nats://h3:4222

  # run a JetStream node inside herald (files in --data); three servers
  # that list each other's routes form a replicated cluster (replicas 3)
  herald serve --nats-embedded --nats-name h1 --nats-cluster 0.0.0.0:6222 \
    --nats-routes nats-route://h1:6222,nats-route://h2:6222,nats-route://h3:6222

  # the same, with the node's NATS monitoring endpoint (/varz, /jsz,
  # /routez, /healthz) on a private address; herald status shows the cluster
  herald serve --nats-embedded --nats-name h1 --nats-cluster 0.0.0.0:6222 \
    --nats-routes nats-route://h1:6222,nats-route://h2:6222,nats-route://h3:6222 \
    --nats-monitor 127.0.0.1:8222

A configuration file (YAML) may hold:

  addr: 127.0.0.1:7480
  data: ./herald-data
  store: sqlite              # or memory, or nats
  nats: nats://h1:4222       # with store: nats
  durability: full           # sqlite: full (fsync every commit) or normal
  tls_cert: cert.pem         # serve HTTPS (with tls_key)
  tls_key: key.pem
  cors_origins: [https://dashboard.example]
  max_conns_per_addr: 256    # open connections per client address; -1: no cap
  limits: {max_body: 4194304, max_batch: 1000, max_event: 1048576, max_depth: 64}
  push_limits: {per_identity: 20, total: 500, concurrency_per_identity: 64, concurrency_total: 1024, dead_letters: 10000}
  read_ahead: {per_subscription: 8388608, total: 67108864}  # bytes of events push subscriptions hold
  webhook_policy:            # which addresses webhooks may reach (defaults shown)
    loopback: everyone       # 127.0.0.0/8, ::1: everyone, admin or nobody
    private: admin           # 10/8, 172.16/12, 192.168/16, 100.64/10, link-local, fc00::/7
    allow: []                # prefixes any webhook may reach, e.g. [10.1.0.0/16];
                             # the only way to reach 169.254.169.254 and other metadata addresses
  metrics_token: …           # /metrics then needs this token or an admin token
  tokens:
    - identity: recorder     # becomes source_plugin of what it publishes
      token_sha256: 9f86d0…  # hex SHA-256 of the token (or token: <plain>)
      publish: ["recording.>"]
      subscribe: [">"]
      subjects: ["rec/>"]    # subjects it may publish to (default: all)
      rate: 500              # events per second, with burst
      burst: 1000
    - identity: ops
      token_sha256: …
      admin: true
  schemas:
    - name: recording.completed
      version: 1
      schema: {type: object, required: [recording_id]}
  retention:                 # default: everything kept 30 days
    - {pattern: "debug.>", max_age: 1d}
    - {pattern: ">", max_age: 30d}
  subscriptions:
    - name: transcriber
      filter: recording.completed
      endpoint: http://127.0.0.1:9000/hook
      max_attempts: 5
      backoff: {initial: 100ms, max: 30s}
      concurrency: 4
      secret: …

A token's hash: printf %s "$TOKEN" | sha256sum. Tokens created with
"herald tokens create" are kept in the store instead. Once any token
exists, every request needs one (Authorization: Bearer <token>), so create
an admin token first. /healthz and /readyz stay open, and so does /metrics
unless --metrics-token is given: it names every push subscription.

Webhooks reach public addresses and loopback (a plugin on this machine);
private and link-local ranges only when an admin owns the webhook; cloud
metadata addresses such as 169.254.169.254 never, unless --webhook-allow
lists them. Addresses are checked when a delivery connects, after DNS.

Fields a schema marks "x-sensitive": true are encrypted in the store with a
key per subject (events carrying them need a subject), and returned in
clear to readers; "herald forget SUBJECT" deletes the subject's key, after
which those fields read as null (crypto-shredding).

Admin actions and refused requests are written to audit.log in the data
folder, rotated by size (--audit-max-size, default 64 MiB; --audit-keep old
files, default 5). An admin action whose record cannot be written is
refused (503) and not done.

SIGINT or SIGTERM stops the server gracefully: it stops accepting, finishes
the requests and webhook deliveries in flight, and closes the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), cmd, f, g.stdout, g.stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", envOr("HERALD_ADDR", "127.0.0.1:7480"), "address to listen on (env HERALD_ADDR)")
	fl.StringVar(&f.data, "data", envOr("HERALD_DATA", "./herald-data"), "data folder: the SQLite store and the audit log (env HERALD_DATA)")
	fl.StringVar(&f.store, "store", envOr("HERALD_STORE", "sqlite"), "store: sqlite, memory or nats (env HERALD_STORE)")
	fl.StringVar(&f.nats, "nats", envOr("HERALD_NATS", ""), "NATS JetStream servers, e.g. nats://h1:4222,nats://h2:4222; implies --store nats (env HERALD_NATS)")
	fl.BoolVar(&f.natsEmbedded, "nats-embedded", envBool("HERALD_NATS_EMBEDDED"), "run a NATS JetStream node inside herald, its files in --data; implies --store nats (env HERALD_NATS_EMBEDDED)")
	fl.StringVar(&f.natsListen, "nats-listen", envOr("HERALD_NATS_LISTEN", "127.0.0.1:4222"), "--nats-embedded: the node's client address (env HERALD_NATS_LISTEN)")
	fl.StringVar(&f.natsName, "nats-name", envOr("HERALD_NATS_NAME", ""), "--nats-embedded: the node's name, stable across restarts; needed in a cluster (env HERALD_NATS_NAME)")
	fl.StringVar(&f.natsCluster, "nats-cluster", envOr("HERALD_NATS_CLUSTER", ""), "--nats-embedded: listen for cluster routes on this address, e.g. 0.0.0.0:6222 (env HERALD_NATS_CLUSTER)")
	fl.StringSliceVar(&f.natsRoutes, "nats-routes", envList("HERALD_NATS_ROUTES"), "--nats-embedded: every cluster node's route URL, e.g. nats-route://h1:6222 (env HERALD_NATS_ROUTES)")
	fl.IntVar(&f.natsReplicas, "nats-replicas", envInt("HERALD_NATS_REPLICAS", 0), "replicas of the streams herald creates on NATS (default 1, 3 with --nats-cluster) (env HERALD_NATS_REPLICAS)")
	fl.StringVar(&f.natsMonitor, "nats-monitor", envOr("HERALD_NATS_MONITOR", ""), "--nats-embedded: serve the node's NATS monitoring endpoint (/varz, /jsz, /routez, /healthz; no auth) on this address, e.g. 127.0.0.1:8222 (env HERALD_NATS_MONITOR)")
	fl.BoolVar(&f.natsSyncAlways, "nats-sync-always", envBool("HERALD_NATS_SYNC_ALWAYS"), "--nats-embedded: fsync every write before acknowledging it (much slower; survives power loss) (env HERALD_NATS_SYNC_ALWAYS)")
	fl.StringVar(&f.config, "config", envOr("HERALD_CONFIG", ""), "configuration file, YAML (env HERALD_CONFIG)")
	fl.BoolVar(&f.insecure, "insecure", envBool("HERALD_INSECURE"), "allow listening on a non-loopback address without tokens (env HERALD_INSECURE)")
	fl.StringVar(&f.tlsCert, "tls-cert", envOr("HERALD_TLS_CERT", ""), "serve HTTPS with this certificate (PEM; with --tls-key) (env HERALD_TLS_CERT)")
	fl.StringVar(&f.tlsKey, "tls-key", envOr("HERALD_TLS_KEY", ""), "the certificate's private key (PEM) (env HERALD_TLS_KEY)")
	fl.StringSliceVar(&f.corsOrigins, "cors-origin", envList("HERALD_CORS_ORIGIN"), "let browser pages from this origin call the API; repeat or comma-separate, * for any (env HERALD_CORS_ORIGIN)")
	fl.StringVar(&f.durability, "durability", envOr("HERALD_DURABILITY", "full"), "sqlite: full (fsync every commit) or normal (env HERALD_DURABILITY)")
	fl.DurationVar(&f.quickCheck, "quick-check", envDuration("HERALD_QUICK_CHECK", sqlite.DefaultQuickCheck), "sqlite: how long the integrity check of the store file at start may run (about 6 s a gigabyte); 0 skips it (env HERALD_QUICK_CHECK)")
	fl.StringVar(&f.logLevel, "log-level", envOr("HERALD_LOG_LEVEL", "info"), "debug, info, warn or error (env HERALD_LOG_LEVEL)")
	fl.StringVar(&f.logFormat, "log-format", envOr("HERALD_LOG_FORMAT", "text"), "text or json: with json every line on stdout and stderr is a JSON record (env HERALD_LOG_FORMAT)")
	fl.IntVar(&f.maxConnsPerAddr, "max-conns-per-addr", envInt("HERALD_MAX_CONNS_PER_ADDR", server.DefaultMaxConnsPerAddr),
		"connections one client address (an IPv6 /64) may hold open at once; more are closed at once; 0 turns the cap off (env HERALD_MAX_CONNS_PER_ADDR)")
	fl.Int64Var(&f.auditMaxSize, "audit-max-size", int64(envInt("HERALD_AUDIT_MAX_SIZE", defaultAuditMaxSize)),
		"bytes audit.log may reach before it is rotated to audit.log.1 (env HERALD_AUDIT_MAX_SIZE)")
	fl.IntVar(&f.auditKeep, "audit-keep", envInt("HERALD_AUDIT_KEEP", defaultAuditKeep),
		"rotated audit logs to keep (audit.log.1 … audit.log.N) (env HERALD_AUDIT_KEEP)")
	fl.StringVar(&f.metricsToken, "metrics-token", envOr("HERALD_METRICS_TOKEN", ""),
		"/metrics answers only requests with this bearer token (or an admin token); empty: /metrics is open (env HERALD_METRICS_TOKEN)")
	defPolicy := server.DefaultWebhookPolicy()
	fl.StringVar(&f.webhookLoopback, "webhook-loopback", envOr("HERALD_WEBHOOK_LOOPBACK", string(defPolicy.Loopback)),
		"whose webhooks may reach loopback addresses: everyone, admin or nobody (env HERALD_WEBHOOK_LOOPBACK)")
	fl.StringVar(&f.webhookPrivate, "webhook-private", envOr("HERALD_WEBHOOK_PRIVATE", string(defPolicy.Private)),
		"whose webhooks may reach private, link-local and unique local addresses: everyone, admin or nobody (env HERALD_WEBHOOK_PRIVATE)")
	fl.StringSliceVar(&f.webhookAllow, "webhook-allow", envList("HERALD_WEBHOOK_ALLOW"),
		"address prefixes every webhook may reach, e.g. 10.1.0.0/16; repeat or comma-separate; the only way to reach metadata addresses (env HERALD_WEBHOOK_ALLOW)")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", envDuration("HERALD_SHUTDOWN_TIMEOUT", 30*time.Second), "how long a graceful stop may take (env HERALD_SHUTDOWN_TIMEOUT)")
	return cmd
}

func envBool(key string) bool {
	v, err := strconv.ParseBool(os.Getenv(key))
	return err == nil && v
}

func envList(key string) []string {
	if v := os.Getenv(key); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return n
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
	}
	return def
}

// envSet reports whether a flag's environment variable is set.
func envSet(key string) bool { return os.Getenv(key) != "" }

// applyConfig fills the settings the configuration file gives and neither
// a flag nor the environment set.
func applyConfig(cmd *cobra.Command, f *serveFlags, c *serveConfig) {
	set := func(flag, env string) bool { return cmd.Flags().Changed(flag) || envSet(env) }
	if c.Addr != "" && !set("addr", "HERALD_ADDR") {
		f.addr = c.Addr
	}
	if c.Data != "" && !set("data", "HERALD_DATA") {
		f.data = c.Data
	}
	if c.Store != "" && !set("store", "HERALD_STORE") {
		f.store = c.Store
	}
	if c.NATS != "" && !set("nats", "HERALD_NATS") {
		f.nats = c.NATS
	}
	if c.Durability != "" && !set("durability", "HERALD_DURABILITY") {
		f.durability = c.Durability
	}
	if c.Insecure && !set("insecure", "HERALD_INSECURE") {
		f.insecure = true
	}
	if c.TLSCert != "" && !set("tls-cert", "HERALD_TLS_CERT") {
		f.tlsCert = c.TLSCert
	}
	if c.TLSKey != "" && !set("tls-key", "HERALD_TLS_KEY") {
		f.tlsKey = c.TLSKey
	}
	if len(c.CORSOrigins) > 0 && !set("cors-origin", "HERALD_CORS_ORIGIN") {
		f.corsOrigins = c.CORSOrigins
	}
	if c.MaxConnsPerAddr != 0 && !set("max-conns-per-addr", "HERALD_MAX_CONNS_PER_ADDR") {
		f.maxConnsPerAddr = max(c.MaxConnsPerAddr, 0)
	}
	if c.MetricsToken != "" && !set("metrics-token", "HERALD_METRICS_TOKEN") {
		f.metricsToken = c.MetricsToken
	}
	if p := c.WebhookPolicy; p != nil {
		if p.Loopback != "" && !set("webhook-loopback", "HERALD_WEBHOOK_LOOPBACK") {
			f.webhookLoopback = string(p.Loopback)
		}
		if p.Private != "" && !set("webhook-private", "HERALD_WEBHOOK_PRIVATE") {
			f.webhookPrivate = string(p.Private)
		}
		if len(p.Allow) > 0 && !set("webhook-allow", "HERALD_WEBHOOK_ALLOW") {
			f.webhookAllow = p.Allow
		}
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", format)}
}

// isLoopback reports whether addr's host is a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(ctx context.Context, cmd *cobra.Command, f *serveFlags, stdout, stderr io.Writer) (err error) {
	// The configuration file holds no log setting: the logger comes
	// first, so that a configuration error is a JSON record too.
	log, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if f.logFormat == "json" {
		// Every line herald serve writes is then a JSON record, its
		// failure too: main prints nothing more for a loggedError.
		defer func() {
			if err != nil {
				log.Error("herald stopped", "err", err.Error())
				err = loggedError{err}
			}
		}()
	}
	var cfg serveConfig
	if f.config != "" {
		c, err := loadServeConfig(f.config)
		if err != nil {
			return err
		}
		cfg = *c
		applyConfig(cmd, f, &cfg)
	}
	if (f.nats != "" || f.natsEmbedded) && !cmd.Flags().Changed("store") && !envSet("HERALD_STORE") && cfg.Store == "" {
		f.store = "nats"
	}
	switch {
	case f.store != "memory" && f.store != "sqlite" && f.store != "nats":
		return usageError{fmt.Errorf("--store %q: want sqlite, memory or nats", f.store)}
	case f.natsEmbedded && f.nats != "":
		return usageError{errors.New("--nats-embedded runs its own JetStream node: leave out --nats")}
	case f.natsEmbedded && f.store != "nats":
		return usageError{errors.New("--nats-embedded needs --store nats")}
	case f.natsCluster != "" && (!f.natsEmbedded || f.natsName == "" || len(f.natsRoutes) == 0):
		return usageError{errors.New("--nats-cluster needs --nats-embedded, --nats-name and --nats-routes")}
	case f.natsMonitor != "" && !f.natsEmbedded:
		return usageError{errors.New("--nats-monitor needs --nats-embedded (a NATS server of your own has its own monitoring settings)")}
	case f.natsReplicas < 0 || f.natsReplicas > 5:
		return usageError{fmt.Errorf("--nats-replicas %d: want 1 to 5", f.natsReplicas)}
	case f.store == "nats" && f.nats == "" && !f.natsEmbedded:
		return usageError{errors.New("--store nats needs --nats with the servers' URLs, e.g. nats://127.0.0.1:4222")}
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	var tlsCfg *tls.Config
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("loading the TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		return usageError{fmt.Errorf("--addr %q: want host:port, e.g. 127.0.0.1:7480", f.addr)}
	}

	st, where, err := openStore(ctx, f, log)
	if err != nil {
		return err
	}
	storeClosed := false
	defer func() {
		if !storeClosed {
			st.Close()
		}
	}()

	audit := log.With("audit", true)
	if f.store != "memory" {
		if err := os.MkdirAll(f.data, 0o700); err != nil {
			return fmt.Errorf("creating the data folder %s: %w", f.data, err)
		}
		af, err := openAuditFile(filepath.Join(f.data, "audit.log"), f.auditMaxSize, f.auditKeep)
		if err != nil {
			return fmt.Errorf("opening the audit log in %s: %w", f.data, err)
		}
		defer af.Close()
		audit = slog.New(slog.NewJSONHandler(af, nil))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Fields a schema marks "x-sensitive" are encrypted with a key per
	// subject kept in the bus's KV; POST /v1/subjects/{subject}/forget
	// deletes the key (crypto-shredding). The codec is given once, to the
	// bus, which applies it on every path.
	codec, err := sensitive.New(nil, nil)
	if err != nil {
		return err
	}
	// Without rules the bus keeps events 30 days (herald.DefaultRetention);
	// a configuration's rules replace it.
	retention := cfg.Retention
	if len(retention) == 0 {
		retention = herald.DefaultRetention()
	}
	// The bus logs each failed delivery attempt: a webhook that fails
	// without end would fill the disk with one line. At most 10 a minute
	// per line and subscription, then a count of those dropped.
	busLog := slog.New(throttled(log.Handler(), 10, time.Minute))
	if err := cfg.ReadAhead.check(); err != nil {
		return fmt.Errorf("%s: %w", f.config, err)
	}
	bus, err := herald.New(herald.WithStore(st), herald.WithLogger(busLog), herald.WithRegisterer(reg),
		herald.WithMaxEventSize(eventLimit(cfg.Limits)), herald.WithCodec(codec),
		herald.WithRetention(retention, pruneEvery),
		herald.WithReadAhead(cfg.ReadAhead.PerSubscription, cfg.ReadAhead.Total))
	if err != nil {
		return err
	}
	busClosed := false
	defer func() {
		if !busClosed {
			bus.Close(context.Background())
		}
	}()
	tokens, err := cfg.tokens()
	if err != nil {
		return fmt.Errorf("%s: %w", f.config, err)
	}
	policy := server.WebhookPolicy{Loopback: server.WebhookAccess(f.webhookLoopback),
		Private: server.WebhookAccess(f.webhookPrivate), Allow: f.webhookAllow}
	if err := policy.Validate(); err != nil {
		return usageError{err}
	}
	opts := []server.Option{
		server.WithLogger(log), server.WithAuditLogger(audit), server.WithRegistry(reg),
		server.WithTokens(tokens), server.WithLimits(cfg.Limits), server.WithPushLimits(cfg.PushLimits), server.WithSubscriptions(cfg.Subscriptions),
		server.WithCORS(f.corsOrigins...),
		server.WithWebhookPolicy(policy),
		server.WithMetricsToken(f.metricsToken),
	}
	if !isLoopback(f.addr) && !f.insecure {
		// Beyond loopback the server must never be open, not even after
		// its last token is revoked.
		opts = append(opts, server.WithRequireTokens())
	}
	opts = append(opts, server.WithInfo(buildVersion(debug.ReadBuildInfo()), f.store))
	srv, err := server.New(bus, opts...)
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	// The file's schemas win over those registered through the API.
	for _, sc := range cfg.Schemas {
		if err := bus.Schemas().Register(sc.Name, sc.Version, sc.json); err != nil {
			return fmt.Errorf("%s: schema %s v%d: %w", f.config, sc.Name, sc.Version, err)
		}
	}
	if !srv.AuthEnabled() && !isLoopback(f.addr) && !f.insecure {
		return usageError{fmt.Errorf("refusing to listen on %s without tokens: anyone who can reach that address could publish, read and delete events. "+
			"Configure tokens (--config), listen on a loopback address such as 127.0.0.1:7480, or pass --insecure", f.addr)}
	}

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.addr, err)
	}
	// Before TLS: a connection beyond an address's cap costs no handshake.
	ln = server.LimitConnsPerAddr(ln, f.maxConnsPerAddr)
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	hs.RegisterOnShutdown(srv.EndStreams)
	mode := "open (no tokens)"
	if srv.AuthEnabled() {
		mode = "tokens required"
	}
	url := reachableURL(scheme, ln.Addr())
	if f.logFormat == "json" {
		out := slog.New(slog.NewJSONHandler(stdout, nil))
		out.Info("herald listening", "url", url, "addr", ln.Addr().String(), "data", where, "auth", mode)
	} else {
		line := fmt.Sprintf("herald listening on %s, data in %s, %s", url, where, mode)
		if bound := ln.Addr().String(); !strings.Contains(url, bound) {
			line += "; bound to " + bound + " (every interface)"
		}
		fmt.Fprintln(stdout, line)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}

	// Graceful stop: no new connections, requests in flight finish (their
	// events are acknowledged only once stored), then the deliveries in
	// flight, then the bus and the store.
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	log.Info("stopping: finishing requests and deliveries in flight")
	var errs []error
	if err := hs.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping the HTTP server: requests still in flight were cut off: %w", err))
	}
	if err := srv.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping push subscriptions: %w", err))
	}
	busClosed = true
	if err := bus.Close(sctx); err != nil && !errors.Is(err, herald.ErrClosed) {
		errs = append(errs, fmt.Errorf("closing the bus: %w", err))
	}
	storeClosed = true
	if err := st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the store: %w", err))
	}
	if len(errs) == 0 && sctx.Err() == nil {
		if f.logFormat == "json" {
			slog.New(slog.NewJSONHandler(stdout, nil)).Info("herald stopped")
		} else {
			fmt.Fprintln(stdout, "herald stopped")
		}
		return nil
	}
	if sctx.Err() != nil {
		// Whatever was left was abandoned: the stop is not clean, and the
		// exit status says so.
		errs = append([]error{fmt.Errorf("the graceful stop took longer than --shutdown-timeout %s", f.shutdownTimeout)}, errs...)
	}
	return uncleanStop{errors.Join(errs...)}
}

// uncleanStop is a graceful stop that did not finish: it timed out, or
// left something behind. Unlike an interruption, it is an error (herald
// exits non-zero) that says what was left.
type uncleanStop struct{ error }

func (u uncleanStop) Unwrap() error { return u.error }

// reachableURL is the URL a client on this machine uses to reach a
// listener bound to addr: an unspecified address (0.0.0.0, [::], which Go
// binds for both IPv4 and IPv6) is reached through loopback, so it is
// written as 127.0.0.1 rather than as an address no client can dial.
func reachableURL(scheme string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// describeData says where the data of store kind lives, for people.
func describeData(kind, data string) string {
	if kind == "memory" {
		return "memory (lost when the server stops)"
	}
	return strings.TrimSuffix(data, "/") + " (sqlite)"
}
