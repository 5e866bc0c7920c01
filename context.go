package herald

import "context"

// FromContext returns the EventContext of the event a handler is working
// on, and false when ctx is not a handler's context.
func FromContext(ctx context.Context) (EventContext, bool) {
	return EventContext{}, false
}
