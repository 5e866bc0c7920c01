package server

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of the API, served at
// GET /v1/openapi.json. It is the API's source of truth: the server's
// tests fail when a route is missing from it or an answer does not fit it.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document (JSON) describing the HTTP API,
// the one the server serves at GET /v1/openapi.json. The caller owns the
// returned slice.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// handleOpenAPI serves the OpenAPI document; it needs no token.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ *principal) error {
	writeRaw(w, http.StatusOK, ctJSON, openAPIDocument)
	return nil
}
