package nats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ready reports whether the store can take writes now: nil when the event
// stream answers and, in a cluster, has a leader and a quorum of current
// replicas; otherwise an error wrapping herald.ErrBackpressure that says
// what is missing. herald serve answers /readyz with it.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	info, err := s.events.Info(ctx)
	if err != nil {
		return fmt.Errorf("nats store: the event stream does not answer: %w: %w", herald.ErrBackpressure, err)
	}
	return quorumOf(info)
}

// quorumOf returns nil when the stream has a leader and a majority of its
// replicas (the leader counts) are current.
func quorumOf(info *jetstream.StreamInfo) error {
	c := info.Cluster
	if c == nil || info.Config.Replicas <= 1 {
		return nil
	}
	if c.Leader == "" {
		return fmt.Errorf("nats store: the event stream has no leader: %w", herald.ErrBackpressure)
	}
	current := 1
	for _, p := range c.Replicas {
		if p != nil && p.Current && !p.Offline {
			current++
		}
	}
	if need := info.Config.Replicas/2 + 1; current < need {
		return fmt.Errorf("nats store: %d of %d event stream replicas are current, %d needed: %w",
			current, info.Config.Replicas, need, herald.ErrBackpressure)
	}
	return nil
}

// transient reports whether err is one JetStream gives while it starts or
// while its cluster has no quorum: worth trying again after a while.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch int(apiErr.ErrorCode) {
		case errCodeNotAvailable, // JetStream system temporarily unavailable
			10009, // the cluster cannot handle the request (no leader)
			10004: // incomplete results
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, natsgo.ErrTimeout) ||
		errors.Is(err, natsgo.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, natsgo.ErrDisconnected) ||
		errors.Is(err, herald.ErrBackpressure)
}

// retryTransient runs try until it succeeds, fails with an error that is
// not transient, or ctx ends (returning the last error). While JetStream
// is unavailable it waits 250 ms doubling up to 5 s between tries and logs
// one line when it starts waiting and one when it is through.
func retryTransient(ctx context.Context, s *Store, what string, try func(ctx context.Context) error) error {
	var first time.Time
	delay := 250 * time.Millisecond
	for {
		// Each try gets the request timeout: a cluster without quorum may
		// not answer at all.
		actx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
		err := try(actx)
		cancel()
		if err == nil {
			if !first.IsZero() {
				s.cfg.logger.Info("herald nats store: JetStream answered, "+what+" done", "waited", time.Since(first).Round(time.Millisecond))
			}
			return nil
		}
		if !transient(err) || ctx.Err() != nil {
			return err
		}
		if first.IsZero() {
			first = time.Now()
			s.cfg.logger.Warn("herald nats store: JetStream is not available yet; "+what+": retrying until it is", "err", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// stateLog logs changes of one background state (healthy or failing)
// once each, instead of a line per failure.
type stateLog struct {
	mu      sync.Mutex
	failing bool
	since   time.Time
	count   int
}

// fail records a failure of what; the first after a success is logged.
func (l *stateLog) fail(s *Store, what string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	if l.failing {
		return
	}
	l.failing, l.since, l.count = true, time.Now(), 1
	s.cfg.logger.Warn("herald nats store: "+what+" is failing; retrying quietly until it works again", "err", err)
}

// ok records a success; the first after failures is logged.
func (l *stateLog) ok(s *Store, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing {
		return
	}
	l.failing = false
	s.cfg.logger.Info("herald nats store: "+what+" works again", "failures", l.count, "after", time.Since(l.since).Round(time.Millisecond))
}
