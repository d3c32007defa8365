package controllers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestBuiltInKindsGoAsProtobufAndCustomOnesAsJSON: with the rest.Config
// NewManager is given (no ContentType), controller-runtime already speaks
// protobuf to the API server for Secrets and Events, the bulk of the
// controller's requests, and JSON for tokensmith's own kinds, which have no
// protobuf encoding. Setting ContentType to protobuf on the config instead
// would be applied to every kind: creating a TokenPolicySnapshot then fails
// ("does not implement the protobuf marshalling interface").
func TestBuiltInKindsGoAsProtobufAndCustomOnesAsJSON(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			format := r.Header.Get("Content-Type")
			if format == "" {
				format = r.Header.Get("Accept")
			}
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s %s %d %s", r.Method, r.URL.Path, status, format))
			mu.Unlock()
			return resp, err
		})
	})

	stopSuiteManager()
	t.Cleanup(func() {
		if err := startSuiteManager(); err != nil {
			t.Fatal(err)
		}
	})
	mgr, err := NewManager(c, ManagerOptions{MetricsBindAddress: BindOff, HealthProbeBindAddress: BindOff, SkipControllerNameValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, testOptions()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	oc := newOC(newNamespace(t), "app")
	create(t, oc)
	waitReason(t, oc, authv1alpha1.ReasonIssued)
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	var secretWrites int
	for _, s := range seen {
		f := strings.Fields(s)
		method, path, status, format := f[0], f[1], f[2], strings.Join(f[3:], " ")
		protobuf := strings.HasPrefix(format, "application/vnd.kubernetes.protobuf")
		switch {
		case status == "406" || status == "415":
			t.Errorf("%s: the API server refused the format", s)
		case strings.Contains(path, "/apis/auth.tokensmith.io/") && protobuf:
			t.Errorf("%s: protobuf for a custom kind", s)
		case (strings.HasSuffix(path, "/secrets") || strings.Contains(path, "/secrets/") || strings.HasSuffix(path, "/events")) && !protobuf:
			t.Errorf("%s: not protobuf", s)
		}
		if method == http.MethodPost && strings.HasSuffix(path, "/secrets") {
			secretWrites++
		}
	}
	if secretWrites == 0 {
		t.Fatalf("the controller created no Secret; requests: %v", seen)
	}
}
