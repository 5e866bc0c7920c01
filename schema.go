package herald

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ErrInvalidSchema is returned by Schemas.Register when a schema is not a
// valid JSON Schema (draft 2020-12), is too large, or refers to a document
// outside itself.
var ErrInvalidSchema = errors.New("herald: invalid schema")

// MaxSchemaSize is the largest JSON Schema Schemas.Register accepts, in bytes.
const MaxSchemaSize = 1 << 20

// SensitiveKeyword is the schema annotation that marks a property as
// sensitive: `"email": {"type": "string", "x-sensitive": true}`. Sensitive
// fields are never logged, and are encrypted at rest where the store
// supports it. See Schemas.SensitiveFields.
const SensitiveKeyword = "x-sensitive"

// Schemas is a registry of JSON Schemas (draft 2020-12), one per event name
// and data version, against which a Bus validates the data of the events it
// publishes. An event whose name and version have no schema is not checked.
//
// Schemas is safe for concurrent use; its zero value is not usable, use
// NewSchemas. A schema may refer only to itself ("$ref": "#/$defs/..."):
// references to other documents, files or URLs are refused. The "format"
// keyword is asserted (an "email" that is not an address is a violation).
type Schemas struct {
	mu      sync.RWMutex
	schemas map[SchemaRef]*schemaEntry
	// byName is, for each name with sensitive fields, the union of the
	// fields its versions' schemas mark; replaced whole under mu, read
	// without a lock on every publish.
	byName atomic.Pointer[map[string][]string]
}

type schemaEntry struct {
	raw       []byte
	compiled  *jsonschema.Schema
	sensitive []string
}

// NewSchemas returns an empty registry.
func NewSchemas() *Schemas {
	return &Schemas{schemas: make(map[SchemaRef]*schemaEntry)}
}

// Register compiles schema and registers it for events named name whose
// Version is version (an event's Version 0 counts as 1). It replaces a
// schema registered earlier for the same name and version. An invalid name
// or version returns a *ValidationError wrapping ErrInvalidEvent; a schema
// that does not compile returns an error wrapping ErrInvalidSchema, and the
// registry is left unchanged.
func (s *Schemas) Register(name string, version int, schema []byte) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if version < 1 {
		return invalid("version", "must be 1 or more")
	}
	if len(schema) > MaxSchemaSize {
		return fmt.Errorf("%w: %s v%d: larger than %d bytes", ErrInvalidSchema, name, version, MaxSchemaSize)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return fmt.Errorf("%w: %s v%d: not JSON: %v", ErrInvalidSchema, name, version, err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return fmt.Errorf("%w: %s v%d: a schema is a JSON object or a boolean", ErrInvalidSchema, name, version)
	}
	url := schemaURL(name, version)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(url, doc); err != nil {
		return fmt.Errorf("%w: %s v%d: %v", ErrInvalidSchema, name, version, err)
	}
	compiled, err := c.Compile(url)
	if err != nil {
		return fmt.Errorf("%w: %s v%d: %s", ErrInvalidSchema, name, version, schemaCompileReason(err, name))
	}
	sensitive, err := sensitiveFields(doc)
	if err != nil {
		return fmt.Errorf("%w: %s v%d: %v", ErrInvalidSchema, name, version, err)
	}
	e := &schemaEntry{
		raw:       bytes.Clone(schema),
		compiled:  compiled,
		sensitive: sensitive,
	}
	s.mu.Lock()
	s.schemas[SchemaRef{Name: name, Version: version}] = e
	s.nameChangedLocked(name)
	s.mu.Unlock()
	return nil
}

// nameChangedLocked recomputes the sensitive fields of name over its
// versions.
func (s *Schemas) nameChangedLocked(name string) {
	var all []string
	for ref, e := range s.schemas {
		if ref.Name == name {
			all = append(all, e.sensitive...)
		}
	}
	next := map[string][]string{}
	if cur := s.byName.Load(); cur != nil {
		maps.Copy(next, *cur)
	}
	if len(all) == 0 {
		delete(next, name)
	} else {
		slices.Sort(all)
		next[name] = slices.Compact(all)
	}
	s.byName.Store(&next)
}

// schemaBase is where schemas are compiled; it appears in nothing returned
// to callers.
const schemaBase = "herald:///schemas/"

func schemaURL(name string, version int) string {
	return schemaBase + name + "/" + strconv.Itoa(version) + ".json"
}

// schemaCompileReason turns a compiler error into a message without the
// internal URL.
func schemaCompileReason(err error, name string) string {
	var load *jsonschema.LoadURLError
	if errors.As(err, &load) {
		return fmt.Sprintf("references to other documents are not allowed (%q)", strings.TrimPrefix(load.URL, schemaBase+name+"/"))
	}
	var meta *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &meta) && errors.As(meta.Err, &ve) {
		v := violation(ve)
		at := strings.TrimPrefix(strings.ReplaceAll(v.Field, ".", "/"), "data")
		if at == "" {
			at = "/"
		}
		return fmt.Sprintf("not a valid JSON Schema: at %s: %s", at, v.Reason)
	}
	msg := err.Error()
	msg = strings.ReplaceAll(msg, schemaBase+name+"/", "")
	return msg
}

// refuseLoader refuses every external document, so a schema never reads
// files or the network.
type refuseLoader struct{}

func (refuseLoader) Load(string) (any, error) {
	return nil, errors.New("references to other documents are not allowed")
}

// Get returns the schema registered for name and version, or an error
// wrapping ErrNotFound. The caller may modify the returned slice.
func (s *Schemas) Get(name string, version int) ([]byte, error) {
	s.mu.RLock()
	e, ok := s.schemas[SchemaRef{Name: name, Version: version}]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: schema %s v%d", ErrNotFound, name, version)
	}
	return bytes.Clone(e.raw), nil
}

// Delete removes the schema registered for name and version; removing a
// missing schema is not an error.
func (s *Schemas) Delete(name string, version int) {
	s.mu.Lock()
	delete(s.schemas, SchemaRef{Name: name, Version: version})
	s.nameChangedLocked(name)
	s.mu.Unlock()
}

// List returns every registered schema, ordered by name and then version.
func (s *Schemas) List() []SchemaRef {
	s.mu.RLock()
	refs := make([]SchemaRef, 0, len(s.schemas))
	for r := range s.schemas {
		refs = append(refs, r)
	}
	s.mu.RUnlock()
	slices.SortFunc(refs, func(a, b SchemaRef) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return refs
}

// adopt registers the schema own holds for ref unless s holds one for ref
// already, and reports whether s now holds own's (the same schema) for ref.
func (s *Schemas) adopt(own *Schemas, ref SchemaRef) bool {
	own.mu.RLock()
	e := own.schemas[ref]
	own.mu.RUnlock()
	s.mu.RLock()
	cur, ok := s.schemas[ref]
	s.mu.RUnlock()
	if ok {
		return cur == e || bytes.Equal(cur.raw, e.raw)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.schemas[ref]; ok {
		return cur == e || bytes.Equal(cur.raw, e.raw)
	}
	s.schemas[ref] = e
	s.nameChangedLocked(ref.Name)
	return true
}

// SensitiveFields returns the paths of the fields that the schema for name
// and version marks with "x-sensitive": true, in wire form ("data.email",
// "data.address.street"); an array's items appear as "*"
// ("data.contacts.*.phone"). References within the schema are followed,
// a recursive one only once: the same field deeper in the recursion is not
// listed. It returns nil when there is no such schema or it marks nothing.
// The caller may modify the returned slice.
func (s *Schemas) SensitiveFields(name string, version int) []string {
	s.mu.RLock()
	e, ok := s.schemas[SchemaRef{Name: name, Version: version}]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	return slices.Clone(e.sensitive)
}

// NameSensitiveFields returns the paths of the fields that any registered
// schema of name marks sensitive, whatever its version, in the form of
// SensitiveFields. Sensitive is a property of the name: herald treats these
// fields as sensitive in every event of the name, including versions that
// have no schema or whose schema does not mark them. It returns nil when no
// schema of name marks anything. A nil *Schemas marks nothing. The caller
// may modify the returned slice.
func (s *Schemas) NameSensitiveFields(name string) []string {
	if s == nil {
		return nil
	}
	m := s.byName.Load()
	if m == nil {
		return nil
	}
	return slices.Clone((*m)[name])
}

// Validate checks e's data against the schema registered for e's name and
// version. It returns nil when the data satisfies it or when no schema is
// registered. Otherwise it returns a *ValidationError wrapping
// ErrSchemaViolation whose Field is the path of the offending value in wire
// form ("data.duration", "data.items.2"; for a missing required property,
// the property's path) and whose Reason says what is wrong with it. When
// several values are wrong, Field names the first path in lexical order and
// Reason counts the others. Data that is not JSON returns a
// *ValidationError wrapping ErrInvalidEvent. A nil *Schemas checks nothing.
func (s *Schemas) Validate(e *Event) error {
	if s == nil {
		return nil
	}
	version := e.Version
	if version == 0 {
		version = 1
	}
	s.mu.RLock()
	entry, ok := s.schemas[SchemaRef{Name: e.Name, Version: version}]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return invalid("data", "not valid JSON")
	}
	err = entry.compiled.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ValidationError{Field: "data", Reason: err.Error(), Err: ErrSchemaViolation}
	}
	return violation(ve)
}

var schemaPrinter = message.NewPrinter(language.English)

type schemaViolation struct {
	field, reason string
}

// violation reduces the library's error tree to one field and reason.
func violation(ve *jsonschema.ValidationError) *ValidationError {
	var leaves []schemaViolation
	var walk func(v *jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) > 0 {
			for _, c := range v.Causes {
				walk(c)
			}
			return
		}
		path := append([]string{"data"}, v.InstanceLocation...)
		if r, ok := v.ErrorKind.(*kind.Required); ok && len(r.Missing) > 0 {
			missing := slices.Sorted(slices.Values(r.Missing))
			for _, m := range missing {
				leaves = append(leaves, schemaViolation{
					field:  strings.Join(append(slices.Clip(path), m), "."),
					reason: "is required",
				})
			}
			return
		}
		leaves = append(leaves, schemaViolation{
			field:  strings.Join(path, "."),
			reason: v.ErrorKind.LocalizedString(schemaPrinter),
		})
	}
	walk(ve)
	if len(leaves) == 0 {
		return &ValidationError{Field: "data", Reason: "does not satisfy the schema", Err: ErrSchemaViolation}
	}
	slices.SortFunc(leaves, func(a, b schemaViolation) int {
		return cmp.Or(strings.Compare(a.field, b.field), strings.Compare(a.reason, b.reason))
	})
	first := leaves[0]
	reason := first.reason
	if n := len(leaves) - 1; n == 1 {
		reason += " (and 1 more violation)"
	} else if n > 1 {
		reason += fmt.Sprintf(" (and %d more violations)", n)
	}
	return &ValidationError{Field: first.field, Reason: reason, Err: ErrSchemaViolation}
}

// Limits of the scan for sensitive fields: a schema deeper than this, or
// whose references expand to more nodes than this, is refused rather than
// scanned partly (a sensitive field it missed would be stored in clear).
const (
	maxSchemaDepth = 64
	maxSchemaNodes = 100_000
)

// sensitiveFields walks a schema document and returns the wire paths of the
// properties annotated with SensitiveKeyword, sorted and without repeats.
// It follows properties, items, prefixItems, the applicators allOf, anyOf,
// oneOf, if/then/else, and references within the document.
func sensitiveFields(doc any) ([]string, error) {
	root, _ := doc.(map[string]any)
	if root == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	nodes := 0
	var walk func(node any, path string, depth int, refs map[string]bool) error
	walk = func(node any, path string, depth int, refs map[string]bool) error {
		obj, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		if nodes++; nodes > maxSchemaNodes {
			return fmt.Errorf("its references expand to more than %d subschemas", maxSchemaNodes)
		}
		if depth > maxSchemaDepth {
			return fmt.Errorf("nested deeper than %d levels", maxSchemaDepth)
		}
		if depth > 0 && obj[SensitiveKeyword] == true && !seen[path] {
			seen[path] = true
			out = append(out, path)
		}
		if props, ok := obj["properties"].(map[string]any); ok {
			for k, v := range props {
				if err := walk(v, path+"."+k, depth+1, refs); err != nil {
					return err
				}
			}
		}
		if items, ok := obj["items"]; ok {
			if err := walk(items, path+".*", depth+1, refs); err != nil {
				return err
			}
		}
		if prefix, ok := obj["prefixItems"].([]any); ok {
			for i, v := range prefix {
				if err := walk(v, path+"."+strconv.Itoa(i), depth+1, refs); err != nil {
					return err
				}
			}
		}
		for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
			if list, ok := obj[kw].([]any); ok {
				for _, v := range list {
					if err := walk(v, path, depth+1, refs); err != nil {
						return err
					}
				}
			}
		}
		for _, kw := range []string{"if", "then", "else"} {
			if v, ok := obj[kw]; ok {
				if err := walk(v, path, depth+1, refs); err != nil {
					return err
				}
			}
		}
		if ref, ok := obj["$ref"].(string); ok && strings.HasPrefix(ref, "#/") && !refs[ref] {
			if target := resolvePointer(root, ref[2:]); target != nil {
				refs[ref] = true
				err := walk(target, path, depth+1, refs)
				delete(refs, ref)
				return err
			}
		}
		return nil
	}
	if err := walk(root, "data", 0, map[string]bool{}); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// resolvePointer resolves a JSON pointer (without its leading "#/") within doc.
func resolvePointer(doc any, ptr string) any {
	cur := doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}
