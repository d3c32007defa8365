package tenancy

import authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"

// serviceAccountName is the ServiceAccount an OAuthClient binds. TODO(issue 19):
// spec.serviceAccountName arrives with the ServiceAccount-token issue; until
// then no client binds one.
func serviceAccountName(*authv1alpha1.OAuthClientSpec) string { return "" }
