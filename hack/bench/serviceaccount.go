package main

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokensmith/tokensmith/internal/credstore"
)

// saNamespace holds the ServiceAccounts of the assertion-authenticated clients.
const saNamespace = "bench-sa"

// saClient is a client bound to a ServiceAccount and a token of it.
type saClient struct {
	ID, Assertion string
}

// writeServiceAccountFixtures creates n ServiceAccounts, a client verifier
// bound to each (no secret), and a token of each from the TokenRequest API
// with audience, as a pod's projected token would be.
func writeServiceAccountFixtures(ctx context.Context, cfg *rest.Config, c client.Client, n int, audience string) ([]saClient, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: saNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	out := make([]saClient, n)
	exp := int64(3600)
	for i := range n {
		sa, name := fmt.Sprintf("sa-%05d", i), fmt.Sprintf("bench-sa-client-%05d", i)
		if _, err := cs.CoreV1().ServiceAccounts(saNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		tr, err := cs.CoreV1().ServiceAccounts(saNamespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		out[i] = saClient{ID: fmt.Sprintf("bsa-%05d", i), Assertion: tr.Status.Token}
		doc, err := credstore.Encode(credstore.ClientVerifier{
			Namespace: saNamespace, Name: name, ClientID: out[i].ID,
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}, TokenFormat: "jwt",
			ServiceAccountName: sa,
		})
		if err != nil {
			return nil, err
		}
		if err := c.Create(ctx, verifierSecret(credstore.ClientVerifierName(saNamespace, name), credstore.TypeClientVerifier, saNamespace+"/"+name, doc)); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	return out, nil
}
