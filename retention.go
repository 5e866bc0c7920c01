package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultPruneBatch is how many events Prune hands to one
// EventLog.DeleteEvents call by default.
const DefaultPruneBatch = 1000

// PruneOptions tune Prune. The zero value is the default.
type PruneOptions struct {
	// Batch is how many events go to one DeleteEvents call; it bounds what
	// Prune holds in memory besides the snapshot positions. 0 means
	// DefaultPruneBatch.
	Batch int
	// Logger receives a warning for each unreadable snapshot. nil logs
	// nothing.
	Logger *slog.Logger
}

// ConsumerFloor is an optional ability of a Store whose consumers keep
// their progress outside SubscriptionState: JetStream's shared consumers,
// whose acknowledgements (not the checkpoints committed by each process)
// say what is handled. Prune finds it by type assertion.
type ConsumerFloor interface {
	// ConsumerFloor returns a function reporting whether some consumer has
	// not yet handled e. Prune holds such an event unless its rule says
	// Force. The function is called from one goroutine.
	ConsumerFloor(ctx context.Context) (func(e *Event) bool, error)
}

// Prune is herald's retention planner: it applies rules to st as of now
// and reports what it deleted and held. Every store goes through it; a
// store only deletes the positions it is given (EventLog.DeleteEvents).
// Bus.Prune and WithRetention call it with the bus's rules.
//
// For each event the first rule whose pattern matches its name applies;
// an event no rule matches is kept. An event is expired when it is older
// than the rule's MaxAge (strictly) or is not among the rule's MaxCount
// newest events. An expired event is held, not deleted,
//   - while some durable subscription's checkpoint is below its position,
//     or a shared consumer has not handled it (ConsumerFloor), unless the
//     rule says Force;
//   - always, when its subject has a snapshot in SnapshotBucket and the
//     event is newer than the snapshot's position, or when that snapshot
//     cannot be read: an unreadable snapshot holds every event of its
//     subject (and is logged), because deleting events a snapshot was
//     meant to cover would lose the aggregate's state for good.
//
// Outcomes and dead letters of deleted events go with them (DeleteEvents
// removes them in the same step). Prune considers the events up to the
// head it finds when it starts; events appended meanwhile wait for the
// next run. It reads the log as a stream, so its memory is bounded by
// opts.Batch and the number of snapshots, not by the size of the log; a
// rule with MaxCount costs two more reads of the log, which find the
// position below which that rule's events are over the count.
//
// Prune may run concurrently with appends, subscriptions and another
// Prune, in this process or another sharing the store; a concurrent
// deletion never makes it delete one of a rule's MaxCount newest events.
// An invalid rule
// (bad pattern, negative limit) returns an error wrapping ErrInvalidEvent
// before anything is deleted.
func Prune(ctx context.Context, st Store, rules []RetentionRule, now time.Time, opts PruneOptions) (PruneResult, error) {
	var res PruneResult
	if err := validateRules(rules); err != nil {
		return res, err
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultPruneBatch
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	head, err := st.Head(ctx)
	if err != nil {
		return res, err
	}
	active := false
	for _, r := range rules {
		active = active || r.MaxAge > 0 || r.MaxCount > 0
	}
	if !active || head == 0 {
		return res, nil
	}
	p := planner{rules: rules, now: now, head: head, names: map[string]int{}}
	if err := p.loadHolds(ctx, st, log); err != nil {
		return res, err
	}
	if err := p.countThresholds(ctx, st); err != nil {
		return res, err
	}

	batch := make([]uint64, 0, opts.Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := st.DeleteEvents(ctx, batch)
		res.Deleted += n
		batch = batch[:0]
		return err
	}
	for e, err := range st.Read(ctx, 0, Filter{}) {
		if err != nil {
			return res, err
		}
		if e.Position > head {
			break
		}
		ri := p.rule(e.Name)
		if ri < 0 || !p.expired(ri, e) {
			continue
		}
		if p.held(ri, e) {
			res.Held++
			continue
		}
		batch = append(batch, e.Position)
		if len(batch) == opts.Batch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

// validateRules checks every rule's pattern and limits.
func validateRules(rules []RetentionRule) error {
	for i, r := range rules {
		if err := ValidatePattern(r.Pattern); err != nil {
			return fmt.Errorf("herald: retention rule %d: %w", i, err)
		}
		if r.MaxAge < 0 || r.MaxCount < 0 {
			return fmt.Errorf("%w: retention rule %d: negative limit", ErrInvalidEvent, i)
		}
	}
	return nil
}

// snapHold is what a subject's snapshot holds: the events after pos, or
// every event when the snapshot cannot be read.
type snapHold struct {
	pos        uint64
	unreadable bool
}

// planner is the state of one Prune run.
type planner struct {
	rules []RetentionRule
	now   time.Time
	head  uint64

	// names caches the rule index of event names (-1: none); it is
	// cleared when it reaches maxCachedNames entries.
	names map[string]int

	hasCheckpoint bool
	minCheckpoint uint64
	unhandled     func(*Event) bool // ConsumerFloor, or nil
	snaps         map[string]snapHold

	// below[i] is the position below which rule i's events are over its
	// MaxCount (0: none is).
	below []uint64
}

const maxCachedNames = 4096

// rule returns the index of the first rule matching name, or -1.
func (p *planner) rule(name string) int {
	if i, ok := p.names[name]; ok {
		return i
	}
	i := -1
	for j := range p.rules {
		if MatchName(p.rules[j].Pattern, name) {
			i = j
			break
		}
	}
	if len(p.names) >= maxCachedNames {
		clear(p.names)
	}
	p.names[name] = i
	return i
}

func (p *planner) expired(ri int, e *Event) bool {
	r := &p.rules[ri]
	if r.MaxAge > 0 && p.now.Sub(e.Timestamp) > r.MaxAge.Std() {
		return true
	}
	return p.below != nil && e.Position < p.below[ri]
}

func (p *planner) held(ri int, e *Event) bool {
	if !p.rules[ri].Force {
		if p.hasCheckpoint && p.minCheckpoint < e.Position {
			return true
		}
		if p.unhandled != nil && p.unhandled(e) {
			return true
		}
	}
	if e.Subject == "" {
		return false
	}
	h, ok := p.snaps[e.Subject]
	return ok && (h.unreadable || e.Position > h.pos)
}

// loadHolds reads the checkpoints, the shared consumers' floor and the
// snapshot positions.
func (p *planner) loadHolds(ctx context.Context, st Store, log *slog.Logger) error {
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return err
	}
	for _, c := range cps {
		if !p.hasCheckpoint || c < p.minCheckpoint {
			p.minCheckpoint, p.hasCheckpoint = c, true
		}
	}
	if cf, ok := st.(ConsumerFloor); ok {
		if p.unhandled, err = cf.ConsumerFloor(ctx); err != nil {
			return err
		}
	}
	vals, err := st.ListValues(ctx, SnapshotBucket)
	if err != nil {
		return err
	}
	p.snaps = make(map[string]snapHold, len(vals))
	for subject, v := range vals {
		var snap struct {
			Position *uint64 `json:"position"`
		}
		if err := json.Unmarshal(v, &snap); err != nil || snap.Position == nil {
			log.Warn("retention: unreadable snapshot holds every event of its subject", "subject", subject)
			p.snaps[subject] = snapHold{unreadable: true}
			continue
		}
		p.snaps[subject] = snapHold{pos: *snap.Position}
	}
	return nil
}

// countThresholds finds, for each rule with MaxCount, the position of the
// oldest of its MaxCount newest events up to the head: its older events
// are over the count. One read counts each rule's events; a second finds
// the position at that index and counts again. When the counts differ
// (another process deleted some of those events meanwhile), the index may
// have moved, so the second read is repeated with the new counts; after a
// few tries the rules whose counts keep moving delete nothing by count in
// this run. Thresholds are positions, so later concurrent deletions cannot
// make this run delete one of the newest MaxCount events.
func (p *planner) countThresholds(ctx context.Context, st Store) error {
	counting := false
	for _, r := range p.rules {
		counting = counting || r.MaxCount > 0
	}
	if !counting {
		return nil
	}
	counts, _, err := p.countPass(ctx, st, nil)
	if err != nil {
		return err
	}
	p.below = make([]uint64, len(p.rules))
	settled := make([]bool, len(p.rules))
	for range 3 {
		again, below, err := p.countPass(ctx, st, counts)
		if err != nil {
			return err
		}
		done := true
		for i, r := range p.rules {
			if r.MaxCount == 0 || settled[i] {
				continue
			}
			if again[i] == counts[i] {
				p.below[i], settled[i] = below[i], true
				continue
			}
			counts[i], done = again[i], false
		}
		if done {
			break
		}
	}
	return nil
}

// countPass reads the log up to the head and counts the events of each
// rule with MaxCount. Given the counts of an earlier pass, it also returns
// for each such rule the position of its event at index
// counts[i]-MaxCount (0 when there are no more than MaxCount).
func (p *planner) countPass(ctx context.Context, st Store, counts []int) ([]int, []uint64, error) {
	n := make([]int, len(p.rules))
	below := make([]uint64, len(p.rules))
	for e, err := range st.Read(ctx, 0, Filter{}) {
		if err != nil {
			return nil, nil, err
		}
		if e.Position > p.head {
			break
		}
		ri := p.rule(e.Name)
		if ri < 0 || p.rules[ri].MaxCount == 0 {
			continue
		}
		if counts != nil && n[ri] == counts[ri]-p.rules[ri].MaxCount {
			below[ri] = e.Position
		}
		n[ri]++
	}
	return n, below, nil
}

// WithRetention makes the bus prune its store by rules every interval
// (see Prune), from New until Close; a run that fails is logged and the
// next one tries again. Nil rules mean DefaultRetention(). An interval of
// 0 schedules nothing: the rules apply only when Bus.Prune is called. By
// default the bus has no rules and never prunes.
func WithRetention(rules []RetentionRule, every time.Duration) Option {
	return func(c *busConfig) {
		if rules == nil {
			rules = DefaultRetention()
		}
		c.retention, c.pruneEvery, c.hasRetention = rules, every, true
	}
}

// Prune applies the bus's retention rules (WithRetention) to its store as
// of now, as the scheduled runs do, and reports what it deleted and held.
// Without WithRetention it deletes nothing. After Close it returns
// ErrClosed.
func (b *Bus) Prune(ctx context.Context, now time.Time) (PruneResult, error) {
	if b.closed.Load() {
		return PruneResult{}, ErrClosed
	}
	if !b.cfg.hasRetention {
		return PruneResult{}, nil
	}
	return Prune(ctx, b.store, b.cfg.retention, now, PruneOptions{Logger: b.logger})
}

// retentionLoop prunes every cfg.pruneEvery until ctx ends, then closes
// b.retentionDone.
func (b *Bus) retentionLoop(ctx context.Context) {
	defer close(b.retentionDone)
	t := time.NewTicker(b.cfg.pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			res, err := b.Prune(ctx, now)
			switch {
			case err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed):
				b.logger.Error("retention: prune failed", "err", err)
			case err == nil && (res.Deleted > 0 || res.Held > 0):
				b.logger.Info("retention: pruned", "deleted", res.Deleted, "held", res.Held)
			}
		}
	}
}
