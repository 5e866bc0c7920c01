package herald

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bus's Prometheus metrics. A nil *metrics records nothing.
type metrics struct {
	published     prometheus.Counter
	publishErrors *prometheus.CounterVec
	backpressure  prometheus.Counter
	duration      *prometheus.HistogramVec
	handlerErrors *prometheus.CounterVec
	deadLettered  *prometheus.CounterVec
	retried       *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	lag           *prometheus.Desc
	inFlight      *prometheus.Desc
	deadLetters   *prometheus.Desc
	heldBytes     *prometheus.Desc
	storeSize     *prometheus.Desc
	bus           *Bus
}

func newMetrics(r prometheus.Registerer, b *Bus) (*metrics, error) {
	if r == nil {
		return nil, nil
	}
	m := &metrics{
		bus: b,
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_events_published_total",
			Help: "Events appended to the log by Publish and PublishBatch (duplicates not counted).",
		}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_publish_errors_total",
			Help: "Publish calls that failed, by reason.",
		}, []string{"reason"}),
		backpressure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_publish_backpressure_total",
			Help: "Publish calls that failed with ErrBackpressure.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_event_processing_duration_seconds",
			Help:    "Duration of handler calls, by subscription and event name.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"subscription", "event"}),
		handlerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_handler_errors_total",
			Help: "Failed handler attempts (errors, panics, timeouts), by subscription.",
		}, []string{"subscription"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_dead_lettered_total",
			Help: "Events moved to the dead-letter queue, by subscription.",
		}, []string{"subscription"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_retries_total",
			Help: "Retries scheduled after a failed attempt, by subscription.",
		}, []string{"subscription"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_dropped_total",
			Help: "Events dropped by ephemeral subscriptions with DropOldest, by subscription.",
		}, []string{"subscription"}),
		lag: prometheus.NewDesc("herald_subscription_lag",
			"Events in the log after the subscription's position.", []string{"subscription"}, nil),
		inFlight: prometheus.NewDesc("herald_subscription_in_flight",
			"Handler calls running now.", []string{"subscription"}, nil),
		deadLetters: prometheus.NewDesc("herald_dead_letters",
			"Dead letters waiting in the queue (as Bus.DeadLetters lists them), by subscription; a successful redrive lowers it.",
			[]string{"subscription"}, nil),
		heldBytes: prometheus.NewDesc("herald_subscription_held_bytes",
			"Bytes of events a durable subscription holds: read ahead, queued, waiting for a retry or being handled (bounded by WithReadAhead).",
			[]string{"subscription"}, nil),
		storeSize: prometheus.NewDesc("herald_store_size_bytes",
			"Bytes the store's data takes (SQLite: its files; JetStream: herald's streams). Absent for stores that cannot tell.",
			nil, nil),
	}
	for _, c := range []prometheus.Collector{m.published, m.publishErrors, m.backpressure, m.duration,
		m.handlerErrors, m.deadLettered, m.retried, m.dropped, (*subsCollector)(m)} {
		if err := r.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("herald: the registerer already holds herald metrics (one bus per registry)")
			}
			return nil, err
		}
	}
	return m, nil
}

// subMetrics are one subscription's label children, resolved once.
type subMetrics struct {
	m             *metrics
	handlerErrors prometheus.Counter
	deadLettered  prometheus.Counter
	retried       prometheus.Counter
	dropped       prometheus.Counter
}

func (m *metrics) forSub(name string) *subMetrics {
	if m == nil {
		return nil
	}
	return &subMetrics{
		m:             m,
		handlerErrors: m.handlerErrors.WithLabelValues(name),
		deadLettered:  m.deadLettered.WithLabelValues(name),
		retried:       m.retried.WithLabelValues(name),
		dropped:       m.dropped.WithLabelValues(name),
	}
}

// forget removes a stopped subscription's series.
func (m *metrics) forget(name string) {
	if m == nil {
		return
	}
	m.duration.DeletePartialMatch(prometheus.Labels{"subscription": name})
	m.handlerErrors.DeleteLabelValues(name)
	m.deadLettered.DeleteLabelValues(name)
	m.retried.DeleteLabelValues(name)
	m.dropped.DeleteLabelValues(name)
}

// observer returns the duration histogram child for (sub, event name),
// cached in the worker's map so the hot path does no label lookup.
func (sm *subMetrics) observer(cache map[string]prometheus.Observer, sub, name string) prometheus.Observer {
	if o, ok := cache[name]; ok {
		return o
	}
	o := sm.m.duration.WithLabelValues(sub, name)
	if len(cache) < 1024 {
		cache[name] = o
	}
	return o
}

// subsCollector reports per-subscription gauges at scrape time.
type subsCollector metrics

func (c *subsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.inFlight
	ch <- c.deadLetters
	ch <- c.heldBytes
	ch <- c.storeSize
}

func (c *subsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	head, err := c.bus.store.Head(ctx)
	if err != nil {
		return
	}
	// Dead letters are counted as stored, without first committing what
	// the subscriptions have pending: a scrape never writes.
	dead, deadErr := c.bus.deadLetterCounts(ctx)
	for _, s := range c.bus.subscriptionList() {
		st := s.stats(head)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(st.Lag), s.name)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(st.InFlight), s.name)
		if s.durable {
			s.mu.Lock()
			n := s.q.heldLocked()
			s.mu.Unlock()
			ch <- prometheus.MustNewConstMetric(c.heldBytes, prometheus.GaugeValue, float64(n), s.name)
		}
		if s.durable && deadErr == nil {
			ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.GaugeValue, float64(dead[s.name]), s.name)
			delete(dead, s.name)
		}
	}
	// Those of subscriptions not running in this bus.
	for name, n := range dead {
		ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.GaugeValue, float64(n), name)
	}
	if sz, ok := c.bus.store.(Sizer); ok {
		if n, err := sz.Size(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.storeSize, prometheus.GaugeValue, float64(n))
		}
	}
}
