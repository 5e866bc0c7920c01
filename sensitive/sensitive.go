// Package sensitive encrypts the sensitive fields of events at rest, with
// one key per subject, and forgets a subject by deleting its key
// (crypto-shredding).
//
// A field is sensitive when the JSON Schema of its event's name and
// version marks it with "x-sensitive": true (see herald.Schemas). A Codec
// replaces each sensitive value of an event's data with an envelope,
// {"$enc": "v1.<key id>.<base64>"}, holding the value's JSON sealed with
// AES-256-GCM under the subject's key; the subject and the field's path are
// bound to the ciphertext as additional data, so an envelope moved to
// another subject or field does not open. Keys are random, 32 bytes, one
// per subject, made on the first event of the subject that has a
// sensitive field, and kept in a KV bucket (WithKeyBucket, default "keys")
// under the SHA-256 of the subject.
//
// Forget deletes a subject's key (and a snapshot of it in clear): from
// then on its sensitive values decode as null and the event's metadata
// lists them under ShreddedMetadata, wherever the event was copied. Keep keys in a store
// that backups of the event log do not include (pass another KV to New) to
// have backups forget too.
//
// A Codec is a herald.Codec, given once, to a bus, with herald.WithCodec:
// the bus encrypts events before they are stored and decrypts them on
// every read (handlers, Bus.Read, Get, Trace, DeadLetters, the HTTP
// server); an es.Repository on that bus reads aggregates in clear and
// keeps sealed snapshots. Sensitive is a property of an event's name: a
// field that any version's schema marks is sealed in every event of the
// name (see Codec.Encode). Forget a subject through the bus, so that
// caches built on it (es repositories) drop it too.
//
//	codec, err := sensitive.New(nil, nil) // keys in the bus's KV, fields from its schemas
//	bus, err := herald.New(herald.WithStore(store), herald.WithCodec(codec))
//	...
//	err = bus.Forget(ctx, "customer/42")
//
// Sensitive values are never logged, and never appear in errors.
package sensitive

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
)

// Fields tells which fields of an event are sensitive, as wire paths
// ("data.email", "data.contacts.*.phone"). *herald.Schemas implements it.
type Fields interface {
	SensitiveFields(name string, version int) []string
}

// FieldsFunc adapts a function to Fields.
type FieldsFunc func(name string, version int) []string

// SensitiveFields calls f(name, version).
func (f FieldsFunc) SensitiveFields(name string, version int) []string { return f(name, version) }

// ShreddedMetadata is the metadata key under which Decode lists, comma
// separated, the paths of the sensitive values it could not restore
// because their subject was forgotten.
const ShreddedMetadata = "herald-shredded"

// DefaultKeyBucket is the KV bucket that holds the subjects' keys unless
// WithKeyBucket says otherwise.
const DefaultKeyBucket = "keys"

// Defaults of the key cache.
const (
	DefaultKeyCacheTTL  = 30 * time.Second
	DefaultKeyCacheSize = 10000
)

// ErrUndecryptable is wrapped by Decode's error when an envelope is
// malformed or does not open under its subject's current key: the data was
// tampered with or corrupted. A forgotten subject is not an error.
var ErrUndecryptable = errors.New("sensitive: value does not decrypt")

// ErrForgotten is wrapped by Open's error when the subject's key is gone:
// the subject was forgotten. That error wraps herald.ErrNotFound too.
var ErrForgotten = errors.New("sensitive: subject forgotten")

var errForgotten = fmt.Errorf("%w (%w)", ErrForgotten, herald.ErrNotFound)

const envelopeKey = "$enc"

// Option configures a Codec.
type Option func(*config)

type config struct {
	bucket    string
	ttl       time.Duration
	cacheSize int
}

// WithKeyBucket sets the KV bucket of the keys (default DefaultKeyBucket).
func WithKeyBucket(name string) Option { return func(c *config) { c.bucket = name } }

// WithKeyCacheTTL sets how long a key read from the KV is kept in memory
// (default DefaultKeyCacheTTL). Forget drops the key from this Codec's
// cache at once; other processes sharing the KV stop using it within the
// TTL. d <= 0 turns the cache off.
func WithKeyCacheTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// WithKeyCacheSize bounds how many keys the cache holds (default
// DefaultKeyCacheSize).
func WithKeyCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

var _ herald.Codec = (*Codec)(nil)

// Codec encrypts sensitive fields before events are stored (Encode) and
// decrypts them when events are read (Decode). It is safe for concurrent
// use. It does not own kv.
//
// A subject's key is created with the KV's create-if-absent
// (herald.KV.CreateValue), so codecs sharing a KV — in one process or in
// several sharing a JetStream store — that make the first key of a
// subject at the same instant agree on one key: the loser reads and uses
// the winner's.
type Codec struct {
	deps atomic.Pointer[deps] // where keys and fields come from
	cfg  config

	create sync.Mutex // serialises key creation and Forget

	mu    sync.Mutex
	cache map[string]cachedKey
	// forgets counts Forget's evictions; a key read before one is not
	// cached after it, so a read racing a Forget cannot bring the key back.
	forgets uint64
}

type cachedKey struct {
	k  *subjectKey
	at time.Time
}

type subjectKey struct {
	id   string
	aead cipher.AEAD
}

// storedKey is the JSON form of a key in the KV.
type storedKey struct {
	ID      string    `json:"id"`
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
}

// New returns a Codec that keeps keys in kv and learns which fields are
// sensitive from fields. A nil kv or fields is taken from the bus the
// codec is given to (herald.WithCodec): the KV of the bus's store and the
// bus's schema registry. It returns an error when an option is invalid.
//
// When fields also has a NameSensitiveFields method (*herald.Schemas has),
// a field marked in any version of a name is sealed in every event of that
// name: see Encode.
func New(kv herald.KV, fields Fields, opts ...Option) (*Codec, error) {
	cfg := config{bucket: DefaultKeyBucket, ttl: DefaultKeyCacheTTL, cacheSize: DefaultKeyCacheSize}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.bucket == "" {
		return nil, errors.New("sensitive: New: empty key bucket")
	}
	if cfg.cacheSize < 1 {
		cfg.cacheSize = 1
	}
	c := &Codec{cfg: cfg, cache: map[string]cachedKey{}}
	c.deps.Store(&deps{kv: kv, fields: fields})
	return c, nil
}

// AttachBus implements the hook herald.New calls on its codec: a Codec made
// with a nil KV or Fields takes the bus's KV and schema registry. A Codec
// given to several buses keeps what the first one gave. A Codec whose
// Fields is a *herald.Schemas other than the bus's registry is refused, so
// that New fails rather than a schema registered with the bus going unseen
// by the codec.
func (c *Codec) AttachBus(b *herald.Bus) error {
	for {
		old := c.deps.Load()
		if reg, ok := old.fields.(*herald.Schemas); ok && reg != b.Schemas() {
			// Schemas registered with the bus (by the server, by typed
			// events) would not reach the codec: their marked fields
			// would be stored in clear.
			return errors.New("sensitive: the codec reads its sensitive fields from another schema registry than the bus's: give New nil Fields, or the bus the same registry (herald.WithSchemas)")
		}
		d := *old
		if d.kv == nil {
			d.kv = b.KV()
		}
		if d.fields == nil {
			d.fields = b.Schemas()
		}
		if c.deps.CompareAndSwap(old, &d) {
			return nil
		}
	}
}

// deps are the KV of the keys and the Fields of a Codec.
type deps struct {
	kv     herald.KV
	fields Fields
}

// NameFields is a Fields that also knows the sensitive fields of a name
// across its versions; *herald.Schemas implements it.
type NameFields interface {
	Fields
	NameSensitiveFields(name string) []string
}

var errDetached = errors.New("sensitive: the codec has no KV or no Fields: give them to New or give the codec to a bus (herald.WithCodec)")

func (c *Codec) parts() (herald.KV, Fields, error) {
	d := c.deps.Load()
	if d.kv == nil || d.fields == nil {
		return nil, nil, errDetached
	}
	return d.kv, d.fields, nil
}

// keys returns the KV of the keys.
func (c *Codec) keys() (herald.KV, error) {
	kv, _, err := c.parts()
	return kv, err
}

// Encode replaces the sensitive values of e's data with envelopes sealed
// under the key of e's subject, making the key when the subject has none.
//
// Sensitive is a property of the name: when the Fields is a NameFields, a
// field that the schema of any version of e's name marks is sealed whatever
// e's version, even one without a schema; otherwise the fields of e's
// version are. An event without sensitive values is left as it is. An
// event with sensitive values but no subject is refused with a
// *herald.ValidationError wrapping herald.ErrInvalidEvent. Encode replaces
// e.Data; it never writes into the old Data's bytes.
func (c *Codec) Encode(ctx context.Context, e *herald.Event) error {
	_, fields, err := c.parts()
	if err != nil {
		return err
	}
	var paths []string
	if nf, ok := fields.(NameFields); ok {
		paths = nf.NameSensitiveFields(e.Name)
	} else {
		paths = fields.SensitiveFields(e.Name, max(e.Version, 1))
	}
	if len(paths) == 0 {
		return nil
	}
	doc, err := parse(e.Data)
	if err != nil {
		return &herald.ValidationError{Field: "data", Reason: "not a JSON object", Err: herald.ErrInvalidEvent}
	}
	slices.Sort(paths) // a parent is sealed before its children, which it then hides
	var key *subjectKey
	var sealErr error
	changed := false
	for _, p := range paths {
		segs := strings.Split(p, ".")
		if len(segs) < 2 || segs[0] != "data" {
			continue
		}
		walk(doc, segs[1:], "data", func(v any, path string) any {
			if v == nil || sealErr != nil || isEnvelope(v) {
				return v
			}
			if e.Subject == "" {
				sealErr = &herald.ValidationError{Field: "subject", Reason: "an event with sensitive fields needs a subject", Err: herald.ErrInvalidEvent}
				return v
			}
			if key == nil {
				if key, sealErr = c.keyFor(ctx, e.Subject, true); sealErr != nil {
					return v
				}
			}
			plain, err := marshal(v)
			if err != nil {
				sealErr = err
				return v
			}
			changed = true
			return map[string]any{envelopeKey: seal(key, e.Subject, path, plain)}
		})
		if sealErr != nil {
			return sealErr
		}
	}
	if !changed {
		return nil
	}
	data, err := marshal(doc)
	if err != nil {
		return err
	}
	e.Data = data
	return nil
}

// Decode restores the sensitive values of e's data. A value whose subject
// was forgotten becomes null, and its path is listed in e's metadata under
// ShreddedMetadata. Decode replaces e.Data and e.Metadata and never writes
// into the old ones, so it may be given a shallow copy of a shared event.
// An envelope that is malformed or does not open under its subject's key
// returns an error wrapping ErrUndecryptable naming the field's path.
func (c *Codec) Decode(ctx context.Context, e *herald.Event) error {
	if !bytes.Contains(e.Data, []byte(`"`+envelopeKey+`"`)) {
		return nil
	}
	doc, err := parse(e.Data)
	if err != nil {
		return nil // not ours to judge: the data carries no envelope we can read
	}
	var key *subjectKey
	var keyErr error
	looked := false
	var shredded []string
	var openErr error
	root := walkEnvelopes(doc, "data", func(env string, path string) any {
		if openErr != nil {
			return nil
		}
		if !looked {
			looked = true
			if e.Subject != "" {
				key, keyErr = c.keyFor(ctx, e.Subject, false)
			}
		}
		if keyErr != nil {
			openErr = keyErr
			return nil
		}
		kid, _, ok := splitEnvelope(env)
		if !ok {
			openErr = fmt.Errorf("%w: field %s: malformed envelope", ErrUndecryptable, path)
			return nil
		}
		if key == nil || key.id != kid {
			shredded = append(shredded, path)
			return nil
		}
		plain, err := open(key, e.Subject, path, env)
		if err != nil {
			openErr = fmt.Errorf("%w: field %s", ErrUndecryptable, path)
			return nil
		}
		v, err := parseValue(plain)
		if err != nil {
			openErr = fmt.Errorf("%w: field %s: not JSON", ErrUndecryptable, path)
			return nil
		}
		return v
	})
	if openErr != nil {
		return openErr
	}
	data, err := marshal(root)
	if err != nil {
		return err
	}
	e.Data = data
	if len(shredded) > 0 {
		md := maps.Clone(e.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		slices.Sort(shredded)
		md[ShreddedMetadata] = strings.Join(shredded, ",")
		e.Metadata = md
	}
	return nil
}

// Forget deletes subject's key, so that its sensitive values never decrypt
// again, here or in any copy of the events; the SQLite and JetStream
// stores erase a deleted value from their files (see herald.KV). It also
// deletes the subject's snapshot in herald.SnapshotBucket of the same KV
// when it holds its state in clear (a snapshot sealed with Seal is kept:
// it no longer opens). Forgetting a subject without a key is not an
// error. Events of the subject published afterwards get a new key. Call
// it through the bus (herald.Bus.Forget), which also tells the caches
// built on the bus; called directly it reaches only the keys.
func (c *Codec) Forget(ctx context.Context, subject string) error {
	if subject == "" {
		return errors.New("sensitive: Forget: empty subject")
	}
	kv, err := c.keys()
	if err != nil {
		return err
	}
	name := keyName(subject)
	c.create.Lock()
	defer c.create.Unlock()
	// Evict before and after the delete: a read that starts while the
	// delete is under way may still find the key in the KV, and must not
	// leave it cached once Forget returns.
	c.evict(name)
	err = kv.DeleteValue(ctx, c.cfg.bucket, name)
	c.evict(name)
	if err != nil {
		return fmt.Errorf("sensitive: forget: %w", err)
	}
	if herald.ValidateKVName(herald.SnapshotBucket, subject) != nil {
		return nil // no KV key can name this subject, so it has no snapshot
	}
	snap, err := kv.GetValue(ctx, herald.SnapshotBucket, subject)
	if errors.Is(err, herald.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sensitive: forget snapshot: %w", err)
	}
	var sealed struct {
		State  json.RawMessage `json:"state"`
		Sealed []byte          `json:"sealed"`
	}
	if json.Unmarshal(snap, &sealed) == nil && sealed.State == nil && sealed.Sealed != nil {
		return nil // sealed with the key just deleted: unreadable, and still marks the subject's version
	}
	if err := kv.DeleteValue(ctx, herald.SnapshotBucket, subject); err != nil {
		return fmt.Errorf("sensitive: forget snapshot: %w", err)
	}
	return nil
}

// Seal encrypts b under subject's key, making the key when the subject has
// none, for values about the subject kept outside its events, such as
// aggregate snapshots (package es seals its snapshots with a Codec given
// as its decoder). Forget makes what Seal returned unreadable.
func (c *Codec) Seal(ctx context.Context, subject string, b []byte) ([]byte, error) {
	if subject == "" {
		return nil, errors.New("sensitive: Seal: empty subject")
	}
	k, err := c.keyFor(ctx, subject, true)
	if err != nil {
		return nil, err
	}
	return []byte(seal(k, subject, sealedPath, b)), nil
}

// Open decrypts what Seal returned. It returns an error wrapping
// ErrForgotten and herald.ErrNotFound when the subject was forgotten since,
// and one wrapping ErrUndecryptable when sealed was altered.
func (c *Codec) Open(ctx context.Context, subject string, sealed []byte) ([]byte, error) {
	kid, _, ok := splitEnvelope(string(sealed))
	if !ok {
		return nil, fmt.Errorf("%w: malformed sealed value", ErrUndecryptable)
	}
	k, err := c.keyFor(ctx, subject, false)
	if err != nil {
		return nil, err
	}
	if k == nil || k.id != kid {
		return nil, errForgotten
	}
	b, err := open(k, subject, sealedPath, string(sealed))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed value", ErrUndecryptable)
	}
	return b, nil
}

// sealedPath stands for the field path in the additional data of values
// sealed with Seal; no event field has this path.
const sealedPath = "$sealed"

// keyName is the KV key of subject's key: the hex SHA-256 of the subject,
// so that any subject fits the KV's key alphabet and key names do not
// reveal subjects.
func keyName(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(sum[:])
}

// keyFor returns subject's key, or nil when it has none and create is
// false.
func (c *Codec) keyFor(ctx context.Context, subject string, create bool) (*subjectKey, error) {
	name := keyName(subject)
	if k := c.cached(name); k != nil {
		return k, nil
	}
	k, err := c.readKey(ctx, name)
	if err != nil || k != nil || !create {
		return k, err
	}
	c.create.Lock()
	defer c.create.Unlock()
	// Another caller may have made it while we waited.
	if k, err = c.readKey(ctx, name); err != nil || k != nil {
		return k, err
	}
	// The key is created only if absent, so that codecs in several
	// processes sharing the KV agree on one key: the loser of a race reads
	// the winner's. A Forget elsewhere between the two may leave nothing to
	// read; then try again.
	for range 3 {
		sk := storedKey{Key: make([]byte, 32), Created: time.Now().UTC()}
		id := make([]byte, 8)
		rand.Read(sk.Key) // never fails: it crashes the program instead
		rand.Read(id)
		sk.ID = hex.EncodeToString(id)
		b, err := json.Marshal(sk)
		if err != nil {
			return nil, err
		}
		gen := c.generation()
		kv, err := c.keys()
		if err != nil {
			return nil, err
		}
		_, err = kv.CreateValue(ctx, c.cfg.bucket, name, b)
		clear(b)
		if err == nil {
			return c.remember(name, sk, gen)
		}
		if !errors.Is(err, herald.ErrConflict) {
			return nil, fmt.Errorf("sensitive: store key: %w", err)
		}
		if k, err = c.readKey(ctx, name); err != nil || k != nil {
			return k, err
		}
	}
	return nil, errors.New("sensitive: store key: the subject's key keeps being created and deleted")
}

// evict drops name's cached key and makes reads that started before it
// skip caching what they found.
func (c *Codec) evict(name string) {
	c.mu.Lock()
	delete(c.cache, name)
	c.forgets++
	c.mu.Unlock()
}

// generation returns how many evictions Forget has made.
func (c *Codec) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forgets
}

func (c *Codec) readKey(ctx context.Context, name string) (*subjectKey, error) {
	gen := c.generation()
	kv, err := c.keys()
	if err != nil {
		return nil, err
	}
	b, err := kv.GetValue(ctx, c.cfg.bucket, name)
	if errors.Is(err, herald.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sensitive: read key: %w", err)
	}
	var sk storedKey
	if err := json.Unmarshal(b, &sk); err != nil || len(sk.Key) != 32 || sk.ID == "" {
		return nil, errors.New("sensitive: read key: malformed key record")
	}
	return c.remember(name, sk, gen)
}

// remember builds the cipher of sk and caches it under name, unless a
// Forget started after generation gen (the key may be forgotten already).
func (c *Codec) remember(name string, sk storedKey, gen uint64) (*subjectKey, error) {
	block, err := aes.NewCipher(sk.Key)
	if err != nil {
		return nil, fmt.Errorf("sensitive: key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sensitive: key: %w", err)
	}
	k := &subjectKey{id: sk.ID, aead: aead}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.ttl > 0 && c.forgets == gen {
		if len(c.cache) >= c.cfg.cacheSize {
			for n := range c.cache { // evict one entry, any
				delete(c.cache, n)
				break
			}
		}
		c.cache[name] = cachedKey{k: k, at: time.Now()}
	}
	return k, nil
}

func (c *Codec) cached(name string) *subjectKey {
	if c.cfg.ttl <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ck, ok := c.cache[name]
	if !ok {
		return nil
	}
	if time.Since(ck.at) > c.cfg.ttl {
		delete(c.cache, name)
		return nil
	}
	return ck.k
}

// aad binds a ciphertext to its subject and field path.
func aad(subject, path string) []byte {
	return []byte("herald-sensitive-v1\x00" + subject + "\x00" + path)
}

func seal(k *subjectKey, subject, path string, plain []byte) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	rand.Read(nonce) // never fails: it crashes the program instead
	ct := k.aead.Seal(nonce, nonce, plain, aad(subject, path))
	return "v1." + k.id + "." + base64.RawStdEncoding.EncodeToString(ct)
}

func splitEnvelope(env string) (kid, body string, ok bool) {
	rest, ok := strings.CutPrefix(env, "v1.")
	if !ok {
		return "", "", false
	}
	kid, body, ok = strings.Cut(rest, ".")
	return kid, body, ok && kid != "" && body != ""
}

func open(k *subjectKey, subject, path, env string) ([]byte, error) {
	_, body, ok := splitEnvelope(env)
	if !ok {
		return nil, ErrUndecryptable
	}
	ct, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(ct) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrUndecryptable
	}
	n := k.aead.NonceSize()
	return k.aead.Open(nil, ct[:n], ct[n:], aad(subject, path))
}

// parse decodes a JSON object keeping numbers exact.
func parse(b []byte) (map[string]any, error) {
	v, err := parseValue(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

func parseValue(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// walk calls f on every value at the path segs below node (an object key,
// "*" for every item of an array, or an array index) and puts back what f
// returns. path is node's own wire path. It returns node.
func walk(node any, segs []string, path string, f func(v any, path string) any) any {
	if len(segs) == 0 {
		return f(node, path)
	}
	seg, rest := segs[0], segs[1:]
	switch n := node.(type) {
	case map[string]any:
		if isEnvelope(n) {
			return n
		}
		if v, ok := n[seg]; ok {
			n[seg] = walk(v, rest, path+"."+seg, f)
		}
	case []any:
		if seg == "*" {
			for i, v := range n {
				n[i] = walk(v, rest, path+"."+strconv.Itoa(i), f)
			}
		} else if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n) {
			n[i] = walk(n[i], rest, path+"."+seg, f)
		}
	}
	return node
}

// walkEnvelopes replaces every envelope below node with what f returns for
// it, depth first. path is node's own wire path.
func walkEnvelopes(node any, path string, f func(env, path string) any) any {
	switch n := node.(type) {
	case map[string]any:
		if isEnvelope(n) {
			s, _ := n[envelopeKey].(string)
			return f(s, path)
		}
		for k, v := range n {
			n[k] = walkEnvelopes(v, path+"."+k, f)
		}
	case []any:
		for i, v := range n {
			n[i] = walkEnvelopes(v, path+"."+strconv.Itoa(i), f)
		}
	}
	return node
}

func isEnvelope(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	_, ok = m[envelopeKey].(string)
	return ok
}
