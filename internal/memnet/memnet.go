// Package memnet is a network in memory for tests: a listener whose
// connections are [net.Pipe] pairs, and the dialer that makes them.
//
// A goroutine blocked on a real socket keeps a testing/synctest bubble's
// clock from moving; one blocked on a memnet connection is durably blocked,
// so an HTTP server and its clients can run inside a bubble.
package memnet

import (
	"context"
	"net"
	"sync"
)

// Listener accepts the connections its DialContext makes. Create it with
// [Listen]; it is safe for concurrent use.
type Listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// Listen returns a listener with no connections yet.
func Listen() *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for a connection made by DialContext. After Close it
// returns [net.ErrClosed].
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and DialContext; connections already made stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is a placeholder address.
func (l *Listener) Addr() net.Addr { return addr{} }

// DialContext connects to the listener, whatever network and address it
// is given; it has the signature of [net/http.Transport.DialContext]. It
// waits for Accept and fails with ctx's error, or with [net.ErrClosed] once
// the listener is closed.
func (l *Listener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type addr struct{}

func (addr) Network() string { return "memnet" }
func (addr) String() string  { return "memnet" }
