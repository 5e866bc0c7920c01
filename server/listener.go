package server

import (
	"net"
	"sync"
)

// DefaultMaxConnsPerAddr is the number of connections LimitConnsPerAddr
// lets one client address hold open by default (herald serve's
// --max-conns-per-addr).
const DefaultMaxConnsPerAddr = 256

// LimitConnsPerAddr returns a listener that lets each client address hold
// at most n connections open at once: Accept closes at once a connection
// beyond that and waits for the next. IPv6 clients count by their /64
// network, which one host usually owns whole. Wrap the TCP listener with
// it before any TLS listener, so that a refused connection costs no
// handshake. n < 1 means no cap. The returned listener is safe for
// concurrent use; closing it closes ln.
//
// It keeps one client from taking every file descriptor of the server
// (and so /healthz from everyone else); http.Server's ReadHeaderTimeout
// and IdleTimeout, and WithBodyReadTimeout, close the connections that
// stall.
func LimitConnsPerAddr(ln net.Listener, n int) net.Listener {
	if n < 1 {
		return ln
	}
	return &addrLimitListener{Listener: ln, max: n, open: map[string]int{}}
}

type addrLimitListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int
}

func (l *addrLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *addrLimitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// clientKey is what connections are counted by: the IP address, or the
// /64 network of an IPv6 address.
func clientKey(a net.Addr) string {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}
	if ip.To4() == nil && !ip.IsLoopback() {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// countedConn gives its slot back once, when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
