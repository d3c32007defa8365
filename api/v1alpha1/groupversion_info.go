// Package v1alpha1 holds the tokensmith API: OAuthClient (machines) and User
// (people and devices), in group auth.tokensmith.io; TokenPolicy (cluster-scoped)
// bounds what each namespace's objects may claim, and TokenPolicySnapshot is the
// controller's copy of every TokenPolicy that admission reads.
//
// The package imports only apimachinery so that clients can depend on it cheaply.
//
// +kubebuilder:object:generate=true
// +groupName=auth.tokensmith.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "auth.tokensmith.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &OAuthClient{}, &OAuthClientList{}, &User{}, &UserList{},
		&TokenPolicy{}, &TokenPolicyList{}, &TokenPolicySnapshot{}, &TokenPolicySnapshotList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
