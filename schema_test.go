package herald

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const recordingSchema = `{
	"$schema": "https://json-schema.org/draft/2020-12/schema",
	"type": "object",
	"properties": {
		"recording_id": {"type": "string", "minLength": 1},
		"duration": {"type": "number", "minimum": 0},
		"owner": {"type": "string", "format": "email", "x-sensitive": true},
		"tags": {"type": "array", "items": {"type": "string"}},
		"location": {"$ref": "#/$defs/place"}
	},
	"required": ["recording_id", "duration"],
	"$defs": {
		"place": {
			"type": "object",
			"properties": {"street": {"type": "string", "x-sensitive": true}, "city": {"type": "string"}}
		}
	}
}`

func mustRegister(t *testing.T, s *Schemas, name string, version int, schema string) {
	t.Helper()
	if err := s.Register(name, version, []byte(schema)); err != nil {
		t.Fatalf("Register(%s, %d): %v", name, version, err)
	}
}

func schemaEvent(t *testing.T, name string, version int, data string) *Event {
	t.Helper()
	e, err := NewEvent(name, json.RawMessage(data))
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	e.Version = version
	return e
}

func TestSchemasValidate(t *testing.T) {
	s := NewSchemas()
	mustRegister(t, s, "recording.completed", 1, recordingSchema)
	tests := []struct {
		name      string
		data      string
		wantField string // "" means valid
		reason    string
	}{
		{"valid", `{"recording_id":"r1","duration":12.5}`, "", ""},
		{"valid with extras", `{"recording_id":"r1","duration":0,"other":true,"tags":["a"]}`, "", ""},
		{"wrong type", `{"recording_id":"r1","duration":"long"}`, "data.duration", "number"},
		{"below minimum", `{"recording_id":"r1","duration":-1}`, "data.duration", "minimum"},
		{"missing required", `{"duration":3}`, "data.recording_id", "required"},
		{"both missing", `{}`, "data.duration", "1 more"},
		{"array item", `{"recording_id":"r1","duration":1,"tags":["a",2]}`, "data.tags.1", "string"},
		{"format asserted", `{"recording_id":"r1","duration":1,"owner":"not an address"}`, "data.owner", "email"},
		{"through ref", `{"recording_id":"r1","duration":1,"location":{"city":5}}`, "data.location.city", "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(schemaEvent(t, "recording.completed", 1, tt.data))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: %v, want *ValidationError", err)
			}
			if !errors.Is(err, ErrSchemaViolation) {
				t.Errorf("error %v does not wrap ErrSchemaViolation", err)
			}
			if ve.Field != tt.wantField {
				t.Errorf("Field = %q, want %q (reason %q)", ve.Field, tt.wantField, ve.Reason)
			}
			if !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to mention %q", ve.Reason, tt.reason)
			}
			if strings.Contains(err.Error(), "herald:///") {
				t.Errorf("error leaks the internal schema URL: %v", err)
			}
		})
	}
}

func TestSchemasVersionsAndUnknown(t *testing.T) {
	s := NewSchemas()
	mustRegister(t, s, "a.b", 1, `{"type":"object","required":["x"]}`)
	mustRegister(t, s, "a.b", 2, `{"type":"object","required":["y"]}`)

	// Version 0 is read as 1.
	e := schemaEvent(t, "a.b", 0, `{"y":1}`)
	e.Version = 0
	if err := s.Validate(e); err == nil {
		t.Error("version 0 event: want a violation of the v1 schema")
	}
	if err := s.Validate(schemaEvent(t, "a.b", 2, `{"y":1}`)); err != nil {
		t.Errorf("v2 event: %v", err)
	}
	// No schema for this name or version: nothing is checked.
	if err := s.Validate(schemaEvent(t, "a.b", 3, `{}`)); err != nil {
		t.Errorf("unregistered version: %v", err)
	}
	if err := s.Validate(schemaEvent(t, "a.c", 1, `{}`)); err != nil {
		t.Errorf("unregistered name: %v", err)
	}
	var nilSchemas *Schemas
	if err := nilSchemas.Validate(schemaEvent(t, "a.b", 1, `{}`)); err != nil {
		t.Errorf("nil *Schemas: %v", err)
	}

	// Replacing a schema takes effect.
	mustRegister(t, s, "a.b", 2, `{"type":"object"}`)
	if err := s.Validate(schemaEvent(t, "a.b", 2, `{}`)); err != nil {
		t.Errorf("after replacing v2: %v", err)
	}
	if got, want := s.List(), []SchemaRef{{Name: "a.b", Version: 1}, {Name: "a.b", Version: 2}}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	s.Delete("a.b", 2)
	if _, err := s.Get("a.b", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
}

func TestSchemasGet(t *testing.T) {
	s := NewSchemas()
	mustRegister(t, s, "a.b", 1, recordingSchema)
	got, err := s.Get("a.b", 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != recordingSchema {
		t.Errorf("Get returned a different schema")
	}
	got[0] = 'X' // the caller owns the copy
	again, _ := s.Get("a.b", 1)
	if string(again) != recordingSchema {
		t.Errorf("modifying Get's result changed the registry")
	}
	if _, err := s.Get("a.b", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get missing: %v, want ErrNotFound", err)
	}
}

func TestSchemasRegisterRejects(t *testing.T) {
	tests := []struct {
		name    string
		evName  string
		version int
		schema  string
		want    error
	}{
		{"not JSON", "a.b", 1, `{"type":`, ErrInvalidSchema},
		{"trailing garbage", "a.b", 1, `{} {}`, ErrInvalidSchema},
		{"not an object", "a.b", 1, `[1,2]`, ErrInvalidSchema},
		{"bad keyword value", "a.b", 1, `{"type":"objekt"}`, ErrInvalidSchema},
		{"bad minimum", "a.b", 1, `{"minimum":"zero"}`, ErrInvalidSchema},
		{"bad regexp", "a.b", 1, `{"pattern":"(("}`, ErrInvalidSchema},
		{"file reference", "a.b", 1, `{"$ref":"file:///etc/passwd"}`, ErrInvalidSchema},
		{"relative reference", "a.b", 1, `{"$ref":"other.json"}`, ErrInvalidSchema},
		{"remote reference", "a.b", 1, `{"$ref":"https://example.com/s.json"}`, ErrInvalidSchema},
		{"dangling local reference", "a.b", 1, `{"$ref":"#/$defs/missing"}`, ErrInvalidSchema},
		{"too large", "a.b", 1, `{"description":"` + strings.Repeat("x", MaxSchemaSize) + `"}`, ErrInvalidSchema},
		{"too deep to scan", "a.b", 1, strings.Repeat(`{"properties":{"a":`, 70) + `{}` + strings.Repeat(`}}`, 70), ErrInvalidSchema},
		{"references that explode", "a.b", 1, explodingSchema(20), ErrInvalidSchema},
		{"bad name", "A.b", 1, `{}`, ErrInvalidEvent},
		{"bad version", "a.b", 0, `{}`, ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSchemas()
			err := s.Register(tt.evName, tt.version, []byte(tt.schema))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Register: %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "herald:///") || strings.Contains(err.Error(), "root:") {
				t.Errorf("error leaks internals: %v", err)
			}
			if len(s.List()) != 0 {
				t.Errorf("a rejected schema was registered")
			}
		})
	}
}

// explodingSchema returns a small schema whose references expand to 2^n
// subschemas: d0 refers twice to d1, which refers twice to d2, and so on.
func explodingSchema(n int) string {
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/d0","$defs":{`)
	for i := range n {
		fmt.Fprintf(&b, `"d%d":{"properties":{"a":{"$ref":"#/$defs/d%d"},"b":{"$ref":"#/$defs/d%d"}}},`, i, i+1, i+1)
	}
	fmt.Fprintf(&b, `"d%d":{"type":"string"}}}`, n)
	return b.String()
}

func TestSchemasSelfReference(t *testing.T) {
	s := NewSchemas()
	mustRegister(t, s, "tree.node", 1, `{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#"}}}}`)
	if err := s.Validate(schemaEvent(t, "tree.node", 1, `{"value":1,"children":[{"value":2,"children":[{"value":"x"}]}]}`)); err == nil {
		t.Error("a violation deep in a recursive schema was not found")
	} else if ve := (*ValidationError)(nil); !errors.As(err, &ve) || ve.Field != "data.children.0.children.0.value" {
		t.Errorf("recursive violation: %v", err)
	}
	mustRegister(t, s, "loop.x", 1, `{"$ref":"#"}`)
	done := make(chan error, 1)
	go func() { done <- s.Validate(schemaEvent(t, "loop.x", 1, `{}`)) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("validating against a schema that refers to itself does not end")
	}
}

func TestSchemasBooleanSchema(t *testing.T) {
	s := NewSchemas()
	mustRegister(t, s, "never.ok", 1, `false`)
	mustRegister(t, s, "always.ok", 1, `true`)
	err := s.Validate(schemaEvent(t, "never.ok", 1, `{}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "data" || !errors.Is(err, ErrSchemaViolation) {
		t.Errorf("false schema: %v, want a violation of field data", err)
	}
	if err := s.Validate(schemaEvent(t, "always.ok", 1, `{"a":1}`)); err != nil {
		t.Errorf("true schema: %v", err)
	}
}

func TestSchemasSensitiveFields(t *testing.T) {
	s := NewSchemas()
	mustRegister(t, s, "recording.completed", 1, recordingSchema)
	mustRegister(t, s, "user.created", 1, `{
		"type": "object",
		"x-sensitive": true,
		"properties": {
			"contacts": {"type":"array","items":{"type":"object","properties":{"phone":{"type":"string","x-sensitive":true}}}},
			"ssn": {"type":"string","x-sensitive":true},
			"nick": {"type":"string","x-sensitive":false},
			"node": {"$ref":"#/$defs/node"}
		},
		"$defs": {"node": {"type":"object","properties":{"secret":{"x-sensitive":true},"next":{"$ref":"#/$defs/node"}}}}
	}`)
	if got, want := s.SensitiveFields("recording.completed", 1), []string{"data.location.street", "data.owner"}; !slices.Equal(got, want) {
		t.Errorf("recording.completed: %v, want %v", got, want)
	}
	if got, want := s.SensitiveFields("user.created", 1), []string{"data.contacts.*.phone", "data.node.secret", "data.ssn"}; !slices.Equal(got, want) {
		t.Errorf("user.created: %v, want %v", got, want)
	}
	if got := s.SensitiveFields("nothing.here", 1); got != nil {
		t.Errorf("unknown schema: %v, want nil", got)
	}
}

func TestSchemasConcurrent(t *testing.T) {
	s := NewSchemas()
	mustRegister(t, s, "a.b", 1, `{"type":"object","properties":{"n":{"type":"integer"}}}`)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				name := fmt.Sprintf("c.d%d", i)
				if err := s.Register(name, j%3+1, []byte(`{"type":"object"}`)); err != nil {
					t.Error(err)
					return
				}
				e := schemaEvent(t, "a.b", 1, fmt.Sprintf(`{"n":%d}`, j))
				if err := s.Validate(e); err != nil {
					t.Error(err)
					return
				}
				bad := schemaEvent(t, "a.b", 1, `{"n":"x"}`)
				if err := s.Validate(bad); !errors.Is(err, ErrSchemaViolation) {
					t.Errorf("want violation, got %v", err)
					return
				}
				_ = s.List()
				_ = s.SensitiveFields(name, 1)
			}
		}()
	}
	wg.Wait()
}

// FuzzSchemasValidate validates arbitrary data against a schema: it never
// panics, and every rejection is a *ValidationError naming a path under
// data.
func FuzzSchemasValidate(f *testing.F) {
	s := NewSchemas()
	if err := s.Register("recording.completed", 1, []byte(recordingSchema)); err != nil {
		f.Fatal(err)
	}
	for _, d := range []string{
		`{"recording_id":"r1","duration":1}`,
		`{}`,
		`{"tags":[1,"a",{}]}`,
		`{"location":{"street":1,"city":null}}`,
		`{"owner":"a@b.c","duration":-0.0}`,
		`{"duration":1e400}`,
		`[]`,
		`{"a":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`,
		`{"recording_id":"\ud800"}`,
		`not json`,
	} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &Event{ID: "x", Name: "recording.completed", Version: 1, Data: data}
		err := s.Validate(e)
		if err == nil {
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.HasPrefix(ve.Field, "data") {
			t.Fatalf("Validate(%q) = %v: want a *ValidationError under data", data, err)
		}
		if !errors.Is(err, ErrSchemaViolation) && !errors.Is(err, ErrInvalidEvent) {
			t.Fatalf("Validate(%q) = %v: want a schema violation or an invalid event", data, err)
		}
	})
}

// FuzzSchemasRegister registers arbitrary bytes as a schema: it never
// panics; what it refuses wraps ErrInvalidSchema and leaves the registry
// unchanged; what it accepts validates events without panicking.
func FuzzSchemasRegister(f *testing.F) {
	for _, s := range []string{
		recordingSchema, `{}`, `true`, `false`, `{"type":"objekt"}`, `{"$ref":"#"}`,
		`{"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}}`,
		`{"properties":{"a":{"x-sensitive":true,"items":{"prefixItems":[{"x-sensitive":true}]}}}}`,
		`{"allOf":[{"if":{"required":["a"]},"then":{"required":["b"]},"else":{"not":{}}}]}`,
		`{"pattern":"(a+)+$"}`, `{"$id":"http://x/y","$anchor":"z"}`, `{"$dynamicRef":"#meta"}`,
		`{"format":"email","contentEncoding":"base64","contentMediaType":"application/json"}`,
		`{"minimum":1e400}`, `{"$ref":"file:///etc/passwd"}`, `{"$schema":"http://json-schema.org/draft-04/schema#"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, schema []byte) {
		s := NewSchemas()
		if err := s.Register("fuzz.event", 1, schema); err != nil {
			if !errors.Is(err, ErrInvalidSchema) {
				t.Fatalf("Register(%q) = %v: want ErrInvalidSchema", schema, err)
			}
			if len(s.List()) != 0 {
				t.Fatal("a refused schema was registered")
			}
			return
		}
		for _, data := range []string{`{}`, `{"a":1,"b":[true,null,"x"]}`, `{"a":{"a":{"a":"é"}}}`} {
			err := s.Validate(&Event{ID: "x", Name: "fuzz.event", Version: 1, Data: json.RawMessage(data)})
			var ve *ValidationError
			if err != nil && (!errors.As(err, &ve) || !strings.HasPrefix(ve.Field, "data")) {
				t.Fatalf("Validate against %q: %v", schema, err)
			}
		}
		_ = s.SensitiveFields("fuzz.event", 1)
	})
}
