package e2e

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// TestRotationKeepsTheOldSecretForTheGracePeriod rotates a client secret with
// the annotation and checks that old and new both work, then only the new one.
func TestRotationKeepsTheOldSecretForTheGracePeriod(t *testing.T) {
	ctx := context.Background()
	oc := &authv1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: "rotating", Namespace: "default"},
		Spec: authv1alpha1.OAuthClientSpec{
			GrantTypes:          []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials},
			RotationGracePeriod: &metav1.Duration{Duration: 8 * time.Second},
		},
	}
	if err := suite.k8s.Create(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitClientReady(t, "default", "rotating")
	old := readSecret(t, "default", "rotating-credentials")
	works := func(secret string) bool {
		r := postForm(t, "/v1/auth/token", url.Values{"client_id": {old["CLIENT_ID"]}, "client_secret": {secret}})
		return r.status == http.StatusOK
	}
	if !works(old["CLIENT_SECRET"]) {
		t.Fatal("the secret of a Ready client is refused")
	}

	patch := client.MergeFrom(oc.DeepCopy())
	oc.Annotations = map[string]string{authv1alpha1.AnnotationRotate: "2026-11-25"}
	if err := suite.k8s.Patch(ctx, oc, patch); err != nil {
		t.Fatal(err)
	}
	var rotated map[string]string
	eventually(t, 10*time.Second, "a new CLIENT_SECRET in the consumer Secret", func() bool {
		rotated = readSecret(t, "default", "rotating-credentials")
		return rotated["CLIENT_SECRET"] != old["CLIENT_SECRET"]
	})
	if rotated["CLIENT_ID"] != old["CLIENT_ID"] {
		t.Fatal("rotation changed the client id")
	}
	// The Secret shows the new secret no sooner than the client turns
	// Propagating: once it is Ready again, every replica serves the new secret.
	waitClientReady(t, "default", "rotating")
	if !works(rotated["CLIENT_SECRET"]) {
		t.Fatal("the rotated secret is refused once the client is Ready again")
	}
	if !works(old["CLIENT_SECRET"]) {
		t.Fatal("the old secret stopped working inside the grace period")
	}
	eventually(t, 20*time.Second, "the old secret to stop working after the grace period", func() bool { return !works(old["CLIENT_SECRET"]) })
	if !works(rotated["CLIENT_SECRET"]) {
		t.Fatal("the new secret stopped working")
	}
}
