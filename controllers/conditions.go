package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// setCondition sets the Ready condition and reports whether its status or
// reason changed, so that Warning events fire once per transition rather than
// on every reconcile. lastTransitionTime moves only when the status flips.
func setCondition(conds *[]metav1.Condition, generation int64, now time.Time, status metav1.ConditionStatus, reason, message string) bool {
	prev := meta.FindStatusCondition(*conds, authv1alpha1.ConditionReady)
	changed := prev == nil || prev.Status != status || prev.Reason != reason
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               authv1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
		LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
	})
	return changed
}

func setReady(conds *[]metav1.Condition, generation int64, now time.Time, reason, message string) {
	setCondition(conds, generation, now, metav1.ConditionTrue, reason, message)
}

// setPropagating sets Ready=False, reason Propagating, without an event:
// nothing is wrong, the object is Ready within allowance.
func setPropagating(conds *[]metav1.Condition, generation int64, now time.Time, allowance time.Duration) {
	setCondition(conds, generation, now, metav1.ConditionFalse, authv1alpha1.ReasonPropagating,
		fmt.Sprintf("The token server replicas are loading the new credentials; Ready within %s", allowance))
}

// setNotReady sets Ready=False, with a Warning event on obj the first time
// (per transition): these are the states where a person must act.
func setNotReady(rec events.EventRecorder, obj runtime.Object, conds *[]metav1.Condition, generation int64, now time.Time, reason, eventReason, action, message string) {
	if setCondition(conds, generation, now, metav1.ConditionFalse, reason, message) {
		emit(rec, obj, corev1.EventTypeWarning, eventReason, action, "%s", message)
	}
}

// emit records an event; messages name objects and keys, never values.
func emit(rec events.EventRecorder, obj runtime.Object, eventType, reason, action, note string, args ...any) {
	if rec != nil {
		rec.Eventf(obj, nil, eventType, reason, action, note, args...)
	}
}
