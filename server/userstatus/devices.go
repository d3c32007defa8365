package userstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/tokensmith/tokensmith/server/index"
)

// Devices records new devices in users/status with JSON patches. It
// remembers what this replica already recorded, collects devices for up to
// FlushInterval and writes each user once per batch, so a login never waits
// for the API server and repeated logins from a device cost no write.
type Devices struct {
	Client dynamic.Interface
	Logger logr.Logger
	// FlushInterval batches writes; default one second.
	FlushInterval time.Duration

	mu      sync.Mutex
	seen    map[deviceKey]bool
	pending map[index.UserRef]map[string]time.Time
	wake    chan struct{}
}

type deviceKey struct {
	user   index.UserRef
	device string
}

// maxSeen bounds the memory of recorded devices; past it the memory restarts
// (the index's KnownDevices still stops repeats).
const maxSeen = 100_000

// Record queues device for user unless this replica already recorded it.
func (s *Devices) Record(user index.UserRef, device string, firstSeen time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	k := deviceKey{user, device}
	if s.seen[k] {
		return
	}
	if len(s.seen) >= maxSeen {
		clear(s.seen)
	}
	s.seen[k] = true
	if s.pending[user] == nil {
		s.pending[user] = map[string]time.Time{}
	}
	s.pending[user][device] = firstSeen
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Devices) init() {
	if s.seen == nil {
		s.seen = map[deviceKey]bool{}
		s.pending = map[index.UserRef]map[string]time.Time{}
		s.wake = make(chan struct{}, 1)
	}
}

// Run writes queued devices until ctx ends.
func (s *Devices) Run(ctx context.Context) {
	s.mu.Lock()
	s.init()
	wake := s.wake
	s.mu.Unlock()
	interval := s.FlushInterval
	if interval <= 0 {
		interval = time.Second
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		s.flush(ctx)
	}
}

// Flush writes everything queued now (for tests and shutdown).
func (s *Devices) Flush(ctx context.Context) { s.flush(ctx) }

func (s *Devices) flush(ctx context.Context) {
	s.mu.Lock()
	s.init()
	batch := s.pending
	s.pending = map[index.UserRef]map[string]time.Time{}
	s.mu.Unlock()
	for user, devices := range batch {
		if err := s.write(ctx, user, devices); err != nil {
			s.Logger.Error(err, "recording new devices in User status", "user", user.Namespace+"/"+user.Name, "devices", len(devices))
			// Forget them so that a later login tries again.
			s.mu.Lock()
			for d := range devices {
				delete(s.seen, deviceKey{user, d})
			}
			s.mu.Unlock()
		}
	}
}

type device struct {
	Name      string      `json:"name"`
	FirstSeen metav1.Time `json:"firstSeen"`
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// write records each device with one JSON patch on users/status. It needs
// only the "patch" verb on users/status (no get): it appends to
// status.devices, and only when that list (or the whole status) does not
// exist yet, creates it, guarded by a test that it is still absent, so that
// no concurrent write is ever overwritten. A device another replica recorded
// first is refused by the API server as a duplicate key of the list map,
// which counts as done.
func (s *Devices) write(ctx context.Context, user index.UserRef, devices map[string]time.Time) error {
	users := s.Client.Resource(usersResource).Namespace(user.Namespace)
	var errs []error
	for name, at := range devices {
		d := device{Name: name, FirstSeen: metav1.NewTime(at.UTC().Truncate(time.Second))}
		attempts := [][]patchOp{
			{{Op: "add", Path: "/status/devices/-", Value: d}},
			{{Op: "test", Path: "/status/devices", Value: nil}, {Op: "add", Path: "/status/devices", Value: []device{d}}},
			{{Op: "test", Path: "/status", Value: nil}, {Op: "add", Path: "/status", Value: map[string]any{"devices": []device{d}}}},
		}
		var err error
		for _, ops := range attempts {
			body, merr := json.Marshal(ops)
			if merr != nil {
				return merr
			}
			_, err = users.Patch(ctx, user.Name, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: "tokensmith-server"}, "status")
			if err == nil || apierrors.IsNotFound(err) { // a deleted User needs no record
				err = nil
				break
			}
			if apierrors.IsInvalid(err) && (strings.Contains(err.Error(), "Duplicate value") || strings.Contains(err.Error(), "Too many")) {
				// Recorded by another replica, or the list is full (maxItems).
				err = nil
				break
			}
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("patching users/status: %w", err))
		}
	}
	return errors.Join(errs...)
}
