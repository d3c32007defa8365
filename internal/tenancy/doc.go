// Package tenancy decides whether an OAuthClient or a User is within the
// TokenPolicies that select its namespace. It is the controller's twin of the
// chart's ValidatingAdmissionPolicy (charts/tokensmith/templates/admission-policy.yaml):
// same rules, same union semantics, same messages, so that an object refused at
// admission and an existing object the controller marks PolicyDenied read alike.
// A chart test runs both on the same cases and compares the messages.
//
// Semantics: with no TokenPolicy (and no "deny unless allowed" setting), every
// object is allowed. Otherwise an object is allowed when at least one
// TokenPolicy selecting its namespace allows every rule; a rule a policy leaves
// out allows anything.
package tenancy
