package watch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
)

// BenchmarkStart measures the token server's start without the API server:
// 10,000 client and 10,000 user verifiers listed (from client-go's fake
// clientset, which lists a deep copy), parsed, cached and indexed, up to the
// first snapshot. With -cpuprofile it shows the server's side of Ready.
func BenchmarkStart(b *testing.B) {
	const n = 10000
	objs := make([]runtime.Object, 0, 2*n)
	for i := range n {
		name := fmt.Sprintf("bench-client-%06d", i)
		kd, ad := credstore.DigestOf(credstore.PurposeAPIKey, name), credstore.DigestOf(credstore.PurposeAPISecret, name)
		objs = append(objs, benchSecret(b, "cv-"+name, credstore.TypeClientVerifier, credstore.ClientVerifier{
			Namespace: "bench", Name: name, ClientID: name, NumericID: int64(i + 1),
			GrantTypes: []string{"client_credentials", "session", "password", "refresh_token"}, Scopes: []string{"read", "write"},
			TokenFormat: "jwt", Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, name), APIKey: &kd, APISecret: &ad}},
		}))
		user := fmt.Sprintf("bench-user-%06d", i)
		salt := fmt.Sprintf("%022d", i)
		objs = append(objs, benchSecret(b, "uv-"+user, credstore.TypeUserVerifier, credstore.UserVerifier{
			Namespace: "bench", Name: user, Username: user, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + salt + salt[:21],
			Scopes: []string{"read", "write"}, CredentialGeneration: 1, PasswordSource: "bench/1", KnownDevices: []string{"bench-device"},
		}))
	}
	cs := fake.NewClientset(objs...)
	for b.Loop() {
		ix := index.New(logr.Discard())
		inf, reg, err := informer(ix, cs, "tokensmith")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go inf.RunWithContext(ctx)
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, reg.HasSynced) {
			b.Fatal("never synced")
		}
		served, stop := context.WithCancel(ctx)
		stop()
		ix.Serve(served, "tokensmith")
		cancel()
		if c, u := ix.Snapshot().Counts(); c != n || u != n {
			b.Fatalf("%d clients, %d users", c, u)
		}
	}
}

func benchSecret(b *testing.B, name, typ string, doc any) *corev1.Secret {
	b.Helper()
	data, err := credstore.Encode(doc)
	if err != nil {
		b.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tokensmith", UID: "00000000-0000-0000-0000-000000000000",
		ResourceVersion: "1", CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		Labels: map[string]string{credstore.LabelSecretType: typ, "app.kubernetes.io/managed-by": "tokensmith"}},
		Data: map[string][]byte{credstore.DataKey: data}}
}
