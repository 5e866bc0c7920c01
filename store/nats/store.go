// Package nats is herald's NATS JetStream store: the event log, the state
// of durable subscriptions and herald's key-value space, all kept in
// JetStream, so several herald processes can share one log and share the
// work of durable subscriptions (see Store.Consume).
//
// What lives where, for namespace ns (default "herald"):
//
//   - events: stream NS_EVENTS (subjects "ns.ev.>"), one message per event,
//     the stream sequence is the event's position;
//   - ids: stream NS_IDS (UUIDv7 ids, many to a message by time bucket)
//     and KV bucket ns_ids (other ids), event id → position, for
//     idempotency beyond JetStream's duplicate window;
//   - subscription state: KV bucket ns_subs (checkpoints, outcomes, dead
//     letters), written with atomic batches;
//   - herald's KV space: KV bucket ns_kv.
//
// # Guarantees
//
// Positions are stream sequences: strictly increasing, and an atomic batch
// takes consecutive positions. Append is idempotent by event id: within
// the stream's duplicate window JetStream itself refuses a repeated
// Nats-Msg-Id, and beyond it the id index answers — forever for UUIDv7
// ids (indexed many to a message by mint time, and kept when Prune deletes
// the event), for as long as the event is kept for other ids. Index
// entries of single appends are written in the background right after the
// event; a process that dies in between leaves the event unindexed until
// the next repair, which every Store runs when it opens and then every
// quarter of the duplicate window, so the gap closes long before the
// duplicate window ends unless no herald process runs at all for that
// long (and the first to open again repairs before it appends).
//
// Subscription state is committed at least once: a commit of outcomes
// writes them before the checkpoint (see Store.Commit), so a crash part
// way causes redelivery, never a checkpoint without its outcomes.
//
// Durability is JetStream's. By default a JetStream server acknowledges a
// write once it is in the operating system's page cache (of a quorum of
// replicas) and fsyncs every two minutes: a power failure of a single
// server, or of a majority of replicas at once, can lose the appends of
// the last two minutes. EmbeddedConfig.SyncAlways (sync_interval: always
// on an existing server) fsyncs every write before acknowledging it. The
// docs (backends.md) tabulate what each setting can lose.
//
// NATS server 2.12 or newer is required (atomic batch publish).
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var _ herald.Store = (*Store)(nil)

// Store is a herald.Store on NATS JetStream. It is safe for concurrent use
// by many goroutines, and many Stores (in one process or many) may use the
// same streams at once. After Close every method returns herald.ErrClosed.
type Store struct {
	nc      *natsgo.Conn
	ownsNC  bool
	onClose func() // after the connection closes (OpenEmbedded: stop the server)
	js      jetstream.JetStream
	cfg     config
	subj    subjects

	events jetstream.Stream
	ids    jetstream.KeyValue
	subs   jetstream.KeyValue
	kv     jetstream.KeyValue
	// kvErasable is set when the kv bucket's stream allows message
	// deletes, so that DeleteValue can erase (not all buckets made by
	// earlier versions do; JetStream cannot turn it on later).
	kvErasable bool

	eventsStream string // stream name of the events
	subsStream   string // stream name behind the subs bucket

	// Background work logs when it starts failing and when it works
	// again, not each failure.
	indexLog, repairLog, membershipLog stateLog

	closed  atomic.Bool
	closing chan struct{}
	base    context.Context // canceled by Close
	stop    context.CancelFunc
	wg      sync.WaitGroup

	// head tracking for Wait
	headMu    sync.Mutex
	head      uint64
	headCh    chan struct{} // closed and replaced when head grows
	tailMu    sync.Mutex
	tailStop  func() // set once the tail runs
	repairMu  sync.Mutex
	consumers sync.Map // *sharedConsumer → struct{}
	// trace, set by tests before Consume, sees every step of the shared
	// consumers' deliveries (see consumeTrace); nil otherwise.
	trace   func(consumeTrace)
	appendQ chan *appendReq
	idx     *indexer
	// indexed: what this Store indexed itself, which repair skips.
	indexed  indexedSet
	directMu sync.RWMutex   // held (read) by each appendDirect; Close takes it to wait for them
	timers   sync.Pool      // stopped *time.Timer, for appendDirect's request timeout
	appWG    sync.WaitGroup // appenders
	appDone  chan struct{}  // closed once no appender runs
	idxWG    sync.WaitGroup // the indexer

	// This handle's subscription counts (counts.go).
	countOnce   sync.Once
	countHandle string
	counted     sync.Map // subscription → *handleCounts
}

type config struct {
	namespace  string
	replicas   int
	partitions int
	dupWindow  time.Duration
	maxBatch   int
	// outcomeBatchMin is the fewest outcomes a commit writes as one
	// batch (see outcomes.go).
	outcomeBatchMin int
	timeout         time.Duration
	logger          *slog.Logger
	storage         jetstream.StorageType
	maxBytes        int64
	maxEvents       int64
}

// Option configures Open and Connect.
type Option func(*config)

// WithNamespace names the streams and subjects the store uses, so several
// independent herald logs can share one JetStream account. It must match
// [a-z0-9_]+. Default "herald".
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithReplicas sets the replica count of the streams and buckets the store
// creates (1, 3 or 5; a cluster is needed above 1). Existing streams keep
// theirs. Default 1.
func WithReplicas(n int) Option { return func(c *config) { c.replicas = n } }

// WithPartitions sets how many partitions shared durable subscriptions
// split the log into (1 to 256), fixed when the event stream is created;
// an existing stream keeps its own count. Events of one subject are always
// in one partition. Default 8.
func WithPartitions(n int) Option { return func(c *config) { c.partitions = n } }

// WithDuplicateWindow sets the event stream's duplicate window: how long
// JetStream itself refuses a repeated event id. Beyond it the id index
// answers. A server keeps every id of the window in memory, about 130
// bytes each: at a sustained 10,000 events/s the default holds 1.2 M ids
// (about 160 MB), JetStream's own default of 10 minutes five times that.
// A longer window costs memory and buys nothing for idempotency; it only
// lets more appends skip the index lookup (ids minted within a quarter of
// the window, see docs/backends.md). Fixed when the event stream is created.
// Default 2 minutes.
func WithDuplicateWindow(d time.Duration) Option { return func(c *config) { c.dupWindow = d } }

// WithMaxBatch sets the largest batch Append accepts; it must not exceed
// the server's atomic batch limit (jetstream.limits.max_batch_size, 1,000 by
// default). Larger batches fail with herald.ErrTooLarge. Default 1,000.
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithRequestTimeout bounds each JetStream request made with a context
// that has no deadline. Default 10 s.
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLogger sets the logger for background work (repair, tailing). A nil
// logger discards. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMemoryStorage keeps the streams in memory instead of files: for tests
// only, everything is lost when the server stops. Default: file storage.
func WithMemoryStorage() Option { return func(c *config) { c.storage = jetstream.MemoryStorage } }

// WithMaxBytes caps the event stream's size; appends beyond it fail with
// herald.ErrStoreFull. Default: no cap.
func WithMaxBytes(n int64) Option { return func(c *config) { c.maxBytes = n } }

// WithMaxEvents caps how many events the event stream holds; appends
// beyond it fail with herald.ErrStoreFull until Prune makes room. Default:
// no cap.
func WithMaxEvents(n int64) Option { return func(c *config) { c.maxEvents = n } }

var nsRe = regexp.MustCompile(`^[a-z0-9_]+$`)

func defaultConfig() config {
	return config{
		namespace:       "herald",
		replicas:        1,
		partitions:      8,
		dupWindow:       2 * time.Minute,
		maxBatch:        1000,
		outcomeBatchMin: defaultOutcomeBatchMin,
		timeout:         10 * time.Second,
		storage:         jetstream.FileStorage,
	}
}

func (c *config) validate() error {
	switch {
	case !nsRe.MatchString(c.namespace) || len(c.namespace) > 32:
		return fmt.Errorf("nats store: namespace %q must be 1 to 32 of [a-z0-9_]", c.namespace)
	case c.replicas < 1 || c.replicas > 5:
		return fmt.Errorf("nats store: replicas %d: must be 1 to 5", c.replicas)
	case c.partitions < 1 || c.partitions > 256:
		return fmt.Errorf("nats store: partitions %d: must be 1 to 256", c.partitions)
	case c.dupWindow < time.Second:
		return fmt.Errorf("nats store: duplicate window %v: must be at least 1s", c.dupWindow)
	case c.maxBatch < 1:
		return fmt.Errorf("nats store: max batch %d: must be at least 1", c.maxBatch)
	case c.timeout <= 0:
		return fmt.Errorf("nats store: request timeout %v: must be positive", c.timeout)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Connect dials the NATS servers at url (a comma-separated list such as
// "nats://h1:4222,nats://h2:4222") and opens the store on them. The store
// owns the connection and closes it on Close. The connection reconnects
// forever; requests made while it is down fail with their context. While
// JetStream answers with transient errors (it is starting, its cluster has
// no quorum), Connect keeps trying with backoff until ctx ends and logs
// one line; give ctx a deadline to bound the wait.
func Connect(ctx context.Context, url string, opts ...Option) (*Store, error) {
	nc, err := natsgo.Connect(url,
		natsgo.Name("herald"),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250*time.Millisecond),
		natsgo.RetryOnFailedConnect(false),
		asyncErrorsTo(opts),
	)
	if err != nil {
		return nil, fmt.Errorf("nats store: connect: %w", err)
	}
	s, err := open(ctx, nc, true, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

// asyncErrorsTo sends the connection's asynchronous errors (a slow
// consumer, a permission refused, a write to a broken connection) to the
// logger WithLogger gives among opts, instead of nats.go's default of
// printing them on standard error, where they would break a server's
// structured log.
func asyncErrorsTo(opts []Option) natsgo.Option {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return natsgo.ErrorHandler(func(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
		if sub != nil {
			log.Warn("nats store: connection error", "subject", sub.Subject, "err", err)
			return
		}
		log.Warn("nats store: connection error", "err", err)
	})
}

// Open opens the store on an existing connection, creating the streams and
// buckets it needs when they do not exist. The caller keeps ownership of nc
// and must close it after the store. Streams created by a newer herald are
// refused with an error wrapping herald.ErrIncompatibleStore. Transient
// JetStream errors are retried until ctx ends, as in Connect.
func Open(ctx context.Context, nc *natsgo.Conn, opts ...Option) (*Store, error) {
	if nc == nil {
		return nil, errors.New("nats store: nil connection")
	}
	return open(ctx, nc, false, opts)
}

// formatVersion is written into the event stream's metadata; a stream with a
// higher one was made by a newer herald. Format 2 added the time-bucketed
// id index (stream NS_IDS); a format 1 stream is upgraded when opened.
const formatVersion = 2

func open(ctx context.Context, nc *natsgo.Conn, owns bool, opts []Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("nats store: %w", err)
	}
	s := &Store{
		nc: nc, ownsNC: owns, js: js, cfg: cfg,
		closing: make(chan struct{}),
		headCh:  make(chan struct{}),
	}
	s.base, s.stop = context.WithCancel(context.Background())
	// JetStream that is starting, or whose cluster has no quorum yet,
	// answers with transient errors: keep trying until ctx ends.
	if err := retryTransient(ctx, s, "opening the store", s.setup); err != nil {
		s.stop()
		return nil, err
	}
	if err := retryTransient(ctx, s, "repairing the id index", s.repair); err != nil {
		s.stop()
		return nil, fmt.Errorf("nats store: repairing the id index: %w", err)
	}
	s.wg.Add(1)
	go s.repairLoop()
	s.appendQ = make(chan *appendReq, maxGroup)
	s.appDone = make(chan struct{})
	s.idx = newIndexer()
	for range appenders {
		s.appWG.Add(1)
		go s.appender()
	}
	s.idxWG.Add(1)
	go s.runIndexer()
	return s, nil
}

func (s *Store) setup(ctx context.Context) error {
	ns := s.cfg.namespace
	s.eventsStream = strings.ToUpper(ns) + "_EVENTS"
	sc := jetstream.StreamConfig{
		Name:               s.eventsStream,
		Description:        "herald event log",
		Subjects:           []string{ns + ".ev.>"},
		Retention:          jetstream.LimitsPolicy,
		Storage:            s.cfg.storage,
		Replicas:           s.cfg.replicas,
		Duplicates:         s.cfg.dupWindow,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		Discard:            jetstream.DiscardNew,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		Metadata: map[string]string{
			"herald_format":     fmt.Sprint(formatVersion),
			"herald_partitions": fmt.Sprint(s.cfg.partitions),
		},
	}
	if s.cfg.maxBytes > 0 {
		sc.MaxBytes = s.cfg.maxBytes
	}
	if s.cfg.maxEvents > 0 {
		sc.MaxMsgs = s.cfg.maxEvents
	}
	st, err := s.js.Stream(ctx, s.eventsStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = s.js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = s.js.Stream(ctx, s.eventsStream)
		}
		if err != nil {
			return fmt.Errorf("nats store: creating stream %s: %w", s.eventsStream, err)
		}
	case err != nil:
		return fmt.Errorf("nats store: stream %s: %w", s.eventsStream, err)
	}
	info := st.CachedInfo()
	md := info.Config.Metadata
	var fv, parts int
	if _, err := fmt.Sscan(md["herald_format"], &fv); err != nil || fv < 1 {
		return fmt.Errorf("%w: stream %s is not a herald event stream", herald.ErrIncompatibleStore, s.eventsStream)
	}
	if fv > formatVersion {
		return fmt.Errorf("%w: stream %s has format %d, this herald knows %d", herald.ErrIncompatibleStore, s.eventsStream, fv, formatVersion)
	}
	if err := s.idsStream(ctx); err != nil {
		return err
	}
	if fv < formatVersion {
		// Format 2 indexes UUIDv7 ids in time buckets, which a herald of
		// format 1 would not read: mark the stream so that it refuses it.
		sc := info.Config
		sc.Metadata = maps.Clone(sc.Metadata)
		sc.Metadata["herald_format"] = fmt.Sprint(formatVersion)
		if st, err = s.js.UpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("nats store: stream %s: marking format %d: %w", s.eventsStream, formatVersion, err)
		}
		info = st.CachedInfo()
	}
	if _, err := fmt.Sscan(md["herald_partitions"], &parts); err != nil || parts < 1 || parts > 256 {
		return fmt.Errorf("%w: stream %s has no valid partition count", herald.ErrIncompatibleStore, s.eventsStream)
	}
	if !info.Config.AllowAtomicPublish || !info.Config.AllowDirect {
		return fmt.Errorf("%w: stream %s lacks atomic publish or direct get", herald.ErrIncompatibleStore, s.eventsStream)
	}
	s.cfg.partitions = parts
	s.cfg.dupWindow = info.Config.Duplicates
	s.subj = subjects{ns: ns, partitions: parts}
	s.events = st
	s.head = info.State.LastSeq

	kvc := func(bucket, desc string) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{
			Bucket: bucket, Description: desc, History: 1,
			Storage: s.cfg.storage, Replicas: s.cfg.replicas,
		}
	}
	if s.ids, err = s.bucket(ctx, kvc(ns+"_ids", "herald event id index"), false, false); err != nil {
		return err
	}
	if s.subs, err = s.bucket(ctx, kvc(ns+"_subs", "herald subscription state"), true, false); err != nil {
		return err
	}
	s.subsStream = "KV_" + ns + "_subs"
	if s.kv, err = s.bucket(ctx, kvc(ns+"_kv", "herald key-value space"), false, true); err != nil {
		return err
	}
	kvStream, err := s.js.Stream(ctx, "KV_"+ns+"_kv")
	if err != nil {
		return fmt.Errorf("nats store: bucket %s_kv: %w", ns, err)
	}
	s.kvErasable = !kvStream.CachedInfo().Config.DenyDelete
	if !s.kvErasable {
		s.cfg.logger.Warn("nats store: the KV bucket was created by an earlier herald and denies message deletes; "+
			"deleted values (forgotten subjects' keys) are purged but stay on disk until JetStream compacts their block",
			"bucket", ns+"_kv")
	}
	return nil
}

// bucket opens or creates a KV bucket; atomic turns on atomic batch publish
// on its stream; erasable creates its stream allowing message deletes, so
// that values can be erased (see DeleteValue).
func (s *Store) bucket(ctx context.Context, c jetstream.KeyValueConfig, atomicBatch, erasable bool) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, c.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if erasable {
			_, err = s.js.CreateStream(ctx, erasableKVStream(c))
			if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				kv, err = s.js.KeyValue(ctx, c.Bucket)
			}
		} else {
			kv, err = s.js.CreateKeyValue(ctx, c)
		}
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			kv, err = s.js.KeyValue(ctx, c.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("nats store: bucket %s: %w", c.Bucket, err)
	}
	if atomicBatch {
		st, err := s.js.Stream(ctx, "KV_"+c.Bucket)
		if err != nil {
			return nil, fmt.Errorf("nats store: bucket %s: %w", c.Bucket, err)
		}
		if sc := st.CachedInfo().Config; !sc.AllowAtomicPublish {
			sc.AllowAtomicPublish = true
			if _, err := s.js.UpdateStream(ctx, sc); err != nil {
				return nil, fmt.Errorf("nats store: bucket %s: enabling atomic publish: %w", c.Bucket, err)
			}
		}
	}
	return kv, nil
}

// erasableKVStream is the stream CreateKeyValue makes for c, but allowing
// message deletes, which JetStream's KV streams deny and which a stream
// update cannot allow afterwards.
func erasableKVStream(c jetstream.KeyValueConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + c.Bucket,
		Description:       c.Description,
		Subjects:          []string{"$KV." + c.Bucket + ".>"},
		MaxMsgsPerSubject: int64(max(c.History, 1)),
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           c.Storage,
		Replicas:          max(c.Replicas, 1),
		AllowRollup:       true,
		DenyDelete:        false,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
	}
}

// reqCtx bounds ctx by the request timeout when it has no deadline.
func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.timeout)
}

func (s *Store) check() error {
	if s.closed.Load() {
		return herald.ErrClosed
	}
	return nil
}

// Conn returns the store's NATS connection.
func (s *Store) Conn() *natsgo.Conn { return s.nc }

// Partitions returns the partition count of the event stream.
func (s *Store) Partitions() int { return s.cfg.partitions }

// Close stops the store's shared consumers (handing their unfinished
// deliveries back), lets the appends in flight finish, writes the id index
// entries still queued, stops the background work, and closes the
// connection when the store dialled it (Connect, OpenEmbedded) and the
// server when it runs it (OpenEmbedded). Appends still queued fail with
// herald.ErrClosed. It is safe to call more than once.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	s.consumers.Range(func(k, _ any) bool {
		k.(*sharedConsumer).Close()
		return true
	})
	if s.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.closeCounts(ctx)
		cancel()
	}
	s.tailMu.Lock()
	if s.tailStop != nil {
		s.tailStop()
	}
	s.tailMu.Unlock()
	// Appenders finish their groups; then the indexer writes what they queued.
	s.appWG.Wait()
	// Direct appends in flight hold directMu for reading: taking it waits
	// for them to finish (they see closed afterwards).
	s.directMu.Lock()
	s.directMu.Unlock() //lint:ignore SA2001 the critical section is the wait
	s.failQueued()
	close(s.appDone)
	close(s.idx.ch)
	s.idxWG.Wait()
	if s.nc.IsConnected() {
		// Everything this Store appended is indexed now: when it appended
		// alone, the watermark moves to the head without reading, and the
		// next Store to open has nothing to repair.
		ctx, cancel := context.WithTimeout(s.base, 2*time.Second)
		_ = s.repairKnown(ctx)
		cancel()
	}
	s.stop() // background requests (repair) end here
	s.wg.Wait()
	s.headMu.Lock()
	close(s.headCh)
	s.headCh = make(chan struct{})
	s.headMu.Unlock()
	if s.ownsNC {
		s.nc.Close()
	}
	if s.onClose != nil {
		s.onClose()
	}
	return nil
}
