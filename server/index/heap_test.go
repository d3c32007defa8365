package index

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/password"
)

// benchDocs returns the documents of n client and n user verifiers shaped
// like the bench's (hack/bench/fixtures.go): each with its own digests and
// password hash.
func benchDocs(b *testing.B, n int) []Secret {
	b.Helper()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]Secret, 0, 2*n)
	for i := range n {
		name := fmt.Sprintf("bench-client-%06d", i)
		kd, ad := credstore.DigestOf(credstore.PurposeAPIKey, name), credstore.DigestOf(credstore.PurposeAPISecret, name)
		doc, err := credstore.Encode(credstore.ClientVerifier{
			Namespace: "bench", Name: name, ObjectRef: credstore.ObjectRef{UID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Created: &created},
			ClientID: "id-" + name, NumericID: int64(i + 1),
			GrantTypes:  []string{"client_credentials", "session", "password", "refresh_token"},
			Scopes:      []string{"read", "write"},
			TokenFormat: "jwt",
			Secrets:     []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, name), APIKey: &kd, APISecret: &ad}},
		})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, Secret{Namespace: "tokensmith", Name: "cv-" + name, Created: created, Type: credstore.TypeClientVerifier, Data: doc, HasData: true})
	}
	for i := range n {
		name := fmt.Sprintf("bench-user-%06d", i)
		salt := fmt.Sprintf("%022d", i)
		doc, err := credstore.Encode(credstore.UserVerifier{
			Namespace: "bench", Name: name, ObjectRef: credstore.ObjectRef{UID: fmt.Sprintf("10000000-0000-0000-0000-%012d", i), Created: &created},
			Username: name, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + salt + salt[:21],
			Scopes: []string{"read", "write"}, CredentialGeneration: 1, PasswordSource: "bench/1",
			KnownDevices: []string{"bench-device"},
		})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, Secret{Namespace: "tokensmith", Name: "uv-" + name, Created: created, Type: credstore.TypeUserVerifier, Data: doc, HasData: true})
	}
	if _, err := password.Parse("$argon2id$v=19$m=19456,t=2,p=1$" + fmt.Sprintf("%022d", 0) + "$" + fmt.Sprintf("%022d", 0) + fmt.Sprintf("%022d", 0)[:21]); err != nil {
		b.Fatalf("bench password hash: %v", err)
	}
	return out
}

// loaded keeps the last index BenchmarkLoadedHeap built alive, for its heap
// profile (-memprofile).
var loaded *Index

// BenchmarkLoadedHeap loads 10,000 client and 10,000 user verifiers into an
// index and reports the live heap each one costs (the index alone: the
// informer's cache adds its key and a small object per Secret), and the time
// to parse and apply them all and publish the snapshot.
func BenchmarkLoadedHeap(b *testing.B) {
	const n = 10000
	docs := benchDocs(b, n)
	var perVerifier float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix := New(logrDiscard())
		for _, s := range docs {
			ix.Apply(s.Namespace, s.Name, Parse(s))
		}
		ix.rebuild()
		if c, u := ix.Snapshot().Counts(); c != n || u != n {
			b.Fatalf("%d clients, %d users", c, u)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perVerifier = float64(after.HeapAlloc-before.HeapAlloc) / (2 * n)
		loaded = ix
	}
	b.ReportMetric(perVerifier, "heapB/verifier")
}
