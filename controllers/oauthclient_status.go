package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// setNotReady reports why oc cannot be served, with a Warning event the first
// time it happens: these are the states where a person must act.
func (r *oauthClientReconciler) setNotReady(oc *authv1alpha1.OAuthClient, now time.Time, reason, eventReason, action, message string) {
	if setCondition(&oc.Status.Conditions, oc.Generation, now, metav1.ConditionFalse, reason, message) {
		r.event(oc, corev1.EventTypeWarning, eventReason, action, "%s", message)
	}
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
