package herald

import "fmt"

// MaxKVNameLen is the longest KV bucket or key name, in bytes, on every
// store. It is long enough for any subject (MaxSubjectLen) to name a key.
const MaxKVNameLen = 1024

// KVEntry is a value of the KV with its revision.
type KVEntry struct {
	// Value is the stored value; never nil (an empty value is empty).
	Value []byte
	// Revision identifies this write of the key (see KV).
	Revision uint64
}

// ValidateKVName reports whether bucket and key are valid KV names: each 1
// to MaxKVNameLen bytes of [A-Za-z0-9_.-/=]. Every store applies this one
// rule, so a name one store accepts works on all of them. The error wraps
// ErrInvalidEvent and names the offending part.
func ValidateKVName(bucket, key string) error {
	if err := validKVName("bucket", bucket); err != nil {
		return err
	}
	return validKVName("key", key)
}

// ValidateKVBucket is ValidateKVName for a bucket alone (ListValues).
func ValidateKVBucket(bucket string) error { return validKVName("bucket", bucket) }

func validKVName(what, s string) error {
	if s == "" || len(s) > MaxKVNameLen {
		return fmt.Errorf("%w: kv %s name must be 1 to %d bytes, not %d", ErrInvalidEvent, what, MaxKVNameLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '-' || c == '/' || c == '=') {
			return fmt.Errorf("%w: kv %s name %q: only [A-Za-z0-9_.-/=] are allowed", ErrInvalidEvent, what, s)
		}
	}
	return nil
}
