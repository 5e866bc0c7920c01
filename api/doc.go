// Package api holds what herald's HTTP API (v1) carries, shared by the
// server and the Go client: the event model (Event, Priority, Duration,
// outcomes, dead letters, traces), the sentinel errors that error codes map
// back to, and the limits and name rules both sides check.
//
// It imports only the standard library and internal/model (where the
// event model is defined; api names it with aliases), so a program that
// talks to a herald server links the protocol, not the server: no metrics,
// no JSON Schema compiler, no store. Package herald declares the same names as aliases
// (herald.Event is api.Event), so values and sentinel errors are one and the
// same on both sides and errors.Is works across the network.
package api
