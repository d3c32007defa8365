package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tokensmith/tokensmith/internal/pki"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

// TestRunServesTLSFromASecretAndReloadsIt runs the server with --tls-secret
// against a real kube-apiserver: the token port waits for the Secret, serves
// HTTPS with its certificate, and a new certificate written to the Secret is
// what the next handshake sees, without a restart. An unusable Secret fails
// the start with what is wrong.
func TestRunServesTLSFromASecretAndReloadsIt(t *testing.T) {
	_, cfg := testenv.ForTest(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "tokensmith-system"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test CA", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tlsData := func() map[string][]byte {
		l, err := ca.Issue([]string{"tokensmith.test", "127.0.0.1"}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return map[string][]byte{corev1.TLSCertKey: l.CertPEM, corev1.TLSPrivateKeyKey: l.KeyPEM}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	newClient := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	}

	run := func(secret string, wait time.Duration) (listen, admin string, done chan error, stop func()) {
		listen, admin = testenv.FreeAddr(), testenv.FreeAddr()
		runCtx, cancel := context.WithCancel(ctx)
		done = make(chan error, 1)
		go func() {
			done <- Run(runCtx, cfg, RunOptions{
				Options:   Options{Issuer: "https://tokensmith.test", Logger: testr.New(t), Login: loginCheap(), RateLimits: NoRateLimits()},
				Namespace: ns, Listen: listen, AdminListen: admin, TLSSecret: secret, TLSWait: wait,
			})
		}()
		return listen, admin, done, cancel
	}

	t.Run("an unusable Secret fails the start, naming what is wrong", func(t *testing.T) {
		bad := tlsData()
		bad[corev1.TLSPrivateKeyKey] = tlsData()[corev1.TLSPrivateKeyKey]
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mismatched", Namespace: ns},
			Type: corev1.SecretTypeTLS, Data: bad}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, _, done, stop := run("mismatched", 2*time.Second)
		defer stop()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "no usable TLS certificate") || !strings.Contains(err.Error(), "private key does not match public key") {
				t.Errorf("Run = %v, want it to say the key does not match", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not give up")
		}
	})

	t.Run("the token port waits for the Secret, serves it, and reloads it", func(t *testing.T) {
		listen, admin, done, stop := run("serving", time.Minute)
		readyz := func() string {
			resp, err := http.Get("http://" + admin + "/readyz")
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(readyz(), "secret tokensmith-system/serving not found") {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never said the Secret is missing: %q", readyz())
			}
			time.Sleep(20 * time.Millisecond)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "serving", Namespace: ns}, Type: corev1.SecretTypeTLS, Data: tlsData()}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		serial := func() string {
			resp, err := newClient().Get("https://" + listen + "/.well-known/oauth-authorization-server")
			if err != nil {
				return ""
			}
			_ = resp.Body.Close()
			return resp.TLS.PeerCertificates[0].SerialNumber.String()
		}
		deadline = time.Now().Add(10 * time.Second)
		first := serial()
		for first == "" {
			if time.Now().After(deadline) {
				t.Fatal("the token port never served HTTPS")
			}
			time.Sleep(20 * time.Millisecond)
			first = serial()
		}
		s.Data = tlsData()
		if _, err := cs.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for serial() == first {
			if time.Since(start) > 5*time.Second {
				t.Fatal("a new handshake still gets the old certificate")
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("FIGURES a new certificate served %v after the Secret's update", time.Since(start))
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
