package login

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/tokensmith/tokensmith/internal/password"
	"github.com/tokensmith/tokensmith/server/index"
)

// ErrBusy means every verification slot stayed taken for the whole wait.
var ErrBusy = errors.New("login: too many concurrent logins")

// ErrInvalidCredentials is what every failed login is. Use errors.Is; the
// concrete *Failure carries the Reason for debug output and metrics.
var ErrInvalidCredentials = errors.New("login: invalid credentials")

// Reason says why a login failed. It must never reach a client except through
// the device dialect's development-mode debug object.
type Reason string

// The reasons a login fails; every one is answered as a wrong password.
const (
	ReasonUnknownUser        Reason = "unknown_user"
	ReasonWrongPassword      Reason = "wrong_password"
	ReasonDisabled           Reason = "disabled"
	ReasonClientNotAllowed   Reason = "client_not_allowed"
	ReasonDeviceDeauthorized Reason = "device_deauthorized"
	ReasonLocked             Reason = "locked"
)

// Failure is a failed login. It matches ErrInvalidCredentials with errors.Is.
type Failure struct{ Reason Reason }

func (f *Failure) Error() string { return "login: invalid credentials (" + string(f.Reason) + ")" }

// Is makes every Failure match ErrInvalidCredentials.
func (f *Failure) Is(target error) bool { return target == ErrInvalidCredentials }

// Lockout is the hook for per-user brute-force protection (server/lockout).
// Check runs, with a verification slot held, before the password is verified
// and may refuse the login (the answer is still ErrInvalidCredentials, reason
// locked, after the same verification); it must honour u.LockedUntil. When it
// returns false, Record learns that attempt's outcome exactly once.
// Implementations must not block: they run on the request path.
type Lockout interface {
	Check(u *index.User, now time.Time) (locked bool)
	Record(u *index.User, ok bool, now time.Time)
}

// Options configure a Verifier.
type Options struct {
	// MaxConcurrent bounds simultaneous argon2id verifications. Default: as
	// many as fit in password.MemoryShare of the process's memory limit
	// (GOMEMLIMIT, set from the container limit by internal/memlimit), at
	// most GOMAXPROCS*2: each holds 19 MiB, and GOMAXPROCS follows the node's
	// cores, not the pod's memory.
	MaxConcurrent int
	// MaxWait is how long a login waits for a slot before ErrBusy; default 2s.
	MaxWait time.Duration
	// DummyParams are the argon2id parameters of the hash unknown users are
	// verified against; they must match the real hashes' (password.Default, the default).
	DummyParams *password.Params
	// Lockout, when set, is consulted on every login.
	Lockout Lockout
}

// Authenticator is what the dialects call: *Verifier, or a wrapper around it.
type Authenticator interface {
	Login(ctx context.Context, snap *index.Snapshot, req Request) (*index.User, error)
}

// Verifier logs users in.
type Verifier struct {
	slots   chan struct{}
	maxWait time.Duration
	dummy   *password.Hashed
	lockout Lockout
}

// New builds a Verifier; it hashes a random dummy password once.
func New(o Options) (*Verifier, error) {
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Second
	}
	params := password.Default
	if o.DummyParams != nil {
		params = *o.DummyParams
	}
	if o.MaxConcurrent <= 0 {
		// Sized for the default parameters (the real hashes'), not a cheap dummy's.
		o.MaxConcurrent = DefaultSlots(debug.SetMemoryLimit(-1))
	}
	phc, err := password.Hash("tokensmith-dummy-password-never-matches", params)
	if err != nil {
		return nil, err
	}
	dummy, err := password.Parse(phc)
	if err != nil {
		return nil, err
	}
	return &Verifier{slots: make(chan struct{}, o.MaxConcurrent), maxWait: o.MaxWait, dummy: dummy, lockout: o.Lockout}, nil
}

// DefaultSlots is the default MaxConcurrent under the soft memory limit
// limit (bytes; math.MaxInt64: none).
func DefaultSlots(limit int64) int {
	return password.Slots(limit, password.Default, 2*runtime.GOMAXPROCS(0))
}

// Slots reports how many verifications may run at once.
func (v *Verifier) Slots() int { return cap(v.slots) }

// Request is one login attempt.
type Request struct {
	Username string
	Password string
	// ClientID is the client the login is for; the user's Clients list must allow it.
	ClientID string
	// Device is the device-info of a device login, "" otherwise.
	Device string
	Now    time.Time
}

// Login checks a username and password against snap. It returns the user, a
// *Failure (errors.Is ErrInvalidCredentials), ErrBusy, or ctx's error.
func (v *Verifier) Login(ctx context.Context, snap *index.Snapshot, req Request) (*index.User, error) {
	if len(req.Password) > password.MaxLength || len(req.Username) > password.MaxLength {
		// Rejected before any work; the same answer as a wrong password.
		return nil, &Failure{Reason: ReasonWrongPassword}
	}
	u := snap.User(req.Username)
	if err := v.acquire(ctx); err != nil {
		return nil, err
	}
	// Checked with the slot held, so that no attempt queued for a slot slips
	// past a lock set meanwhile. A locked user still costs a verification, so
	// that the answer's timing says nothing about the lock.
	var locked bool
	switch {
	case u == nil:
	case v.lockout != nil:
		locked = v.lockout.Check(u, req.Now)
	default:
		locked = u.LockedUntil != nil && req.Now.Before(*u.LockedUntil)
	}
	var ok bool
	if u == nil || u.Hash == nil {
		v.dummy.Verify(req.Password)
	} else {
		ok = u.Hash.Verify(req.Password)
	}
	<-v.slots
	if u == nil {
		return nil, &Failure{Reason: ReasonUnknownUser}
	}
	if locked {
		return nil, &Failure{Reason: ReasonLocked}
	}
	if v.lockout != nil {
		v.lockout.Record(u, ok, req.Now)
	}
	switch {
	case !ok:
		return nil, &Failure{Reason: ReasonWrongPassword}
	case u.Disabled:
		return nil, &Failure{Reason: ReasonDisabled}
	case len(u.Clients) > 0 && !slices.Contains(u.Clients, req.ClientID):
		return nil, &Failure{Reason: ReasonClientNotAllowed}
	case req.Device != "" && slices.Contains(u.DeauthorizedDevices, req.Device):
		return nil, &Failure{Reason: ReasonDeviceDeauthorized}
	}
	return u, nil
}

func (v *Verifier) acquire(ctx context.Context) error {
	select {
	case v.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(v.maxWait)
	defer t.Stop()
	select {
	case v.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Scopes returns the scopes a login may be granted: requested must be a
// subset of allowed; none requested means all of allowed. The second result
// is the first requested scope that is not allowed.
func Scopes(requested, allowed []string) ([]string, string) {
	if len(requested) == 0 {
		return slices.Clone(allowed), ""
	}
	out := make([]string, 0, len(requested))
	for _, s := range requested {
		if !slices.Contains(allowed, s) {
			return nil, s
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, ""
}

// Intersect returns the elements of a that are also in b, in a's order.
func Intersect(a, b []string) []string {
	out := []string{}
	for _, s := range a {
		if slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
