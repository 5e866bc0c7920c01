package nats_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/nats-io/nats.go/jetstream"
)

// cuttingProxy forwards NATS client connections to a server. Once armed
// with a marker, it cuts the connection it forwards on when a message whose
// subject contains the marker comes from the server, before passing the
// message on: the delivery is lost in flight, as when the node a client is
// connected to dies.
type cuttingProxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	marker string
	conns  []net.Conn
	cut    chan struct{} // closed once it has cut
}

func newCuttingProxy(t *testing.T, target string) *cuttingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{l: l, target: strings.TrimPrefix(target, "nats://"), cut: make(chan struct{})}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cuttingProxy) url() string { return "nats://" + p.l.Addr().String() }

// arm makes the proxy cut at the next message whose subject contains marker.
func (p *cuttingProxy) arm(marker string) {
	p.mu.Lock()
	p.marker = marker
	p.mu.Unlock()
}

func (p *cuttingProxy) serve() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Go(func() {
			_, _ = io.Copy(server, client)
			server.Close()
		})
		p.wg.Go(func() {
			p.filter(client, server)
			client.Close()
			server.Close()
		})
	}
}

// filter passes the server's protocol on to the client line by line (a
// message with its payload), and stops when it cuts or either side closes.
func (p *cuttingProxy) filter(client, server net.Conn) {
	r := bufio.NewReader(server)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		out := []byte(line)
		if strings.HasPrefix(line, "MSG ") || strings.HasPrefix(line, "HMSG ") {
			f := strings.Fields(line)
			size, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return
			}
			payload := make([]byte, size+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			p.mu.Lock()
			hit := p.marker != "" && strings.Contains(f[1], p.marker)
			if hit {
				p.marker = ""
				close(p.cut)
			}
			p.mu.Unlock()
			if hit {
				return
			}
			out = append(out, payload...)
		}
		if _, err := client.Write(out); err != nil {
			return
		}
	}
}

// TestConsumeDeliveryLostInFlight: a delivery lost on its way to the
// process that pulled it (its connection died) is pending on the server
// until the ack wait passes. The next event of its subject must not be
// handed out before it: the consumer notices the missing delivery and holds
// back what comes after until the lost one is delivered again.
func TestConsumeDeliveryLostInFlight(t *testing.T) {
	t.Parallel()
	srv := server(t)
	px := newCuttingProxy(t, srv.ClientURL())
	pub := open(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsstore.Connect(ctx, px.url())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Consume(ctx, "inflight", "lost.>", herald.StartEarliest, herald.ConsumeOptions{AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	px.arm(".lost.first")
	first := appendOne(t, pub, ev(t, "lost.first", "x"), herald.AppendOptions{})
	got := make(chan herald.Delivery, 16)
	go func() {
		for {
			ds, err := c.Fetch(ctx, 16)
			if err != nil {
				return
			}
			for _, d := range ds {
				got <- d
			}
		}
	}()
	select {
	case <-px.cut:
	case <-ctx.Done():
		t.Fatal("the first delivery never came")
	}
	// A new consumer leader (its node died) starts without a pinned
	// client: the reconnected process is pinned again at once, while the
	// lost delivery is still pending.
	js, err := jetstream.New(pub.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "HERALD_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	for name := range st.ConsumerNames(ctx).Name() {
		if err := st.UnpinConsumer(ctx, name, "herald"); err != nil {
			t.Fatal(err)
		}
	}
	second := appendOne(t, pub, ev(t, "lost.second", "x"), herald.AppendOptions{})
	var order []uint64
	for len(order) < 2 {
		select {
		case d := <-got:
			if len(order) == 0 || order[len(order)-1] != d.Event().Position {
				order = append(order, d.Event().Position)
			}
			if err := d.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("handed out %v, want both events", order)
		}
	}
	if order[0] != first.Position || order[1] != second.Position {
		t.Fatalf("handed out positions %v, want %d then %d (subject order)", order, first.Position, second.Position)
	}
}
