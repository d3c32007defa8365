package saauth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeReviewer is the API server in the cache tests: it authenticates the
// tokens in ok, refuses the others, and answers nothing while down. The real
// API server's verdicts are tested in saauth/tokenreview.
type fakeReviewer struct {
	mu    sync.Mutex
	ok    map[string]bool
	down  bool
	calls int
}

func (f *fakeReviewer) Review(_ context.Context, token, audience string) (Review, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return Review{}, errors.New("connection refused")
	}
	if !f.ok[token] {
		return Review{}, nil
	}
	return Review{Authenticated: true, Username: "system:serviceaccount:apps:billing", Audiences: []string{audience}}, nil
}

func (f *fakeReviewer) set(token string, ok, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok == nil {
		f.ok = map[string]bool{}
	}
	f.ok[token], f.down = ok, down
}

func (f *fakeReviewer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const audience = "https://tokens.example"

func setup(t *testing.T) (*Verifier, *fakeReviewer, *clock, *Assertion) {
	t.Helper()
	clk := &clock{t: time.Unix(1767222000, 0)}
	f := &fakeReviewer{}
	v := NewVerifier(Config{Audience: audience, Reviewer: f, MaxAge: 30 * time.Second, Now: clk.Now})
	a, err := Parse(jws(t, rs256, saClaims()))
	if err != nil {
		t.Fatal(err)
	}
	f.set(a.Raw, true, false)
	return v, f, clk, a
}

// eventually waits for the background refresh.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAVerdictIsReusedThenRefreshedInTheBackground(t *testing.T) {
	v, f, clk, a := setup(t)
	ctx := context.Background()
	for range 100 {
		if err := v.Verify(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if f.count() != 1 {
		t.Fatalf("100 requests in the first 15s made %d reviews, want 1", f.count())
	}
	clk.Add(20 * time.Second) // past MaxAge/2: answered from the cache, refreshed behind
	for range 100 {
		if err := v.Verify(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, func() bool { return f.count() == 2 })
	clk.Add(20 * time.Second) // 20s after the refresh: still fresh-ish, no wait
	if err := v.Verify(ctx, a); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return f.count() == 3 })
}

func TestARefusalByTheAPIServerIsSeenWithinMaxAge(t *testing.T) {
	v, f, clk, a := setup(t)
	ctx := context.Background()
	if err := v.Verify(ctx, a); err != nil {
		t.Fatal(err)
	}
	f.set(a.Raw, false, false) // the ServiceAccount is deleted
	clk.Add(29 * time.Second)  // the refresh, started now, learns it
	_ = v.Verify(ctx, a)
	eventually(t, func() bool { return f.count() == 2 })
	if err := v.Verify(ctx, a); ReasonOf(err) != ReasonRejected {
		t.Fatalf("after the refresh: %v", err)
	}
	// A token seen only rarely is reviewed again at MaxAge, synchronously.
	v2, f2, clk2, a2 := setup(t)
	if err := v2.Verify(ctx, a2); err != nil {
		t.Fatal(err)
	}
	f2.set(a2.Raw, false, false)
	clk2.Add(30 * time.Second)
	if err := v2.Verify(ctx, a2); ReasonOf(err) != ReasonRejected {
		t.Fatalf("at MaxAge: %v", err)
	}
}

func TestDuringAnOutageCachedVerdictsWorkAndNewTokensFailClosed(t *testing.T) {
	v, f, clk, a := setup(t)
	ctx := context.Background()
	if err := v.Verify(ctx, a); err != nil {
		t.Fatal(err)
	}
	other, err := Parse(jws(t, rs256, with("jti", "another token")))
	if err != nil {
		t.Fatal(err)
	}
	f.set(other.Raw, true, true)
	clk.Add(10 * time.Minute) // far past MaxAge, before exp
	if err := v.Verify(ctx, a); err != nil {
		t.Fatalf("a cached verdict during the outage: %v", err)
	}
	if v.Stale() != 1 {
		t.Errorf("stale = %d", v.Stale())
	}
	if err := v.Verify(ctx, other); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("a new token during the outage: %v", err)
	}
	calls := f.count()
	for range 50 {
		if err := v.Verify(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(ctx, other); ReasonOf(err) != ReasonUnavailable {
			t.Fatal(err)
		}
	}
	if f.count() != calls {
		t.Errorf("requests in the second after a failed review waited for the API server: %d reviews", f.count()-calls)
	}
	clk.Add(time.Hour) // the token expires: no verdict saves it
	if err := v.Verify(ctx, a); ReasonOf(err) != ReasonExpired {
		t.Fatalf("an expired token during the outage: %v", err)
	}
	f.set(other.Raw, true, false) // back
	if err := v.Verify(ctx, other); ReasonOf(err) != ReasonExpired {
		t.Fatalf("%v", err)
	}
}

func TestTheAPIServerBackAnswersNewTokens(t *testing.T) {
	v, f, clk, a := setup(t)
	ctx := context.Background()
	f.set(a.Raw, true, true)
	if err := v.Verify(ctx, a); ReasonOf(err) != ReasonUnavailable {
		t.Fatal(err)
	}
	f.set(a.Raw, true, false)
	if err := v.Verify(ctx, a); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("within the probe interval: %v", err)
	}
	clk.Add(probeInterval)
	if err := v.Verify(ctx, a); err != nil {
		t.Fatalf("after the probe interval: %v", err)
	}
}

func TestLocalChecksNeedNoReview(t *testing.T) {
	v, f, clk, _ := setup(t)
	for _, tc := range []struct {
		name   string
		claims map[string]any
		shift  time.Duration
		reason string
	}{
		{"refuses another audience", with("aud", []string{"https://kubernetes.default.svc"}), 0, ReasonAudience},
		{"refuses an expired token", saClaims(), time.Hour, ReasonExpired},
		{"refuses a token not yet valid", with("nbf", 1767222000+60, "iat", 1767222000+60), 0, ReasonNotYetValid},
		{"tolerates 30s of clock skew", with("nbf", 1767222000+30, "iat", 1767222000+30), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(jws(t, rs256, tc.claims))
			if err != nil {
				t.Fatal(err)
			}
			f.set(a.Raw, true, false)
			clk.Add(tc.shift)
			defer clk.Add(-tc.shift)
			calls := f.count()
			err = v.Verify(context.Background(), a)
			if ReasonOf(err) != tc.reason {
				t.Fatalf("got %v, want %q", err, tc.reason)
			}
			if tc.reason != "" && f.count() != calls {
				t.Error("a locally refused token was reviewed")
			}
		})
	}
}

func TestARefusalIsRememberedBriefly(t *testing.T) {
	v, f, clk, a := setup(t)
	f.set(a.Raw, false, false)
	for range 20 {
		if err := v.Verify(context.Background(), a); ReasonOf(err) != ReasonRejected {
			t.Fatal(err)
		}
	}
	if f.count() != 1 {
		t.Fatalf("%d reviews", f.count())
	}
	clk.Add(negativeMaxAge)
	f.set(a.Raw, true, false)
	if err := v.Verify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentRequestsForANewTokenShareOneReview(t *testing.T) {
	v, f, _, a := setup(t)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.Verify(context.Background(), a); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if f.count() > 2 { // one, or two if the first finished before the last started
		t.Errorf("%d reviews for one token", f.count())
	}
}

func TestTheCacheIsBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1767222000, 0)}
	f := &fakeReviewer{}
	v := NewVerifier(Config{Audience: audience, Reviewer: f, MaxEntries: 100, Now: clk.Now})
	for i := range 1000 {
		a, err := Parse(jws(t, rs256, with("jti", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.set(a.Raw, true, false)
		if err := v.Verify(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.cache); n > 100 {
		t.Errorf("%d entries", n)
	}
}

func TestAVerdictForAnotherServiceAccountIsRefused(t *testing.T) {
	v, f, _, _ := setup(t)
	a, err := Parse(jws(t, rs256, with("sub", "system:serviceaccount:apps:other")))
	if err != nil {
		t.Fatal(err)
	}
	f.set(a.Raw, true, false) // the fake authenticates it as apps:billing
	if err := v.Verify(context.Background(), a); ReasonOf(err) != ReasonRejected {
		t.Fatal(err)
	}
}

func TestTheDefaultBoundIsWithin60s(t *testing.T) {
	// kube-apiserver caches a successful authentication for up to 10s.
	const apiServerCache = 10 * time.Second
	if DefaultMaxAge+apiServerCache > 60*time.Second {
		t.Fatalf("DefaultMaxAge %s + %s exceeds the 60s promise", DefaultMaxAge, apiServerCache)
	}
	v := NewVerifier(Config{Audience: audience, Reviewer: &fakeReviewer{}})
	if v.cfg.MaxAge != DefaultMaxAge {
		t.Fatalf("MaxAge %s", v.cfg.MaxAge)
	}
}

func TestATokenInSteadyUseIsDecodedOnce(t *testing.T) {
	v, _, _, a := setup(t)
	first, err := v.Parse(a.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	again, err := v.Parse(a.Raw)
	if err != nil || again != first {
		t.Fatalf("the second Parse decoded again (%v)", err)
	}
	if _, err := v.Parse(a.Raw + "x"); err == nil {
		t.Fatal("a changed token came from the cache")
	}
}
