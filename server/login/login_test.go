package login

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
)

type lockAll struct{ recorded []bool }

func (l *lockAll) Check(*index.User, time.Time) bool          { return true }
func (l *lockAll) Record(_ *index.User, ok bool, _ time.Time) { l.recorded = append(l.recorded, ok) }

func TestLogin(t *testing.T) {
	snap := st.Snapshot(t, nil, []credstore.UserVerifier{
		{Username: "alice", PasswordHash: st.Hash(t, "pw")},
		{Username: "bob", PasswordHash: st.Hash(t, "pw"), Disabled: true},
		{Username: "carol", PasswordHash: st.Hash(t, "pw"), Clients: []string{"web"}},
		{Username: "dave", PasswordHash: "not-a-hash"},
		{Username: "erin", PasswordHash: st.Hash(t, "pw"), DeauthorizedDevices: []string{"stolen"}},
	}, nil)
	v, err := New(Options{DummyParams: &st.Cheap})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, user, pw, client, device string
		reason                         Reason
	}{
		{"accepts the right password", "alice", "pw", "any", "", ""},
		{"refuses a wrong password", "alice", "nope", "any", "", ReasonWrongPassword},
		{"refuses an unknown user", "zed", "pw", "any", "", ReasonUnknownUser},
		{"refuses a disabled user with the right password", "bob", "pw", "any", "", ReasonDisabled},
		{"refuses a client the user's list excludes", "carol", "pw", "mobile", "", ReasonClientNotAllowed},
		{"accepts a client the user's list names", "carol", "pw", "web", "", ""},
		{"refuses a user whose stored hash is malformed", "dave", "", "any", "", ReasonWrongPassword},
		{"refuses a deauthorized device", "erin", "pw", "any", "stolen", ReasonDeviceDeauthorized},
		{"refuses a password longer than the maximum", "alice", strings.Repeat("p", 1025), "any", "", ReasonWrongPassword},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := v.Login(context.Background(), snap, Request{Username: c.user, Password: c.pw, ClientID: c.client, Device: c.device, Now: st.Now})
			if c.reason == "" {
				if err != nil || u == nil || u.Username != c.user {
					t.Fatalf("got %v, %v", u, err)
				}
				return
			}
			var f *Failure
			if !errors.As(err, &f) || f.Reason != c.reason || !errors.Is(err, ErrInvalidCredentials) || u != nil {
				t.Fatalf("got %v, %v; want reason %s", u, err, c.reason)
			}
		})
	}
}

func TestLockoutHookRefusesLikeAWrongPassword(t *testing.T) {
	snap := st.Snapshot(t, nil, []credstore.UserVerifier{{Username: "alice", PasswordHash: st.Hash(t, "pw")}}, nil)
	l := &lockAll{}
	v, _ := New(Options{DummyParams: &st.Cheap, Lockout: l})
	_, err := v.Login(context.Background(), snap, Request{Username: "alice", Password: "pw", Now: st.Now})
	var f *Failure
	if !errors.As(err, &f) || f.Reason != ReasonLocked || len(l.recorded) != 0 {
		t.Fatalf("err %v recorded %v", err, l.recorded)
	}
}

func TestALockInUserStatusIsHonouredWithoutALockout(t *testing.T) {
	until := st.Now.Add(time.Minute)
	snap := st.Snapshot(t, nil, []credstore.UserVerifier{{Username: "alice", PasswordHash: st.Hash(t, "pw"), LockedUntil: &until}}, nil)
	v, _ := New(Options{DummyParams: &st.Cheap})
	_, err := v.Login(context.Background(), snap, Request{Username: "alice", Password: "pw", Now: st.Now})
	var f *Failure
	if !errors.As(err, &f) || f.Reason != ReasonLocked {
		t.Fatalf("err %v, want reason locked", err)
	}
	if u, err := v.Login(context.Background(), snap, Request{Username: "alice", Password: "pw", Now: until}); err != nil || u == nil {
		t.Fatalf("refused after the lock ran out: %v", err)
	}
}

func TestBusyWhenEverySlotIsTaken(t *testing.T) {
	snap := st.Snapshot(t, nil, []credstore.UserVerifier{{Username: "alice", PasswordHash: st.Hash(t, "pw")}}, nil)
	v, _ := New(Options{DummyParams: &st.Cheap, MaxConcurrent: 1, MaxWait: 20 * time.Millisecond})
	v.slots <- struct{}{} // a verification in progress
	start := time.Now()
	if _, err := v.Login(context.Background(), snap, Request{Username: "alice", Password: "pw"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("did not wait for a slot")
	}
	<-v.slots
	if _, err := v.Login(context.Background(), snap, Request{Username: "alice", Password: "pw"}); err != nil {
		t.Fatalf("a free slot was refused: %v", err)
	}
}

func TestScopes(t *testing.T) {
	cases := []struct {
		name               string
		requested, allowed []string
		want, bad          string
	}{
		{"grants everything allowed when nothing is requested", nil, []string{"a", "b"}, "[a b]", ""},
		{"grants a requested subset once", []string{"b", "b"}, []string{"a", "b"}, "[b]", ""},
		{"names the first scope not allowed", []string{"a", "c"}, []string{"a", "b"}, "[]", "c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, bad := Scopes(c.requested, c.allowed)
			if bad != c.bad || (bad == "" && strings.Join(got, " ") != strings.Trim(c.want, "[]")) {
				t.Fatalf("got %v %q", got, bad)
			}
		})
	}
}
