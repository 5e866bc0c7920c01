package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

// maxConfigSize bounds the configuration file.
const maxConfigSize = 16 << 20

// serveConfig is the configuration file of `herald serve` (YAML).
type serveConfig struct {
	Addr        string   `yaml:"addr"`
	Data        string   `yaml:"data"`
	Store       string   `yaml:"store"`
	NATS        string   `yaml:"nats"`
	Durability  string   `yaml:"durability"`
	Insecure    bool     `yaml:"insecure"`
	TLSCert     string   `yaml:"tls_cert"`
	TLSKey      string   `yaml:"tls_key"`
	CORSOrigins []string `yaml:"cors_origins"`
	// MaxConnsPerAddr caps the connections one client address may hold
	// open; 0 keeps the default (server.DefaultMaxConnsPerAddr), a
	// negative number turns the cap off.
	MaxConnsPerAddr int               `yaml:"max_conns_per_addr"`
	Limits          server.Limits     `yaml:"limits"`
	PushLimits      server.PushLimits `yaml:"push_limits"`
	ReadAhead       readAheadConfig   `yaml:"read_ahead"`
	// WebhookPolicy says which addresses webhooks may reach; unset
	// fields keep the flags' values (server.DefaultWebhookPolicy).
	WebhookPolicy *server.WebhookPolicy `yaml:"webhook_policy"`
	// MetricsToken, when set, is the bearer token /metrics asks for.
	MetricsToken  string                    `yaml:"metrics_token"`
	Tokens        []configToken             `yaml:"tokens"`
	Schemas       []configSchema            `yaml:"schemas"`
	Retention     []herald.RetentionRule    `yaml:"retention"`
	Subscriptions []server.PushSubscription `yaml:"subscriptions"`
}

// readAheadConfig bounds the bytes of events that push subscriptions
// hold, read ahead or in flight (herald.WithReadAhead); zero keeps a
// default (8 MiB per subscription, 64 MiB in all).
type readAheadConfig struct {
	PerSubscription int `yaml:"per_subscription"`
	Total           int `yaml:"total"`
}

// check refuses negative bounds, in the file's words.
func (r readAheadConfig) check() error {
	if r.PerSubscription < 0 || r.Total < 0 {
		return fmt.Errorf("read_ahead: per_subscription and total are bytes, 0 or more (0: the default), got %d and %d", r.PerSubscription, r.Total)
	}
	return nil
}

// configToken is a token of the configuration file: its hash
// (token_sha256), or the token itself (token), hashed at load.
type configToken struct {
	server.Token `yaml:",inline"`
	Plain        string `yaml:"token"`
}

// configSchema is a JSON Schema, inline (schema) or in a file (file,
// relative to the configuration file).
type configSchema struct {
	Name    string `yaml:"name"`
	Version int    `yaml:"version"`
	Schema  any    `yaml:"schema"`
	File    string `yaml:"file"`
	json    []byte
}

func loadServeConfig(path string) (*serveConfig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if fi.Size() > maxConfigSize {
		return nil, fmt.Errorf("configuration %s: larger than %d bytes", path, maxConfigSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	var c serveConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("configuration %s: %w", path, configErrors(raw, c, err))
	}
	for i := range c.Schemas {
		sc := &c.Schemas[i]
		switch {
		case sc.Name == "" || sc.Version < 1:
			return nil, fmt.Errorf("configuration %s: schema %d needs a name and a version of 1 or more", path, i)
		case sc.File != "" && sc.Schema != nil:
			return nil, fmt.Errorf("configuration %s: schema %s: give schema or file, not both", path, sc.Name)
		case sc.File != "":
			f := sc.File
			if !filepath.IsAbs(f) {
				f = filepath.Join(filepath.Dir(path), f)
			}
			if sc.json, err = os.ReadFile(f); err != nil {
				return nil, fmt.Errorf("configuration %s: schema %s: %w", path, sc.Name, err)
			}
		case sc.Schema != nil:
			if sc.json, err = json.Marshal(sc.Schema); err != nil {
				return nil, fmt.Errorf("configuration %s: schema %s: %w", path, sc.Name, err)
			}
		default:
			return nil, fmt.Errorf("configuration %s: schema %s has neither schema nor file", path, sc.Name)
		}
	}
	return &c, nil
}

// tokens returns the configured tokens, hashing those given in plain text.
func (c *serveConfig) tokens() ([]server.Token, error) {
	out := make([]server.Token, 0, len(c.Tokens))
	for _, t := range c.Tokens {
		switch {
		case t.Plain != "" && t.Hash != "":
			return nil, fmt.Errorf("token %q: give token or token_sha256, not both", t.Identity)
		case t.Plain != "":
			t.Hash = server.HashToken(t.Plain)
		case t.Hash == "":
			return nil, fmt.Errorf("token %q: needs token_sha256 (or token)", t.Identity)
		}
		out = append(out, t.Token)
	}
	return out, nil
}

// eventLimit is the largest event the bus must accept: the configured
// limit, or herald's default.
func eventLimit(l server.Limits) int {
	if l.MaxEvent > 0 {
		return l.MaxEvent
	}
	return herald.DefaultMaxEventSize
}
