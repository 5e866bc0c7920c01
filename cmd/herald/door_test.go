package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

// herald import into herald serve seals a field that v1's schema marks
// sensitive in every version of the name, and refuses such an event
// without a subject.
func TestImportSealsSensitiveName(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", dir, "--store", "sqlite", "--durability", "normal")
	base := "http://" + strings.TrimPrefix(p.url, "http://")
	putSchema(t, base, "patient.admitted", 1, `{"type":"object","properties":{"ssn":{"type":"string","x-sensitive":true}}}`)
	file := filepath.Join(t.TempDir(), "events.jsonl")
	lines := `{"id":"i-1","name":"patient.admitted","version":1,"subject":"patient/1","data":{"ssn":"ZZIMPORTSSN"}}
{"id":"i-2","name":"patient.admitted","version":2,"subject":"patient/1","data":{"ssn":"ZZIMPORTSSN"}}
{"id":"i-7","name":"patient.admitted","version":7,"subject":"patient/1","data":{"ssn":"ZZIMPORTSSN"}}
`
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := Run(ctx, []string{"--server", base, "import", file}, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("import: %v: %s", err, errb.String())
	}
	noSubject := filepath.Join(t.TempDir(), "nosubject.jsonl")
	if err := os.WriteFile(noSubject, []byte(`{"id":"i-9","name":"patient.admitted","version":9,"data":{"ssn":"ZZIMPORTNOSUBJECT"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Run(ctx, []string{"--server", base, "import", noSubject}, strings.NewReader(""), &out, &errb); err == nil {
		t.Fatal("an event with a sensitive field and no subject was imported")
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(ctx, filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for e, err := range s.Read(ctx, 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if bytes.Contains(e.Data, []byte("ZZIMPORT")) || !bytes.Contains(e.Data, []byte(`"$enc"`)) {
			t.Errorf("stored v%d data: %s", e.Version, e.Data)
		}
	}
	if n != 3 {
		t.Errorf("stored %d events, want 3", n)
	}
}

// herald export --raw writes sensitive fields sealed; a plain export
// writes them in clear.
func TestExportRaw(t *testing.T) {
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--store", "sqlite", "--durability", "normal")
	base := "http://" + strings.TrimPrefix(p.url, "http://")
	req, _ := http.NewRequest("PUT", base+"/v1/schemas/patient.admitted/1",
		strings.NewReader(`{"type":"object","properties":{"ssn":{"type":"string","x-sensitive":true}}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st, b := post(t, base+"/v1/events", "", map[string]any{"name": "patient.admitted", "subject": "patient/1",
		"data": map[string]any{"ssn": "ZZEXPORTSSN"}}); st != 201 {
		t.Fatalf("publish: %d %s", st, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var raw, plain, errb bytes.Buffer
	if err := Run(ctx, []string{"--server", base, "export", "--raw"}, strings.NewReader(""), &raw, &errb); err != nil {
		t.Fatalf("export --raw: %v: %s", err, errb.String())
	}
	if err := Run(ctx, []string{"--server", base, "export"}, strings.NewReader(""), &plain, &errb); err != nil {
		t.Fatalf("export: %v: %s", err, errb.String())
	}
	if strings.Contains(raw.String(), "ZZEXPORTSSN") || !strings.Contains(raw.String(), `"$enc"`) {
		t.Errorf("export --raw wrote %s", raw.String())
	}
	if !strings.Contains(plain.String(), "ZZEXPORTSSN") {
		t.Errorf("export wrote %s", plain.String())
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}
