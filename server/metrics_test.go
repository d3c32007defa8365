package server

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tokensmith/tokensmith/server/index"
)

// Issue 15, finding 4: the latency histogram was labelled with r.Method, and
// Go accepts any token as a method, so each request with a new 20 KB method
// added a time series (50 requests grew /metrics from 8.6 KB to 14 MB).
func TestAttackerChosenMethodsDoNotGrowMetrics(t *testing.T) {
	snap := fixtureSnapshot(t)
	s := newServer(t, func() *index.Snapshot { return snap })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	admin := httptest.NewServer(s.AdminHandler())
	defer admin.Close()

	size := func() int {
		resp, err := http.Get(admin.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return len(b)
	}
	// A first request of each kind creates its series.
	sendMethod(t, srv.URL, "GET")
	sendMethod(t, srv.URL, "BREW")
	before := size()

	const requests, methodLen = 200, 20 << 10
	for i := 0; i < requests; i++ {
		b := make([]byte, methodLen/2)
		_, _ = rand.Read(b)
		// Upper-case hex is a valid method token.
		if code := sendMethod(t, srv.URL, strings.ToUpper(hex.EncodeToString(b))); code != http.StatusUnauthorized {
			t.Fatalf("request %d: status %d, want 401 (the method reached /auth/verify)", i, code)
		}
	}
	after := size()
	t.Logf("/metrics: %d bytes before, %d after %d requests with %d-byte methods", before, after, requests, methodLen)
	// Without the fix every request adds a series holding its 20 KB method
	// (about 4 MB here); with it, only counts change.
	if after > before+1024 {
		t.Fatalf("/metrics grew from %d to %d bytes: request methods reach metric labels", before, after)
	}
	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`tokensmith_http_request_duration_seconds_count{code="401",dialect="resource",method="other"} %d`, requests+1)
	if !strings.Contains(string(b), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// sendMethod writes a raw request with an arbitrary method to /auth/verify and
// returns the status code.
func sendMethod(t *testing.T, base, method string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s /auth/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bogus\r\nConnection: close\r\n\r\n", method)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricChildrenCounted: the memoized children are the vectors' own, so
// every call is counted under its labels, from many goroutines at once (run
// with -race).
func TestMetricChildrenCounted(t *testing.T) {
	m := newMetrics()
	const goroutines, calls = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				m.Issued("oauth2", []string{"client_credentials", "password"}[(g+i)%2])
				m.observeLatency("oauth2", "POST", []string{"200", "400", "401"}[i%3], 0.001)
			}
		}()
	}
	wg.Wait()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var issued float64
	var observed uint64
	latencySeries := 0
	for _, f := range families {
		switch f.GetName() {
		case "tokensmith_tokens_issued_total":
			for _, series := range f.GetMetric() {
				issued += series.GetCounter().GetValue()
			}
		case "tokensmith_http_request_duration_seconds":
			for _, series := range f.GetMetric() {
				observed += series.GetHistogram().GetSampleCount()
				latencySeries++
			}
		}
	}
	if issued != goroutines*calls {
		t.Errorf("issued %v, want %d", issued, goroutines*calls)
	}
	if latencySeries != 3 {
		t.Errorf("%d latency series, want 3", latencySeries)
	}
	if observed != goroutines*calls {
		t.Errorf("observed %d, want %d", observed, goroutines*calls)
	}
}
