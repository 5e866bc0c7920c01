package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Headers of the HTTP API.
const (
	// HeaderExpectedVersion on POST /v1/events makes the append conditional
	// on the events' subject having exactly that many events stored.
	HeaderExpectedVersion = "Herald-Expected-Version"
	// HeaderNextAfter on GET /v1/events repeats the page's next_after.
	HeaderNextAfter = "Herald-Next-After"
	// HeaderSignature on a webhook delivery is "sha256=" and the hex
	// HMAC-SHA256 of the body, keyed with the subscription's secret. It
	// covers neither headers nor time; deliveries also carry a Standard
	// Webhooks signature (webhook-id, webhook-timestamp,
	// webhook-signature), which receivers should verify instead: this
	// header is sent for one more release.
	HeaderSignature = "Herald-Signature"
	// HeaderSubscription on a webhook delivery names the push subscription.
	HeaderSubscription = "Herald-Subscription"
	// HeaderAttempt on a webhook delivery counts its attempts, from 1.
	HeaderAttempt = "Herald-Attempt"
)

// EventBatch is the body of a batch POST /v1/events, and the JSON form of
// a list of events.
type EventBatch struct {
	Events []*Event `json:"events"`
}

// PublishResult is what the server did with one published event.
type PublishResult struct {
	// ID is the event's id: the one it was sent with, or the one the server
	// gave it.
	ID string `json:"id"`
	// Position is the event's place in the log: new, or its first one.
	Position uint64 `json:"position"`
	// Duplicate is set when the event's id was already stored (by the same
	// identity, on a server with tokens: another identity's id is 409
	// id_taken), so nothing new was stored for it.
	Duplicate bool `json:"duplicate,omitempty"`
	// SubjectVersion is the version of the event's subject just after the
	// event was stored: how many events the subject had then, this one
	// included. Absent for an event without a subject and for a duplicate.
	// It is not the event's version (the schema version of its data).
	SubjectVersion uint64 `json:"subject_version,omitempty"`
}

// PublishAnswer is the answer of POST /v1/events: one result per event, in
// the order of the request. Its status is 201 when anything was stored and
// 200 when every event was a duplicate.
type PublishAnswer struct {
	Events []PublishResult `json:"events"`
}

// EventPage is the answer of GET /v1/events: one page of the log.
type EventPage struct {
	Events []*Event `json:"events"`
	// NextAfter is the position to read the next page after; it is 0 or
	// equal to the request's after when there is nothing more for now.
	NextAfter uint64 `json:"next_after"`
}

// PushSubscription is a durable subscription whose events the server
// POSTs to a webhook: the body of PUT /v1/subscriptions/{name}, and what
// the server keeps. Zero fields take the server's defaults. Its durable name
// is Name, so its dead letters and outcomes carry that name.
type PushSubscription struct {
	// Name is 1 to MaxSubscriptionNameLen characters of [A-Za-z0-9_.-]
	// (see ValidateSubscriptionName); it is the path segment of its URL.
	Name string `json:"name" yaml:"name"`
	// Filter is the name pattern of the events delivered ("recording.*",
	// "recording.>"); default ">".
	Filter string `json:"filter" yaml:"filter"`
	// Endpoint is the http:// or https:// URL deliveries are POSTed to.
	Endpoint string `json:"endpoint" yaml:"endpoint"`
	// MaxAttempts is how many times an event is tried before it is
	// dead-lettered, the first try included: default 4.
	MaxAttempts int `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`
	// Backoff between attempts: default 100ms to 30s, full jitter.
	Backoff *Backoff `json:"backoff,omitempty" yaml:"backoff,omitempty"`
	// Concurrency: deliveries in flight at once (one per subject). Default 1.
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// Timeout of one delivery: default 10s.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Start: "earliest" (default), "latest", or a position. It applies only
	// when the subscription has no checkpoint yet.
	Start StartSpec `json:"start,omitempty" yaml:"start,omitempty"`
	// Secret keys the Herald-Signature of deliveries (HMAC-SHA256 of the
	// body), so the endpoint can verify the sender. The server generates
	// one when it is empty and shows it only when the subscription is
	// created; it keeps it as it is (signing needs it) and never shows it
	// on reads.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// Owner is the identity that created the subscription; only it and
	// admins see and change it. Set by the server.
	Owner string `json:"owner,omitempty" yaml:"-"`
	// CreatedAt and UpdatedAt are set by the server.
	CreatedAt time.Time `json:"created_at,omitzero" yaml:"-"`
	UpdatedAt time.Time `json:"updated_at,omitzero" yaml:"-"`
}

// Backoff bounds the exponential backoff, with full jitter, between
// delivery attempts.
type Backoff struct {
	Initial Duration `json:"initial,omitempty" yaml:"initial,omitempty"`
	Max     Duration `json:"max,omitempty" yaml:"max,omitempty"`
}

// StartSpec is where a new push subscription starts: "earliest", "latest"
// or a position (a JSON number or a string of digits).
type StartSpec string

// UnmarshalJSON accepts a string or a non-negative integer.
func (s *StartSpec) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = StartSpec(v)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	if _, err := strconv.ParseUint(string(b), 10, 64); err != nil {
		return fmt.Errorf("start must be \"earliest\", \"latest\" or a position")
	}
	*s = StartSpec(b)
	return nil
}

// PushSubscriptionInfo is a push subscription as the server shows it: its
// definition without the secret, and its progress. It is the answer of
// GET and PUT /v1/subscriptions/{name}.
type PushSubscriptionInfo struct {
	PushSubscription
	// Secret is set only in the answer to the PUT that created the
	// subscription with a secret the server generated: it is shown this
	// once.
	Secret string `json:"secret,omitempty"`
	// SecretSet tells that deliveries are signed.
	SecretSet bool `json:"secret_set"`
	// Running tells that the subscription is delivering.
	Running bool `json:"running"`
	// Paused, when it is not running, says why: "owner_has_no_token" (its
	// owner's tokens were all revoked) or "dead_letter_cap" (it holds its
	// cap of dead letters; discard them, or an admin redrives, to resume
	// it).
	Paused string `json:"paused,omitempty"`
	// Stats counts deliveries. Its handled, failed, retried and
	// dead_lettered are the subscription's totals since it was created,
	// kept by the store: every server sharing the store shows the same,
	// and a restart keeps them.
	Stats *SubscriptionStats `json:"stats,omitempty"`
	// Position is the checkpoint: every event up to it is done; Lag is how
	// many positions the log's head is ahead of it.
	Position uint64 `json:"position"`
	Lag      uint64 `json:"lag"`
	// DeadLetters counts the subscription's dead letters waiting now (what
	// GET /v1/dlq lists for it; a successful redrive lowers it), shown by
	// GET /v1/subscriptions and GET of one subscription. Stats.DeadLettered
	// instead counts events ever dead-lettered, and never goes down.
	DeadLetters *int `json:"dead_letters,omitempty"`
}

// PushSubscriptionList is the answer of GET /v1/subscriptions.
type PushSubscriptionList struct {
	Subscriptions []PushSubscriptionInfo `json:"subscriptions"`
}

// ReplayTarget is the body of POST /v1/subscriptions/{name}/replay: where
// the subscription moves, a position or the first event at or after a
// time. Set exactly one.
type ReplayTarget struct {
	Position *uint64   `json:"position,omitempty"`
	Time     time.Time `json:"time,omitzero"`
}

// DeadLetterList is the answer of GET /v1/dlq.
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// RedriveAnswer is the answer of POST /v1/dlq/redrive.
type RedriveAnswer struct {
	Redriven int `json:"redriven"`
}

// SchemaList is the answer of GET /v1/schemas.
type SchemaList struct {
	Schemas []SchemaRef `json:"schemas"`
}

// Token is an API token's description: who it is for and what it may do.
// The secret itself is never stored, only Hash; the API shows the secret
// once, when it creates the token, and never shows Hash.
type Token struct {
	// ID names the token in listings and in revoke; it is not a secret.
	ID string `json:"id" yaml:"id"`
	// Identity is who the caller is: the source_plugin of what it publishes.
	Identity string `json:"identity" yaml:"identity"`
	// Hash is the lower-case hex SHA-256 of the token, as the server's
	// configuration gives it; empty in every answer of the API.
	Hash string `json:"hash,omitempty" yaml:"token_sha256,omitempty"`
	// Publish lists the name patterns the caller may publish; empty: none.
	Publish []string `json:"publish,omitempty" yaml:"publish,omitempty"`
	// Subscribe lists the name patterns the caller may read, stream and
	// create push subscriptions for; empty: none.
	Subscribe []string `json:"subscribe,omitempty" yaml:"subscribe,omitempty"`
	// Subjects lists the subject patterns (see MatchSubject) the caller may
	// publish to, conditional appends included, and look up with GET
	// /v1/subjects/{subject}; empty: every subject. An event without a
	// subject is not bound by them. At most MaxTokenSubjects; an admin
	// token holds every subject and takes none.
	Subjects []string `json:"subjects,omitempty" yaml:"subjects,omitempty"`
	// Admin allows schemas, dead letters, tokens, retention and every
	// subscription.
	Admin bool `json:"admin,omitempty" yaml:"admin,omitempty"`
	// Rate is the sustained events (or requests) per second allowed; 0
	// means no limit.
	Rate float64 `json:"rate,omitempty" yaml:"rate,omitempty"`
	// Burst is the token bucket's size; 0 means max(1, Rate).
	Burst int `json:"burst,omitempty" yaml:"burst,omitempty"`
	// CreatedAt is when the token was made (set by the server).
	CreatedAt time.Time `json:"created_at,omitzero" yaml:"-"`
	// FromConfig marks tokens of the server's configuration file, which the
	// API cannot revoke.
	FromConfig bool `json:"from_config,omitempty" yaml:"-"`
}

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Identity  string   `json:"identity"`
	Publish   []string `json:"publish"`
	Subscribe []string `json:"subscribe"`
	// Subjects is left out when empty, so that a server older than the
	// field takes the request.
	Subjects []string `json:"subjects,omitempty"`
	Admin    bool     `json:"admin"`
	Rate     float64  `json:"rate"`
	Burst    int      `json:"burst"`
}

// TokenCreated is the answer of POST /v1/tokens: the secret, shown this
// once, and the token's description.
type TokenCreated struct {
	Token string `json:"token"`
	Info  Token  `json:"info"`
}

// TokenList is the answer of GET /v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// StreamTicket is the answer of POST /v1/stream/tickets: a ticket that
// opens one SSE stream, GET /v1/stream?ticket=<Ticket>, with the rights of
// the token that asked for it, until ExpiresAt (30 seconds). It is for
// browsers, whose EventSource cannot send an Authorization header: never
// put a token in a URL.
type StreamTicket struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ServerStatus is the answer of GET /v1/status: what runs, and where its
// log stands.
type ServerStatus struct {
	// Status is "ready" when the store answers.
	Status string `json:"status"`
	// Version is the server's build ("herald v1.2.0 (abc123) go1.26").
	Version string `json:"version,omitempty"`
	// Store is the kind of store: "sqlite", "memory" or "nats".
	Store string `json:"store,omitempty"`
	// Head is the position of the log's last event.
	Head uint64 `json:"head"`
	// Subscriptions counts the push subscriptions the caller may see.
	Subscriptions int `json:"subscriptions"`
	// Cluster is the cluster the store runs on: present on NATS JetStream,
	// absent on SQLite and memory.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// ClusterStatus is what a store that runs on a cluster (NATS JetStream)
// tells of it: the nodes that hold the event stream, its leader, and how
// far behind the store's consumers are. On one node that is not part of a
// cluster, Name is empty and the node is its own leader.
type ClusterStatus struct {
	// Name is the cluster's name; empty for a single node.
	Name string `json:"name,omitempty"`
	// Leader names the node that leads the event stream; empty while it
	// has none (no quorum).
	Leader string `json:"leader"`
	// Replicas is how many copies of the event stream the cluster keeps.
	Replicas int `json:"replicas"`
	// Nodes are the nodes that hold a copy of the event stream, the
	// leader first, then by name.
	Nodes []ClusterNode `json:"nodes"`
	// Consumers is how far behind each durable subscription's consumers
	// are, by subscription name.
	Consumers []ClusterConsumer `json:"consumers,omitempty"`
	// Error says why the rest is missing or partial: the event stream
	// did not answer (no quorum, or the store cannot reach the cluster).
	Error string `json:"error,omitempty"`
}

// ClusterNode is one node holding a copy of the event stream.
type ClusterNode struct {
	// Name is the node's server name.
	Name string `json:"name"`
	// Leader is set on the node that leads the event stream.
	Leader bool `json:"leader,omitempty"`
	// Current is true when the node's copy is up to date with the leader
	// (always true of the leader).
	Current bool `json:"current"`
	// Offline is true when the leader has not heard from the node lately.
	Offline bool `json:"offline,omitempty"`
	// Lag is how many operations the node's copy is behind the leader.
	Lag uint64 `json:"lag"`
	// LastSeen is how long ago the leader last heard from the node; zero
	// (absent) for the leader.
	LastSeen Duration `json:"last_seen,omitempty"`
}

// ClusterConsumer is how far behind one durable subscription's JetStream
// consumers (one per partition) are, summed.
type ClusterConsumer struct {
	// Subscription is the durable subscription's name.
	Subscription string `json:"subscription"`
	// Pending counts events not yet delivered to the subscription.
	Pending uint64 `json:"pending"`
	// AckPending counts events delivered and not yet acknowledged.
	AckPending int `json:"ack_pending"`
	// Redelivered counts events delivered more than once and not yet
	// acknowledged.
	Redelivered int `json:"redelivered"`
}
