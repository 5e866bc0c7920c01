package es

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/heraldhq/herald"
)

// An Upcaster turns the data of an event at one version into the data of
// the same event at the next version. It must not modify data in place; it
// returns the new JSON object.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

type upcastKey struct {
	name string
	from int
}

// Upcasters turns events stored at old versions into their current version
// on read, so old data never needs rewriting. An upcaster is registered per
// event name and per version it upgrades from (k to k+1); reading an event
// at version k applies the upcasters for k, k+1, … as long as one is
// registered.
//
// Upcasters is safe for concurrent use. The zero value is not usable; call
// NewUpcasters.
type Upcasters struct {
	mu sync.RWMutex
	m  map[upcastKey]Upcaster
}

// NewUpcasters returns an empty set of upcasters.
func NewUpcasters() *Upcasters {
	return &Upcasters{m: map[upcastKey]Upcaster{}}
}

// Register adds f, which upgrades the data of events named name from
// version from to version from+1. It returns an error when name is not a
// valid event name, from is below 1, f is nil, or an upcaster for that name
// and version is already registered.
func (u *Upcasters) Register(name string, from int, f Upcaster) error {
	if err := herald.ValidateName(name); err != nil {
		return err
	}
	if from < 1 {
		return fmt.Errorf("es: upcaster for %s: version %d is below 1", name, from)
	}
	if f == nil {
		return fmt.Errorf("es: upcaster for %s v%d is nil", name, from)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	k := upcastKey{name, from}
	if _, ok := u.m[k]; ok {
		return fmt.Errorf("es: an upcaster for %s v%d is already registered", name, from)
	}
	u.m[k] = f
	return nil
}

// Upcast returns e at the latest version its upcasters reach. When no
// upcaster applies it returns e itself; otherwise a copy with the new Data
// and Version, leaving e untouched. A nil *Upcasters upcasts nothing. An
// upcaster's error, or data that is not a JSON object, is returned wrapped
// with the event's name and version.
func (u *Upcasters) Upcast(e *herald.Event) (*herald.Event, error) {
	if u == nil {
		return e, nil
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if len(u.m) == 0 {
		return e, nil
	}
	v := max(e.Version, 1)
	out := e
	for {
		f, ok := u.m[upcastKey{e.Name, v}]
		if !ok {
			return out, nil
		}
		data, err := f(out.Data)
		if err != nil {
			return nil, fmt.Errorf("es: upcast %s v%d (event %s): %w", e.Name, v, e.ID, err)
		}
		if !isObject(data) {
			return nil, fmt.Errorf("es: upcast %s v%d (event %s): result is not a JSON object", e.Name, v, e.ID)
		}
		if out == e {
			c := *e
			out = &c
		}
		v++
		out.Data = data
		out.Version = v
	}
}

func isObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}
