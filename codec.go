package herald

import "context"

// Codec transforms events on their way into the store and back: Encode
// runs on the publish path after validation, just before the append, and
// Decode runs on a copy of each event before a handler gets it. Package
// sensitive provides one that encrypts the fields a schema marks
// "x-sensitive" with a key per subject.
//
// Encode may replace the event's fields. Decode is given a shallow copy of
// a stored event, shared with other subscriptions: it may replace the
// copy's fields but must not write into its Data or Metadata. A Codec is
// called from many goroutines at once.
//
// The codec is given once, to the Bus, which applies it on every path:
// Encode on Publish, PublishBatch and everything built on them (typed
// events, es repositories, the HTTP server), Decode on every read (Read,
// Get, Trace, DeadLetters, handlers). Only a read asked for Raw returns
// events as stored, encoded. Reading the store itself (Bus.Store) bypasses
// the codec.
type Codec interface {
	Encode(ctx context.Context, e *Event) error
	Decode(ctx context.Context, e *Event) error
}

// CodecAttacher is a Codec that needs the bus it serves, for instance to
// keep its keys in the bus's KV and learn sensitive fields from the bus's
// schemas. New calls AttachBus once, before it returns; an error fails New.
type CodecAttacher interface {
	Codec
	AttachBus(b *Bus) error
}

// WithCodec sets the codec that encodes events before they are stored and
// decodes them before handlers get them. The default is none: events are
// stored as published.
func WithCodec(c Codec) Option { return func(cfg *busConfig) { cfg.codec = c } }

// decodeEvent returns e as handlers see it: e itself without a codec,
// otherwise a decoded copy. A decoding error is permanent: retrying does
// not make an undecodable event decodable.
func decodeEvent(ctx context.Context, c Codec, e *Event) (*Event, error) {
	if c == nil {
		return e, nil
	}
	d := *e
	if err := c.Decode(ctx, &d); err != nil {
		return nil, Permanent(err)
	}
	return &d, nil
}

// decodeEvents is decodeEvent for a batch; it returns evs itself without
// a codec.
func decodeEvents(ctx context.Context, c Codec, evs []*Event) ([]*Event, error) {
	if c == nil {
		return evs, nil
	}
	out := make([]*Event, len(evs))
	for i, e := range evs {
		d, err := decodeEvent(ctx, c, e)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}
