package controllers

import (
	"fmt"
	"time"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// The OAuthClient's Ready condition is computed here: setNotReady for every
// state a person must act on, setClientServed once the verifier is written.

// setNotReady reports why oc cannot be served; see the package's setNotReady.
func (r *oauthClientReconciler) setNotReady(oc *authv1alpha1.OAuthClient, now time.Time, reason, eventReason, action, message string) {
	setNotReady(r.Recorder, oc, &oc.Status.Conditions, oc.Generation, now, reason, eventReason, action, message)
}

func (r *oauthClientReconciler) event(oc *authv1alpha1.OAuthClient, eventType, reason, action, note string, args ...any) {
	emit(r.Recorder, oc, eventType, reason, action, note, args...)
}

// setClientServed is the Ready condition of an OAuthClient whose verifier
// follows the credentials in Secret secretName.
func setClientServed(oc *authv1alpha1.OAuthClient, now time.Time, secretName string) {
	setReady(&oc.Status.Conditions, oc.Generation, now, authv1alpha1.ReasonIssued,
		fmt.Sprintf("Credentials are in Secret %s", secretName))
}
