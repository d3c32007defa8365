// Package revocations writes /oauth/revoke's revocations into the
// revocations Secret that every replica's index watches. It is apart from
// server/resource so that the resource endpoints and their fuzz targets do
// not compile the Kubernetes client.
package revocations

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	"github.com/tokensmith/tokensmith/server/resource"
)

// MaxRevocationsBytes keeps the revocations document well under the 1 MiB
// Secret limit (about 8,500 entries of about 106 bytes).
const MaxRevocationsBytes = 900 << 10

// DefaultRevocationWriteInterval is the shortest time between two writes of
// the revocations Secret by one replica. Revocations that arrive meanwhile
// are written together, in one update: however many revocations a client
// sends, a replica rewrites the Secret at most 4 times a second.
const DefaultRevocationWriteInterval = 250 * time.Millisecond

// ErrRevocationsFull means the revocations Secret has no room left for an
// entry that is not yet expired.
var ErrRevocationsFull = errors.New("revocations: the revocations Secret is full")

// SecretRevoker records revocations in the Secret credstore.RevocationsSecretName
// of the server's namespace: read from the API server, append, prune expired
// entries, update with optimistic concurrency (retrying on conflict), and
// create the Secret if the controller has not. Revocations that arrive
// while a write is under way or within WriteInterval of the last are
// coalesced into the next write; each caller waits for the write that holds
// its entry. After a successful write it applies the revocations to Index at
// once; the other replicas get them from their informers. No write per
// issued token, and at most one write per WriteInterval.
type SecretRevoker struct {
	Client    kubernetes.Interface
	Namespace string
	// Index, when set, applies the revocation to this replica immediately.
	Index *index.Index
	// Now is the clock used for pruning; default time.Now.
	Now    func() time.Time
	Logger logr.Logger
	// WriteInterval is the shortest time between two writes; default
	// DefaultRevocationWriteInterval.
	WriteInterval time.Duration
	// PerClient and PerNamespace are the quotas of live entries; default
	// resource.MaxRevocationsPerClient and resource.MaxRevocationsPerNamespace.
	PerClient, PerNamespace int

	mu        sync.Mutex
	pending   []*revocationRequest
	flushing  bool
	lastWrite time.Time
	// writes counts Secret writes (creates and updates), for tests.
	writes int
}

type revocationRequest struct {
	rev  credstore.Revocation
	done chan error
}

// revocationBackoff spreads concurrent writers from several replicas apart.
// client-go's DefaultRetry (5 tries, 10ms apart) gives up under a handful of
// simultaneous revocations; revocations are rare, so waiting up to a few
// seconds is better than answering 503.
var revocationBackoff = wait.Backoff{Steps: 12, Duration: 10 * time.Millisecond, Factor: 1.6, Jitter: 0.5, Cap: 2 * time.Second}

// writeTimeout bounds one coalesced write, which serves several requests and
// so runs under none of their contexts.
const writeTimeout = 20 * time.Second

// Revoke implements resource.Revoker. It returns resource.ErrRevocationQuota when rev's client
// or namespace holds its quota of live entries, without writing anything.
func (s *SecretRevoker) Revoke(ctx context.Context, rev credstore.Revocation) error {
	if rev.ID == "" {
		return errors.New("resource: empty revocation id")
	}
	req := &revocationRequest{rev: rev, done: make(chan error, 1)}
	s.mu.Lock()
	s.pending = append(s.pending, req)
	if !s.flushing {
		s.flushing = true
		go s.flush() //nolint:gosec // G118: one write serves a batch of requests, so it outlives each of them; writeTimeout bounds it
	}
	s.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The entry may still be written; the caller answers an error, never a false 200.
		return ctx.Err()
	}
}

// Writes reports how many times this revoker wrote the Secret.
func (s *SecretRevoker) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// flush writes pending revocations, one batch per write, until none are left.
func (s *SecretRevoker) flush() {
	interval := s.WriteInterval
	if interval <= 0 {
		interval = DefaultRevocationWriteInterval
	}
	for {
		s.mu.Lock()
		wait := time.Until(s.lastWrite.Add(interval))
		s.mu.Unlock()
		if wait > 0 {
			time.Sleep(wait)
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		if len(batch) == 0 {
			s.flushing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		results, wrote, err := s.write(ctx, batch)
		cancel()
		s.mu.Lock()
		s.lastWrite = time.Now()
		s.writes += wrote
		s.mu.Unlock()
		for i, req := range batch {
			switch {
			case err != nil:
				req.done <- fmt.Errorf("resource: recording revocation: %w", err)
			case results[i] != nil:
				req.done <- results[i]
			default:
				if s.Index != nil {
					s.Index.Revoke(req.rev.ID, req.rev.ExpiresAt)
				}
				req.done <- nil
			}
		}
	}
}

// write records batch in one update of the Secret. results[i] is the
// outcome of batch[i] (nil: recorded or already there) when err is nil.
func (s *SecretRevoker) write(ctx context.Context, batch []*revocationRequest) (results []error, writes int, err error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	q := quotas{perClient: s.PerClient, perNamespace: s.PerNamespace}
	if q.perClient <= 0 {
		q.perClient = resource.MaxRevocationsPerClient
	}
	if q.perNamespace <= 0 {
		q.perNamespace = resource.MaxRevocationsPerNamespace
	}
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	err = retry.RetryOnConflict(revocationBackoff, func() error {
		sec, err := secrets.Get(ctx, credstore.RevocationsSecretName, metav1.GetOptions{})
		notFound := apierrors.IsNotFound(err)
		if err != nil && !notFound {
			return err
		}
		var doc credstore.Revocations
		if !notFound {
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
		}
		var data []byte
		data, results, err = addRevocations(doc.Entries, batch, now, q)
		if err != nil {
			return err
		}
		if data == nil {
			return nil // nothing new to write
		}
		if notFound {
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
			writes++
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
		writes++
		return err
	})
	return results, writes, err
}

type quotas struct{ perClient, perNamespace int }

// addRevocations drops entries expired at now, then adds each request's
// entry (or extends an entry of the same id) unless its client or namespace
// is at its quota or the document would outgrow MaxRevocationsBytes. It
// returns the document to write, nil when nothing changed, and each request's
// outcome.
func addRevocations(entries []credstore.Revocation, batch []*revocationRequest, now time.Time, q quotas) ([]byte, []error, error) {
	kept := make([]credstore.Revocation, 0, len(entries)+len(batch))
	byID := make(map[string]int, len(entries)+len(batch))
	clients, namespaces := map[string]int{}, map[string]int{}
	changed := false
	for _, e := range entries {
		if !e.ExpiresAt.After(now) {
			changed = true
			continue
		}
		if i, dup := byID[e.ID]; dup {
			if e.ExpiresAt.After(kept[i].ExpiresAt) {
				kept[i].ExpiresAt = e.ExpiresAt
			}
			changed = true
			continue
		}
		byID[e.ID] = len(kept)
		kept = append(kept, e)
		count(clients, namespaces, e, 1)
	}
	size, err := encodedSize(kept)
	if err != nil {
		return nil, nil, err
	}
	results := make([]error, len(batch))
	for i, req := range batch {
		r := req.rev
		r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Second).Add(time.Second)
		if j, ok := byID[r.ID]; ok {
			if r.ExpiresAt.After(kept[j].ExpiresAt) {
				kept[j].ExpiresAt = r.ExpiresAt
				changed = true
			}
			continue
		}
		if (r.Client != "" && clients[r.Client] >= q.perClient) || (r.Namespace != "" && namespaces[r.Namespace] >= q.perNamespace) {
			results[i] = resource.ErrRevocationQuota
			continue
		}
		one, err := credstore.Encode(r)
		if err != nil {
			return nil, nil, err
		}
		if size+len(one)+1 > MaxRevocationsBytes {
			results[i] = ErrRevocationsFull
			continue
		}
		size += len(one) + 1
		byID[r.ID] = len(kept)
		kept = append(kept, r)
		count(clients, namespaces, r, 1)
		changed = true
	}
	if !changed {
		return nil, results, nil
	}
	data, err := credstore.Encode(credstore.Revocations{Entries: kept})
	if err != nil {
		return nil, nil, err
	}
	return data, results, nil
}

func count(clients, namespaces map[string]int, e credstore.Revocation, delta int) {
	if e.Client != "" {
		clients[e.Client] += delta
	}
	if e.Namespace != "" {
		namespaces[e.Namespace] += delta
	}
}

func encodedSize(entries []credstore.Revocation) (int, error) {
	data, err := credstore.Encode(credstore.Revocations{Entries: entries})
	return len(data), err
}
