// Package herald is an event bus for Go programs: typed, asynchronous
// publish/subscribe over a durable event log, with retries, a dead-letter
// queue, replay and per-handler outcomes.
//
// A Bus publishes events to a Store (a bounded MemoryStore unless WithStore
// says otherwise) and delivers them to subscriptions:
//
//	bus, err := herald.New()
//	sub, err := bus.Subscribe(ctx, "recording.*", herald.HandlerFunc(handle), herald.Durable("transcriber"))
//	pos, err := bus.Publish(ctx, &herald.Event{Name: "recording.completed", Data: data})
//
// Durable subscriptions (Durable) read the log from their checkpoint in
// the store, so they resume after a restart and receive what was published
// meanwhile (at least once); their outcomes and dead letters are recorded
// in the store. Ephemeral subscriptions receive only what this bus
// publishes while they exist, from a bounded queue; their failures are
// logged and counted but not recorded.
//
// Within a subscription, events of one Subject are handled one at a time
// in log order; other events run concurrently up to Concurrency, higher
// Priority first among those ready. A handler error marked Temporary (or
// unmarked, which is also logged with its stack) is retried with
// exponential backoff and full jitter up to MaxAttempts; an error marked
// Permanent, or the last failed attempt, moves the event to the
// dead-letter queue with its error history, and the subscription moves on.
// A panic is recovered, and a handler that ignores its timeout is
// abandoned; both count as failed attempts. Bus.Redrive delivers dead
// letters again, Bus.Discard drops them and Bus.Reset replays.
//
// A handler publishes follow-up events with the context it was given: they
// inherit the correlation id, name the handled event as their cause, and
// get deterministic ids, so a retried handler does not publish twice.
//
// Every queue is bounded: when the store or an ephemeral subscription has
// no room, Publish waits until its context's deadline (5 s by default) and
// then fails with ErrBackpressure.
package herald
