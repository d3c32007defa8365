package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokensmith/tokensmith/internal/credstore"
)

// benchIssuer is the token server's issuer, hence the default audience of the
// ServiceAccount tokens.
const benchIssuer = "https://tokensmith.bench"

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
		if err := c.Create(ctx, verifierSecret(serverNamespace, credstore.ClientVerifierName(saNamespace, name), credstore.TypeClientVerifier, saNamespace+"/"+name, doc)); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	return out, nil
}

// assertionRow is client_credentials authenticated by a ServiceAccount token
// (RFC 7523 client assertion) over 64 clients, in steady state: each token's
// first TokenReview happens in the warm-up, later ones in the background.
// Its note gives the ratio to the client-secret row of the same run (target
// >= 0.8) and the TokenReviews made during the row.
func assertionRow(hc *http.Client, conc int, dur time.Duration, baseURL, metricsURL string, clients []saClient, secretRow Result) Result {
	const form = "application/x-www-form-urlencoded"
	build := func(w, i int) (*http.Request, error) {
		c := clients[(w*7919+i)%len(clients)]
		return post(baseURL+"/oauth/token", form, []byte(url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {c.Assertion}}.Encode()))
	}
	for w := range len(clients) { // one request per token: its first verdict
		if req, err := build(w, 0); err == nil {
			_, _ = doOne(hc, req)
		}
	}
	before := counter(metricsURL, "tokensmith_serviceaccount_token_reviews_total")
	r := closedLoop("oauth2 client_credentials ES256, ServiceAccount assertion", hc, conc, dur, build)
	reviews := counter(metricsURL, "tokensmith_serviceaccount_token_reviews_total") - before
	if secretRow.RPS > 0 {
		r.Note = fmt.Sprintf("%.2f of the client-secret row's rate (target >= 0.8); %.0f TokenReviews for %d requests", r.RPS/secretRow.RPS, reviews, r.Requests)
	}
	return r
}

// counter reads one unlabelled counter from a Prometheus text endpoint; -1 when absent.
func counter(metricsURL, name string) float64 {
	resp, err := http.Get(metricsURL) //nolint:gosec,noctx // the bench's own admin listener
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
