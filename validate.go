package herald

import (
	"context"
	"errors"
)

// FieldError returns the error a Validator returns to reject an event
// because of one field: a *ValidationError wrapping ErrInvalidEvent whose
// Field is field in wire form ("source_plugin", "data.total") and whose
// Reason is reason. The bus fills in the event's index in its batch.
func FieldError(field, reason string) error {
	return &ValidationError{Field: field, Reason: reason, Err: ErrInvalidEvent}
}

// RequireSource returns a Validator that rejects events without a
// source_plugin, a context rule for buses whose publishers must say who
// they are. It runs after the bus gave WithSource's name to events that
// had none.
func RequireSource() Validator {
	return ValidatorFunc(func(_ context.Context, e *Event) error {
		if e.SourcePlugin == "" {
			return FieldError("source_plugin", "is required")
		}
		return nil
	})
}

// Validator returns a business-rule Validator for the events of this type
// and data version: rule gets the event's data as T and rejects the event
// by returning an error (FieldError names the field). Events of other
// names or versions pass untouched; data that does not decode into T is
// rejected with the field that does not fit.
//
//	bus, err := herald.New(herald.WithValidator(orderPlaced.Validator(
//		func(ctx context.Context, o Order) error {
//			if o.Total <= 0 {
//				return herald.FieldError("data.total", "must be positive")
//			}
//			return nil
//		})))
func (t EventType[T]) Validator(rule func(ctx context.Context, data T) error) Validator {
	return ValidatorFunc(func(ctx context.Context, e *Event) error {
		if t.err != nil {
			return t.err
		}
		if e.Name != t.name || max(e.Version, 1) != t.version {
			return nil
		}
		v, err := t.Decode(e)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				return ve
			}
			return err
		}
		return rule(ctx, v)
	})
}
