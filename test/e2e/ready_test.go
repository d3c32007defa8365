package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// TestReadyMeansServed is what a script does: apply an object, wait for
// Ready, use its credentials at once. Twelve objects at once, so that the
// controller, the API server and the token server are busy the way a CI
// pipeline makes them; each first request must succeed, never a retry. The
// token server's own measurement of how long each change took to reach it
// must lie under the controller's propagation allowance (1s by default).
func TestReadyMeansServed(t *testing.T) {
	_, _, mobile, _ := applyFixtures(t)
	ctx := context.Background()
	const n = 6
	var wg sync.WaitGroup
	for i := range n {
		client := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ready-%d", i), Namespace: "default"},
			Spec: authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}}}
		user := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ready-%d", i), Namespace: "default"},
			Spec: authv1alpha1.UserSpec{Username: fmt.Sprintf("ready-%d@example.com", i), Scopes: []string{"read"}}}
		wg.Go(func() {
			if err := suite.k8s.Create(ctx, client); err != nil {
				t.Error(err)
				return
			}
			waitClientReady(t, client.Namespace, client.Name)
			creds := readSecret(t, client.Namespace, client.Name+"-credentials")
			servedAtReady(t, "OAuthClient "+client.Name, postForm(t, "/v1/auth/token",
				url.Values{"client_id": {creds["CLIENT_ID"]}, "client_secret": {creds["CLIENT_SECRET"]}}))
		})
		wg.Go(func() {
			if err := suite.k8s.Create(ctx, user); err != nil {
				t.Error(err)
				return
			}
			u := waitUserReady(t, user.Namespace, user.Name)
			pw := readSecret(t, user.Namespace, u.Status.PasswordSecretName)["password"]
			servedAtReady(t, "User "+user.Name, postForm(t, "/oauth/token", url.Values{"grant_type": {"password"},
				"client_id": {mobile["CLIENT_ID"]}, "client_secret": {mobile["CLIENT_SECRET"]},
				"username": {user.Spec.Username}, "password": {pw}, "scope": {"read"}}))
		})
	}
	wg.Wait()

	count, underAllowance := propagationFigures(t)
	if count < 2*n {
		t.Fatalf("the token server measured %v propagations, want at least %d: the stamp or the metric is lost", count, 2*n)
	}
	if underAllowance != count {
		t.Fatalf("%v of %v changes took longer than the 1s allowance to reach the token server", count-underAllowance, count)
	}
}

// propagationFigures reads tokensmith_credential_propagation_seconds from
// the token server's /metrics: how many changes it measured, and how many
// of them within 1s.
func propagationFigures(t *testing.T) (count, within1s float64) {
	t.Helper()
	resp, err := http.Get(suite.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	count, within1s = -1, -1
	for line := range strings.SplitSeq(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "tokensmith_credential_propagation_seconds_count":
			count = v
		case `tokensmith_credential_propagation_seconds_bucket{le="1"}`:
			within1s = v
		}
	}
	if count < 0 || within1s < 0 {
		t.Fatalf("no tokensmith_credential_propagation_seconds in /metrics:\n%s", body)
	}
	return count, within1s
}
