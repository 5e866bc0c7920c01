package server

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// The server keeps a small ring of samples of what it did, so that the
// console can draw the last minutes without a Prometheus: every interval
// (WithHistory) it notes the log's head, the failed and dead-lettered
// deliveries and the handled events of each push subscription, and the
// histogram of webhook delivery durations. GET /v1/history turns
// consecutive samples into rates and percentiles. The ring's memory is
// bounded: keep samples, each a few numbers per push subscription.

// WithHistory sets how often the server samples its activity for GET
// /v1/history and how many samples it keeps. Default every 10 s, 90
// samples: the last 15 minutes.
func WithHistory(every time.Duration, keep int) Option {
	return func(c *config) { c.historyEvery, c.historyKeep = every, keep }
}

// historySample is the server's cumulative counters at one time.
type historySample struct {
	at      time.Time
	head    uint64
	failed  uint64 // failed delivery attempts, every push subscription
	dead    uint64 // dead-lettered events, every push subscription
	count   uint64 // delivery attempts timed
	buckets []uint64
	bounds  []float64
	handled map[string]uint64 // handled events by push subscription
}

// history is the ring of samples; safe for concurrent use.
type history struct {
	mu    sync.Mutex
	ring  []historySample
	next  int
	n     int
	every time.Duration
}

func newHistory(every time.Duration, keep int) *history {
	return &history{ring: make([]historySample, keep), every: every}
}

func (h *history) add(s historySample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = s
	h.next = (h.next + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
}

// samples returns the kept samples, oldest first.
func (h *history) samples() []historySample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]historySample, 0, h.n)
	for i := range h.n {
		out = append(out, h.ring[(h.next-h.n+i+len(h.ring))%len(h.ring)])
	}
	return out
}

// sample reads the server's counters now.
func (s *Server) sample() historySample {
	hs := historySample{at: time.Now(), handled: map[string]uint64{}}
	if head, err := s.bus.Head(s.ctx); err == nil {
		hs.head = head
	}
	for _, ps := range s.push.list() {
		if ps.sub == nil {
			continue
		}
		st := ps.sub.Stats()
		hs.failed += st.Failed
		hs.dead += st.DeadLettered
		hs.handled[ps.def.Name] = st.Handled
	}
	var m dto.Metric
	if s.m.delivDur.Write(&m) == nil && m.Histogram != nil {
		hs.count = m.Histogram.GetSampleCount()
		for _, b := range m.Histogram.Bucket {
			hs.bounds = append(hs.bounds, b.GetUpperBound())
			hs.buckets = append(hs.buckets, b.GetCumulativeCount())
		}
	}
	return hs
}

// sampleHistory samples every interval until Close (start took the
// first sample).
func (s *Server) sampleHistory() {
	s.every(s.history.every, func() { s.history.add(s.sample()) })
}

// handleHistory answers GET /v1/history: the server's activity over the
// last samples, the last interval ending now.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request, p *principal) error {
	if s.history == nil {
		return errors.New("server: no history")
	}
	samples := append(s.history.samples(), s.sample())
	out := api.History{IntervalSeconds: s.history.every.Seconds(), Points: []api.HistoryPoint{}, Subscriptions: map[string][]uint64{}}
	visible := map[string]bool{}
	for _, ps := range s.push.list() {
		if s.mayManage(p, ps) {
			visible[ps.def.Name] = true
			out.Subscriptions[ps.def.Name] = []uint64{}
		}
	}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		secs := b.at.Sub(a.at).Seconds()
		if secs <= 0 {
			continue
		}
		pt := api.HistoryPoint{Time: b.at.UTC(), Seconds: math.Round(secs*1000) / 1000, Published: sub(b.head, a.head),
			Deliveries: sub(b.count, a.count), Errors: sub(b.failed, a.failed), DeadLettered: sub(b.dead, a.dead)}
		pt.PublishRate = math.Round(float64(pt.Published)/secs*100) / 100
		if len(a.buckets) == len(b.buckets) && pt.Deliveries > 0 {
			pt.P50Ms = quantileMs(0.5, a, b)
			pt.P99Ms = quantileMs(0.99, a, b)
		}
		out.Points = append(out.Points, pt)
		for name := range visible {
			out.Subscriptions[name] = append(out.Subscriptions[name], sub(b.handled[name], a.handled[name]))
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// sub is a-b, or 0 when a counter went back (a subscription replaced).
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// quantileMs estimates quantile q of the observations between samples a
// and b from their cumulative buckets, interpolating linearly within a
// bucket as Prometheus's histogram_quantile does.
func quantileMs(q float64, a, b historySample) *float64 {
	total := float64(sub(b.count, a.count))
	rank := q * total
	lower, prev := 0.0, 0.0
	for i, ub := range b.bounds {
		c := float64(sub(b.buckets[i], a.buckets[i]))
		if c >= rank {
			v := ub
			if c > prev {
				v = lower + (ub-lower)*(rank-prev)/(c-prev)
			}
			v = math.Round(v*1e5) / 100 // seconds to ms, 2 decimals
			return &v
		}
		lower, prev = ub, c
	}
	// Beyond the last bound: say the last bound.
	v := math.Round(lower*1e5) / 100
	return &v
}

// handleDLQDiscardAll answers DELETE /v1/dlq?subscription=: it discards
// every dead letter of one subscription (the parameter is required, so
// that no request discards the whole queue by leaving it out).
func (s *Server) handleDLQDiscardAll(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	sub := r.URL.Query().Get("subscription")
	if sub == "" {
		return badRequest("subscription", "name the subscription whose dead letters to discard: ?subscription=")
	}
	if err := s.auditAction(r, p, "dlq.discard", slog.String("subscription", sub)); err != nil {
		return err
	}
	n, err := s.bus.Discard(r.Context(), herald.DeadLetterQuery{Subscription: sub})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"discarded": n})
	return nil
}
