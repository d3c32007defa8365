package tokenreview_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokensmith/tokensmith/internal/testenv"
	"github.com/tokensmith/tokensmith/server/saauth"
	"github.com/tokensmith/tokensmith/server/saauth/tokenreview"
)

const audience = "https://tokensmith.test"

var cs *kubernetes.Clientset

func TestMain(m *testing.M) {
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	if testing.Short() {
		os.Exit(m.Run())
	}
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cs = kubernetes.NewForConfigOrDie(cfg)
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
}

// namespace creates a namespace of the test's own with a ServiceAccount "app".
func namespace(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	ctx := context.Background()
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sa-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// token is `kubectl create token app --audience aud` (the TokenRequest API),
// bound to pod when one is given.
func token(t *testing.T, c kubernetes.Interface, ns, aud string, pod *corev1.Pod) string {
	t.Helper()
	exp := int64(600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}, ExpirationSeconds: &exp}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := c.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "app", req, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func verifier(c kubernetes.Interface, maxAge time.Duration, now func() time.Time) *saauth.Verifier {
	return saauth.NewVerifier(saauth.Config{Audience: audience, Reviewer: tokenreview.New(c.AuthenticationV1()), MaxAge: maxAge, Now: now})
}

func verify(v *saauth.Verifier, raw string) error {
	a, err := saauth.Parse(raw)
	if err != nil {
		return err
	}
	return v.Verify(context.Background(), a)
}

func TestATokenFromTheTokenRequestAPIIsAccepted(t *testing.T) {
	skipShort(t)
	ns := namespace(t, cs)
	raw := token(t, cs, ns, audience, nil)
	a, err := saauth.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if a.Namespace != ns || a.ServiceAccount != "app" {
		t.Fatalf("parsed %s/%s", a.Namespace, a.ServiceAccount)
	}
	v := verifier(cs, 0, nil)
	for range 1000 {
		if err := v.Verify(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if v.Reviews() != 1 {
		t.Errorf("1000 verifications made %d TokenReviews, want 1", v.Reviews())
	}
}

// TestReviewCost measures one TokenReview against a local API server, the
// price of a token the cache has not seen (written down in saauth's doc).
func TestReviewCost(t *testing.T) {
	skipShort(t)
	ns := namespace(t, cs)
	raw := token(t, cs, ns, audience, nil)
	r := tokenreview.New(cs.AuthenticationV1())
	const n = 200
	start := time.Now()
	for range n {
		got, err := r.Review(context.Background(), raw, audience)
		if err != nil || !got.Authenticated {
			t.Fatalf("%+v %v", got, err)
		}
	}
	t.Logf("one TokenReview: %s on average over %d", time.Since(start)/n, n)
}

func TestTheAPIServerRefuses(t *testing.T) {
	skipShort(t)
	ns := namespace(t, cs)
	good := token(t, cs, ns, audience, nil)
	forged := testenv.Forger(t, good)
	r := tokenreview.New(cs.AuthenticationV1())
	now := time.Now()
	for _, tc := range []struct {
		name   string
		raw    string
		now    time.Time
		reason string
	}{
		{"a token for another audience", token(t, cs, ns, "https://other.example", nil), now, saauth.ReasonAudience},
		{"a token of another issuer", forged(map[string]any{"iss": "https://issuer.example"}), now, saauth.ReasonRejected},
		{"a token of the cluster's issuer signed by another key", forged(nil), now, saauth.ReasonRejected},
		{"an expired token", good, now.Add(11 * time.Minute), saauth.ReasonExpired},
		{"a token not yet valid", good, now.Add(-time.Minute), saauth.ReasonNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verifier(cs, 0, func() time.Time { return tc.now })
			if err := verify(v, tc.raw); saauth.ReasonOf(err) != tc.reason {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
			// The API server agrees, without the local checks.
			got, err := r.Review(context.Background(), tc.raw, audience)
			if err != nil {
				t.Fatal(err)
			}
			if got.Authenticated && tc.reason != saauth.ReasonExpired && tc.reason != saauth.ReasonNotYetValid {
				t.Errorf("the API server authenticates it: %+v", got)
			}
		})
	}
}

// refusedWithin deletes something with del after the token was accepted and
// returns how long until it is refused, failing after limit.
func refusedWithin(t *testing.T, v *saauth.Verifier, raw string, del func(), limit time.Duration) time.Duration {
	t.Helper()
	if err := verify(v, raw); err != nil {
		t.Fatal(err)
	}
	del()
	start := time.Now()
	for {
		err := verify(v, raw)
		if saauth.ReasonOf(err) == saauth.ReasonRejected {
			return time.Since(start)
		}
		if err != nil {
			t.Fatalf("refused with %v", err)
		}
		if time.Since(start) > limit {
			t.Fatalf("still accepted %s after the deletion", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The 60s bound, with MaxAge 2s instead of 30s so that the test does not
// wait: what remains is kube-apiserver's own 10s cache of successful
// authentications. saauth's TestTheDefaultBoundIsWithin60s checks the default.
func TestADeletedServiceAccountOrPodIsRefusedWithinTheBound(t *testing.T) {
	skipShort(t)
	const maxAge = 2 * time.Second
	limit := maxAge + 10*time.Second + 3*time.Second
	ctx := context.Background()

	t.Run("ServiceAccount", func(t *testing.T) {
		ns := namespace(t, cs)
		v := verifier(cs, maxAge, nil)
		raw := token(t, cs, ns, audience, nil)
		took := refusedWithin(t, v, raw, func() {
			if err := cs.CoreV1().ServiceAccounts(ns).Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, limit)
		t.Logf("a token of a deleted ServiceAccount was refused %s after the deletion (MaxAge %s)", took.Round(10*time.Millisecond), maxAge)
	})
	t.Run("pod", func(t *testing.T) {
		ns := namespace(t, cs)
		pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "app"},
			Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v := verifier(cs, maxAge, nil)
		raw := token(t, cs, ns, audience, pod)
		a, err := saauth.Parse(raw)
		if err != nil || a.PodName != "app" {
			t.Fatalf("%+v %v", a, err)
		}
		other := token(t, cs, ns, audience, nil) // the ServiceAccount's unbound token lives on
		took := refusedWithin(t, v, raw, func() {
			zero := int64(0)
			if err := cs.CoreV1().Pods(ns).Delete(ctx, "app", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				t.Fatal(err)
			}
		}, limit)
		t.Logf("a token bound to a deleted pod was refused %s after the deletion (MaxAge %s)", took.Round(10*time.Millisecond), maxAge)
		if err := verify(v, other); err != nil {
			t.Errorf("the ServiceAccount's token not bound to the pod: %v", err)
		}
	})
}

// During an outage a cached verdict keeps working past MaxAge, and a token
// never seen fails closed at once with ReasonUnavailable; once the API
// server is back, the new token is accepted.
func TestAnOutage(t *testing.T) {
	env, cfg := testenv.RestartableForTest(t)
	c := kubernetes.NewForConfigOrDie(rest.CopyConfig(cfg))
	ns := namespace(t, c)
	cached, fresh := token(t, c, ns, audience, nil), token(t, c, ns, audience, nil)
	const maxAge = time.Second
	v := verifier(c, maxAge, nil)
	if err := verify(v, cached); err != nil {
		t.Fatal(err)
	}

	apiServer := env.ControlPlane.APIServer
	apiServer.StopTimeout = 3 * time.Second
	if err := apiServer.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting") {
		t.Fatal(err)
	}
	time.Sleep(maxAge) // every verdict is now older than MaxAge
	start := time.Now()
	if err := verify(v, cached); err != nil {
		t.Fatalf("a cached verdict during the outage: %v", err)
	}
	if err := verify(v, fresh); saauth.ReasonOf(err) != saauth.ReasonUnavailable {
		t.Fatalf("a new token during the outage: %v", err)
	}
	for range 100 {
		if err := verify(v, cached); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	t.Logf("102 verifications during the outage took %s; %d answered from verdicts older than MaxAge", took, v.Stale())
	if took > saauth.DefaultReviewTimeout+time.Second {
		t.Errorf("verifications waited on the API server: %s", took)
	}

	if err := apiServer.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := verify(v, fresh)
		if err == nil {
			break
		}
		if saauth.ReasonOf(err) != saauth.ReasonUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the API server came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
