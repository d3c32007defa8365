package resource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
)

// MaxRevocationsBytes keeps the revocations document well under the 1 MiB
// Secret limit (about 10,000 entries).
const MaxRevocationsBytes = 900 << 10

// ErrRevocationsFull means the revocations Secret has no room left for an
// entry that is not yet expired.
var ErrRevocationsFull = errors.New("resource: the revocations Secret is full")

// SecretRevoker records revocations in the Secret credstore.RevocationsSecretName
// of the server's namespace: read from the API server, append, prune expired
// entries, update with optimistic concurrency (retrying on conflict), and
// create the Secret if the controller has not. After a successful write it
// applies the revocation to Index at once; the other replicas get it from
// their informers. One write per revocation, none per issued token.
type SecretRevoker struct {
	Client    kubernetes.Interface
	Namespace string
	// Index, when set, applies the revocation to this replica immediately.
	Index *index.Index
	// Now is the clock used for pruning; default time.Now.
	Now    func() time.Time
	Logger logr.Logger
}

// revocationBackoff spreads concurrent writers from several replicas apart.
// client-go's DefaultRetry (5 tries, 10ms apart) gives up under a handful of
// simultaneous revocations; revocations are rare, so waiting up to a few
// seconds is better than answering 503.
var revocationBackoff = wait.Backoff{Steps: 12, Duration: 10 * time.Millisecond, Factor: 1.6, Jitter: 0.5, Cap: 2 * time.Second}

// Revoke implements Revoker.
func (s *SecretRevoker) Revoke(ctx context.Context, id string, expiresAt time.Time) error {
	if id == "" {
		return errors.New("resource: empty revocation id")
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	err := retry.RetryOnConflict(revocationBackoff, func() error {
		sec, err := secrets.Get(ctx, credstore.RevocationsSecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			data, err := encodeRevocations(nil, id, expiresAt, now)
			if err != nil {
				return err
			}
			_, err = secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{
					Name:      credstore.RevocationsSecretName,
					Namespace: s.Namespace,
					Labels:    map[string]string{credstore.LabelSecretType: credstore.TypeRevocations},
				},
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{credstore.DataKey: data},
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Another replica created it first: read it back and append.
				return apierrors.NewConflict(corev1.Resource("secrets"), credstore.RevocationsSecretName, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		var doc credstore.Revocations
		if raw, ok := sec.Data[credstore.DataKey]; ok {
			if err := credstore.Decode(raw, &doc); err != nil {
				// Refusing every revocation forever would be worse; the index keeps
				// serving the last good document it saw until this write replaces it.
				if s.Logger.GetSink() != nil {
					s.Logger.Error(nil, "revocations Secret does not parse; rewriting it", "secret", s.Namespace+"/"+sec.Name)
				}
				doc = credstore.Revocations{}
			}
		}
		data, err := encodeRevocations(doc.Entries, id, expiresAt, now)
		if err != nil {
			return err
		}
		sec = sec.DeepCopy()
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[credstore.DataKey] = data
		if sec.Labels == nil {
			sec.Labels = map[string]string{}
		}
		sec.Labels[credstore.LabelSecretType] = credstore.TypeRevocations
		_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("resource: recording revocation: %w", err)
	}
	if s.Index != nil {
		s.Index.Revoke(id, expiresAt)
	}
	return nil
}

// encodeRevocations adds id (or extends its expiry) and drops entries expired at now.
func encodeRevocations(entries []credstore.Revocation, id string, expiresAt, now time.Time) ([]byte, error) {
	kept := make([]credstore.Revocation, 0, len(entries)+1)
	found := false
	for _, e := range entries {
		if !e.ExpiresAt.After(now) {
			continue
		}
		if e.ID == id {
			found = true
			if expiresAt.After(e.ExpiresAt) {
				e.ExpiresAt = expiresAt
			}
		}
		kept = append(kept, e)
	}
	if !found {
		kept = append(kept, credstore.Revocation{ID: id, ExpiresAt: expiresAt.UTC().Truncate(time.Second).Add(time.Second)})
	}
	data, err := credstore.Encode(credstore.Revocations{Entries: kept})
	if err != nil {
		return nil, err
	}
	if len(data) > MaxRevocationsBytes {
		return nil, ErrRevocationsFull
	}
	return data, nil
}
