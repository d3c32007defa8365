package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/internal/password"
)

const (
	serverNamespace = "tokensmith-system"
	// referenceNamespace holds the -scale reference server's verifiers.
	referenceNamespace = "tokensmith-reference"
	// deviceLoginClient is client 0: it has the password grant and is the server's --device-login-client.
	deviceLoginClient = "bc-00000"
	userPassword      = "bench-password-correct-horse"
	numericBase       = 100000
)

// clientCred is what a load worker sends for one client.
type clientCred struct {
	ID, Secret     string
	NumericID      int64
	APIKey, APISec string
	Opaque         bool
}

func (f *fixtures) len() int { return len(f.clients) }

type fixtures struct {
	ns      string // the namespace they are in
	clients []clientCred
	users   []string // usernames; every one has userPassword
	phc     string   // the users' shared argon2id hash of userPassword
}

func verifierSecret(ns, name, typ, owner string, doc []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
				credstore.LabelSecretType:   typ,
			},
			Annotations: map[string]string{credstore.AnnotationOwner: owner},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{credstore.DataKey: doc},
	}
}

// writeFixtures writes nClients client verifiers, nUsers user verifiers and a
// signing-keys Secret into the server namespace (the verifiers through sink,
// in parallel). Users share one precomputed argon2id hash (password.Default)
// of userPassword.
func writeFixtures(ctx context.Context, c client.Client, sink secretSink, nClients, nUsers int) (*fixtures, time.Duration, error) {
	return growFixtures(ctx, c, sink, serverNamespace, nil, nClients, nUsers)
}

// growFixtures writes the verifiers f lacks up to nClients and nUsers (all of
// them, namespace ns and its signing keys when f is nil) and returns f grown.
// Objects are made by the writers as they go, so that 100,000 of them are
// never all in memory at once.
func growFixtures(ctx context.Context, c client.Client, sink secretSink, ns string, f *fixtures, nClients, nUsers int) (*fixtures, time.Duration, error) {
	start := time.Now()
	if f == nil {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, 0, err
		}
		set := &keyset.Set{}
		if _, err := set.Reconcile(time.Now(), 720*time.Hour, 8800*time.Hour); err != nil {
			return nil, 0, err
		}
		doc, err := credstore.Encode(set)
		if err != nil {
			return nil, 0, err
		}
		ks := verifierSecret(ns, credstore.SigningKeysSecretName, credstore.TypeSigningKeys, "", doc)
		delete(ks.Annotations, credstore.AnnotationOwner)
		if err := c.Create(ctx, ks); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, 0, err
		}
		phc, err := password.Hash(userPassword, password.Default)
		if err != nil {
			return nil, 0, err
		}
		f = &fixtures{ns: ns, phc: phc}
	}
	c0, u0 := len(f.clients), len(f.users)
	for i := c0; i < nClients; i++ {
		sec, err := credstore.RandomSecret(32)
		if err != nil {
			return nil, 0, err
		}
		key, _ := credstore.RandomSecret(16)
		apisec, _ := credstore.RandomSecret(32)
		f.clients = append(f.clients, clientCred{ID: fmt.Sprintf("bc-%05d", i), Secret: sec, NumericID: int64(numericBase + i), APIKey: key, APISec: apisec, Opaque: i%2 == 1})
	}
	for i := u0; i < nUsers; i++ {
		f.users = append(f.users, fmt.Sprintf("user-%05d@bench.test", i))
	}
	clientObj := func(i int) (*corev1.Secret, error) {
		cc := f.clients[i]
		kd, ad := credstore.DigestOf(credstore.PurposeAPIKey, cc.APIKey), credstore.DigestOf(credstore.PurposeAPISecret, cc.APISec)
		format := "jwt"
		if cc.Opaque {
			format = "opaque"
		}
		name := fmt.Sprintf("bench-client-%05d", i)
		v := credstore.ClientVerifier{
			Namespace: "bench", Name: name, ClientID: cc.ID, NumericID: cc.NumericID,
			GrantTypes:  []string{"client_credentials", "session", "password", "refresh_token"},
			Scopes:      []string{"read", "write"},
			TokenFormat: format,
			Secrets:     []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, cc.Secret), APIKey: &kd, APISecret: &ad}},
		}
		doc, err := credstore.Encode(v)
		if err != nil {
			return nil, err
		}
		return verifierSecret(f.ns, credstore.ClientVerifierName("bench", name), credstore.TypeClientVerifier, "bench/"+name, doc), nil
	}
	userObj := func(i int) (*corev1.Secret, error) {
		name := fmt.Sprintf("bench-user-%05d", i)
		v := credstore.UserVerifier{
			Namespace: "bench", Name: name, Username: f.users[i], PasswordHash: f.phc,
			Scopes: []string{"read", "write"}, CredentialGeneration: 1, PasswordSource: "bench/1",
			KnownDevices: []string{"bench-device"},
		}
		doc, err := credstore.Encode(v)
		if err != nil {
			return nil, err
		}
		return verifierSecret(f.ns, credstore.UserVerifierName("bench", name), credstore.TypeUserVerifier, "bench/"+name, doc), nil
	}
	nc, total := nClients-c0, (nClients-c0)+(nUsers-u0)
	objAt := func(i int) (*corev1.Secret, error) {
		if i < nc {
			return clientObj(c0 + i)
		}
		return userObj(u0 + i - nc)
	}
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		fail atomic.Value
	)
	b := sink.batch()
	for range sink.parallel() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			objs := make([]*corev1.Secret, 0, b)
			for fail.Load() == nil {
				first := int(next.Add(int64(b))) - b
				if first >= total {
					return
				}
				objs = objs[:0]
				for i := first; i < min(first+b, total); i++ {
					obj, err := objAt(i)
					if err != nil {
						fail.CompareAndSwap(nil, err)
						return
					}
					objs = append(objs, obj)
				}
				if err := sink.write(ctx, objs); err != nil && !apierrors.IsAlreadyExists(err) {
					fail.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := fail.Load().(error); ok {
		return nil, 0, err
	}
	if _, direct := sink.(*etcdSink); direct {
		if err := waitVisible(ctx, c, f.ns, fmt.Sprintf("bench-fixtures-%d-%d", nClients, nUsers)); err != nil {
			return nil, 0, err
		}
	}
	return f, time.Since(start), nil
}
