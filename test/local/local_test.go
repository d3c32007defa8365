// Package local exercises "make run": it starts "tokensmith-local" as a
// process, exactly as the README tells a newcomer to, gets a token from each
// dialect with the sample credentials, and stops it with Ctrl-C.
package local

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

func TestLocalModeServesEveryDialectWithTheSamples(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tokensmith-local")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tokensmith-local")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	listen, admin := testenv.FreeAddr(), testenv.FreeAddr()
	cmd := exec.Command(bin, "--listen", listen, "--admin-listen", admin, "--dir", filepath.Join(dir, "local"))
	cmd.Dir = root // as "make run" does: samples and CRDs come from the checkout
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	summary := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ctrl-C stops everything") {
				summary <- b.String()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var printed string
	select {
	case printed = <-summary:
	case <-time.After(3 * time.Minute):
		t.Fatalf("tokensmith-local did not become ready; stderr:\n%s", stderr.String())
	}
	for _, want := range []string{"/api/auth/session/", "/v1/auth/token", "/v1/oauth/", "grant_type=password", "KUBECONFIG=", "kubectl create token reports"} {
		if !strings.Contains(printed, want) {
			t.Errorf("the summary has no %q line:\n%s", want, printed)
		}
	}

	k8s := kubeClient(t, filepath.Join(dir, "local", "kubeconfig"))
	ctx := context.Background()
	var clients authv1alpha1.OAuthClientList
	if err := k8s.List(ctx, &clients); err != nil {
		t.Fatal(err)
	}
	var users authv1alpha1.UserList
	if err := k8s.List(ctx, &users); err != nil || len(users.Items) == 0 {
		t.Fatalf("no sample User: %v", err)
	}
	user := users.Items[0]
	password := secretData(t, k8s, user.Namespace, user.Status.PasswordSecretName)["password"]
	base := "http://" + listen
	dialects := map[string]bool{}
	for _, oc := range clients.Items {
		creds := secretData(t, k8s, oc.Namespace, oc.Status.SecretName)
		if oc.Spec.Allows(authv1alpha1.AuthServiceAccountToken) {
			// As README says: kubectl create token against bin/local/kubeconfig, audience the local issuer.
			out, err := exec.Command("kubectl", "--kubeconfig", filepath.Join(dir, "local", "kubeconfig"), "create", "token", //nolint:gosec // fixed arguments and the sample's names
				oc.Spec.ServiceAccountName, "-n", oc.Namespace, "--audience", base).Output()
			if err != nil {
				t.Fatalf("kubectl create token %s: %v", oc.Spec.ServiceAccountName, err)
			}
			form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion": {strings.TrimSpace(string(out))}}
			expectOK(t, "oauth2 client_credentials with a ServiceAccount token", post(t, base+"/oauth/token", "application/x-www-form-urlencoded", form.Encode()))
			dialects["serviceaccount"] = true
		}
		if !oc.Spec.Allows(authv1alpha1.AuthClientSecret) {
			if _, ok := creds["CLIENT_SECRET"]; ok {
				t.Errorf("OAuthClient %s allows no secret, yet its Secret holds CLIENT_SECRET", oc.Name)
			}
			continue
		}
		for _, g := range oc.Spec.GrantTypes {
			switch g {
			case authv1alpha1.GrantSession:
				body, _ := json.Marshal(map[string]string{"api_key": creds["API_KEY"], "secret": creds["API_SECRET"]})
				expectOK(t, "session", post(t, base+"/api/auth/session/"+itoa(*oc.Spec.NumericID), "application/json", string(body)))
				dialects["session"] = true
			case authv1alpha1.GrantClientCredentials:
				form := url.Values{"client_id": {creds["CLIENT_ID"]}, "client_secret": {creds["CLIENT_SECRET"]}}
				expectOK(t, "client-credentials v1", post(t, base+"/v1/auth/token", "application/x-www-form-urlencoded", form.Encode()))
				dialects["v1"] = true
			case authv1alpha1.GrantPassword:
				form := url.Values{"grant_type": {"password"}, "client_id": {creds["CLIENT_ID"]}, "client_secret": {creds["CLIENT_SECRET"]},
					"username": {user.Spec.Username}, "password": {password}, "scope": {""}}
				expectOK(t, "oauth2 password", post(t, base+"/oauth/token", "application/x-www-form-urlencoded", form.Encode()))
				dialects["oauth2"] = true
			}
		}
	}
	q := url.Values{"username": {user.Spec.Username}, "password": {password}}
	expectOK(t, "device login", post(t, base+"/v1/oauth/?"+q.Encode(), "", ""))
	for _, d := range []string{"session", "v1", "oauth2", "serviceaccount"} {
		if !dialects[d] {
			t.Errorf("the samples have no client for the %s dialect", d)
		}
	}

	go func() { exited <- cmd.Wait() }()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("tokensmith-local exited with %v after Ctrl-C; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tokensmith-local did not stop within 30s of Ctrl-C")
	}
	if conn, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		conn.Close()
		t.Fatal("the token server still listens after Ctrl-C")
	}
}

func kubeClient(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func secretData(t *testing.T, c client.Client, namespace, name string) map[string]string {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		t.Fatalf("secret %s/%s: %v", namespace, name, err)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

func post(t *testing.T, u, contentType, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func expectOK(t *testing.T, dialect string, resp *http.Response) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s: status %d: %s", dialect, resp.StatusCode, body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
