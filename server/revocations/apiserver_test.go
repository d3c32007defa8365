package revocations

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/internal/testenv"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/index/watch"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/resource"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// The real API server starts only for the tests that need it.
var (
	apiOnce sync.Once
	apiEnv  *envtest.Environment
	apiCS   kubernetes.Interface
	apiErr  error
)

func apiserver(t *testing.T) kubernetes.Interface {
	t.Helper()
	apiOnce.Do(func() {
		env, cfg, err := testenv.Start()
		if err != nil {
			apiErr = err
			return
		}
		apiEnv = env
		apiCS, apiErr = kubernetes.NewForConfig(cfg)
	})
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	return apiCS
}

// createNamespace creates the namespace ns.
func createNamespace(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// putSigningKeys writes a fresh signing-key Secret into ns and returns the keys.
func putSigningKeys(t *testing.T, cs kubernetes.Interface, ns string) *keyset.Set {
	t.Helper()
	keys := &keyset.Set{}
	if _, err := keys.Reconcile(time.Now(), 0, 0); err != nil {
		t.Fatal(err)
	}
	putSecret(t, cs, ns, credstore.SigningKeysSecretName, credstore.TypeSigningKeys, keys)
	return keys
}

func TestMain(m *testing.M) {
	code := m.Run()
	if apiEnv != nil {
		_ = apiEnv.Stop()
	}
	os.Exit(code)
}

func putSecret(t *testing.T, cs kubernetes.Interface, ns, name, typ string, doc any) {
	t.Helper()
	data, err := credstore.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		s.Data = map[string][]byte{credstore.DataKey: data}
		if _, err := cs.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{credstore.LabelSecretType: typ}},
		Data:       map[string][]byte{credstore.DataKey: data},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// replica is one token server pod's index and resource endpoints.
type replica struct {
	ix      *index.Index
	revoker *SecretRevoker
	server  *httptest.Server
	stop    func()
}

func startReplica(t *testing.T, cs kubernetes.Interface, ns string) *replica {
	t.Helper()
	ix := index.New(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := watch.Run(ctx, ix, cs, ns); err != nil && ctx.Err() == nil {
			t.Errorf("index: %v", err)
		}
	}()
	rv := &SecretRevoker{Client: cs, Namespace: ns, Index: ix}
	srv := httptest.NewServer(st.Mount(resource.New(resource.Options{Index: ix, Issuer: issuer, Revoker: rv}).Mount))
	rep := &replica{ix: ix, revoker: rv, server: srv}
	var once sync.Once
	rep.stop = func() { once.Do(func() { srv.Close(); cancel(); <-done }) }
	t.Cleanup(rep.stop)
	within(t, time.Minute, "replica ready", ix.Ready)
	return rep
}

func (r *replica) call(t *testing.T, path, auth string, kv ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", r.server.URL+path, strings.NewReader(form(kv...)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", auth)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (r *replica) active(t *testing.T, tok string) bool {
	t.Helper()
	status, body := r.call(t, resource.PathIntrospect, basic("rs", "rs-secret"), "token", tok)
	if status != 200 {
		t.Fatalf("introspection answered %d %s", status, body)
	}
	return strings.HasPrefix(body, `{"active":true`)
}

func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not within %v: %s", d, what)
	return 0
}

func TestRevocationReachesEveryReplicaAndSurvivesRestarts(t *testing.T) {
	cs := apiserver(t)
	const ns = "tokensmith-system"
	createNamespace(t, cs, ns)
	keys := putSigningKeys(t, cs, ns)
	for i, c := range st.ResourceClients() {
		putSecret(t, cs, ns, fmt.Sprintf("client-%d", i), credstore.TypeClientVerifier, c)
	}
	putSecret(t, cs, ns, "user-alice", credstore.TypeUserVerifier, st.ResourceUsers(false)[0])

	kr, err := tokens.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(c *tokens.Claims, f tokens.Format, prefix string) string {
		c.Issuer, c.IssuedAt, c.ExpiresAt = issuer, time.Now(), time.Now().Add(time.Hour)
		tok, err := kr.Mint(c, f, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	userSession := func(sid string) (string, string) {
		a := mint(&tokens.Claims{Kind: tokens.Access, Subject: "alice", ClientID: "mobile", SessionID: sid, Generation: 1}, tokens.FormatES256, "")
		r := mint(&tokens.Claims{Kind: tokens.Refresh, Subject: "alice", ClientID: "mobile", SessionID: sid, Generation: 1}, tokens.FormatOpaque, tokens.PrefixRefresh)
		return a, r
	}
	svcTok := mint(&tokens.Claims{Kind: tokens.Access, Subject: "svc", ClientID: "svc"}, tokens.FormatOpaque, tokens.PrefixClientToken)
	access1, refresh1 := userSession("sid-1")
	access2, _ := userSession("sid-2")

	a, b := startReplica(t, cs, ns), startReplica(t, cs, ns)
	for _, tok := range []string{svcTok, access1, refresh1, access2} {
		if !a.active(t, tok) || !b.active(t, tok) {
			t.Fatal("a fresh token is not active")
		}
	}

	t.Run("a revocation on one replica reaches the other within a second", func(t *testing.T) {
		if status, body := a.call(t, resource.PathRevoke, basic("svc", "svc-secret"), "token", svcTok); status != 200 {
			t.Fatalf("revoke: %d %s", status, body)
		}
		if a.active(t, svcTok) {
			t.Fatal("the revoking replica still accepts the token")
		}
		d := within(t, time.Second, "replica b sees the revocation", func() bool { return !b.active(t, svcTok) })
		t.Logf("replica b refused the token %v after the revocation", d)
	})
	t.Run("revoking a refresh token ends the session on every replica", func(t *testing.T) {
		if status, _ := b.call(t, resource.PathRevoke, basic("mobile", "mobile-secret"), "token", refresh1); status != 200 {
			t.Fatalf("revoke: %d", status)
		}
		within(t, time.Second, "session ended on a", func() bool { return !a.active(t, access1) && !a.active(t, refresh1) })
		if !a.active(t, access2) {
			t.Fatal("another session ended too")
		}
	})
	t.Run("concurrent revocations on both replicas are all recorded", func(t *testing.T) {
		var toks []string
		for i := range 6 {
			at, _ := userSession(fmt.Sprintf("sid-c%d", i))
			toks = append(toks, at)
		}
		var wg sync.WaitGroup
		for i, tok := range toks {
			rep := a
			if i%2 == 1 {
				rep = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, body := rep.call(t, resource.PathRevoke, basic("mobile", "mobile-secret"), "token", tok); status != 200 {
					t.Errorf("revoke: %d %s", status, body)
				}
			}()
		}
		wg.Wait()
		within(t, time.Second, "every revocation on both replicas", func() bool {
			for _, tok := range toks {
				if a.active(t, tok) || b.active(t, tok) {
					return false
				}
			}
			return true
		})
	})
	t.Run("log out everywhere (sessionsNotBefore) ends sessions on every replica", func(t *testing.T) {
		u := st.ResourceUsers(false)[0]
		snb := time.Now().Add(time.Second)
		u.SessionsNotBefore = &snb
		putSecret(t, cs, ns, "user-alice", credstore.TypeUserVerifier, u)
		within(t, time.Second, "sid-2 ended", func() bool { return !a.active(t, access2) && !b.active(t, access2) })
	})
	t.Run("restarted replicas still refuse revoked tokens", func(t *testing.T) {
		a.stop()
		b.stop()
		c, d := startReplica(t, cs, ns), startReplica(t, cs, ns)
		for _, rep := range []*replica{c, d} {
			if rep.active(t, svcTok) || rep.active(t, refresh1) {
				t.Fatal("a restart brought a revoked token back")
			}
		}
		sec, err := cs.CoreV1().Secrets(ns).Get(context.Background(), credstore.RevocationsSecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var doc credstore.Revocations
		if err := credstore.Decode(sec.Data[credstore.DataKey], &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Entries) != 8 {
			t.Fatalf("the revocations Secret holds %d entries, want 8", len(doc.Entries))
		}
	})
}

func TestSecretRevokerPrunesExpiredEntries(t *testing.T) {
	cs := apiserver(t)
	const ns = "tokensmith-prune"
	createNamespace(t, cs, ns)
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rv := &SecretRevoker{Client: cs, Namespace: ns, Now: func() time.Time { return clock }}
	ctx := context.Background()
	if err := rv.Revoke(ctx, credstore.Revocation{ID: "short", ExpiresAt: clock.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := rv.Revoke(ctx, credstore.Revocation{ID: "long", ExpiresAt: clock.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Minute)
	if err := rv.Revoke(ctx, credstore.Revocation{ID: "later", ExpiresAt: clock.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, credstore.RevocationsSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Labels[credstore.LabelSecretType] != credstore.TypeRevocations {
		t.Fatalf("labels %v", sec.Labels)
	}
	var doc credstore.Revocations
	_ = credstore.Decode(sec.Data[credstore.DataKey], &doc)
	var ids []string
	for _, e := range doc.Entries {
		ids = append(ids, e.ID)
	}
	if strings.Join(ids, ",") != "long,later" {
		t.Fatalf("entries %v, want the expired one pruned", ids)
	}
}
