package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadGen sends real token requests through the token Service's ClusterIP,
// as the applications of a cluster do: keep-alive connections from a pool
// (an http.Transport dialing inside the node), a steady rate, a mix of the
// four dialects. Every request that does not get its dialect's documented
// success is a failure. Bounded: it stops at ctx's end or after maxRequests.
type loadGen struct {
	base  string
	creds credentials
	// rate is requests per second over all workers.
	rate, workers int
	// retry: a request that got no answer (refused, reset, closed before an
	// answer) is sent again on a new connection after retryBackoff, as
	// README's client guidance says. Off: every failure counts.
	retry bool

	hc      *http.Client
	mu      sync.Mutex
	results []result
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

// result is one request.
type result struct {
	at      time.Time
	dialect string
	latency time.Duration
	// failure is empty on the documented success, else why not.
	failure string
	retried bool
}

const maxRequests = 200_000

// retryBackoff is the documented client retry: up to 3 more attempts.
var retryBackoff = []time.Duration{250 * time.Millisecond, time.Second, 2 * time.Second}

func newLoadGen(svc *tokenService, creds credentials, rate, workers int, retry bool) *loadGen {
	tr := &http.Transport{
		DialContext:         cluster.DialContext,
		MaxIdleConns:        workers * 2,
		MaxIdleConnsPerHost: workers * 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &loadGen{
		base: svc.base, creds: creds, rate: rate, workers: workers, retry: retry,
		// A request unanswered after 10s (an SDK's usual timeout) failed.
		hc: &http.Client{Timeout: 10 * time.Second, Transport: tr},
	}
}

// start sends requests until stop is called or ctx ends.
func (g *loadGen) start(ctx context.Context) {
	ctx, g.cancel = context.WithCancel(ctx)
	interval := time.Duration(int64(time.Second) * int64(g.workers) / int64(g.rate))
	for w := 0; w < g.workers; w++ {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			// Spread the workers over the interval.
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval * time.Duration(w) / time.Duration(g.workers)):
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := w; ; i += g.workers {
				r := g.one(ctx, i)
				if ctx.Err() != nil {
					return
				}
				g.mu.Lock()
				g.results = append(g.results, r)
				full := len(g.results) >= maxRequests
				g.mu.Unlock()
				if full {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
}

// stop ends the load and waits for the requests in flight.
func (g *loadGen) stop() {
	g.cancel()
	g.wg.Wait()
	g.hc.CloseIdleConnections()
}

// The mix, per 80 requests: the cheap grants (digest checks) carry the load;
// the two that verify a password with argon2id (19 MiB and tens of ms of CPU
// each, a few at a time per replica) one each, so that a 2-core machine
// shared with other work keeps up.
func mixDialect(i int) string {
	switch n := i % 80; {
	case n == 0:
		return "device-login"
	case n == 40:
		return "oauth2-password"
	case n%3 == 0:
		return "session"
	case n%3 == 1:
		return "v1-client-credentials"
	default:
		return "oauth2-client-credentials"
	}
}

func (g *loadGen) one(ctx context.Context, i int) result {
	d := mixDialect(i)
	start := time.Now()
	failure, connErr := g.send(ctx, d)
	r := result{at: start, dialect: d, failure: failure}
	for _, wait := range retryBackoff {
		if failure == "" || !connErr || !g.retry || ctx.Err() != nil {
			break
		}
		r.retried = true
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		failure, connErr = g.send(ctx, d)
	}
	r.failure = failure
	r.latency = time.Since(start)
	return r
}

// send makes one request of dialect d; it returns why it was not the
// documented success ("" if it was), and whether the connection failed
// (no answer at all).
func (g *loadGen) send(ctx context.Context, d string) (string, bool) {
	c := g.creds
	form := "application/x-www-form-urlencoded"
	var (
		method = http.MethodPost
		path   string
		ctype  = form
		body   string
		basic  [2]string
	)
	switch d {
	case "session":
		path, ctype = "/api/auth/session/"+c.sessionID, "application/json"
		body = fmt.Sprintf(`{"api_key":%q,"secret":%q}`, c.apiKey, c.apiSecret)
	case "v1-client-credentials":
		path, body = "/v1/auth/token", url.Values{"client_id": {c.v1ID}, "client_secret": {c.v1Secret}}.Encode()
	case "oauth2-client-credentials":
		path, body = "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"invoices:read"}}.Encode()
		basic = [2]string{c.v1ID, c.v1Secret}
	case "oauth2-password":
		path, body = "/oauth/token", url.Values{"grant_type": {"password"}, "username": {c.username}, "password": {c.password}, "scope": {"profile"}}.Encode()
		basic = [2]string{c.mobileID, c.mobileSecret}
	case "device-login":
		// The device issueEveryDialect logged in first: a new one would be
		// recorded in the user's verifier, a change the scenarios would see.
		path, ctype = "/v1/oauth/?"+url.Values{"username": {c.username}, "password": {c.password}, "device-info": {"cluster-test"}}.Encode(), ""
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, strings.NewReader(body))
	if err != nil {
		return err.Error(), false
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if basic[0] != "" {
		req.Header.Set("Authorization", "Basic "+basicAuth(basic[0], basic[1]))
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return "no answer: " + connError(err), true
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "answer cut: " + connError(err), true
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP %d", resp.StatusCode), false
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		return "not JSON", false
	}
	inner, _ := out["data"].(map[string]any)
	ok := false
	switch d {
	case "session":
		ok = strings.Count(str(out, "token"), ".") == 2
	case "v1-client-credentials":
		ok = strings.HasPrefix(str(inner, "access_token"), "sk-")
	case "oauth2-client-credentials", "oauth2-password":
		ok = str(out, "access_token") != "" && str(out, "token_type") != ""
	case "device-login":
		ok = out["success"] == true && str(inner, "access_token") != ""
	}
	if !ok {
		return "200 without the documented body", false
	}
	return "", false
}

// connError names a transport error without its addresses.
func connError(err error) string {
	s := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "Client.Timeout"):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "connection reset"):
		return "connection reset"
	case strings.Contains(s, "EOF"):
		return "connection closed (EOF)"
	case strings.Contains(s, "no route") || strings.Contains(s, "unreachable"):
		return "no route"
	}
	return s
}

// window summarises the requests started in [from, to).
type window struct {
	name             string
	from, to         time.Time
	sent, failed     int
	retried          int
	p50, p99, max    time.Duration
	firstFail, lastF time.Time
	reasons          map[string]int
}

func (g *loadGen) window(name string, from, to time.Time) window {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := window{name: name, from: from, to: to, reasons: map[string]int{}}
	var lat []time.Duration
	for _, r := range g.results {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		w.sent++
		if r.retried {
			w.retried++
		}
		lat = append(lat, r.latency)
		if r.failure != "" {
			w.failed++
			w.reasons[r.dialect+": "+r.failure]++
			if w.firstFail.IsZero() || r.at.Before(w.firstFail) {
				w.firstFail = r.at
			}
			if r.at.After(w.lastF) {
				w.lastF = r.at
			}
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		w.p50, w.p99, w.max = lat[len(lat)*50/100], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return w
}

// rate is the requests per second the window saw.
func (w window) rate() float64 {
	return float64(w.sent) / w.to.Sub(w.from).Seconds()
}

func (w window) String() string {
	var reasons []string
	for r, n := range w.reasons {
		reasons = append(reasons, fmt.Sprintf("%d× %s", n, r))
	}
	sort.Strings(reasons)
	s := fmt.Sprintf("%s: %d requests in %s (%.0f/s), %d failed, p50 %s, p99 %s, max %s", w.name, w.sent,
		w.to.Sub(w.from).Round(time.Second), w.rate(), w.failed,
		w.p50.Round(100*time.Microsecond), w.p99.Round(100*time.Microsecond), w.max.Round(time.Millisecond))
	if w.retried > 0 {
		s += fmt.Sprintf(", %d retried", w.retried)
	}
	if len(reasons) > 0 {
		s += " [" + strings.Join(reasons, "; ") + "]"
	}
	return s
}

// report logs a window as a line of docs/operations.md's tables.
func report(t *testing.T, w window) {
	t.Helper()
	t.Logf("FIGURES %s", w)
}
