// Package server puts a herald Bus behind an HTTP API, for plugins written
// in any language: publishing (native JSON and CloudEvents 1.0), reading,
// Server-Sent Events, durable push subscriptions to webhooks, the
// dead-letter queue, JSON Schemas, tokens, Prometheus metrics and health
// checks.
//
// A Server is an http.Handler. The caller runs it in an http.Server and owns
// the Bus and its store:
//
//	reg := prometheus.NewRegistry()
//	bus, _ := herald.New(herald.WithStore(store), herald.WithRegisterer(reg))
//	srv, err := server.New(bus, server.WithRegistry(reg), server.WithTokens(tokens))
//	hs := &http.Server{Addr: addr, Handler: srv}
//	hs.RegisterOnShutdown(srv.EndStreams)
//	go hs.ListenAndServe()
//	...
//	hs.Shutdown(ctx) // no new requests; those in flight finish
//	srv.Close(ctx)   // push deliveries in flight finish
//	bus.Close(ctx)
//	store.Close()
//
// # Endpoints
//
//	POST   /v1/events                        publish one event, [...] or {"events":[...]} (atomic)
//	GET    /v1/events                        read: after, limit, name, correlation_id, subject, source_plugin, since, until, raw
//	GET    /v1/events/{id}                   one event
//	GET    /v1/stream                        Server-Sent Events: after or Last-Event-ID, name, subject,
//	                                         correlation_id, source_plugin, format=cloudevents
//	GET    /v1/correlations/{id}             the chain of events with every subscription's outcome
//	GET    /v1/subscriptions                 push subscriptions with position, lag and counts
//	PUT    /v1/subscriptions/{name}          create or replace a push subscription
//	GET    /v1/subscriptions/{name}          one push subscription
//	DELETE /v1/subscriptions/{name}          delete it (its dead letters stay)
//	POST   /v1/subscriptions/{name}/replay   {"position":N} or {"time":"RFC 3339"}
//	GET    /v1/dlq                           dead letters: subscription, event_id, limit (admin)
//	POST   /v1/dlq/{id}/redrive              deliver one again (admin)
//	POST   /v1/dlq/redrive?subscription=S    deliver all of S (or all) again (admin)
//	DELETE /v1/dlq/{id}                      discard one (admin)
//	GET    /v1/schemas                       registered schemas (of names the token may publish or read)
//	PUT    /v1/schemas/{name}/{version}      register a JSON Schema (admin)
//	GET    /v1/schemas/{name}/{version}      one schema
//	POST   /v1/tokens                        create a token; the answer shows it once (admin)
//	GET    /v1/tokens                        list tokens, never their secrets (admin)
//	DELETE /v1/tokens/{id}                   revoke (admin)
//	POST   /v1/subjects/{subject}/forget     crypto-shred a subject's sensitive fields; subject URL-escaped (admin)
//	GET    /metrics, /healthz, /readyz       Prometheus text, liveness, readiness (no token needed;
//	                                         /metrics needs one with WithMetricsToken)
//
// Publishing answers 201 with {"events":[{"id","position"}]}, or 200 when
// every event was already stored (the id is the idempotency key). The
// header Herald-Expected-Version: N makes the append conditional on the
// events' subject being at version N (409 conflict otherwise).
//
// The publish endpoint reads the body by Content-Type: application/json
// (herald's wire form), application/cloudevents+json (structured mode),
// application/cloudevents-batch+json (batch mode), or CloudEvents binary
// mode (ce-* headers, the data as the body); a body may be sent with
// Content-Encoding: gzip (the body limit applies unpacked). CloudEvents map to events as
// type↔name, source↔source_plugin, id, time↔timestamp, subject, and the
// extensions correlationid, causationid, dataversion, priority and
// sequence↔position; other extensions go to metadata. Reading endpoints
// answer CloudEvents when the Accept header asks for them.
//
// # Errors
//
// Every error answer is {"error":{"code","message","field","index"}} with a
// 4xx or 5xx status; 429 and 503 carry Retry-After. The codes are
// invalid_json, invalid_event, schema_violation, unauthorized, forbidden,
// payload_too_large, rate_limited, backpressure, outcome_unknown, conflict,
// not_found and internal; package api maps each to its status and to
// herald's sentinel error, and holds the request and answer types. Nothing
// is stored when a request is refused, with one exception:
// outcome_unknown (504) says that the store took the write but did not
// confirm it in time (a NATS JetStream cluster without quorum), so the
// event may be stored; publish it again with the same id, never a new one.
// backpressure (503) always means nothing was stored. Messages never carry
// internal paths, SQL or stack traces.
//
// # Access
//
// With no token the server is open. Once a token exists (WithTokens, or
// POST /v1/tokens), every request but /metrics, /healthz and /readyz needs
// "Authorization: Bearer <token>" (and /metrics too, the metrics token or
// an admin token, with WithMetricsToken). A token has an identity (the
// source_plugin of everything it publishes, whatever the body says), the
// name patterns it may publish and subscribe to (read, stream, push
// subscriptions), optional subject patterns that bound the subjects it
// publishes to and looks up, an admin flag (schemas, dead letters, tokens,
// every subscription) and a rate limit. An event id belongs to the
// identity whose event holds it: another identity's publish of it is 409
// id_taken, which shows nothing of that event. A non-admin sees what its
// rights cover: in a trace, the outcomes of its own push subscriptions
// only; the schemas of names it may publish or read; a subject's version
// (in GET /v1/subjects and in the 409 of a conditional publish) only when
// it may read every event of the subject. Tokens are kept as SHA-256
// hashes; see Token for why that is enough. Admin actions and refused requests go to
// the audit logger. WithCORS lets browser pages of given origins call the
// API.
//
// # Webhooks
//
// A push subscription is a durable bus subscription named after it whose
// handler POSTs each event to the endpoint in CloudEvents binary mode: the
// body is the event's data, the attributes are ce-* headers, and the
// delivery is signed as Standard Webhooks specifies: webhook-id (the
// event's id), webhook-timestamp (Unix seconds) and webhook-signature,
// "v1," and the base64 HMAC-SHA256 of id "." timestamp "." body, keyed
// with the subscription's "whsec_" base64 secret (see SigningKey,
// SignStandard and VerifySignature; any Standard Webhooks library
// verifies it, and refuses a capture replayed after 5 minutes).
// Herald-Signature (an HMAC of the body alone, see Sign) is still sent for
// one release. A 2xx
// answer is success; 408, 429, 5xx, a timeout or a connection error is
// temporary (retried with backoff, after the endpoint's Retry-After when it
// gives one); any other answer is permanent and dead-letters the event.
// The addresses deliveries may connect to follow the WebhookPolicy
// (WithWebhookPolicy), checked on the endpoint at PUT and on every address
// dialed: a refused one dead-letters the event at once.
//
// # Sensitive fields
//
// The server reads and writes every event through its Bus, so the codec
// given to the Bus (herald.WithCodec, usually a sensitive.Codec) applies
// on every path: what is published is encoded, and the events the server
// returns, from every reading endpoint, the stream and the dead-letter
// queue, are decoded: the fields
// a schema marks "x-sensitive" in clear, or null (listed in the metadata
// under herald-shredded) once their subject is forgotten. Webhooks get
// them decoded the same way, through the bus. POST
// /v1/subjects/{subject}/forget deletes the subject's key; the events stay
// in the log, their sensitive fields unreadable for good.
//
// # Streams
//
// GET /v1/stream sends each event as "id: <position>" and "data: <JSON>";
// an idle stream gets a ": heartbeat" comment line. A client that
// reconnects with Last-Event-ID (as EventSource does) misses nothing and
// sees nothing twice. One reader tails the log for every stream; a stream
// that falls too far behind while live, or does not read, is disconnected
// rather than slowing anything else down, and resumes with Last-Event-ID.
package server
