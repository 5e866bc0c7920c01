package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// Server serves herald's HTTP API over one Bus. It is safe for concurrent
// use. Close stops what it started (streams, push subscriptions); it never
// closes the Bus or its store. Retention is the Bus's (herald.WithRetention).
type Server struct {
	bus   *herald.Bus
	kv    herald.KV // the bus's KV: tokens, schemas, push subscriptions
	cfg   config
	log   *slog.Logger
	audit *slog.Logger
	mux   *http.ServeMux
	auth  *authenticator
	hub   *hub
	push  *pushManager
	// policy says which addresses webhooks may reach; hooks are the
	// delivery clients that enforce it.
	policy webhookPolicy
	hooks  webhookClients
	// tickets are the stream tickets handed out (tickets.go).
	tickets tickets
	// sessions are the console's login sessions (sessions.go), uiAssets
	// its files (consoleui.go), history the samples of GET /v1/history.
	sessions sessions
	uiAssets map[string]*uiAsset
	history  *history
	m        *metrics
	// bodies are the publish bodies being read and decoded
	// (WithMaxBodyReads), pages the pages of events being built
	// (WithMaxPageReads).
	bodies, pages *slots

	streamMu  sync.Mutex
	streamsBy map[string]int // open SSE streams by identity
	// catchUps and catchUpsBy hold one element per stream reading the
	// store, in all and by identity (takeCatchUp).
	catchUps   chan struct{}
	catchUpsBy map[string]chan struct{}

	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	streams context.Context // ends at EndStreams or Close
	endSSE  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	once    sync.Once
}

type config struct {
	logger          *slog.Logger
	audit           *slog.Logger
	registry        *prometheus.Registry
	tokens          []Token
	limits          Limits
	heartbeat       time.Duration
	streamBuffer    int
	writeTimeout    time.Duration
	webhookClient   *http.Client
	subscriptions   []PushSubscription
	defaultReadLim  int
	maxStreams      int
	corsOrigins     []string
	refresh         time.Duration
	requireTokens   bool
	version         string
	storeKind       string
	bodyTimeout     time.Duration
	answerTimeout   time.Duration
	maxBodyReads    int
	maxBodyReadsID  int
	maxPageReads    int
	maxPageReadsID  int
	maxStreamsPerID int
	maxPageBytes    int
	pushLimits      PushLimits
	webhookPolicy   WebhookPolicy
	metricsToken    string
	historyEvery    time.Duration
	historyKeep     int
}

// Option configures a Server in New.
type Option func(*config)

// WithLogger sets the server's logger. The default (and nil) discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithRequireTokens says that the server must never be open: give it to a
// server that listens beyond loopback. Without it a server that knows no
// token serves everyone (the zero-configuration case on 127.0.0.1); with
// it every request then needs a token, and the last admin token cannot be
// revoked, so that revoking tokens can never open the server to a
// network.
func WithRequireTokens() Option { return func(c *config) { c.requireTokens = true } }

// WithInfo says what GET /v1/status and the herald_build_info metric
// report of the server: its build version and the kind of its store
// ("sqlite", "memory", "nats"). Both are empty by default.
func WithInfo(version, storeKind string) Option {
	return func(c *config) { c.version, c.storeKind = version, storeKind }
}

// WithAuditLogger sets the audit log, which records admin actions and
// denied requests. The default is the server's logger with audit=true.
func WithAuditLogger(l *slog.Logger) Option { return func(c *config) { c.audit = l } }

// WithRegistry registers the server's metrics on r and serves r at
// /metrics; give the Bus the same registry (herald.WithRegisterer) so that
// its metrics are served too. The default is a registry of the server's own.
func WithRegistry(r *prometheus.Registry) Option { return func(c *config) { c.registry = r } }

// WithTokens sets the tokens of the configuration. Tokens created through
// the API are kept in the store and added to these. With no token at all
// the server is open: every caller may do everything.
func WithTokens(t []Token) Option { return func(c *config) { c.tokens = append(c.tokens, t...) } }

// WithLimits sets the input limits; zero fields keep the defaults of
// DefaultLimits (4 MiB body, 1,000 events, 1 MiB event, depth 64).
func WithLimits(l Limits) Option { return func(c *config) { c.limits = l } }

// WithHeartbeat sets how often an idle SSE stream gets a comment line.
// Default 15 s.
func WithHeartbeat(d time.Duration) Option { return func(c *config) { c.heartbeat = d } }

// WithStreamBuffer sets how many recent events the server keeps in memory
// for its SSE streams; a stream that falls further behind while live is
// disconnected (it resumes with Last-Event-ID). Default 8192.
func WithStreamBuffer(n int) Option { return func(c *config) { c.streamBuffer = n } }

// WithStreamWriteTimeout bounds each write to an SSE client; a client that
// does not read for that long is disconnected. Default 10 s.
func WithStreamWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithMaxStreams caps the SSE streams open at once; one more is refused
// with 503 and Retry-After. Default 1,000.
func WithMaxStreams(n int) Option { return func(c *config) { c.maxStreams = n } }

// WithBodyReadTimeout bounds how long a client may take to send a
// request's body, counted from the start of the request. A body that has
// not arrived by then is answered 400 and its connection closed, so that a
// client sending a short or slow body cannot hold a connection (and its
// memory) for longer. Default 30 s.
func WithBodyReadTimeout(d time.Duration) Option { return func(c *config) { c.bodyTimeout = d } }

// WithMaxBodyReads caps the publish bodies the server reads and decodes at
// once, which bounds the memory they take (with the body limit: 64 × 4 MiB
// by default). A publish beyond the cap waits up to a second for a slot,
// then is refused with 503 backpressure and Retry-After. A body of more
// than 64 KiB holds its slot until its events are stored; a smaller one
// gives it back once decoded, so that small publishes waiting for the
// store's commit do not hold off the next ones (the connection caps bound
// how many wait). Default 64.
func WithMaxBodyReads(n int) Option { return func(c *config) { c.maxBodyReads = n } }

// WithMaxBodyReadsPerIdentity caps the publish bodies one identity (all
// its tokens together) may have read at once, so that one token sending
// bodies slowly cannot hold every slot of WithMaxBodyReads; one more
// waits up to a second for one of the identity's own to end, then is
// refused with 429 rate_limited and Retry-After. Admins and an open
// server have only the total cap. Default a quarter of
// WithMaxBodyReads (16 of 64), at least 1.
func WithMaxBodyReadsPerIdentity(n int) Option { return func(c *config) { c.maxBodyReadsID = n } }

// WithMaxPageReads caps the pages of GET /v1/events the server builds at
// once (each holds up to WithMaxPageBytes of events, and their JSON), in
// all and per non-admin identity: one more page of an identity at its cap
// waits up to a second for one of its own, then gets 429 rate_limited,
// one more beyond the total waits up to a second, then gets 503
// backpressure; both with Retry-After. Defaults 16 and 4: with 4 MiB pages, about 64 MiB of
// events at once for one identity.
func WithMaxPageReads(total, perIdentity int) Option {
	return func(c *config) { c.maxPageReads, c.maxPageReadsID = total, perIdentity }
}

// WithAnswerTimeout bounds how long writing an answer may take (every
// endpoint but the SSE stream, which WithStreamWriteTimeout bounds); a
// client that does not read its answer is disconnected. Default 2 min.
func WithAnswerTimeout(d time.Duration) Option { return func(c *config) { c.answerTimeout = d } }

// WithMaxStreamsPerIdentity caps the SSE streams one identity (all its
// tokens together) may hold open at once; one more is refused with 429
// rate_limited and Retry-After. It keeps one token from taking every
// stream WithMaxStreams allows. An open server (no tokens) has only the
// total cap. Default 100 (DefaultMaxStreamsPerIdentity).
func WithMaxStreamsPerIdentity(n int) Option { return func(c *config) { c.maxStreamsPerID = n } }

// WithMaxPageBytes caps the bytes of events one page of GET /v1/events
// holds (a page holds at least one event, whatever its size); the caller
// reads on from the page's next_after. With the default cap, 20 concurrent
// pages of 1,000 large events take 80 MiB, not gigabytes. Default 4 MiB.
func WithMaxPageBytes(n int) Option { return func(c *config) { c.maxPageBytes = n } }

// PushLimits caps push subscriptions (webhooks), which each hold memory,
// goroutines and connections. Zero fields take the defaults
// (DefaultPushLimits). The caps per identity apply to non-admin tokens;
// admins and the configuration file (WithSubscriptions) have only the
// total cap.
type PushLimits struct {
	// PerIdentity is the most push subscriptions one identity may own.
	// Default 20.
	PerIdentity int `json:"per_identity,omitempty" yaml:"per_identity,omitempty"`
	// Total is the most push subscriptions the server runs. Default 500.
	Total int `json:"total,omitempty" yaml:"total,omitempty"`
	// ConcurrencyPerIdentity caps the sum of the concurrency of one
	// identity's push subscriptions (a subscription's concurrency is at
	// most 1,024). Default 64.
	ConcurrencyPerIdentity int `json:"concurrency_per_identity,omitempty" yaml:"concurrency_per_identity,omitempty"`
	// ConcurrencyTotal caps the sum of the concurrency of every push
	// subscription the server runs, admins' and the configuration's
	// included: each delivery in flight holds a connection and its
	// buffers. Default 1,024.
	ConcurrencyTotal int `json:"concurrency_total,omitempty" yaml:"concurrency_total,omitempty"`
	// DeadLetters is the most dead letters a push subscription adds
	// before it pauses: a subscription holding at least this many whose
	// count grew in the last second stops delivering (its definition and
	// checkpoint are kept) until its dead letters are discarded below
	// the cap, or an admin redrives. Each dead letter keeps a copy of its
	// event, so this bounds what one subscription's failing endpoint
	// writes. Default 10,000.
	DeadLetters int `json:"dead_letters,omitempty" yaml:"dead_letters,omitempty"`
}

// DefaultPushLimits returns the push subscription caps the server applies
// unless told otherwise.
func DefaultPushLimits() PushLimits {
	return PushLimits{PerIdentity: 20, Total: 500, ConcurrencyPerIdentity: 64, ConcurrencyTotal: 1024, DeadLetters: 10000}
}

func (l PushLimits) withDefaults() PushLimits {
	d := DefaultPushLimits()
	if l.PerIdentity <= 0 {
		l.PerIdentity = d.PerIdentity
	}
	if l.Total <= 0 {
		l.Total = d.Total
	}
	if l.ConcurrencyPerIdentity <= 0 {
		l.ConcurrencyPerIdentity = d.ConcurrencyPerIdentity
	}
	if l.ConcurrencyTotal <= 0 {
		l.ConcurrencyTotal = d.ConcurrencyTotal
	}
	if l.DeadLetters <= 0 {
		l.DeadLetters = d.DeadLetters
	}
	return l
}

// WithPushLimits sets the caps on push subscriptions; zero fields keep the
// defaults of DefaultPushLimits (20 per identity, 500 in all, a
// concurrency of 64 per identity and 1,024 in all, 10,000 dead letters
// per subscription). A PUT beyond a cap is refused with 403.
func WithPushLimits(l PushLimits) Option { return func(c *config) { c.pushLimits = l } }

// WithCORS lets browser pages from origins call the API (Cross-Origin
// Resource Sharing); "*" allows any origin. None by default. Tokens still
// apply: CORS only tells browsers they may send the request.
func WithCORS(origins ...string) Option {
	return func(c *config) { c.corsOrigins = append(c.corsOrigins, origins...) }
}

// WithRefresh sets how often the server reloads the tokens, schemas and
// push subscriptions that another server sharing its store may have
// changed. Default 15 s.
func WithRefresh(d time.Duration) Option { return func(c *config) { c.refresh = d } }

// WithWebhookClient sets the HTTP client of webhook deliveries. The default
// keeps many idle connections per host, uses no proxy, follows no
// redirect, and checks every address it dials against the webhook policy
// (WithWebhookPolicy). With a client given here the server checks only
// the endpoints' literal addresses: the client must check what it dials.
func WithWebhookClient(cl *http.Client) Option { return func(c *config) { c.webhookClient = cl } }

// WithWebhookPolicy sets which addresses webhooks may reach; zero fields
// keep the defaults of DefaultWebhookPolicy (loopback for everyone,
// private and link-local ranges for admins, cloud metadata addresses for
// no one). New refuses an unknown access or a bad prefix.
func WithWebhookPolicy(p WebhookPolicy) Option { return func(c *config) { c.webhookPolicy = p } }

// WithMetricsToken makes /metrics, which names every push subscription,
// answer only requests that carry token (Authorization: Bearer <token>,
// the form Prometheus sends) or an admin token; others get 401. Without
// it /metrics is open to anyone who can reach the server, as /healthz
// and /readyz are.
func WithMetricsToken(token string) Option { return func(c *config) { c.metricsToken = token } }

// WithSubscriptions declares push subscriptions (from a configuration
// file): New creates or updates each of them. None by default.
func WithSubscriptions(s []PushSubscription) Option {
	return func(c *config) { c.subscriptions = append(c.subscriptions, s...) }
}

// startTimeout bounds what New reads from the store.
const startTimeout = 30 * time.Second

// New returns a server for bus. It loads the tokens, schemas and push
// subscriptions kept in the bus's store, starts the push subscriptions,
// and applies those given with WithSubscriptions.
func New(bus *herald.Bus, opts ...Option) (*Server, error) {
	if bus == nil {
		return nil, errors.New("server: bus is nil")
	}
	cfg := config{heartbeat: 15 * time.Second, streamBuffer: 8192, writeTimeout: 10 * time.Second, defaultReadLim: 100, maxStreams: 1000, refresh: tokenRefresh,
		bodyTimeout: 30 * time.Second, answerTimeout: 2 * time.Minute, maxBodyReads: 64,
		maxStreamsPerID: DefaultMaxStreamsPerIdentity, maxPageBytes: 4 << 20, historyEvery: 10 * time.Second, historyKeep: 90,
		maxPageReads: 16, maxPageReadsID: 4}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.limits = cfg.limits.withDefaults()
	if cfg.maxBodyReadsID == 0 {
		cfg.maxBodyReadsID = max(1, cfg.maxBodyReads/4)
	}
	cfg.pushLimits = cfg.pushLimits.withDefaults()
	switch {
	case cfg.heartbeat <= 0:
		return nil, errors.New("server: heartbeat must be positive")
	case cfg.streamBuffer < 16:
		return nil, errors.New("server: stream buffer must hold at least 16 events")
	case cfg.writeTimeout <= 0:
		return nil, errors.New("server: stream write timeout must be positive")
	case cfg.maxStreams < 1:
		return nil, errors.New("server: max streams must be at least 1")
	case cfg.refresh <= 0:
		return nil, errors.New("server: refresh interval must be positive")
	case cfg.maxPageBytes < 1:
		return nil, errors.New("server: max page bytes must be at least 1")
	case cfg.maxStreamsPerID < 1:
		return nil, errors.New("server: max streams per identity must be at least 1")
	case cfg.maxBodyReads < 1:
		return nil, errors.New("server: max body reads must be at least 1")
	case cfg.maxBodyReadsID < 0:
		return nil, errors.New("server: max body reads per identity must not be negative")
	case cfg.maxPageReads < 1 || cfg.maxPageReadsID < 1:
		return nil, errors.New("server: max page reads, in all and per identity, must be at least 1")
	case cfg.bodyTimeout <= 0 || cfg.answerTimeout <= 0:
		return nil, errors.New("server: body read and answer timeouts must be positive")
	case cfg.historyEvery <= 0 || cfg.historyKeep < 2:
		return nil, errors.New("server: history needs a positive interval and at least 2 samples")
	case cfg.limits.MaxEvent > int(cfg.limits.MaxBody):
		return nil, errors.New("server: the event limit is above the body limit")
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.audit == nil {
		cfg.audit = cfg.logger.With("audit", true)
	}
	if cfg.registry == nil {
		cfg.registry = prometheus.NewRegistry()
	}
	policy, err := cfg.webhookPolicy.compile()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{bus: bus, kv: bus.KV(), cfg: cfg, log: cfg.logger, audit: cfg.audit,
		bodies: newSlots("publish bodies being read", cfg.maxBodyReads, cfg.maxBodyReadsID),
		pages:  newSlots("pages of events being read", cfg.maxPageReads, cfg.maxPageReadsID), streamsBy: map[string]int{},
		catchUps: make(chan struct{}, maxCatchUps), catchUpsBy: map[string]chan struct{}{},
		policy: policy, hooks: newWebhookClients(policy, cfg.webhookClient)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.streams, s.endSSE = context.WithCancel(s.ctx)
	m, err := newMetrics(cfg.registry, cfg.version, cfg.storeKind, s.ready)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	s.m = m
	if s.uiAssets, err = loadUIAssets(); err != nil {
		s.cancel()
		return nil, fmt.Errorf("server: console files: %w", err)
	}
	if s.auth, err = newAuthenticator(s.kv, cfg.tokens, cfg.requireTokens); err != nil {
		s.cancel()
		return nil, fmt.Errorf("server: %w", err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, startTimeout)
	defer cancel()
	if err := s.start(ctx); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	if err := s.auth.load(ctx); err != nil {
		return fmt.Errorf("server: loading tokens: %w", err)
	}
	if err := s.loadSchemas(ctx); err != nil {
		return fmt.Errorf("server: loading schemas: %w", err)
	}
	head, err := s.bus.Head(ctx)
	if err != nil {
		return fmt.Errorf("server: reading the log's head: %w", err)
	}
	s.hub = newHub(s.bus, head, s.cfg.streamBuffer, s.log)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.hub.run(s.ctx)
	}()
	s.push = newPushManager(s)
	s.auth.onRevoke = append(s.auth.onRevoke, s.push.pauseIdentity)
	if err := s.push.load(ctx); err != nil {
		return fmt.Errorf("server: loading push subscriptions: %w", err)
	}
	for _, def := range s.cfg.subscriptions {
		if _, _, err := s.push.put(ctx, def, nil, false); err != nil {
			return fmt.Errorf("server: subscription %q: %s", def.Name, toAPIError(err).Message)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.refreshShared()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.every(deadLetterCheck, s.push.checkDeadLetters)
	}()
	s.history = newHistory(s.cfg.historyEvery, s.cfg.historyKeep)
	s.history.add(s.sample())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sampleHistory()
	}()
	return nil
}

// every calls f every d until Close.
func (s *Server) every(d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// refreshShared reloads, every refresh interval until Close, what another
// server sharing the store may have changed: tokens, schemas and push
// subscriptions.
func (s *Server) refreshShared() {
	s.every(s.cfg.refresh, func() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		if err := s.auth.load(ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("reloading tokens", "err", err)
		}
		if err := s.loadSchemas(ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("reloading schemas", "err", err)
		}
		if !s.closed.Load() {
			if err := s.push.sync(ctx); err != nil && s.ctx.Err() == nil {
				s.log.Warn("reloading push subscriptions", "err", err)
			}
		}
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.corsOrigins) > 0 && s.cors(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// corsAllowHeaders are the request headers a browser may send.
const corsAllowHeaders = "Authorization, Content-Type, Content-Encoding, Last-Event-ID, Herald-Expected-Version, " +
	"Ce-Specversion, Ce-Id, Ce-Type, Ce-Source, Ce-Time, Ce-Subject, Ce-Correlationid, Ce-Causationid, Ce-Dataversion, Ce-Priority, Ce-Heraldmetadata"

// cors sets the CORS headers for an allowed origin, and answers a
// preflight request itself (then it returns true).
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	allowed := false
	for _, o := range s.cfg.corsOrigins {
		if o == "*" || o == origin {
			allowed = true
			break
		}
	}
	if !allowed {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Retry-After, Herald-Next-After")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// EndStreams ends every open SSE stream (clients resume with Last-Event-ID).
// Give it to http.Server.RegisterOnShutdown so that Shutdown does not wait
// for streams that never end on their own.
func (s *Server) EndStreams() { s.endSSE() }

// Close ends the SSE streams, stops the push subscriptions (waiting, until
// ctx ends, for deliveries in flight). It does not
// close the Bus or its store. After Close the API answers 503.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		s.endSSE()
		if s.push != nil {
			err = s.push.stopAll(ctx)
		}
		s.cancel()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
		}
	})
	return err
}

// route is one endpoint: its pattern, what it needs and its handler.
type route struct {
	pattern string
	public  bool // no authentication
	h       func(w http.ResponseWriter, r *http.Request, p *principal) error
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	for _, rt := range s.routeTable() {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	s.consoleRoutes(s.mux)
	s.mux.Handle("/", s.wrap(route{"other", true, func(w http.ResponseWriter, r *http.Request, _ *principal) error {
		if allow := s.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
				"%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
		}
		return notFound("no such endpoint: %s %s", r.Method, r.URL.Path)
	}}))
}

// routeTable lists every endpoint of the API; openapi.json describes each
// of them (a test holds them together).
func (s *Server) routeTable() []route {
	metricsH := promhttp.HandlerFor(s.cfg.registry, promhttp.HandlerOpts{})
	return []route{
		{"POST /v1/events", false, s.handlePublish},
		{"GET /v1/events", false, s.handleList},
		{"GET /v1/events/{id...}", false, s.handleGet},
		{"GET /v1/stream", false, s.handleStream},
		{"POST /v1/stream/tickets", false, s.handleStreamTicket},
		{"GET /v1/correlations/{id...}", false, s.handleCorrelation},
		{"GET /v1/subscriptions", false, s.handleSubList},
		{"PUT /v1/subscriptions/{name}", false, s.handleSubPut},
		{"GET /v1/subscriptions/{name}", false, s.handleSubGet},
		{"DELETE /v1/subscriptions/{name}", false, s.handleSubDelete},
		{"POST /v1/subscriptions/{name}/replay", false, s.handleSubReplay},
		{"GET /v1/dlq", false, s.handleDLQList},
		{"POST /v1/dlq/redrive", false, s.handleDLQRedriveAll},
		{"POST /v1/dlq/{id}/redrive", false, s.handleDLQRedrive},
		{"DELETE /v1/dlq/{id}", false, s.handleDLQDelete},
		{"DELETE /v1/dlq", false, s.handleDLQDiscardAll},
		{"GET /v1/subjects/{subject}", false, s.handleSubject},
		{"POST /v1/subjects/{subject}/forget", false, s.handleForget},
		{"GET /v1/schemas", false, s.handleSchemaList},
		{"PUT /v1/schemas/{name}/{version}", false, s.handleSchemaPut},
		{"GET /v1/schemas/{name}/{version}", false, s.handleSchemaGet},
		{"POST /v1/tokens", false, s.handleTokenCreate},
		{"GET /v1/tokens", false, s.handleTokenList},
		{"DELETE /v1/tokens/{id}", false, s.handleTokenRevoke},
		{"GET /v1/status", false, s.handleStatus},
		{"GET /v1/history", false, s.handleHistory},
		{"GET /v1/openapi.json", true, s.handleOpenAPI},
		{"GET /healthz", true, s.handleHealth},
		{"GET /readyz", true, s.handleReady},
		{"GET /metrics", true, func(w http.ResponseWriter, r *http.Request, _ *principal) error {
			if err := s.checkMetricsToken(r); err != nil {
				return err
			}
			metricsH.ServeHTTP(w, r)
			return nil
		}},
	}
}

// checkMetricsToken lets a request read /metrics: any request when the
// server has no metrics token (WithMetricsToken), otherwise one that
// carries it or an admin token.
func (s *Server) checkMetricsToken(r *http.Request) error {
	if s.cfg.metricsToken == "" {
		return nil
	}
	got := bearer(r)
	want := sha256.Sum256([]byte(s.cfg.metricsToken))
	have := sha256.Sum256([]byte(got))
	if got != "" && subtle.ConstantTimeCompare(want[:], have[:]) == 1 {
		return nil
	}
	if got != "" {
		if p, err := s.auth.authenticate(r); err == nil && p.tok != nil && p.tok.Admin {
			return nil
		}
	}
	return newError(http.StatusUnauthorized, CodeUnauthorized, "/metrics needs the metrics token or an admin token: send Authorization: Bearer <token>")
}

// allowed returns the methods that some route serves at r's path, sorted;
// none when the path is unknown. The catch-all route "/" would otherwise
// turn a wrong method into a 404.
func (s *Server) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPost, http.MethodPut} {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// statusWriter records the status of an answer. It passes Flush and
// deadlines through (http.ResponseController uses Unwrap).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap adds what every endpoint needs: metrics, authentication, the
// per-token rate limit for everything but publishing (which counts events),
// the audit of denials, and the error answer.
func (s *Server) wrap(rt route) http.Handler {
	label := rt.pattern
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		body := s.bound(w, r, rt, start)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "route", label, "panic", fmt.Sprint(v))
				if w.status == 0 {
					s.writeError(w, r, fmt.Errorf("panic: %v", v))
				}
			}
			d := time.Since(start)
			s.m.observe(label, w.status, d)
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.Int("status", w.status), slog.Duration("duration", d),
					slog.String("remote", r.RemoteAddr))
			}
		}()
		p, err := s.serve(w, r, rt)
		if err != nil {
			ae := toAPIError(err)
			if ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden || ae.Status == http.StatusTooManyRequests {
				s.auditDenied(r, p, ae)
			}
			if w.status == 0 {
				if body != nil && !body.done() {
					// The body was not read to its end: close rather
					// than wait for the rest of it, which may never come
					// (net/http would read it before reusing the
					// connection).
					w.Header().Set("Connection", "close")
					http.NewResponseController(w).SetReadDeadline(time.Now())
				}
				s.writeError(w, r, ae)
			}
		}
	})
}

// bound sets the deadlines of one request: its body must arrive within the
// body read timeout and its answer be written within the answer timeout
// (an SSE stream sets its own write deadlines). It returns r's body,
// wrapped to tell whether it was read to its end, or nil when r has none.
func (s *Server) bound(w http.ResponseWriter, r *http.Request, rt route, start time.Time) *trackedBody {
	rc := http.NewResponseController(w)
	if rt.pattern != "GET /v1/stream" {
		rc.SetWriteDeadline(start.Add(s.cfg.answerTimeout))
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	rc.SetReadDeadline(start.Add(s.cfg.bodyTimeout))
	tb := &trackedBody{ReadCloser: r.Body}
	r.Body = tb
	return tb
}

// trackedBody is a request body that remembers whether it was read to its
// end.
type trackedBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

func (b *trackedBody) done() bool { return b.eof.Load() }

// serve authenticates the caller and runs the route's handler. It returns
// the caller (nil when unknown) with the handler's error.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) (*principal, error) {
	if rt.public {
		return nil, rt.h(w, r, nil)
	}
	if s.closed.Load() {
		return nil, herald.ErrClosed
	}
	p, err := s.authenticate(r, rt)
	if err != nil {
		return nil, err
	}
	// Every request takes one from the caller's budget before anything
	// else, its body included, is read: a refused request costs as much
	// as an accepted one. A publish takes one more per event beyond the
	// first once its events are decoded.
	if err := p.allow(1); err != nil {
		return p, err
	}
	return p, rt.h(w, r, p)
}

// smallPublishBody is the largest publish body that gives its body slot
// back once decoded, before its events are stored (see WithMaxBodyReads).
const smallPublishBody = 64 << 10

// slotWait is how long a request waits for a slot of a full slots
// before it is refused.
const slotWait = time.Second

// slots caps the requests of one kind that hold much memory at once (a
// publish body being read and decoded, a page of events being built): at
// most cap(all) in all, and at most perID of one non-admin identity (all
// its tokens together), so that one token cannot take them all. It is
// safe for concurrent use.
type slots struct {
	what  string // "publish bodies", in the errors
	all   chan struct{}
	perID int
	mu    sync.Mutex
	by    map[string]*idSlots
}

// idSlots are one identity's slots: a slot is taken by sending to ch.
// refs counts the requests holding or waiting for one, so that the entry
// goes once none does.
type idSlots struct {
	ch   chan struct{}
	refs int
}

func newSlots(what string, total, perID int) *slots {
	return &slots{what: what, all: make(chan struct{}, total), perID: perID, by: map[string]*idSlots{}}
}

// take waits for a slot for p's request; call release once the memory it
// holds is no longer needed. A non-admin identity that holds its share
// waits up to slotWait for one of its own slots, then is refused with 429
// rate_limited; a request that finds every slot taken waits up to
// slotWait more, then is refused with 503 backpressure. Both carry
// Retry-After. A burst of one identity's requests is so served in turn,
// and only an identity that keeps its slots held (slow bodies, unread
// pages) is refused.
func (sl *slots) take(ctx context.Context, p *principal) (release func(), err error) {
	release = func() { <-sl.all }
	if !p.admin() {
		id := p.identity()
		sl.mu.Lock()
		own := sl.by[id]
		if own == nil {
			own = &idSlots{ch: make(chan struct{}, sl.perID)}
			sl.by[id] = own
		}
		own.refs++
		sl.mu.Unlock()
		leave := func() {
			sl.mu.Lock()
			defer sl.mu.Unlock()
			if own.refs--; own.refs == 0 {
				delete(sl.by, id)
			}
		}
		switch ok, err := acquire(ctx, own.ch); {
		case err != nil:
			leave()
			return nil, err
		case !ok:
			leave()
			e := newError(http.StatusTooManyRequests, CodeRateLimited,
				"this identity has %d %s at once, its cap, and none ended within %v: retry shortly, or send them faster", sl.perID, sl.what, slotWait)
			e.RetryAfter = time.Second
			return nil, e
		}
		done := func() {
			<-own.ch
			leave()
		}
		defer func() {
			if err != nil {
				done()
			}
		}()
		release = func() { <-sl.all; done() }
	}
	ok, err := acquire(ctx, sl.all)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		e := newError(http.StatusServiceUnavailable, CodeBackpressure, "the server has as many %s as it may: retry shortly", sl.what)
		e.RetryAfter = time.Second
		return nil, e
	}
	return release, nil
}

// acquire takes a place in ch: at once when there is one (no timer on
// that path), else waiting up to slotWait. It reports false when the wait
// ran out, and ctx's error when ctx ended first.
func acquire(ctx context.Context, ch chan struct{}) (bool, error) {
	select {
	case ch <- struct{}{}:
		return true, nil
	default:
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, nil
	}
}

// maxAuditField is the most bytes of a caller-chosen value (a path, a
// reason, an address) that one audit record keeps.
const maxAuditField = 256

// clip cuts v to maxAuditField bytes, saying how long it was.
func clip(v string) string {
	if len(v) <= maxAuditField {
		return v
	}
	cut := maxAuditField
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "…(" + strconv.Itoa(len(v)) + " bytes)"
}

// auditDenied records a refused request in the audit log (best effort:
// the request is refused anyway).
func (s *Server) auditDenied(r *http.Request, p *principal, ae *apiError) {
	var who string
	if p != nil {
		who = p.identity()
	}
	s.audit.LogAttrs(r.Context(), slog.LevelWarn, "request denied",
		slog.String("method", clip(r.Method)), slog.String("path", clip(r.URL.Path)),
		slog.String("remote", clip(r.RemoteAddr)), slog.String("identity", who),
		slog.Int("status", ae.Status), slog.String("code", ae.Code), slog.String("reason", clip(ae.Message)))
}

// auditAction records an admin action in the audit log before it is done.
// When the record cannot be written (a full disk) it returns a 503, and
// the handler must not do the action: no admin action goes unaudited.
func (s *Server) auditAction(r *http.Request, p *principal, action string, attrs ...slog.Attr) error {
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "admin action", 0)
	rec.AddAttrs(slog.String("action", action), slog.String("identity", p.identity()),
		slog.String("remote", clip(r.RemoteAddr)))
	for _, a := range attrs {
		if a.Value.Kind() == slog.KindString {
			a.Value = slog.StringValue(clip(a.Value.String()))
		}
		rec.AddAttrs(a)
	}
	h := s.audit.Handler()
	if !h.Enabled(r.Context(), slog.LevelInfo) {
		return nil
	}
	if err := h.Handle(r.Context(), rec); err != nil {
		s.log.Error("the audit log cannot be written: admin action refused", "action", action, "err", err)
		e := newError(http.StatusServiceUnavailable, CodeBackpressure, "the audit log cannot be written: the action was not done")
		e.RetryAfter = 30 * time.Second
		return e
	}
	return nil
}

func requireAdmin(p *principal) error {
	if !p.admin() {
		return newError(http.StatusForbidden, CodeForbidden, "this needs an admin token")
	}
	return nil
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request, _ *principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// checkReady is what /readyz and the herald_ready gauge ask: the store's
// head, and whether the store takes writes now.
func (s *Server) checkReady(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, herald.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	head, err := s.bus.Head(ctx)
	if err == nil {
		err = s.bus.Ready(ctx) // a NATS JetStream store without quorum is not ready
	}
	return head, err
}

// ready reports 1 when the server would answer /readyz with 200 (it is
// open and its store answers within 2 seconds), 0 otherwise: the
// herald_ready gauge.
func (s *Server) ready() float64 {
	if _, err := s.checkReady(s.ctx); err != nil {
		return 0
	}
	return 1
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request, _ *principal) error {
	head, err := s.checkReady(r.Context())
	if errors.Is(err, herald.ErrClosed) && s.closed.Load() {
		return err
	}
	if err != nil {
		// Not ready is 503 whatever the reason; a damaged store says so.
		msg := "the store is not ready"
		if errors.Is(err, herald.ErrIncompatibleStore) {
			msg = "the store is damaged or incompatible: see the server's log"
		}
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure, Message: msg, Index: -1, cause: err}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "head": head})
	return nil
}

// handleStatus answers GET /v1/status for any caller with a token: the
// server's version, its store, its head, the push subscriptions the
// caller may see and, on a store that runs on a cluster, the cluster. Unlike /readyz it needs a token, since it says more.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, p *principal) error {
	head, err := s.bus.Head(r.Context())
	if err != nil {
		return err
	}
	n := 0
	for _, ps := range s.push.list() {
		if s.mayManage(p, ps) {
			n++
		}
	}
	st := api.ServerStatus{Status: "ready", Version: s.cfg.version, Store: s.cfg.storeKind,
		Head: head, Subscriptions: n}
	// A cluster without quorum may not answer: status answers anyway,
	// saying so in the cluster's error.
	ctx, cancel := context.WithTimeout(r.Context(), clusterStatusTimeout)
	defer cancel()
	if st.Cluster, err = s.bus.Cluster(ctx); err != nil {
		st.Cluster = &api.ClusterStatus{Nodes: []api.ClusterNode{}, Error: err.Error()}
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// clusterStatusTimeout bounds how long GET /v1/status waits for the
// store's cluster to describe itself.
const clusterStatusTimeout = 5 * time.Second

// drain reads and discards what is left of a body, bounded, so that the
// connection can be reused.
func drain(r io.Reader) {
	io.CopyN(io.Discard, r, 64<<10)
}
