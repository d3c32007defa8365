package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// secretsSeen collects every credential and token the suite handles, for the leak check.
var secretsSeen = map[string]bool{}

func remember(values ...string) {
	for _, v := range values {
		if len(v) >= 8 {
			secretsSeen[v] = true
		}
	}
}

// errorBodies keeps every non-2xx answer the suite received, for the leak
// check: an error message must never quote a credential or token.
var errorBodies syncBuffer

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %q", r.status, r.body)
	}
	return m
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		fmt.Fprintf(&errorBodies, "%d %s %s: %s\n", resp.StatusCode, req.Method, req.URL.Path, body)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func postForm(t *testing.T, path string, form url.Values) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, suite.baseURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func postJSON(t *testing.T, path string, body any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, suite.baseURL+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// eventually polls f until it returns true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitClientReady and waitUserReady wait as a user's script does (kubectl
// wait --for=condition=Ready): Ready promises that every token server
// replica serves the object's credentials, so the tests use them at once
// (servedAtReady), never retrying.
func waitClientReady(t *testing.T, namespace, name string) {
	t.Helper()
	var oc authv1alpha1.OAuthClient
	eventually(t, 30*time.Second, "OAuthClient "+name+" Ready", func() bool {
		err := suite.k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &oc)
		return err == nil && meta.IsStatusConditionTrue(oc.Status.Conditions, authv1alpha1.ConditionReady)
	})
}

func waitUserReady(t *testing.T, namespace, name string) *authv1alpha1.User {
	t.Helper()
	var u authv1alpha1.User
	eventually(t, 30*time.Second, "User "+name+" Ready", func() bool {
		err := suite.k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &u)
		return err == nil && meta.IsStatusConditionTrue(u.Status.Conditions, authv1alpha1.ConditionReady)
	})
	return &u
}

// servedAtReady returns r, the answer to a request that uses what was
// just Ready (what says whose credentials): it must have succeeded at once.
func servedAtReady(t *testing.T, what string, r response) response {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s, Ready, refused at once: status %d: %s", what, r.status, r.body)
	}
	return r
}

func readSecret(t *testing.T, namespace, name string) map[string]string {
	t.Helper()
	var s corev1.Secret
	if err := suite.k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
		if k != "TOKEN_URL" && k != "CLIENT_ID" {
			remember(string(v))
		}
	}
	return out
}
