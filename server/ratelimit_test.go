package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/throttle"
)

// The 429 answers, exactly, in each dialect's shape.
const (
	tooManySession = `{"error":"too_many_requests","message":"Too many requests, retry after the Retry-After delay"}`
	tooManyV1      = `{"error":"Too many requests, retry after the Retry-After delay"}`
	tooManyDevice  = `{"success":false,"errors":{"code":"too_many_requests","message":"Too many login attempts, retry after the Retry-After delay"}}`
	tooManyOAuth2  = `{"error":"temporarily_unavailable","error_description":"The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server.","hint":"Too many requests, retry after the Retry-After delay","message":"The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."}`
	tooManyRes     = `{"error":"temporarily_unavailable","error_description":"Too many requests; retry after the Retry-After delay."}`
)

// newLimitedServer serves fixtureSnapshot with limits on a clock that never
// moves, so that an emptied bucket stays empty and Retry-After is exact.
func newLimitedServer(t *testing.T, limits RateLimits, trusted ...string) *Server {
	t.Helper()
	snap := fixtureSnapshot(t)
	var proxies []netip.Prefix
	for _, p := range trusted {
		proxies = append(proxies, netip.MustParsePrefix(p))
	}
	s, err := New(Options{
		Snapshot: func() *index.Snapshot { return snap }, Issuer: issuer, DeviceLoginClient: "mobile",
		Login: login.Options{DummyParams: &st.Cheap}, Now: func() time.Time { return st.Now },
		RateLimits: limits, TrustedProxies: proxies,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// send is st.Do from a chosen peer address.
func send(h http.Handler, remote, method, target, contentType, body string, header ...string) st.Response {
	from := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = remote
		h.ServeHTTP(w, r)
	})
	return st.Do(from, method, target, contentType, body, header...)
}

const form = "application/x-www-form-urlencoded"

func TestPerIPLimitAnswers429InEachDialectsShape(t *testing.T) {
	cases := []struct{ name, path, ct, body, want string }{
		{"session", "/api/auth/session/4242", "application/json", `{"api_key":"po2_key","secret":"po2_secret"}`, tooManySession},
		{"client-credentials v1", "/v1/auth/token", form, "client_id=mobile&client_secret=mobile-secret", tooManyV1},
		{"device login", "/v1/oauth/?username=alice@example.com&password=s3cret", "", "", tooManyDevice},
		{"device login without the trailing slash", "/v1/oauth?username=alice@example.com&password=s3cret", "", "", tooManyDevice},
		{"OAuth 2.0 token endpoint", "/oauth/token", form, "grant_type=client_credentials&client_id=mobile&client_secret=mobile-secret", tooManyOAuth2},
		{"introspection", "/oauth/introspect", form, "token=x&client_id=mobile&client_secret=mobile-secret", tooManyRes},
		{"revocation", "/oauth/revoke", form, "token=x&client_id=mobile&client_secret=mobile-secret", tooManyRes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// 0.4/s with a burst of 2: the third request waits 2.5s, so Retry-After rounds up to 3.
			h := newLimitedServer(t, RateLimits{PerIP: 0.4, PerIPBurst: 2, PerClient: RateLimitOff}).Handler()
			for i := range 2 {
				if r := send(h, "192.0.2.10:5000", "POST", c.path, c.ct, c.body); r.Status == 429 {
					t.Fatalf("request %d within the burst: 429", i+1)
				}
			}
			r := send(h, "192.0.2.10:5000", "POST", c.path, c.ct, c.body)
			if r.Status != 429 || r.Body != c.want || r.Header.Get("Retry-After") != "3" ||
				r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("got %d Retry-After=%q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
			}
			if r := send(h, "192.0.2.11:5000", "POST", c.path, c.ct, c.body); r.Status == 429 {
				t.Fatal("another address was throttled too")
			}
		})
	}
}

func TestPerIPLimitLeavesKeysAndForwardAuthAlone(t *testing.T) {
	h := newLimitedServer(t, RateLimits{PerIP: 1, PerIPBurst: 1, PerClient: RateLimitOff}).Handler()
	for i := range 5 {
		for _, path := range []string{"/.well-known/jwks.json", "/.well-known/oauth-authorization-server", "/auth/verify"} {
			if r := send(h, "192.0.2.10:5000", "GET", path, "", ""); r.Status == 429 {
				t.Fatalf("%s request %d throttled: an ingress controller calls it for every request", path, i+1)
			}
		}
	}
}

func TestPerClientLimitIsCheckedBeforeTheSecret(t *testing.T) {
	cases := []struct {
		name             string
		guess, right     func(h http.Handler) st.Response
		otherClient      func(h http.Handler) st.Response
		want             string
		otherClientAfter int
	}{
		{"session: wrong secrets use up the client's budget, then the right one is refused",
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.1:1", "POST", "/api/auth/session/4242", "application/json", `{"api_key":"po2_key","secret":"guess"}`)
			},
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.2:1", "POST", "/api/auth/session/4242", "application/json", `{"api_key":"po2_key","secret":"po2_secret"}`)
			},
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.1:1", "POST", "/api/auth/session/4243", "application/json", `{"api_key":"po2_key","secret":"guess"}`)
			}, tooManySession, 401},
		{"client-credentials v1",
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.1:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=guess")
			},
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.2:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=mobile-secret")
			},
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.1:1", "POST", "/v1/auth/token", form, "client_id=other&client_secret=guess")
			}, tooManyV1, 401},
		{"OAuth 2.0: guesses in the body, then Basic, count against one client id",
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.1:1", "POST", "/oauth/token", form, "grant_type=client_credentials&client_id=mobile&client_secret=guess")
			},
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.2:1", "POST", "/oauth/token", form, "grant_type=client_credentials", "Authorization", basic("mobile", "mobile-secret"))
			},
			func(h http.Handler) st.Response {
				return send(h, "192.0.2.1:1", "POST", "/oauth/token", form, "grant_type=client_credentials", "Authorization", basic("other", "guess"))
			}, tooManyOAuth2, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// 0.5/s, burst 3: the 4th request waits exactly 2s.
			s := newLimitedServer(t, RateLimits{PerIP: RateLimitOff, PerClient: 0.5, PerClientBurst: 3})
			h := s.Handler()
			for i := range 3 {
				if r := c.guess(h); r.Status != 400 && r.Status != 401 {
					t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Body)
				}
			}
			r := c.right(h) // from another address: the limit is the client's, not the address's
			if r.Status != 429 || r.Body != c.want || r.Header.Get("Retry-After") != "2" {
				t.Fatalf("the right secret after the guesses: %d Retry-After=%q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
			}
			if r := c.otherClient(h); r.Status != c.otherClientAfter {
				t.Fatalf("another client id: %d %s", r.Status, r.Body)
			}
		})
	}
}

func basic(id, secret string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(id, secret)
	return req.Header.Get("Authorization")
}

func TestForgedXForwardedForDoesNotEscapeThePerIPLimit(t *testing.T) {
	const body = "grant_type=client_credentials&client_id=mobile&client_secret=mobile-secret"
	t.Run("an untrusted peer rotating X-Forwarded-For is throttled as itself", func(t *testing.T) {
		h := newLimitedServer(t, RateLimits{PerIP: 1, PerIPBurst: 3, PerClient: RateLimitOff}, "10.1.0.0/16").Handler()
		for i := range 10 {
			r := send(h, "198.51.100.7:4000", "POST", "/oauth/token", form, body, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
			if want := i >= 3; (r.Status == 429) != want {
				t.Fatalf("request %d: %d, want throttled=%v", i+1, r.Status, want)
			}
		}
	})
	t.Run("behind a trusted proxy each forwarded client has its own budget", func(t *testing.T) {
		h := newLimitedServer(t, RateLimits{PerIP: 1, PerIPBurst: 1, PerClient: RateLimitOff}, "10.1.0.0/16").Handler()
		for i := range 10 {
			if r := send(h, "10.1.2.3:4000", "POST", "/oauth/token", form, body, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)); r.Status == 429 {
				t.Fatalf("client 203.0.113.%d throttled for its first request", i)
			}
		}
		if r := send(h, "10.1.9.9:4000", "POST", "/oauth/token", form, body, "X-Forwarded-For", "203.0.113.0"); r.Status != 429 {
			t.Fatalf("203.0.113.0's second request through another proxy replica: %d", r.Status)
		}
	})
	t.Run("what a client prepends to the trusted proxy's header changes nothing", func(t *testing.T) {
		h := newLimitedServer(t, RateLimits{PerIP: 1, PerIPBurst: 1, PerClient: RateLimitOff}, "10.1.0.0/16").Handler()
		for i := range 5 {
			xff := fmt.Sprintf("192.0.2.%d, 203.0.113.50", i) // forged first hop, real client appended by the proxy
			r := send(h, "10.1.2.3:4000", "POST", "/oauth/token", form, body, "X-Forwarded-For", xff)
			if want := i >= 1; (r.Status == 429) != want {
				t.Fatalf("request %d: %d, want throttled=%v", i+1, r.Status, want)
			}
		}
	})
	t.Run("IPv6 clients are limited per /64", func(t *testing.T) {
		h := newLimitedServer(t, RateLimits{PerIP: 1, PerIPBurst: 1, PerClient: RateLimitOff}).Handler()
		if r := send(h, "[2001:db8:1:2::1]:4000", "POST", "/oauth/token", form, body); r.Status == 429 {
			t.Fatal("first request throttled")
		}
		if r := send(h, "[2001:db8:1:2:ffff::9]:4000", "POST", "/oauth/token", form, body); r.Status != 429 {
			t.Fatalf("another address of the same /64: %d", r.Status)
		}
		if r := send(h, "[2001:db8:1:3::1]:4000", "POST", "/oauth/token", form, body); r.Status == 429 {
			t.Fatal("another /64 was throttled")
		}
	})
}

func TestThrottledRequestsAreCounted(t *testing.T) {
	s := newLimitedServer(t, RateLimits{PerIP: 1, PerIPBurst: 1, PerClient: 1, PerClientBurst: 1})
	h := s.Handler()
	send(h, "192.0.2.1:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=x")
	send(h, "192.0.2.1:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=x") // ip
	send(h, "192.0.2.2:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=x") // client
	send(h, "192.0.2.3:1", "POST", "/oauth/token", form, "grant_type=client_credentials&client_id=mobile&client_secret=x")
	r := st.Do(s.AdminHandler(), "GET", "/metrics", "", "")
	for _, want := range []string{
		`tokensmith_throttled_requests_total{dialect="v1",limiter="ip"} 1`,
		`tokensmith_throttled_requests_total{dialect="v1",limiter="client"} 1`,
		`tokensmith_throttled_requests_total{dialect="oauth2",limiter="client"} 1`,
	} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestNoRateLimitsThrottleNothing(t *testing.T) {
	h := newLimitedServer(t, NoRateLimits()).Handler()
	for i := range 300 {
		if r := send(h, "192.0.2.1:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=x"); r.Status == 429 {
			t.Fatalf("request %d throttled with limits off", i+1)
		}
	}
}

func TestZeroRateLimitsMeanTheDefaults(t *testing.T) {
	h := newLimitedServer(t, RateLimits{}).Handler()
	for i := range throttle.DefaultPerIPBurst {
		if r := send(h, "192.0.2.1:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=x"); r.Status == 429 {
			t.Fatalf("request %d throttled within the default burst", i+1)
		}
	}
	if r := send(h, "192.0.2.1:1", "POST", "/v1/auth/token", form, "client_id=mobile&client_secret=x"); r.Status != 429 {
		t.Fatalf("request past the default burst: %d, want 429", r.Status)
	}
}
