package desired

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// fakeClock is the controller's clock in these tests: it moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 500_000_000, time.UTC)}
}

func digests(secret string) credstore.SecretDigests {
	return credstore.SecretDigests{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, secret)}
}

func TestResolveClientID(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tc := range []struct {
		name                 string
		spec, status, secret string
		want                 string // "" with no problem: a new random id
		problem              string // a substring of the problem, "" for none
	}{
		{name: "spec wins over status", spec: "from-spec", status: "from-status", want: "from-spec"},
		{name: "spec matches the Secret", spec: "abc", secret: "abc", want: "abc"},
		{name: "spec differs from the Secret", spec: "abc", secret: "xyz", want: "abc", problem: "different from the client id \"abc\""},
		{name: "status is kept", status: "kept", want: "kept"},
		{name: "status differs from the Secret", status: "kept", secret: "other", want: "kept", problem: "different"},
		{name: "the Secret's id is adopted", secret: "adopted-id", want: "adopted-id"},
		{name: "an invalid id in the Secret", secret: "-bad", problem: "not a valid client id"},
		{name: "a too short id in the Secret", secret: "ab", problem: "not a valid client id"},
		{name: "nothing: a new id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oc := &authv1alpha1.OAuthClient{Spec: authv1alpha1.OAuthClientSpec{ClientID: tc.spec}}
			oc.Status.ClientID = tc.status
			var data map[string][]byte
			if tc.secret != "" {
				data = map[string][]byte{credstore.KeyClientID: []byte(tc.secret)}
			}
			got, problem := ResolveClientID(oc, "creds", data)
			if tc.problem == "" && problem != "" || !strings.Contains(problem, tc.problem) {
				t.Fatalf("problem = %q, want %q", problem, tc.problem)
			}
			switch {
			case tc.want != "" && got != tc.want:
				t.Fatalf("client id = %q, want %q", got, tc.want)
			case tc.want == "" && tc.problem == "" && !hex32.MatchString(got):
				t.Fatalf("new client id = %q, want 128 random bits in hex", got)
			case tc.want == "" && tc.problem != "" && got != "":
				t.Fatalf("client id = %q with a problem, want none", got)
			}
		})
	}
}

func TestGracePeriod(t *testing.T) {
	for _, tc := range []struct {
		spec *metav1.Duration
		want time.Duration
	}{
		{nil, DefaultGracePeriod},
		{&metav1.Duration{Duration: -time.Second}, DefaultGracePeriod},
		{&metav1.Duration{}, 0},
		{&metav1.Duration{Duration: 5 * time.Minute}, 5 * time.Minute},
	} {
		oc := &authv1alpha1.OAuthClient{Spec: authv1alpha1.OAuthClientSpec{RotationGracePeriod: tc.spec}}
		if got := GracePeriod(oc); got != tc.want {
			t.Errorf("GracePeriod(%v) = %v, want %v", tc.spec, got, tc.want)
		}
	}
}

// TestRotationsAndRequeues walks a verifier through rotations on a fake
// clock: which digests stay, until when, and when the controller comes back.
func TestRotationsAndRequeues(t *testing.T) {
	type step struct {
		advance     time.Duration
		secret      string        // the consumer Secret's credential now
		grace       time.Duration // spec.rotationGracePeriod
		wantChanged bool
		wantKept    []string      // the digests in the verifier, current first
		wantRequeue time.Duration // 0: nothing to expire
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{{
		name: "unchanged credentials write nothing new",
		steps: []step{
			{secret: "a", grace: time.Hour, wantKept: []string{"a"}},
			{advance: time.Minute, secret: "a", grace: time.Hour, wantKept: []string{"a"}},
		},
	}, {
		name: "a rotation keeps the old secret for the grace period, to the truncated second",
		steps: []step{
			{secret: "a", grace: time.Hour, wantKept: []string{"a"}},
			// now is xx.5s: the expiry is truncated to the second, so the
			// requeue is half a second short of the hour, plus one second.
			{secret: "b", grace: time.Hour, wantChanged: true, wantKept: []string{"b", "a"}, wantRequeue: time.Hour + time.Second/2},
			{advance: 30 * time.Minute, secret: "b", grace: time.Hour, wantKept: []string{"b", "a"}, wantRequeue: 30*time.Minute + time.Second/2},
			{advance: 30 * time.Minute, secret: "b", grace: time.Hour, wantKept: []string{"b"}},
		},
	}, {
		name: "a grace period of 0s cuts the old secret off at once",
		steps: []step{
			{secret: "a", grace: 0, wantKept: []string{"a"}},
			{secret: "b", grace: 0, wantChanged: true, wantKept: []string{"b"}},
		},
	}, {
		name: "the earliest expiry sets the requeue",
		steps: []step{
			{secret: "a", grace: time.Hour, wantKept: []string{"a"}},
			{secret: "b", grace: time.Hour, wantChanged: true, wantKept: []string{"b", "a"}, wantRequeue: time.Hour + time.Second/2},
			{advance: 10 * time.Minute, secret: "c", grace: time.Hour, wantChanged: true, wantKept: []string{"c", "b", "a"}, wantRequeue: 50*time.Minute + time.Second/2},
		},
	}, {
		name: "rotations piling up within one grace period are bounded",
		steps: []step{
			{secret: "a", grace: time.Hour, wantKept: []string{"a"}},
			{secret: "b", grace: time.Hour, wantChanged: true, wantKept: []string{"b", "a"}, wantRequeue: time.Hour + time.Second/2},
			{secret: "c", grace: time.Hour, wantChanged: true, wantKept: []string{"c", "b", "a"}, wantRequeue: time.Hour + time.Second/2},
			{secret: "d", grace: time.Hour, wantChanged: true, wantKept: []string{"d", "c", "b", "a"}, wantRequeue: time.Hour + time.Second/2},
			{secret: "e", grace: time.Hour, wantChanged: true, wantKept: []string{"e", "d", "c", "b", "a"}, wantRequeue: time.Hour + time.Second/2},
			{secret: "f", grace: time.Hour, wantChanged: true, wantKept: []string{"f", "e", "d", "c", "b"}, wantRequeue: time.Hour + time.Second/2},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			var verifier []credstore.SecretDigests
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				got, changed := Digests(verifier, digests(s.secret), s.grace, clock.Now())
				if changed != s.wantChanged {
					t.Fatalf("step %d: changed = %v, want %v", i, changed, s.wantChanged)
				}
				if len(got) != len(s.wantKept) {
					t.Fatalf("step %d: kept %d digests, want %v", i, len(got), s.wantKept)
				}
				for j, w := range s.wantKept {
					if !got[j].ClientSecret.Equal(digests(w).ClientSecret) {
						t.Fatalf("step %d: digest %d is not %q's", i, j, w)
					}
				}
				requeue, latest := Expiry(got, clock.Now())
				if requeue != s.wantRequeue {
					t.Fatalf("step %d: requeue = %v, want %v", i, requeue, s.wantRequeue)
				}
				if (latest == nil) != (len(got) == 1) {
					t.Fatalf("step %d: latest expiry %v with %d digests", i, latest, len(got))
				}
				verifier = got
			}
		})
	}
}

func TestClientVerifierIsDeterministic(t *testing.T) {
	n := int64(7)
	a := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u1"},
		Spec: authv1alpha1.OAuthClientSpec{
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantRefreshToken, authv1alpha1.GrantPassword, authv1alpha1.GrantPassword},
			Scopes:     []string{"b", "a", "b"}, NumericID: &n,
		}}
	b := a.DeepCopy()
	b.Spec.GrantTypes = []authv1alpha1.GrantType{authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken}
	b.Spec.Scopes = []string{"a", "b"}
	da, _ := credstore.Encode(ClientVerifier(a, "id", []credstore.SecretDigests{digests("s")}))
	db, _ := credstore.Encode(ClientVerifier(b, "id", []credstore.SecretDigests{digests("s")}))
	if !bytes.Equal(da, db) {
		t.Fatalf("the order of a list changed the verifier:\n%s\n%s", da, db)
	}
	v := ClientVerifier(&authv1alpha1.OAuthClient{}, "id", nil)
	if v.TokenFormat != string(authv1alpha1.TokenFormatJWT) || len(v.GrantTypes) != 1 || v.GrantTypes[0] != string(authv1alpha1.GrantClientCredentials) {
		t.Fatalf("defaults: %+v", v)
	}
}

func TestPasswordSecretKey(t *testing.T) {
	for _, tc := range []struct {
		ref             *authv1alpha1.SecretKeyRef
		wantName, wantK string
	}{
		{nil, "alice-password", credstore.KeyPassword},
		{&authv1alpha1.SecretKeyRef{Name: "pw"}, "pw", credstore.KeyPassword},
		{&authv1alpha1.SecretKeyRef{Name: "pw", Key: "k"}, "pw", "k"},
	} {
		u := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "alice"}, Spec: authv1alpha1.UserSpec{PasswordSecretRef: tc.ref}}
		if name, key := PasswordSecretKey(u); name != tc.wantName || key != tc.wantK {
			t.Errorf("PasswordSecretKey(%v) = %s, %s", tc.ref, name, key)
		}
	}
}

func TestAClientWithoutTheSecretMethodHasNoSecret(t *testing.T) {
	now := newClock().Now()
	saOnly := &authv1alpha1.OAuthClient{Spec: authv1alpha1.OAuthClientSpec{ServiceAccountName: "runner",
		AuthenticationMethods: []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthServiceAccountToken}}}
	both := &authv1alpha1.OAuthClient{Spec: authv1alpha1.OAuthClientSpec{ServiceAccountName: "runner"}}
	secretOnly := &authv1alpha1.OAuthClient{}

	if keys := CredentialKeys(saOnly); len(keys) != 0 {
		t.Errorf("credential keys of a ServiceAccount-only client: %v", keys)
	}
	if d, problem := CurrentDigests(saOnly, "creds", nil); problem != "" || !d.ClientSecret.IsZero() {
		t.Errorf("digests %+v, problem %q", d, problem)
	}
	old := []credstore.SecretDigests{digests("had-one")}
	if secrets, changed := ClientDigests(saOnly, old, credstore.SecretDigests{}, now); secrets != nil || changed {
		t.Errorf("dropping the method keeps %v (changed %v): it must stop at once, not after a grace period", secrets, changed)
	}
	if secrets, _ := ClientDigests(both, old, digests("had-one"), now); len(secrets) != 1 {
		t.Errorf("both methods: %v", secrets)
	}
	if r, latest := Expiry(nil, now); r != 0 || latest != nil {
		t.Errorf("Expiry(nil) = %v %v", r, latest)
	}
	for _, tc := range []struct {
		oc   *authv1alpha1.OAuthClient
		want string
	}{{saOnly, "runner"}, {both, "runner"}, {secretOnly, ""}} {
		if got := ClientVerifier(tc.oc, "id", nil).ServiceAccountName; got != tc.want {
			t.Errorf("serviceAccountName %q, want %q", got, tc.want)
		}
	}
	// The name alone: a spec naming a ServiceAccount, with methods that leave it out, binds none.
	secretOnly.Spec.ServiceAccountName = "runner"
	secretOnly.Spec.AuthenticationMethods = []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthClientSecret}
	if got := ClientVerifier(secretOnly, "id", nil).ServiceAccountName; got != "" {
		t.Errorf("clientSecret only binds %q", got)
	}
}
