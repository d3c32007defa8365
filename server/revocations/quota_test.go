package revocations

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/resource"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// Issue 15, finding 5: any client could mint and revoke its own tokens, each
// revocation rewrote the whole revocations Secret, and entries lived until
// the token's exp; at about 13k entries /oauth/revoke answered 503 for every
// tenant. Now each client (and each namespace) has a quota of live entries,
// one client at its quota leaves the others unaffected, and revocations
// arriving together are written together.
func TestOneClientCannotFillTheRevocationListForEveryone(t *testing.T) {
	cs := apiserver(t)
	const ns = "tokensmith-quota"
	ctx := context.Background()
	createNamespace(t, cs, ns)
	keys := putSigningKeys(t, cs, ns)
	for _, c := range []struct{ id, namespace string }{{"greedy", "team-x"}, {"polite", "team-y"}, {"rs", "team-z"}} {
		putSecret(t, cs, ns, "client-"+c.id, credstore.TypeClientVerifier, credstore.ClientVerifier{
			Namespace: c.namespace, Name: c.id, ClientID: c.id, GrantTypes: []string{"client_credentials"},
			Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, c.id+"-secret")}}})
	}
	kr, err := tokens.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(client string) string {
		c := &tokens.Claims{Kind: tokens.Access, Issuer: issuer, Subject: client, ClientID: client,
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(366 * 24 * time.Hour)}
		tok, err := kr.Mint(c, tokens.FormatOpaque, tokens.PrefixClientToken)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a := startReplica(t, cs, ns)

	// Count every write of the revocations Secret, as etcd sees them.
	w, err := cs.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", credstore.RevocationsSecretName).String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var writes int
	var writesMu sync.Mutex
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				writesMu.Lock()
				writes++
				writesMu.Unlock()
			}
		}
	}()

	const extra = 20
	toks := make([]string, resource.MaxRevocationsPerClient+extra)
	for i := range toks {
		toks[i] = mint("greedy")
	}
	statuses := make([]int, len(toks))
	bodies := make([]string, len(toks))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	start := time.Now()
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			statuses[i], bodies[i] = a.call(t, resource.PathRevoke, basic("greedy", "greedy-secret"), "token", tok)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var ok, refused int
	var stillActive []string
	for i, st := range statuses {
		switch st {
		case 200:
			ok++
		case 503:
			refused++
			if !strings.Contains(bodies[i], `"temporarily_unavailable"`) {
				t.Fatalf("a refused revocation answered %s", bodies[i])
			}
			stillActive = append(stillActive, toks[i])
		default:
			t.Fatalf("revocation answered %d %s", st, bodies[i])
		}
	}
	time.Sleep(500 * time.Millisecond) // let the watch deliver the last write
	writesMu.Lock()
	n := writes
	writesMu.Unlock()
	t.Logf("%d revocations by one client in %v: %d recorded, %d refused at its quota of %d; %d Secret writes",
		len(toks), elapsed.Round(time.Millisecond), ok, refused, resource.MaxRevocationsPerClient, n)
	if ok != resource.MaxRevocationsPerClient || refused != extra {
		t.Fatalf("%d recorded and %d refused, want %d and %d (the per-client quota)", ok, refused, resource.MaxRevocationsPerClient, extra)
	}
	// Without coalescing every revocation was its own rewrite of the whole Secret.
	if n > len(toks)/10 {
		t.Fatalf("%d revocations cost %d writes of the Secret: writes are not coalesced", len(toks), n)
	}
	// A refused revocation is never a false 200: those tokens still work, the others do not.
	for _, tok := range stillActive {
		if !a.active(t, tok) {
			t.Fatal("a token whose revocation was refused is inactive")
		}
	}
	for i, tok := range toks {
		if statuses[i] == 200 && a.active(t, tok) {
			t.Fatal("a token whose revocation answered 200 is still active")
		}
	}

	t.Run("another client revokes normally while the first is at its quota", func(t *testing.T) {
		tok := mint("polite")
		if status, body := a.call(t, resource.PathRevoke, basic("polite", "polite-secret"), "token", tok); status != 200 {
			t.Fatalf("the other client's revocation answered %d %s", status, body)
		}
		if a.active(t, tok) {
			t.Fatal("the other client's token is still active")
		}
	})
	t.Run("revoking an already revoked token answers 200 and writes nothing", func(t *testing.T) {
		version := func() string {
			sec, err := cs.CoreV1().Secrets(ns).Get(ctx, credstore.RevocationsSecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return sec.ResourceVersion
		}
		before := version()
		if status, _ := a.call(t, resource.PathRevoke, basic("greedy", "greedy-secret"), "token", toks[0]); status != 200 {
			t.Fatalf("status %d", status)
		}
		time.Sleep(300 * time.Millisecond)
		if after := version(); after != before {
			t.Fatalf("the Secret was written (resourceVersion %s -> %s) for a token already revoked", before, after)
		}
	})
	t.Run("the Secret stays small", func(t *testing.T) {
		sec, err := cs.CoreV1().Secrets(ns).Get(ctx, credstore.RevocationsSecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		size := len(sec.Data[credstore.DataKey])
		t.Logf("revocations Secret: %d bytes for %d entries", size, resource.MaxRevocationsPerClient+1)
		if size > MaxRevocationsBytes/6 {
			t.Fatalf("one client's quota takes %d bytes, more than a sixth of %d", size, MaxRevocationsBytes)
		}
	})
}

// The per-namespace quota: a namespace's clients share it, so creating more
// OAuthClients does not multiply what one team may hold.
func TestRevocationQuotaIsSharedByANamespace(t *testing.T) {
	cs := apiserver(t)
	const ns = "tokensmith-quota-ns"
	ctx := context.Background()
	createNamespace(t, cs, ns)
	rv := &SecretRevoker{Client: cs, Namespace: ns, PerClient: 3, PerNamespace: 5, WriteInterval: time.Millisecond}
	exp := time.Now().Add(time.Hour)
	revoke := func(client, namespace string, i int) error {
		return rv.Revoke(ctx, credstore.Revocation{ID: fmt.Sprintf("%s-%d", client, i), ExpiresAt: exp, Client: client, Namespace: namespace})
	}
	for i := range 3 {
		if err := revoke("a1", "team-a", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := revoke("a1", "team-a", 3); err != resource.ErrRevocationQuota {
		t.Fatalf("the client's 4th entry: %v, want resource.ErrRevocationQuota", err)
	}
	for i := range 2 {
		if err := revoke("a2", "team-a", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := revoke("a3", "team-a", 0); err != resource.ErrRevocationQuota {
		t.Fatalf("the namespace's 6th entry: %v, want resource.ErrRevocationQuota", err)
	}
	if err := revoke("b1", "team-b", 0); err != nil {
		t.Fatalf("another namespace: %v", err)
	}
	if err := revoke("a1", "team-a", 0); err != nil {
		t.Fatalf("an entry already recorded counts once: %v", err)
	}
}
