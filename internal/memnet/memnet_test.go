package memnet_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/internal/memnet"
)

// An HTTP server and client over memnet run in a bubble: a streamed answer
// that waits a virtual minute between its lines takes no real time.
func TestHTTPInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memnet.Listen()
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i := range 3 {
				fmt.Fprintf(w, "line %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(time.Minute)
			}
		})}
		go hs.Serve(l)
		defer hs.Close()
		tr := &http.Transport{DialContext: l.DialContext}
		defer tr.CloseIdleConnections()
		start := time.Now()
		resp, err := (&http.Client{Transport: tr}).Get("http://memnet/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var got []string
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		if strings.Join(got, ",") != "line 0,line 1,line 2" || time.Since(start) != 3*time.Minute {
			t.Fatalf("got %q after %v", got, time.Since(start))
		}
	})
}

func TestDialAfterClose(t *testing.T) {
	l := memnet.Listen()
	l.Close()
	if _, err := l.DialContext(context.Background(), "tcp", "x"); err == nil {
		t.Fatal("dial to a closed listener")
	}
	if _, err := l.Accept(); err == nil {
		t.Fatal("accept on a closed listener")
	}
}
