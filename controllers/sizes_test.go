package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// distinct returns n different strings of exactly length characters.
func distinct(n, length int) []string {
	out := make([]string, n)
	for i := range out {
		p := fmt.Sprintf("%04d", i)
		out[i] = p + strings.Repeat("x", length-len(p))
	}
	return out
}

// maxVerifierBytes bounds the verifier of a User at the CRD's maximum size:
// what one User costs the token server (it holds the verifier's strings; the
// argon2id hash is fixed-size). Before issue 15 the bounds allowed about 120 KB.
const maxVerifierBytes = 16 << 10

// TestObjectSizesAreBounded replays issue 15's finding 8 (sizes): every list
// and string of a User and an OAuthClient is bounded by the CRD, the API server
// refuses anything larger, and a User at the maximum costs the token server a
// verifier of at most maxVerifierBytes.
func TestObjectSizesAreBounded(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	users := []struct {
		name string
		spec func(*authv1alpha1.UserSpec)
	}{
		{"33 scopes", func(s *authv1alpha1.UserSpec) { s.Scopes = distinct(33, 8) }},
		{"a scope of 129 characters", func(s *authv1alpha1.UserSpec) { s.Scopes = distinct(1, 129) }},
		{"17 clients", func(s *authv1alpha1.UserSpec) { s.Clients = distinct(17, 8) }},
		{"a client id of 129 characters", func(s *authv1alpha1.UserSpec) { s.Clients = distinct(1, 129) }},
		{"17 deauthorized devices", func(s *authv1alpha1.UserSpec) { s.DeauthorizedDevices = distinct(17, 8) }},
		{"a deauthorized device of 201 characters", func(s *authv1alpha1.UserSpec) { s.DeauthorizedDevices = distinct(1, 201) }},
		{"a username of 255 characters", func(s *authv1alpha1.UserSpec) { s.Username = strings.Repeat("u", 255) }},
	}
	for i, tc := range users {
		t.Run("a User with "+tc.name+" is refused", func(t *testing.T) {
			u := newUser(ns, fmt.Sprintf("big-%d", i), fmt.Sprintf("big-%d-%s", i, ns))
			tc.spec(&u.Spec)
			if err := k8s.Create(ctx, u); !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
		})
	}
	clients := []struct {
		name string
		want string // in the error
		spec func(*authv1alpha1.OAuthClientSpec)
	}{
		{"65 scopes", "must have at most 64 items", func(s *authv1alpha1.OAuthClientSpec) { s.Scopes = distinct(65, 8) }},
		{"a scope of 129 characters", "may not be more than 128", func(s *authv1alpha1.OAuthClientSpec) { s.Scopes = distinct(1, 129) }},
		{"an accessTokenTTL of 33 characters", "may not be more than 32", func(s *authv1alpha1.OAuthClientSpec) {
			s.AccessTokenTTL = &metav1.Duration{Duration: time.Hour}
		}},
	}
	for i, tc := range clients {
		t.Run("an OAuthClient with "+tc.name+" is refused", func(t *testing.T) {
			oc := newOC(ns, fmt.Sprintf("big-%d", i))
			tc.spec(&oc.Spec)
			var err error
			if oc.Spec.AccessTokenTTL != nil {
				// metav1.Duration always marshals short: send the long form by hand.
				raw := fmt.Sprintf(`{"apiVersion":"auth.tokensmith.io/v1alpha1","kind":"OAuthClient","metadata":{"name":%q,"namespace":%q},"spec":{"accessTokenTTL":%q}}`,
					oc.Name, ns, strings.Repeat("0", 31)+"1h")
				err = k8s.Patch(ctx, oc, client.RawPatch(types.ApplyPatchType, []byte(raw)), client.FieldOwner("test"))
			} else {
				err = k8s.Create(ctx, oc)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want Invalid (%s), got %v", tc.want, err)
			}
		})
	}

	// A User at every maximum is accepted, and stays small for the token server.
	u := newUser(ns, "max", strings.Repeat("m", 254-len(ns))+ns, func(u *authv1alpha1.User) {
		u.Spec.Scopes = distinct(32, 128)
		u.Spec.Clients = distinct(16, 128)
		u.Spec.DeauthorizedDevices = distinct(16, 200)
	})
	create(t, u)
	waitReason(t, u, authv1alpha1.ReasonIssued)
	devices := make([]authv1alpha1.DeviceStatus, 16)
	for i, name := range distinct(16, 200) {
		devices[i] = authv1alpha1.DeviceStatus{Name: name, FirstSeen: metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))}
	}
	patchDevices := func(d []authv1alpha1.DeviceStatus) error {
		body, err := json.Marshal(map[string]any{"status": map[string]any{"devices": d}})
		if err != nil {
			t.Fatal(err)
		}
		return k8s.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, body))
	}
	t.Run("status with 17 devices is refused", func(t *testing.T) {
		more := append(append([]authv1alpha1.DeviceStatus{}, devices...), authv1alpha1.DeviceStatus{Name: "one-more", FirstSeen: devices[0].FirstSeen})
		if err := patchDevices(more); !apierrors.IsInvalid(err) {
			t.Fatalf("want Invalid, got %v", err)
		}
	})
	t.Run("status with a device name of 201 characters is refused", func(t *testing.T) {
		if err := patchDevices([]authv1alpha1.DeviceStatus{{Name: distinct(1, 201)[0], FirstSeen: devices[0].FirstSeen}}); !apierrors.IsInvalid(err) {
			t.Fatalf("want Invalid, got %v", err)
		}
	})
	if err := patchDevices(devices); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		s := getSecret(t, serverNamespace, credstore.UserVerifierName(ns, "max"))
		var v credstore.UserVerifier
		if err := credstore.Decode(s.Data[credstore.DataKey], &v); err != nil {
			return err
		}
		if len(v.KnownDevices) != 16 {
			return fmt.Errorf("verifier knows %d devices", len(v.KnownDevices))
		}
		if n := len(s.Data[credstore.DataKey]); n > maxVerifierBytes {
			t.Fatalf("the verifier of a User at the maximum size is %d bytes, want at most %d", n, maxVerifierBytes)
		}
		t.Logf("verifier of a User at the maximum size: %d bytes", len(s.Data[credstore.DataKey]))
		return nil
	})
}
