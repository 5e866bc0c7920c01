package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
	"github.com/heraldhq/herald/store/sqlite"
)

// busCodecEnv serves a bus whose codec is given once, to the bus: the
// server is given nothing about it.
func busCodecEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := sensitive.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := herald.New(herald.WithStore(st), herald.WithCodec(codec))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvBus(t, st, bus)
}

// Over HTTP, a version without a schema of a name whose v1 marks ssn is
// stored sealed, and every reading endpoint returns it in clear; without a
// subject it is refused.
func TestHTTPSensitiveNameEveryVersion(t *testing.T) {
	e := busCodecEnv(t)
	schema := `{"type":"object","properties":{"ssn":{"type":"string","x-sensitive":true}}}`
	if a := e.do("PUT", "/v1/schemas/patient.admitted/1", schema); a.status/100 != 2 {
		t.Fatalf("PUT schema: %d %s", a.status, a.body)
	}
	for _, v := range []int{1, 2, 7} {
		body := fmt.Sprintf(`{"id":"p-%d","name":"patient.admitted","version":%d,"subject":"patient/1","data":{"ssn":"ZZHTTPSSN"}}`, v, v)
		if a := e.do("POST", "/v1/events", body); a.status != 201 {
			t.Fatalf("v%d: %d %s", v, a.status, a.body)
		}
		noSubject := fmt.Sprintf(`{"name":"patient.admitted","version":%d,"data":{"ssn":"ZZHTTPNOSUBJECT"}}`, v)
		if a := e.do("POST", "/v1/events", noSubject); a.status != 400 {
			t.Fatalf("v%d without subject: %d %s", v, a.status, a.body)
		}
	}
	if rawHolds(t, e.store, "ZZHTTPSSN") || rawHolds(t, e.store, "ZZHTTPNOSUBJECT") {
		t.Fatal("ssn stored in clear")
	}
	if a := e.do("GET", "/v1/events/p-7", nil); a.status != 200 || !strings.Contains(string(a.body), "ZZHTTPSSN") {
		t.Fatalf("GET one: %d %s", a.status, a.body)
	}
	a := e.do("GET", "/v1/events?subject=patient/1", nil)
	var list struct{ Events []herald.Event }
	if err := json.Unmarshal(a.body, &list); err != nil || len(list.Events) != 3 {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	for _, ev := range list.Events {
		if !strings.Contains(string(ev.Data), "ZZHTTPSSN") {
			t.Fatalf("listed v%d as %s", ev.Version, ev.Data)
		}
	}
	for _, ev := range readStream(t, e, 3) {
		if !strings.Contains(string(ev.Data), "ZZHTTPSSN") {
			t.Fatalf("streamed v%d as %s", ev.Version, ev.Data)
		}
	}
	// Forget through the server reaches the bus's codec.
	if a := e.do("POST", forgetPath("patient/1"), nil); a.status != 204 {
		t.Fatalf("forget: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events/p-1", nil); strings.Contains(string(a.body), "ZZHTTPSSN") {
		t.Fatalf("after forget: %s", a.body)
	}
}

// GET /v1/events?raw=true returns events as stored, sensitive fields
// sealed; by default they come decoded.
func TestHTTPRawRead(t *testing.T) {
	e := busCodecEnv(t)
	schema := `{"type":"object","properties":{"ssn":{"type":"string","x-sensitive":true}}}`
	if a := e.do("PUT", "/v1/schemas/patient.admitted/1", schema); a.status/100 != 2 {
		t.Fatalf("PUT schema: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/events", `{"name":"patient.admitted","subject":"patient/1","data":{"ssn":"ZZRAW"}}`); a.status != 201 {
		t.Fatalf("publish: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events?raw=true", nil); a.status != 200 || strings.Contains(string(a.body), "ZZRAW") || !strings.Contains(string(a.body), "$enc") {
		t.Fatalf("raw: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events", nil); a.status != 200 || !strings.Contains(string(a.body), "ZZRAW") {
		t.Fatalf("decoded: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events?raw=maybe", nil); a.status != 400 {
		t.Fatalf("raw=maybe: %d %s", a.status, a.body)
	}
}
