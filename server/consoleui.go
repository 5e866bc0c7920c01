package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"github.com/heraldhq/herald/api"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/heraldhq/herald/server/console"
)

// The console is served at /ui/ on the API's own listener: its pages call
// the API on the same origin, so they need no CORS, the session cookie
// reaches both, and `herald serve` on 127.0.0.1:7480 answers the console at
// http://127.0.0.1:7480/ui/ with nothing to configure.
//
// Every answer under /ui/ carries consoleCSP and the other headers of
// setUIHeaders: no inline script or style, nothing from another origin,
// never framed.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// uiAsset is one console file, kept in memory with its gzip form.
type uiAsset struct {
	ctype string
	etag  string
	raw   []byte
	gz    []byte
}

// loadUIAssets reads the console's embedded files and compresses each once.
func loadUIAssets() (map[string]*uiAsset, error) {
	out := map[string]*uiAsset{}
	fsys := console.FS()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		out[p] = &uiAsset{ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, raw: b, gz: gz.Bytes()}
		return nil
	})
	return out, err
}

// setUIHeaders sets the security headers of every console answer.
func setUIHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

// consoleRoutes adds the console's routes to the server's mux.
func (s *Server) consoleRoutes(mux *http.ServeMux) {
	ui := func(label string, h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			start := time.Now()
			w := &statusWriter{ResponseWriter: rw}
			http.NewResponseController(w).SetWriteDeadline(start.Add(s.cfg.answerTimeout))
			setUIHeaders(w)
			h(w, r)
			s.m.observe(label, w.status, time.Since(start))
		})
	}
	mux.Handle("GET /ui", ui("GET /ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	}))
	mux.Handle("GET /ui/{path...}", ui("GET /ui/", s.handleUIPage))
	for _, rt := range s.consoleAPI() {
		mux.Handle(rt.pattern, ui(rt.pattern, rt.h))
	}
}

// consoleRoute is one of the console's own endpoints that are API
// operations: the console's pages call them and read JSON, a status or a
// cookie back.
type consoleRoute struct {
	pattern string
	h       http.HandlerFunc
}

// consoleAPI lists the console's API operations; openapi.json describes
// each of them, as it does routeTable's (a test holds them together). They
// are not routeTable's: they take no bearer token, pass no per-token rate
// limit and answer in the console's way (redirects, a cookie, plain-text
// refusals). The console's pages and assets (GET /ui and GET
// /ui/{path...}: HTML, scripts, styles) are not API operations and are not
// listed.
func (s *Server) consoleAPI() []consoleRoute {
	return []consoleRoute{
		{"GET /ui/session", s.handleUISession},
		{"POST /ui/login", s.handleUILogin},
		{"POST /ui/logout", s.handleUILogout},
	}
}

// needsLogin reports whether the server wants tokens and r carries no live
// session.
func (s *Server) needsLogin(r *http.Request) bool {
	if !s.auth.enabled() && !s.auth.required {
		return false
	}
	_, ok, err := s.sessionAuth(r)
	return !ok || err != nil
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, name string, cache string) {
	a := s.uiAssets[name]
	if a == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", cache)
	h.Set("Vary", "Accept-Encoding")
	h.Set("ETag", a.etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.raw
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	w.Write(body)
}

// handleUIPage answers GET /ui/{path}: the assets, the login page, and
// index.html for every page (its script draws the page the path names).
// Without a session on a server that wants tokens, a page redirects to
// the login page.
func (s *Server) handleUIPage(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	switch {
	case strings.HasPrefix(p, "assets/"):
		s.serveAsset(w, r, p, "no-cache")
	case p == "login":
		if !s.auth.enabled() && !s.auth.required {
			http.Redirect(w, r, "/ui/", http.StatusSeeOther)
			return
		}
		s.serveAsset(w, r, "login.html", "no-store")
	case s.needsLogin(r):
		http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
	default:
		s.serveAsset(w, r, "index.html", "no-store")
	}
}

// sameOrigin reports whether a browser request comes from a page of this
// server (requests without Origin or Sec-Fetch-Site, from other clients,
// pass).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// safeNext returns where to go after logging in: a console path, else /ui/.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return "/ui/"
	}
	return next
}

// handleUILogin answers POST /ui/login (a form with token and next): with
// a valid token it starts a session, sets its cookie and redirects to next;
// otherwise it redirects back to the login page.
func (s *Server) handleUILogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin login refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !s.auth.enabled() && !s.auth.required {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	var p *principal
	if token != "" {
		var err error
		p, err = s.auth.byTokenHash(HashToken(token))
		if err != nil && s.auth.mayReload() && s.auth.load(r.Context()) == nil {
			p, err = s.auth.byTokenHash(HashToken(token))
		}
		if err != nil || p.tok == nil {
			p = nil
		}
	}
	if p == nil {
		s.auditDenied(r, nil, newError(http.StatusUnauthorized, CodeUnauthorized, "console login with a token that is not valid"))
		http.Redirect(w, r, "/ui/login?failed=1&next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	secret, _, err := s.sessions.create(p.tok.Hash)
	if err != nil {
		ae := toAPIError(err)
		w.Header().Set("Retry-After", api.FormatRetryAfter(ae.RetryAfter))
		http.Error(w, ae.Message, http.StatusServiceUnavailable)
		return
	}
	s.audit.LogAttrs(r.Context(), slog.LevelInfo, "console login", slog.String("identity", p.identity()),
		slog.String("remote", clip(r.RemoteAddr)))
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleUILogout answers POST /ui/logout: it ends the session (the request
// must carry its CSRF token) and clears the cookie.
func (s *Server) handleUILogout(w http.ResponseWriter, r *http.Request) {
	if secret := sessionSecret(r); secret != "" {
		if sess := s.sessions.get(secret); sess != nil {
			if !sess.csrfOK(r) {
				s.writeError(w, r, newError(http.StatusForbidden, CodeForbidden, "logging out needs the session's CSRF token in %s", csrfHeader))
				return
			}
			s.sessions.end(secret)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// consoleSession is the answer of GET /ui/session: who the console acts
// as.
type consoleSession struct {
	// Auth is set when the server wants tokens (then the console has a
	// session and can log out).
	Auth      bool      `json:"auth"`
	Identity  string    `json:"identity,omitempty"`
	Admin     bool      `json:"admin"`
	Publish   []string  `json:"publish,omitempty"`
	Subscribe []string  `json:"subscribe,omitempty"`
	CSRF      string    `json:"csrf,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// handleUISession answers GET /ui/session: the session's identity, rights
// and CSRF token; 401 without a session on a server that wants tokens.
func (s *Server) handleUISession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !s.auth.enabled() && !s.auth.required {
		writeJSON(w, http.StatusOK, consoleSession{Admin: true})
		return
	}
	p, ok, err := s.sessionAuth(r)
	if !ok || err != nil {
		s.writeError(w, r, newError(http.StatusUnauthorized, CodeUnauthorized, "no console session: log in"))
		return
	}
	sess := s.sessions.get(sessionSecret(r))
	if sess == nil {
		s.writeError(w, r, newError(http.StatusUnauthorized, CodeUnauthorized, "no console session: log in"))
		return
	}
	writeJSON(w, http.StatusOK, consoleSession{Auth: true, Identity: p.identity(), Admin: p.admin(),
		Publish: p.tok.Publish, Subscribe: p.tok.Subscribe, CSRF: sess.csrf, ExpiresAt: sess.expires.UTC()})
}
