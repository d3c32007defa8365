package tlscert

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokensmith/tokensmith/internal/pki"
)

var t0 = time.Now()

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test CA", t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func leafSecret(t *testing.T, ca *pki.CA, notBefore, notAfter time.Time) *corev1.Secret {
	t.Helper()
	l, err := ca.Issue([]string{"tokensmith.test", "127.0.0.1"}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: l.CertPEM, corev1.TLSPrivateKeyKey: l.KeyPEM}}
}

// serve runs an HTTPS server with src's configuration on loopback.
func serve(t *testing.T, src *Source) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: src.Config(), ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

func clientFor(ca *pki.CA, keepAlive bool) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func TestTheCertificateRotatesWithoutAFailedRequestOrAClosedConnection(t *testing.T) {
	ca := newCA(t)
	src := New("ns/tls", nil)
	first := leafSecret(t, ca, t0.Add(-time.Minute), t0.Add(time.Hour))
	if err := src.Update(first); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, src)
	url := "https://" + addr + "/"

	// One pooled HTTP/2 connection, made before the rotation.
	pooled := clientFor(ca, true)
	resp, err := pooled.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("protocol %s, want HTTP/2.0", resp.Proto)
	}
	firstSerial := resp.TLS.PeerCertificates[0].SerialNumber

	// Requests on new connections flow while the certificate changes.
	var failed, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := clientFor(ca, false)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.Get(url)
				if err != nil || r.StatusCode != http.StatusOK {
					failed.Add(1)
					if err == nil {
						_ = r.Body.Close()
					}
					continue
				}
				_ = r.Body.Close()
				done.Add(1)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	second := leafSecret(t, ca, t0.Add(-time.Minute), t0.Add(2*time.Hour))
	if err := src.Update(second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || done.Load() == 0 {
		t.Errorf("%d requests failed, %d succeeded across the rotation; want 0 failed", failed.Load(), done.Load())
	}

	fresh, err := clientFor(ca, false).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_ = fresh.Body.Close()
	if got := fresh.TLS.PeerCertificates[0].NotAfter; !got.Equal(src.NotAfter()) || fresh.TLS.PeerCertificates[0].SerialNumber.Cmp(firstSerial) == 0 {
		t.Errorf("a new handshake after the rotation got the old certificate")
	}
	again, err := pooled.Get(url)
	if err != nil {
		t.Fatalf("the connection made before the rotation: %v", err)
	}
	_ = again.Body.Close()
	if again.TLS.PeerCertificates[0].SerialNumber.Cmp(firstSerial) != 0 {
		t.Errorf("the pooled connection was replaced; want it to live on with the certificate it was made with")
	}
}

func TestASecretThatCannotServeKeepsTheCertificateInUse(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	good := leafSecret(t, ca, t0.Add(-time.Minute), t0.Add(time.Hour))
	mismatched := good.DeepCopy()
	mismatched.Data[corev1.TLSPrivateKeyKey] = leafSecret(t, other, t0.Add(-time.Minute), t0.Add(time.Hour)).Data[corev1.TLSPrivateKeyKey]
	noKey := good.DeepCopy()
	delete(noKey.Data, corev1.TLSPrivateKeyKey)
	garbage := good.DeepCopy()
	garbage.Data[corev1.TLSCertKey] = []byte("not a certificate")
	cases := []struct {
		name   string
		secret *corev1.Secret
		want   string
	}{
		{"no key", noKey, "needs both tls.crt and tls.key"},
		{"not PEM", garbage, "failed to find any PEM data in certificate input"},
		{"a key of another certificate", mismatched, "private key does not match public key"},
		{"an expired certificate", leafSecret(t, ca, t0.Add(-2*time.Hour), t0.Add(-time.Hour)), "the certificate expired at"},
		{"a certificate not yet valid", leafSecret(t, ca, t0.Add(time.Hour), t0.Add(2*time.Hour)), "the certificate is not valid before"},
	}
	src := New("ns/tls", nil)
	if err := src.Ready(); err == nil || !strings.Contains(err.Error(), "secret ns/tls not found") {
		t.Errorf("Ready with nothing loaded = %v, want it to say the Secret is missing", err)
	}
	for _, tc := range cases {
		t.Run("before any good one: "+tc.name, func(t *testing.T) {
			err := src.Update(tc.secret)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update = %v, want %q", err, tc.want)
			}
			if r := src.Ready(); r == nil || !strings.Contains(r.Error(), tc.want) {
				t.Errorf("Ready = %v, want it to say %q", r, tc.want)
			}
			if _, err := src.GetCertificate(nil); err == nil {
				t.Error("a certificate is served")
			}
		})
	}
	if err := src.Update(good); err != nil {
		t.Fatal(err)
	}
	inUse, _ := src.GetCertificate(nil)
	for _, tc := range cases {
		t.Run("after a good one: "+tc.name, func(t *testing.T) {
			if err := src.Update(tc.secret); err == nil {
				t.Fatal("accepted")
			}
			if c, _ := src.GetCertificate(nil); c != inUse {
				t.Error("the certificate in use was replaced")
			}
			if err := src.Ready(); err != nil {
				t.Errorf("Ready = %v; a bad update must not take the replica out while its certificate is good", err)
			}
			if p := src.Problem(); p == nil || !strings.Contains(p.Error(), tc.want) {
				t.Errorf("Problem = %v, want %q", p, tc.want)
			}
		})
	}
	for _, s := range []*corev1.Secret{noKey, garbage, mismatched} {
		for _, v := range s.Data {
			if p := src.Problem(); p != nil && len(v) > 16 && strings.Contains(p.Error(), string(v)) {
				t.Error("a problem quotes the Secret's data")
			}
		}
	}
}

func TestTheCertificateInUseExpiringMakesTheReplicaNotReady(t *testing.T) {
	ca := newCA(t)
	now := t0
	src := New("ns/tls", func() time.Time { return now })
	if err := src.Update(leafSecret(t, ca, t0.Add(-time.Minute), t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := src.Ready(); err != nil {
		t.Fatal(err)
	}
	src.Gone()
	if err := src.Ready(); err != nil {
		t.Errorf("Ready after the Secret was deleted = %v; the certificate in use is still good", err)
	}
	now = t0.Add(2 * time.Hour)
	if err := src.Ready(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Ready after expiry = %v, want expired", err)
	}
}

func TestPlainHTTPOnTheTLSPortGetsA400(t *testing.T) {
	ca := newCA(t)
	src := New("ns/tls", nil)
	if err := src.Update(leafSecret(t, ca, t0.Add(-time.Minute), t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, src)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no HTTP answer to plaintext: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Errorf("plaintext got %d %q, want 400 saying it is an HTTPS server", resp.StatusCode, body)
	}
}

func TestOnlyModernProtocolsAndSuitesAreOffered(t *testing.T) {
	ca := newCA(t)
	src := New("ns/tls", nil)
	if err := src.Update(leafSecret(t, ca, t0.Add(-time.Minute), t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, src)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	dial := func(c *tls.Config) error {
		c.RootCAs, c.ServerName = pool, "tokensmith.test"
		conn, err := tls.Dial("tcp", addr, c)
		if err == nil {
			_ = conn.Close()
		}
		return err
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		t.Error("a CBC suite was accepted on TLS 1.2")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if err := dial(&tls.Config{MinVersion: v, MaxVersion: v}); err != nil {
			t.Errorf("%s: %v", tls.VersionName(v), err)
		}
	}
}
