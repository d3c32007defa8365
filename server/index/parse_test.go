package index

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/internal/password"
)

func testKeys(t *testing.T) *keyset.Set {
	t.Helper()
	s := &keyset.Set{}
	if _, err := s.Reconcile(time.Now(), 0, 0); err != nil {
		t.Fatal(err)
	}
	return s
}

func secretDoc(t *testing.T, name, typ string, doc any) Secret {
	t.Helper()
	data, err := credstore.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	return Secret{Namespace: "tokensmith", Name: name, Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Type: typ, Data: data, HasData: true}
}

// TestParsedUsersKeepOnlyTheHash: a parsed user logs in with its parsed hash;
// the PHC string and the controller's PasswordSource are not kept.
func TestParsedUsersKeepOnlyTheHash(t *testing.T) {
	phc, err := password.Hash("pw", password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	ix := New(logrDiscard())
	ix.Upsert(secretDoc(t, "uv-alice", credstore.TypeUserVerifier, credstore.UserVerifier{
		Username: "alice", PasswordHash: phc, PasswordSource: "uid/42", CredentialGeneration: 3}))
	ix.rebuild()
	u := ix.Snapshot().User("alice")
	if u == nil || u.Hash == nil || !u.Hash.Verify("pw") || u.Hash.Verify("other") {
		t.Fatalf("alice does not log in with her password: %+v", u)
	}
	if u.PasswordHash != "" || u.PasswordSource != "" || u.CredentialGeneration != 3 {
		t.Fatalf("parsed user kept %q, %q (generation %d)", u.PasswordHash, u.PasswordSource, u.CredentialGeneration)
	}
}

// TestParseSharesRepeatedValues: equal namespaces, token formats, grant types
// and scopes are held once across verifiers, and every verifier still reads
// its own values.
func TestParseSharesRepeatedValues(t *testing.T) {
	doc := func(id string, scopes ...string) credstore.ClientVerifier {
		return credstore.ClientVerifier{Namespace: strings.Clone("apps"), ClientID: id, TokenFormat: strings.Clone("jwt"),
			GrantTypes: []string{strings.Clone("client_credentials"), "refresh_token"}, Scopes: scopes,
			Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, id)}}}
	}
	ix := New(logrDiscard())
	for _, s := range []Secret{
		secretDoc(t, "a", credstore.TypeClientVerifier, doc("a", "read", "write")),
		secretDoc(t, "b", credstore.TypeClientVerifier, doc("b", "read", "write")),
		secretDoc(t, "c", credstore.TypeClientVerifier, doc("c", "read")),
		// The same joined key as "a\x00b" with one element less: must not share.
		secretDoc(t, "d", credstore.TypeClientVerifier, doc("d", "x\x00y", "z")),
		secretDoc(t, "e", credstore.TypeClientVerifier, doc("e", "x", "y\x00z")),
	} {
		ix.Upsert(s)
	}
	ix.rebuild()
	s := ix.Snapshot()
	a, b, c, d, e := s.Client("a"), s.Client("b"), s.Client("c"), s.Client("d"), s.Client("e")
	if unsafe.SliceData(a.Scopes) != unsafe.SliceData(b.Scopes) || unsafe.SliceData(a.GrantTypes) != unsafe.SliceData(c.GrantTypes) {
		t.Fatal("equal slices are held twice")
	}
	if unsafe.StringData(a.Namespace) != unsafe.StringData(c.Namespace) || unsafe.StringData(a.TokenFormat) != unsafe.StringData(b.TokenFormat) {
		t.Fatal("equal strings are held twice")
	}
	for _, tc := range []struct {
		c    *Client
		want []string
	}{{a, []string{"read", "write"}}, {c, []string{"read"}}, {d, []string{"x\x00y", "z"}}, {e, []string{"x", "y\x00z"}}} {
		if !reflect.DeepEqual(tc.c.Scopes, tc.want) || tc.c.Namespace != "apps" || tc.c.TokenFormat != "jwt" ||
			!reflect.DeepEqual(tc.c.GrantTypes, []string{"client_credentials", "refresh_token"}) {
			t.Fatalf("client %s reads %+v", tc.c.ClientID, tc.c.ClientVerifier)
		}
	}
	if cap(a.Scopes) != len(a.Scopes) {
		t.Fatal("a shared slice has room to append into")
	}
}

// TestApplyingTheSameParseAgain: the informer hands the cached parse to the
// handler again on a resync or a relist; the index serves the same.
func TestApplyingTheSameParseAgain(t *testing.T) {
	ix := New(logrDiscard())
	// Enough others that one change is applied incrementally.
	for i := range 8 {
		id := fmt.Sprintf("other-%d", i)
		ix.Upsert(secretDoc(t, id, credstore.TypeClientVerifier, credstore.ClientVerifier{ClientID: id, ServiceAccountName: "sa"}))
	}
	p := Parse(secretDoc(t, "a", credstore.TypeClientVerifier, credstore.ClientVerifier{ClientID: "a",
		Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "x")}}}))
	ix.Apply("tokensmith", "a", p)
	ix.rebuild()
	first := ix.Snapshot().Client("a")
	full := ix.fullRebuilds.Load()
	ix.Apply("tokensmith", "a", p)
	ix.rebuild()
	if ix.Snapshot().Client("a") != first || ix.fullRebuilds.Load() != full {
		t.Fatal("the same parse applied again changed the client or needed a full rebuild")
	}
	if c, _ := ix.Snapshot().Counts(); c != 9 {
		t.Fatalf("%d clients", c)
	}
}

// TestAMalformedParseKeepsTheSigningKeys: Apply of a malformed parse keeps
// the last good signing keys, as Upsert did, and drops a verifier.
func TestAMalformedParseKeepsTheSigningKeys(t *testing.T) {
	ix := New(logrDiscard())
	ix.Upsert(secretDoc(t, credstore.SigningKeysSecretName, credstore.TypeSigningKeys, testKeys(t)))
	ix.Upsert(secretDoc(t, "a", credstore.TypeClientVerifier, credstore.ClientVerifier{ClientID: "a", ServiceAccountName: "sa"}))
	ix.rebuild()
	if ix.Snapshot().Keyring() == nil || ix.Snapshot().Client("a") == nil {
		t.Fatal("not loaded")
	}
	bad := func(name, typ string) Parsed {
		return Parse(Secret{Namespace: "tokensmith", Name: name, Type: typ, Data: []byte("["), HasData: true})
	}
	ix.Apply("tokensmith", credstore.SigningKeysSecretName, bad(credstore.SigningKeysSecretName, credstore.TypeSigningKeys))
	ix.Apply("tokensmith", "a", bad("a", credstore.TypeClientVerifier))
	ix.rebuild()
	if ix.Snapshot().Keyring() == nil {
		t.Fatal("malformed signing keys dropped the keyring")
	}
	if ix.Snapshot().Client("a") != nil {
		t.Fatal("a malformed verifier is still served")
	}
}

// TestABurstsChangeLogIsReleased: after the initial list (a burst of every
// Secret) the index does not keep a change log sized for all of them.
func TestABurstsChangeLogIsReleased(t *testing.T) {
	ix := New(logrDiscard())
	for i := range 2 * maxIncremental {
		id := fmt.Sprintf("c-%d", i)
		ix.Upsert(secretDoc(t, id, credstore.TypeClientVerifier, credstore.ClientVerifier{ClientID: id, ServiceAccountName: "sa"}))
	}
	before := reflect.ValueOf(ix.changed).Pointer()
	ix.rebuild()
	if len(ix.changed) != 0 || reflect.ValueOf(ix.changed).Pointer() == before {
		t.Fatal("the change log of a large burst is kept")
	}
}
