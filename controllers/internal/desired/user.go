package desired

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// PasswordSecretKey is the Secret name and key u's password is read from.
func PasswordSecretKey(u *authv1alpha1.User) (string, string) {
	if ref := u.Spec.PasswordSecretRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = credstore.KeyPassword
		}
		return ref.Name, key
	}
	return u.Name + "-password", credstore.KeyPassword
}

// UserVerifier is deterministic: same User, same document.
func UserVerifier(u *authv1alpha1.User, hash, source string, generation int64) credstore.UserVerifier {
	v := credstore.UserVerifier{
		Namespace:            u.Namespace,
		Name:                 u.Name,
		ObjectRef:            objectRef(u),
		Username:             u.Spec.Username,
		PasswordHash:         hash,
		Scopes:               sortedSet(u.Spec.Scopes),
		Clients:              sortedSet(u.Spec.Clients),
		Disabled:             u.Spec.Disabled,
		CredentialGeneration: generation,
		SessionsNotBefore:    utcTime(u.Spec.SessionsNotBefore),
		DeauthorizedDevices:  sortedSet(u.Spec.DeauthorizedDevices),
		LockedUntil:          utcTime(u.Status.LockedUntil),
		PasswordSource:       source,
	}
	devices := make([]string, 0, len(u.Status.Devices))
	for _, d := range u.Status.Devices {
		devices = append(devices, d.Name)
	}
	v.KnownDevices = sortedSet(devices)
	return v
}

// objectRef identifies obj itself in its verifier: tokens are bound to its
// uid, so that a deleted object re-created under the same name, client id or
// username never inherits the old one's tokens (issue 15). Both values are
// fixed for the object's life, so the verifier stays deterministic.
func objectRef(obj metav1.Object) credstore.ObjectRef {
	ref := credstore.ObjectRef{UID: string(obj.GetUID())}
	if c := obj.GetCreationTimestamp(); !c.IsZero() {
		t := c.UTC()
		ref.Created = &t
	}
	return ref
}

// sortedSet returns a sorted copy without duplicates (nil when empty), so the
// order someone wrote a list in never causes a write.
func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func utcTime(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
