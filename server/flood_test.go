package server

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/password"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/login"
)

// TestLoginFloodIsShedNotOOM sends 200 logins at once, half device logins and
// half password grants, right and wrong passwords and unknown users, against
// real argon2id parameters (19 MiB a verification) with two verification
// slots. Every answer is a success, a credential failure or the dialect's
// 503; none is a 500; and the heap never holds much more than the two slots'
// memory (200 concurrent verifications would need 3.8 GiB).
func TestLoginFloodIsShedNotOOM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real argon2id")
	}
	phc, err := password.Hash("s3cret", password.Default)
	if err != nil {
		t.Fatal(err)
	}
	snap := st.Snapshot(t, []credstore.ClientVerifier{
		{ClientID: "mobile", GrantTypes: []string{"password"}, Scopes: []string{"read"},
			Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "mobile-secret")}}},
	}, []credstore.UserVerifier{{Username: "alice@example.com", PasswordHash: phc, Scopes: []string{"read"}}}, st.Keys(t))
	s, err := New(Options{
		Snapshot: func() *index.Snapshot { return snap }, Issuer: issuer, DeviceLoginClient: "mobile",
		Login:      login.Options{MaxConcurrent: 2, MaxWait: 50 * time.Millisecond}, // real dummy hash parameters
		RateLimits: NoRateLimits(),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()

	const n = 200
	busyDevice := `{"success":false,"errors":{"code":"temporarily_unavailable","message":"Too many logins at once, retry shortly"}}`
	busyOAuth2 := `{"error":"temporarily_unavailable","error_description":"The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server.","message":"The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."}`
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, pw := "alice@example.com", "s3cret"
			switch i % 3 {
			case 1:
				pw = "wrong"
			case 2:
				user = fmt.Sprintf("nobody%d@example.com", i)
			}
			<-start
			var r st.Response
			device := i%2 == 0
			if device {
				r = st.Do(h, "POST", "/v1/oauth/", form, "username="+user+"&password="+pw)
			} else {
				r = st.Do(h, "POST", "/oauth/token", form, "grant_type=password&client_id=mobile&client_secret=mobile-secret&username="+user+"&password="+pw)
			}
			ok := false
			switch {
			case r.Status == http.StatusOK:
				ok = strings.Contains(r.Body, `"access_token":`)
			case r.Status == http.StatusServiceUnavailable:
				ok = r.Header.Get("Retry-After") == "1" && (device && r.Body == busyDevice || !device && r.Body == busyOAuth2)
			case device && r.Status == http.StatusUnauthorized:
				ok = r.Body == `{"success":false,"errors":{"code":"invalid_credentials","message":"Invalid username or password"}}`
			case !device && r.Status == http.StatusBadRequest:
				ok = r.Body == `{"error":"invalid_grant","error_description":"The user credentials were incorrect.","message":"The user credentials were incorrect."}`
			}
			mu.Lock()
			defer mu.Unlock()
			counts[fmt.Sprint(r.Status)]++
			if !ok {
				t.Errorf("request %d (device=%v): %d %s", i, device, r.Status, r.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(stop)
	<-sampled
	t.Logf("answers by status: %v", counts)
	if counts["503"] == 0 {
		t.Error("no request was shed: the flood did not exceed two slots, the test proves nothing")
	}
	if counts["200"]+counts["400"]+counts["401"] == 0 {
		t.Error("every request was shed")
	}
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("heap growth at peak: %d MiB", growth>>20)
	if growth > 160<<20 {
		t.Errorf("heap grew by %d MiB under the flood: verifications are not bounded", growth>>20)
	}
}
