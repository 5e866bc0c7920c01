package server

import (
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's own Prometheus metrics; the bus registers its
// own on the same registry.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	streams    prometheus.Gauge
	deliveries *prometheus.CounterVec
	delivDur   prometheus.Histogram
	dropped    prometheus.Counter
	routes     sync.Map // route → *routeMetrics
}

// newMetrics registers the server's metrics on r, with herald_build_info
// describing version (as WithInfo gave it), the Go release and storeKind,
// and herald_ready asking ready at each scrape.
func newMetrics(r prometheus.Registerer, version, storeKind string, ready func() float64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_http_request_duration_seconds", Help: "HTTP request duration by route (SSE streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_sse_streams_open", Help: "Open Server-Sent Events streams.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_webhook_deliveries_total", Help: "Webhook delivery attempts by outcome (delivered, temporary, permanent, error).",
		}, []string{"subscription", "outcome"}),
		delivDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herald_webhook_delivery_duration_seconds", Help: "Duration of webhook delivery attempts.",
			Buckets: prometheus.DefBuckets,
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_sse_streams_dropped_total", Help: "SSE streams disconnected for falling behind or not reading.",
		}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "herald_build_info", Help: "Always 1: the running herald's version, Go release and store kind.",
		ConstLabels: prometheus.Labels{"version": version, "go": runtime.Version(), "store": storeKind},
	})
	info.Set(1)
	readiness := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_ready", Help: "1 when the server is ready to serve (GET /readyz answers 200: its store answers), 0 when not.",
	}, ready)
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.streams, m.deliveries, m.delivDur, m.dropped, info, readiness} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// routeMetrics are one route's series, looked up once.
type routeMetrics struct {
	duration prometheus.Observer
	codes    sync.Map // status int → prometheus.Counter
}

func (m *metrics) route(route string) *routeMetrics {
	if v, ok := m.routes.Load(route); ok {
		return v.(*routeMetrics)
	}
	rm := &routeMetrics{duration: m.duration.WithLabelValues(route)}
	v, _ := m.routes.LoadOrStore(route, rm)
	return v.(*routeMetrics)
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	if status == 0 {
		status = 200
	}
	rm := m.route(route)
	c, ok := rm.codes.Load(status)
	if !ok {
		c, _ = rm.codes.LoadOrStore(status, m.requests.WithLabelValues(route, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	if route != "GET /v1/stream" {
		rm.duration.Observe(d.Seconds())
	}
}
