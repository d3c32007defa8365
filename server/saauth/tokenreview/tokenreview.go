// Package tokenreview is saauth's Reviewer backed by the Kubernetes
// TokenReview API (authentication.k8s.io/v1), the only API call ServiceAccount
// token authentication makes. It is a package of its own so that saauth, its
// parser and the HTTP packages that use it do not link client-go.
//
// RBAC: create on tokenreviews (cluster-scoped), nothing else.
package tokenreview

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/tokensmith/tokensmith/server/saauth"
)

// Reviewer makes TokenReviews.
type Reviewer struct {
	c authenticationclient.TokenReviewsGetter
}

// New returns a Reviewer using c (kubernetes.Clientset.AuthenticationV1()).
func New(c authenticationclient.TokenReviewsGetter) *Reviewer { return &Reviewer{c: c} }

// Review asks whether token is valid for audience. The API server checks the
// signature against its own keys, the issuer, exp and nbf, the audience, and
// that the ServiceAccount and the pod (or Secret, or node) the token is bound
// to still exist with the uid in the token.
func (r *Reviewer) Review(ctx context.Context, token, audience string) (saauth.Review, error) {
	tr, err := r.c.TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		// The error names the API server and the HTTP failure, never the token.
		return saauth.Review{}, err
	}
	return saauth.Review{
		Authenticated: tr.Status.Authenticated,
		Username:      tr.Status.User.Username,
		Audiences:     tr.Status.Audiences,
	}, nil
}
