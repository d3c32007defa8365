package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// The User's Ready condition is computed here: setNotReady for every state a
// person must act on, setUserServed once the verifier is written.

// setNotReady reports why u cannot be served; see the package's setNotReady.
func (r *userReconciler) setNotReady(u *authv1alpha1.User, now time.Time, reason, eventReason, action, message string) {
	setNotReady(r.Recorder, u, &u.Status.Conditions, u.Generation, now, reason, eventReason, action, message)
}

// setUserServed is the Ready condition of a User whose verifier is written:
// True, unless the User is disabled. Disabled is not a state a person must
// fix, so it raises no Warning event.
func setUserServed(u *authv1alpha1.User, now time.Time) {
	if u.Spec.Disabled {
		setCondition(&u.Status.Conditions, u.Generation, now, metav1.ConditionFalse, authv1alpha1.ReasonDisabled,
			"The user is disabled: every login is refused and every session has ended")
		return
	}
	setReady(&u.Status.Conditions, u.Generation, now, authv1alpha1.ReasonIssued, "The token server can log this user in")
}
