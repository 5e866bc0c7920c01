package server

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/api"
)

// loadOpenAPI loads the embedded document with a maintained OpenAPI
// implementation and validates it as OpenAPI 3.1.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json is OpenAPI %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3.1: %v", err)
	}
	return doc
}

func TestOpenAPIIsValid31(t *testing.T) { loadOpenAPI(t) }

// openAPIPath turns a ServeMux pattern's path into an OpenAPI path:
// {id...} becomes {id}.
func openAPIPath(p string) string { return strings.ReplaceAll(p, "...}", "}") }

// describedRoute is a route that openapi.json and docs/http.md describe.
type describedRoute struct {
	pattern string
	public  bool // needs no authentication (routeTable's routes)
	console bool // one of consoleAPI's: a session cookie, never a bearer token
}

// describedRoutes lists the routes openapi.json must describe: every route
// of routeTable and every console operation of consoleAPI, taken from the
// tables the server registers them from, so that a route added to either
// without a description fails the tests. The console's pages and assets
// (GET /ui and GET /ui/{path...}: HTML, scripts and styles for a browser)
// are not API operations and are not among them.
func describedRoutes() []describedRoute {
	s := &Server{cfg: config{registry: prometheus.NewRegistry()}}
	var out []describedRoute
	for _, rt := range s.routeTable() {
		out = append(out, describedRoute{pattern: rt.pattern, public: rt.public})
	}
	for _, rt := range s.consoleAPI() {
		out = append(out, describedRoute{pattern: rt.pattern, console: true})
	}
	return out
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	served := map[string]bool{}
	for _, rt := range describedRoutes() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			t.Fatalf("route %q has no method", rt.pattern)
		}
		key := method + " " + openAPIPath(path)
		served[key] = true
		item := doc.Paths.Value(openAPIPath(path))
		if item == nil {
			t.Errorf("%s: the path is missing from openapi.json", rt.pattern)
			continue
		}
		opn := item.GetOperation(method)
		if opn == nil {
			t.Errorf("%s: the method is missing from openapi.json", rt.pattern)
			continue
		}
		if opn.Summary == "" || opn.Description == "" || opn.OperationID == "" {
			t.Errorf("%s: the operation needs an operationId, a summary and a description", rt.pattern)
		}
		if rt.console {
			// The console's routes pass neither authenticate nor the
			// rate limit: a bearer token means nothing to them.
			if opn.Security == nil {
				t.Errorf("%s: openapi.json gives it the document's security (a bearer token), which it does not take", rt.pattern)
				continue
			}
			for _, alt := range *opn.Security {
				for scheme := range alt {
					if scheme != "session" {
						t.Errorf("%s: openapi.json says it takes %s, but it takes only the session cookie", rt.pattern, scheme)
					}
				}
			}
			continue
		}
		public := opn.Security != nil && len(*opn.Security) == 1 && len((*opn.Security)[0]) == 0
		if public != rt.public {
			t.Errorf("%s: openapi.json says public=%v, the server %v", rt.pattern, public, rt.public)
		}
		if !rt.public {
			for _, code := range []string{"401", "403", "429", "500", "503"} {
				if opn.Responses.Value(code) == nil {
					t.Errorf("%s: answer %s is not described", rt.pattern, code)
				}
			}
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which the server does not serve", method, path)
			}
		}
	}
}

// docs/http.md, the human reference, has a section for every route, with
// a curl example.
func TestHTTPReferenceHasEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../docs/http.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(string(b), "\n### ")
	for _, rt := range describedRoutes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		heading := method + " " + openAPIPath(path)
		found := false
		for _, sec := range sections[1:] {
			if strings.HasPrefix(sec, heading+"\n") {
				found = true
				if !strings.Contains(sec, "curl ") {
					t.Errorf("docs/http.md: %s has no curl example", heading)
				}
			}
		}
		if !found {
			t.Errorf("docs/http.md has no section \"### %s\"", heading)
		}
	}
}

func TestOpenAPIErrorCodesAreTheAPIs(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Components.Schemas["ErrorCode"].Enum
	want := api.Codes()
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("openapi.json's error codes %v, api.Codes() %v", got, want)
	}
	for _, h := range []string{"Herald-Expected-Version", "Last-Event-ID", "Retry-After"} {
		if !strings.Contains(string(openAPIDocument), `"`+h+`"`) {
			t.Errorf("openapi.json does not describe the header %s", h)
		}
	}
}
