// Package v1alpha1 holds the tokensmith API: OAuthClient (machines) and User
// (people and devices), in group auth.tokensmith.io.
//
// The package imports only apimachinery so that clients can depend on it cheaply.
//
// +kubebuilder:object:generate=true
// +groupName=auth.tokensmith.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "auth.tokensmith.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
