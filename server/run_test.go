package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/testenv"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
)

// TestRunServesFromSecretsAndShutsDownGracefully runs the server the way
// "tokensmith server" does, against a real kube-apiserver: it becomes ready
// once the signing keys exist, serves a client written as a verifier Secret,
// picks up a new client without restarting, and returns when its context ends.
func TestRunServesFromSecretsAndShutsDownGracefully(t *testing.T) {
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
	writeSecret := func(name, typ string, doc any) {
		t.Helper()
		data, err := credstore.Encode(doc)
		if err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{credstore.LabelSecretType: typ}},
			Data: map[string][]byte{credstore.DataKey: data}}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	client := func(id, secret string) credstore.ClientVerifier {
		return credstore.ClientVerifier{ClientID: id, GrantTypes: []string{"client_credentials"}, TokenFormat: "opaque",
			Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, secret)}}}
	}
	writeSecret("client-a", credstore.TypeClientVerifier, client("a", "secret-a"))

	listen, admin := testenv.FreeAddr(), testenv.FreeAddr()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, cfg, RunOptions{
			Options:   Options{Issuer: "https://tokensmith.test", Logger: testr.New(t), Login: loginCheap(), RateLimits: NoRateLimits()},
			Namespace: ns, Listen: listen, AdminListen: admin, DrainDelay: 2 * time.Second,
		})
	}()
	//nolint:unparam // false positive: the body is checked after the first token request below
	status := func(method, u, body string) (int, string) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually := func(what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !f() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("the admin port", func() bool { c, _ := status("GET", "http://"+admin+"/healthz", ""); return c == 200 })
	if c, _ := status("GET", "http://"+admin+"/readyz", ""); c != 503 {
		t.Fatalf("ready without signing keys: %d", c)
	}
	writeSecret(credstore.SigningKeysSecretName, credstore.TypeSigningKeys, st.Keys(t))
	eventually("readiness", func() bool { c, _ := status("GET", "http://"+admin+"/readyz", ""); return c == 200 })

	tokenURL := "http://" + listen + "/v1/auth/token"
	if c, body := status("POST", tokenURL, url.Values{"client_id": {"a"}, "client_secret": {"secret-a"}}.Encode()); c != 200 || !strings.Contains(body, `"access_token":"sk-`) {
		t.Fatalf("got %d %s", c, body)
	}
	writeSecret("client-b", credstore.TypeClientVerifier, client("b", "secret-b"))
	start := time.Now()
	eventually("the new client", func() bool {
		c, _ := status("POST", tokenURL, url.Values{"client_id": {"b"}, "client_secret": {"secret-b"}}.Encode())
		return c == 200
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("a new client took %s to be served", d)
	}

	// The huge-header rows of badInputs, on Run's own listener: net/http
	// refuses them with 431 once MaxHeaderBytes is read, without waiting for the rest.
	for _, c := range badInputs {
		if c.hugeHeader {
			if code, d := rawStatus(t, listen, c); code != c.status || d > 2*time.Second {
				t.Errorf("%s: got %d after %s, want %d quickly", c.name, code, d, c.status)
			}
		}
	}

	// A keep-alive client's pooled connection, open before the shutdown.
	keepAlive := &http.Client{Transport: &http.Transport{}}
	issue := func() *http.Response {
		resp, err := keepAlive.Post(tokenURL, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"client_id": {"a"}, "client_secret": {"secret-a"}}.Encode()))
		if err != nil {
			t.Fatalf("during the drain: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := issue(); resp.Close {
		t.Fatal("a response closes its connection before shutdown")
	}
	cancel()
	// The drain: not ready at once, still serving, every answer closing its connection.
	eventually("readiness to fail after SIGTERM", func() bool { c, _ := status("GET", "http://"+admin+"/readyz", ""); return c == 503 })
	if resp := issue(); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("during the drain: %d, Connection: close=%v; want 200 closing the connection", resp.StatusCode, resp.Close)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if c, _ := status("GET", "http://"+admin+"/healthz", ""); c != 0 {
		t.Fatal("the admin port still answers after shutdown")
	}
}

// rawStatus writes c to addr on a raw connection (a writer that stops at the
// first error, as an attacker's would not) and reads the status line.
func rawStatus(t *testing.T, addr string, c badInput) (int, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetDeadline(start.Add(10 * time.Second))
	go func() {
		var b strings.Builder
		b.WriteString("POST " + c.target + " HTTP/1.1\r\nHost: tokensmith\r\nContent-Type: " + c.contentType + "\r\n")
		for i := 0; i+1 < len(c.header); i += 2 {
			b.WriteString(c.header[i] + ": " + c.header[i+1] + "\r\n")
		}
		b.WriteString("Content-Length: " + strconv.Itoa(len(c.body)) + "\r\n\r\n" + c.body)
		_, _ = io.WriteString(conn, b.String())
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Errorf("%s: %v", c.name, err)
		return 0, time.Since(start)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}
