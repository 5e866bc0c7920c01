package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

func TestExportImportRoundTrip(t *testing.T) {
	src, dst := start(t), start(t)
	ctx := context.Background()
	for i := range 40 {
		src.c.Publish(ctx, &herald.Event{Name: "a.b", Subject: "s", Data: json.RawMessage(`{"i":1}`), Metadata: map[string]string{"n": "v"}, Priority: herald.Priority(i%4 - 1)})
	}
	var buf bytes.Buffer
	calls := 0
	n, err := src.c.Export(ctx, &buf, client.EventQuery{Limit: 7}, func(int) { calls++ })
	if err != nil || n != 40 || calls != 40 || strings.Count(buf.String(), "\n") != 40 {
		t.Fatalf("export: %d %v (%d progress calls)", n, err, calls)
	}
	dump := buf.String()
	var batches int
	res, err := dst.c.Import(ctx, strings.NewReader(dump), client.ImportBatchSize(15), client.ImportProgress(func(client.ImportResult) { batches++ }))
	if err != nil || res != (client.ImportResult{Read: 40, Stored: 40}) || batches != 3 {
		t.Fatalf("import: %+v %v (%d batches)", res, err, batches)
	}
	res, err = dst.c.Import(ctx, strings.NewReader(dump))
	if err != nil || res != (client.ImportResult{Read: 40, Duplicates: 40}) {
		t.Fatalf("import again: %+v %v", res, err)
	}
	var again bytes.Buffer
	if _, err := dst.c.Export(ctx, &again, client.EventQuery{}, nil); err != nil {
		t.Fatal(err)
	}
	if again.String() != dump {
		t.Errorf("the copy differs from the original")
	}

	_, err = dst.c.Import(ctx, strings.NewReader("\n"+`{"name":"a.b","data":{}}`+"\n\n"+`{"name":"A","data":{}}`+"\n"))
	var he *client.Error
	if !errors.As(err, &he) || !strings.HasPrefix(err.Error(), "line 4: ") {
		t.Errorf("bad event: %v", err)
	}
	if _, err := dst.c.Import(ctx, strings.NewReader(strings.Repeat("x", 9<<20))); err == nil {
		t.Error("a 9 MiB line was read")
	}
}

func TestImportWaitsOutRateLimits(t *testing.T) {
	ts := start(t, withAdmin())
	ctx := context.Background()
	secret, _, err := ts.c.CreateToken(ctx, client.Token{Identity: "importer", Publish: []string{">"}, Rate: 20, Burst: 10})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(ts.hs.URL, client.WithToken(secret), client.WithHTTPClient(ts.hs.Client()))
	var in strings.Builder
	for range 30 {
		in.WriteString(`{"name":"a.b","data":{}}` + "\n")
	}
	res, err := c.Import(ctx, strings.NewReader(in.String()), client.ImportBatchSize(10))
	if err != nil || res.Stored != 30 {
		t.Fatalf("import under a rate limit: %+v %v", res, err)
	}
}
