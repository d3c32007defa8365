package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// setNotReady reports why u cannot be served, with a Warning event the first
// time it happens: these are the states where a person must act.
func (r *userReconciler) setNotReady(u *authv1alpha1.User, now time.Time, reason, eventReason, action, message string) {
	if setCondition(&u.Status.Conditions, u.Generation, now, metav1.ConditionFalse, reason, message) {
		emit(r.Recorder, u, corev1.EventTypeWarning, eventReason, action, "%s", message)
	}
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
