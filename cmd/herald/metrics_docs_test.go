package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/internal/testwait"
)

// scrape is one /metrics answer: each family's type, and each sample's
// value by its series as written ("name{labels}").
type scrape struct {
	types   map[string]string
	samples map[string]float64
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$`)

func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	s := scrape{types: map[string]string{}, samples: map[string]float64{}}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			s.types[f[2]] = f[3]
		} else if m := sampleLine.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			s.samples[m[1]] = v
		}
	}
	return s
}

// has reports whether a metric name used in a query is served: a family,
// or a histogram's or summary's _bucket, _sum or _count series.
func (s scrape) has(name string) bool {
	if _, ok := s.types[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if typ := s.types[base]; typ == "histogram" || typ == "summary" {
				return true
			}
		}
	}
	return false
}

// heraldNames are the herald metric names a PromQL expression uses.
var heraldName = regexp.MustCompile(`\bherald_[a-zA-Z0-9_]+`)

// docQueries returns the PromQL expressions of docs/alerts.yaml and
// docs/grafana-dashboard.json, by where they are.
func docQueries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	b, err := os.ReadFile("../../docs/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("docs/alerts.yaml: %v", err)
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("docs/alerts.yaml: rule %+v lacks alert, expr, severity or summary", r)
			}
			alerts = append(alerts, r.Alert)
			out["alerts.yaml "+r.Alert] = r.Expr
		}
	}
	for _, want := range []string{"HeraldNotReady", "HeraldDeadLettersGrowing", "HeraldSubscriptionLagGrowing"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("docs/alerts.yaml has no %s rule", want)
		}
	}

	b, err = os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for i, q := range p.Targets {
			out["dashboard "+p.Title+" #"+strconv.Itoa(i)] = q.Expr
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			out["dashboard variable "+v.Name] = q
		}
	}
	return out
}

// The metrics an operator alerts on are served with the values they claim,
// and every herald metric that docs/alerts.yaml and
// docs/grafana-dashboard.json query is served by a running server.
func TestOperatorMetrics(t *testing.T) {
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--store", "sqlite", "--durability", "normal")
	ts := &testServer{URL: p.url}
	h := newHook(t)
	h.set(http.StatusBadRequest)
	ts.run(t, "subs", "create", "hooks", "--filter", "hook.*", "--endpoint", h.srv.URL, "--backoff-initial", "10ms").ok(t)
	ts.run(t, "publish", "hook.a", "--id", "a").ok(t)
	var m scrape
	testwait.For(t, "a dead letter in the gauge", func() bool {
		m = scrapeMetrics(t, p.url)
		return m.samples[`herald_dead_letters{subscription="hooks"}`] == 1
	})

	info := ""
	for series, v := range m.samples {
		if strings.HasPrefix(series, "herald_build_info{") && v == 1 {
			info = series
		}
	}
	if !strings.Contains(info, `store="sqlite"`) || !strings.Contains(info, `go="`+runtime.Version()+`"`) || !strings.Contains(info, `version="herald `) {
		t.Errorf("herald_build_info: %q", info)
	}
	if v := m.samples["herald_store_size_bytes"]; v < 4096 {
		t.Errorf("herald_store_size_bytes = %v: want the SQLite files' size", v)
	}
	if v, ok := m.samples["herald_ready"]; !ok || v != 1 {
		t.Errorf("herald_ready = %v %v", v, ok)
	}
	if _, ok := m.samples[`herald_subscription_lag{subscription="hooks"}`]; !ok {
		t.Error("no herald_subscription_lag for hooks")
	}

	queries := docQueries(t)
	if len(queries) < 8 {
		t.Fatalf("only %d queries in the docs", len(queries))
	}
	for where, q := range queries {
		names := heraldName.FindAllString(q, -1)
		if len(names) == 0 && !strings.Contains(q, "up{") {
			t.Errorf("%s: %q uses no herald metric", where, q)
		}
		for _, name := range names {
			if !m.has(name) {
				t.Errorf("%s: %q uses %s, which /metrics does not serve", where, q, name)
			}
		}
	}

	// The gauge falls when a redrive delivers.
	h.set(http.StatusOK)
	ts.run(t, "dlq", "redrive", "--subscription", "hooks").ok(t)
	testwait.For(t, "the gauge back to zero", func() bool {
		v, ok := scrapeMetrics(t, p.url).samples[`herald_dead_letters{subscription="hooks"}`]
		return ok && v == 0
	})
}
