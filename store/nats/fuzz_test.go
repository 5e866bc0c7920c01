package nats

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"reflect"
	"strings"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
)

// FuzzToken checks that any string survives encodeToken/decodeToken and
// that its token is one valid subject token.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "a", "sub.with.dots", "x/y=z", "=", "=abc", "-_", "é", "a b", ">", "*", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := encodeToken(s)
		if s == "" {
			return
		}
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("token %q of %q is not one subject token", tok, s)
		}
		back, ok := decodeToken(tok)
		if !ok || back != s {
			t.Fatalf("%q → %q → %q, %v", s, tok, back, ok)
		}
		st := subjectToken(s)
		if st == "" || strings.ContainsAny(st, ".*> \t\r\n") {
			t.Fatalf("subject token %q of %q is not one subject token", st, s)
		}
		if k := idKey(s); k == "" || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, "..") || strings.ContainsAny(k, "*> ") {
			t.Fatalf("id key %q of %q is not a valid key", k, s)
		}
	})
}

// FuzzDecodeToken feeds arbitrary tokens to decodeToken: no panic, and a
// token it accepts encodes back to itself.
func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{"abc", "=YWJj", "=", "==", "=!!", "a.b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		s, ok := decodeToken(tok)
		if ok && s != "" && encodeToken(s) != tok {
			// Padding-free base64 has one spelling per value except for
			// non-canonical trailing bits; those must not round-trip silently.
			if back, _ := decodeToken(encodeToken(s)); back != s {
				t.Fatalf("%q decodes to %q, which does not round-trip", tok, s)
			}
		}
	})
}

// FuzzHeaderValue reads header values out of arbitrary header blocks.
func FuzzHeaderValue(f *testing.F) {
	f.Add([]byte("NATS/1.0\r\nHerald-Subject-Version: 7\r\nNats-Msg-Id: x\r\n\r\n"), "Herald-Subject-Version")
	f.Add([]byte("NATS/1.0 404 Not Found\r\n\r\n"), "Status")
	f.Add([]byte(":::\r\n\r\n"), "")
	f.Fuzz(func(t *testing.T, hdr []byte, key string) {
		v := headerValue(hdr, key)
		if strings.Contains(v, "\r\n") {
			t.Fatalf("value %q spans lines", v)
		}
	})
}

// FuzzDecodeEvent decodes arbitrary stored bodies: an error or an event at
// the given position, never a panic.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"id":"a","name":"x.y","timestamp":"2026-01-01T00:00:00Z","data":{},"correlation_id":"a","source_plugin":"","version":1,"priority":"normal"}`), uint64(3))
	f.Add([]byte(`{"priority":"urgent"}`), uint64(1))
	f.Add([]byte(`not json`), uint64(0))
	f.Fuzz(func(t *testing.T, body []byte, seq uint64) {
		e, err := decodeEventData(body, seq)
		if err == nil && e.Position != seq {
			t.Fatalf("position %d, want %d", e.Position, seq)
		}
	})
}

// FuzzRecentID: only UUIDv7 strings minted near now count as recent.
func FuzzRecentID(f *testing.F) {
	f.Add("0190a5b2-3c4d-7e5f-8a6b-7c8d9e0f1a2b", int64(0))
	f.Add("not-a-uuid", int64(0))
	f.Add("0190a5b2-3c4d-4e5f-8a6b-7c8d9e0f1a2b", int64(0))
	f.Fuzz(func(t *testing.T, id string, ms int64) {
		now := time.UnixMilli(ms)
		if recentID(id, now, 10*time.Minute) && (len(id) != 36 || id[14] != '7') {
			t.Fatalf("%q counted as a recent UUIDv7", id)
		}
	})
}

func TestRecentID(t *testing.T) {
	now := time.Now()
	mk := func(at time.Time) string {
		x := formatHex(at.UnixMilli())
		for len(x) < 12 {
			x = "0" + x
		}
		return x[:8] + "-" + x[8:12] + "-7abc-8def-0123456789ab"
	}
	if !recentID(mk(now), now, 10*time.Minute) {
		t.Error("a UUIDv7 minted now is not recent")
	}
	if recentID(mk(now.Add(-5*time.Minute)), now, 10*time.Minute) {
		t.Error("a UUIDv7 minted half a window ago counts as recent")
	}
	if recentID(mk(now.Add(5*time.Minute)), now, 10*time.Minute) {
		t.Error("a UUIDv7 from half a window in the future counts as recent")
	}
}

func formatHex(v int64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{digits[v%16]}, b...)
		v /= 16
	}
	return string(b)
}

// FuzzDecodeEventFast checks that the fast event decoder, whenever it takes
// an input, decodes it exactly as encoding/json does.
func FuzzDecodeEventFast(f *testing.F) {
	e := herald.Event{ID: "0193f3c2-7d4e-7b1a-9c1e-1234567890ab", Name: "order.placed", Timestamp: time.Date(2026, 12, 4, 23, 0, 0, 123456789, time.UTC),
		Data: []byte(`{"n":1,"s":"a\"b","l":[1,2.5e3,true,null]}`), CorrelationID: "c", CausationID: "x", SourcePlugin: "p", Subject: "order/1", Version: 2, Priority: herald.PriorityHigh}
	b, _ := json.Marshal(e)
	f.Add(b)
	e.Metadata = map[string]string{"k": "v"}
	b, _ = json.Marshal(e)
	f.Add(b)
	for _, s := range []string{`{}`, ` {"id":"a"} `, `{"data":null}`, `{"version":-0}`, `{"version":01}`, `{"ID":"a"}`, `{"id":"\u00e9"}`, `{"data":{"a":"\ud800"}}`, `{"position":18446744073709551615}`, `{"priority":"urgent"}`, `{"timestamp":"2026-01-01T00:00:00+01:00"}`, "{\"id\":\"\xff\"}", `{"data":[1,]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast herald.Event
		if !decodeEventFast(data, &fast) {
			return
		}
		var std herald.Event
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("fast decoder took %q, encoding/json refuses it: %v", data, err)
		}
		if !fast.Timestamp.Equal(std.Timestamp) || fast.Timestamp.Location().String() != std.Timestamp.Location().String() {
			t.Fatalf("%q: timestamp %v, encoding/json %v", data, fast.Timestamp, std.Timestamp)
		}
		if !bytes.Equal(fast.Data, std.Data) || (fast.Data == nil) != (std.Data == nil) {
			t.Fatalf("%q: data %q, encoding/json %q", data, fast.Data, std.Data)
		}
		fast.Timestamp, std.Timestamp, fast.Data, std.Data = time.Time{}, time.Time{}, nil, nil
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q: %+v, encoding/json %+v", data, fast, std)
		}
	})
}

// FuzzEncodeEvent checks that encodeEvent writes exactly what
// encoding/json writes for the event without its Position, whether or
// not appendEventJSON takes it.
func FuzzEncodeEvent(f *testing.F) {
	f.Add("0193f3c2-7d4e-7b1a-9c1e-1234567890ab", "order.placed", []byte(`{"n":1,"s":"a\"b","l":[1,2.5e3,true,null]}`), "c", "", "p", "order/1", "k", "v", int64(1764889200123456789), 2, int8(1), true)
	f.Add("a<b", "x", []byte(` {"a" : 1} `), "é", "x", "", "", "", "", int64(0), 0, int8(0), false)
	f.Add("a", "x", []byte(`{"h":"<&>","u":"\u2028 "}`), "", "", "", "", "\x7f", "\x00", int64(-62135596800000000), -1, int8(5), true)
	f.Add("a", "x", []byte(`{"h":"<&>"}`), "c", "", "", "", "", "", int64(1), 1, int8(0), true)
	f.Add("a", "x", []byte("{\"u\":\"\u2028\"}"), "c", "", "", "", "", "", int64(1), 1, int8(0), true)
	f.Add("a", "x", []byte("{\"a\": [1, 2]}"), "c", "", "", "", "", "", int64(1), 1, int8(0), true)
	f.Add("a", "x", []byte(`{"a":[1,]}`), "", "", "", "", "", "", int64(253402300800000000), 1, int8(-1), false)
	f.Add("a", "x", []byte("{\"a\":\"\xff\"}"), "", "", "", "", "", "", int64(1), 1, int8(2), false)
	f.Add("a", "x", []byte(nil), "", "", "", "", "", "", int64(1), 1, int8(0), true)
	f.Fuzz(func(t *testing.T, id, name string, data []byte, corr, cause, source, subject, mk, mv string, nanos int64, version int, prio int8, utc bool) {
		ts := time.Unix(0, nanos).UTC()
		if !utc {
			ts = ts.In(time.FixedZone("x", 3600))
		}
		e := &herald.Event{ID: id, Name: name, Timestamp: ts, Data: data, CorrelationID: corr, CausationID: cause,
			SourcePlugin: source, Subject: subject, Version: version, Priority: herald.Priority(prio), Position: 42}
		if mk != "" || mv != "" {
			e.Metadata = map[string]string{mk: mv, "z": "1"}
		}
		got, gotErr := encodeEvent(e)
		if e.Position != 42 {
			t.Fatalf("encodeEvent changed the event's position to %d", e.Position)
		}
		c := *e
		c.Position = 0
		want, wantErr := json.Marshal(&c)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%+v: error %v, encoding/json %v", e, gotErr, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v:\n got %s\nwant %s", e, got, want)
		}
	})
}

// FuzzEncodeOutcome checks that encodeOutcome writes exactly what
// encoding/json writes for the outcome, whether or not appendOutcomeJSON
// takes it, after what the buffer already held.
func FuzzEncodeOutcome(f *testing.F) {
	f.Add("sub", "0193f3c2-7d4e-7b1a-9c1e-1234567890ab", "order.placed", uint64(7), "c", "succeeded", 1, "", int64(1500000), int64(1764889200123456789), 0, false, 0, int64(0), "", 0)
	f.Add("s<b", "é", "x", uint64(0), "", "retrying", -3, "boom: \"quoted\"\n", int64(86400000000000), int64(0), 3600, true, 0, int64(0), "", 0)
	f.Add("", "", "", uint64(1)<<63, "\x7f", "dead_lettered", 1<<40, "e", int64(-1), int64(-62135596800000000), 0, true, 0, int64(0), "", 0)
	f.Add("a", "b", "c", uint64(1), "d", "succeeded", 1, "", int64(0), int64(253402300800000000), 0, false, 0, int64(0), "", 0)
	f.Add("sub", "id", "x.redriven", uint64(9), "c", "succeeded", 2, "", int64(1500000), int64(1764889200123456789), 0, true, 0, int64(0), "", 0)
	// With a history: its entries repeat the outcome's attempt, duration
	// and error (or a second error), at times of their own.
	f.Add("sub", "id", "x.retried", uint64(9), "c", "succeeded", 3, "endpoint answered 503", int64(2500), int64(1764889200123456789), 0, false, 2, int64(1764889200000000000), "endpoint: timeout", 0)
	f.Add("s", "i", "x.dead", uint64(1), "c", "dead_lettered", 2, "boom <b>", int64(-7), int64(1764889200123456789), 0, true, 16, int64(253402300800000000), "é\u2028", 60)
	f.Fuzz(func(t *testing.T, sub, id, name string, pos uint64, corr, status string, attempts int, lastErr string, dur, nanos int64, offset int, redriven bool,
		history int, histNanos int64, histErr string, histOffset int) {
		at := time.Unix(0, nanos).UTC()
		if offset != 0 {
			at = at.In(time.FixedZone("x", offset%86400))
		}
		o := herald.Outcome{Subscription: sub, EventID: id, EventName: name, Position: pos, CorrelationID: corr,
			Status: herald.OutcomeStatus(status), Attempts: attempts, LastError: lastErr, Duration: herald.Duration(dur), UpdatedAt: at, Redriven: redriven}
		for i := range history % (herald.MaxOutcomeHistory + 1) {
			hat := time.Unix(0, histNanos+int64(i)*int64(time.Second)).UTC()
			if histOffset != 0 && i == history/2 {
				hat = hat.In(time.FixedZone("y", histOffset%86400))
			}
			msg := lastErr
			if i%2 == 1 {
				msg = histErr
			}
			o.History = append(o.History, herald.AttemptError{Attempt: attempts - i, At: hat, Duration: herald.Duration(dur * int64(i+1)), Error: msg})
		}
		got, gotErr := encodeOutcome([]byte("held,"), &o)
		want, wantErr := json.Marshal(o)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%+v: error %v, encoding/json %v", o, gotErr, wantErr)
		}
		if gotErr == nil && !bytes.Equal(got, append([]byte("held,"), want...)) {
			t.Fatalf("%+v:\n got %s\nwant held,%s", o, got, want)
		}
	})
}

// TestEncodeOutcomeFastPath: the outcomes a subscription commits are
// encoded without encoding/json, local time included when its offset is
// zero.
func TestEncodeOutcomeFastPath(t *testing.T) {
	for _, at := range []time.Time{time.Now().UTC(), time.Now().In(time.FixedZone("UTC", 0))} {
		o := herald.Outcome{Subscription: "notes", EventID: "0193f3c2-7d4e-7b1a-9c1e-1234567890ab", EventName: "recording.ended",
			Position: 42, CorrelationID: "0193f3c2-7d4e-7b1a-9c1e-1234567890ab", Status: herald.OutcomeSucceeded, Attempts: 1,
			Duration: herald.Duration(1500 * time.Microsecond), UpdatedAt: at}
		if _, ok := appendOutcomeJSON(nil, &o); !ok {
			t.Fatalf("appendOutcomeJSON refused %+v", o)
		}
		o.Redriven = true
		if _, ok := appendOutcomeJSON(nil, &o); !ok {
			t.Fatalf("appendOutcomeJSON refused %+v", o)
		}
		// A retried outcome, with durations under a millisecond ("µs").
		o.Attempts, o.Duration = 3, herald.Duration(750*time.Microsecond)
		o.History = []herald.AttemptError{
			{Attempt: 1, At: at, Duration: herald.Duration(30 * time.Second), Error: "endpoint did not answer within 30s"},
			{Attempt: 2, At: at, Duration: herald.Duration(420 * time.Microsecond), Error: "endpoint answered 503"},
		}
		if _, ok := appendOutcomeJSON(nil, &o); !ok {
			t.Fatalf("appendOutcomeJSON refused %+v", o)
		}
	}
}

// TestEncodeOutcomeWithoutHistory: an outcome with no failed attempt
// encodes as it did before outcomes had a history, byte for byte.
func TestEncodeOutcomeWithoutHistory(t *testing.T) {
	at := time.Date(2026, 12, 5, 9, 0, 0, 123456789, time.UTC)
	o := herald.Outcome{Subscription: "notes", EventID: "e1", EventName: "recording.ended", Position: 42, CorrelationID: "c1",
		Status: herald.OutcomeSucceeded, Attempts: 1, Duration: herald.Duration(1500 * time.Microsecond), UpdatedAt: at, History: []herald.AttemptError{}}
	got, err := encodeOutcome(nil, &o)
	want := `{"subscription":"notes","event_id":"e1","event_name":"recording.ended","position":42,"correlation_id":"c1",` +
		`"status":"succeeded","attempts":1,"duration":"1.5ms","updated_at":"2026-12-05T09:00:00.123456789Z"}`
	if err != nil || string(got) != want {
		t.Fatalf("encodeOutcome = %s, %v; want %s", got, err, want)
	}
}

// TestEncodeEventFastPath: the events herald publishes itself are
// encoded without encoding/json.
func TestEncodeEventFastPath(t *testing.T) {
	e, err := herald.NewEvent("recording.completed", map[string]any{"id": 7, "path": "/a/b"})
	if err != nil {
		t.Fatal(err)
	}
	e.CorrelationID = e.ID
	e.Metadata = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	if _, ok := appendEventJSON(nil, e); !ok {
		t.Fatalf("appendEventJSON refused %+v", e)
	}
}

// TestPartitionHash: partitions are FNV-1a, as stored by earlier versions.
func TestPartitionHash(t *testing.T) {
	for _, s := range []string{"", "a", "order/1", "0193f3c2-7d4e-7b1a-9c1e-1234567890ab", "é"} {
		h := fnv.New32a()
		h.Write([]byte(s))
		if got, want := fnv32a(s), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %d, want %d", s, got, want)
		}
	}
}
