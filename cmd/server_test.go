package cmd

import (
	"io"
	"testing"
	"time"
)

func TestServerFlags(t *testing.T) {
	testFlags(t, func(t *testing.T, args []string) (*serverFlags, error) {
		t.Helper()
		f, o, err := parseServerFlags(args, io.Discard)
		if err == nil && (o.Namespace != f.namespace || o.Issuer != f.issuer || o.ServiceAccountAudience != f.saAudience || o.ServiceAccountVerdictMaxAge != f.saVerdictMaxAge ||
			o.TLSSecret != f.tlsSecret || o.TLSWait != f.tlsWait) {
			t.Fatalf("the options %+v do not carry the flags %+v", o, f)
		}
		return f, err
	}, []flagCase[*serverFlags]{
		{"defaults the namespace from POD_NAMESPACE and the issuer from it", nil, func(t *testing.T, f *serverFlags) {
			t.Helper()
			if f.namespace != "auth" || f.issuer != "http://tokensmith.auth.svc" || f.listen != ":4000" || f.adminListen != ":9090" ||
				f.deviceTokenTTL != 720*time.Hour || f.sessionAlg != "HS512" || f.devMode {
				t.Fatalf("%+v", f)
			}
		}, false},
		{"takes every flag", []string{"--namespace", "x", "--issuer", "https://i", "--dev-mode", "--device-login-client", "mobile",
			"--device-token-ttl", "1h", "--session-alg", "ES256", "--trusted-proxies", "10.0.0.0/8", "--listen", ":1", "--admin-listen", ":2"},
			func(t *testing.T, f *serverFlags) {
				t.Helper()
				if f.namespace != "x" || f.issuer != "https://i" || !f.devMode || f.deviceLoginClient != "mobile" || f.deviceTokenTTL != time.Hour || f.sessionAlg != "ES256" {
					t.Fatalf("%+v", f)
				}
			}, false},
		{"defaults the ServiceAccount token audience to the issuer, and the verdict age to 30s", []string{"--issuer", "https://i"}, func(t *testing.T, f *serverFlags) {
			if f.saAudience != "https://i" || f.saVerdictMaxAge != 30*time.Second {
				t.Fatalf("%+v", f)
			}
		}, false},
		{"takes a ServiceAccount token audience and verdict age", []string{"--service-account-token-audience", "tokensmith", "--service-account-verdict-max-age", "2s"}, func(t *testing.T, f *serverFlags) {
			if f.saAudience != "tokensmith" || f.saVerdictMaxAge != 2*time.Second {
				t.Fatalf("%+v", f)
			}
		}, false},
		{"serves HTTPS from --tls-secret, and the default issuer says https", []string{"--tls-secret", "tokensmith-tls", "--tls-wait", "5s"}, func(t *testing.T, f *serverFlags) {
			if f.tlsSecret != "tokensmith-tls" || f.tlsWait != 5*time.Second || f.issuer != "https://tokensmith.auth.svc" {
				t.Fatalf("%+v", f)
			}
		}, false},
		{"refuses a non-positive TLS wait", []string{"--tls-secret", "t", "--tls-wait", "0s"}, nil, true},
		{"refuses a verdict age that would break the 60s bound", []string{"--service-account-verdict-max-age", "51s"}, nil, true},
		{"refuses a verdict age under a second", []string{"--service-account-verdict-max-age", "0s"}, nil, true},
		{"refuses an unknown session algorithm", []string{"--session-alg", "none"}, nil, true},
		{"refuses a bad trusted proxy", []string{"--trusted-proxies", "nope"}, nil, true},
		{"refuses a non-positive device token TTL", []string{"--device-token-ttl", "0s"}, nil, true},
		{"refuses stray arguments", []string{"extra"}, nil, true},
	})
}
