// Package controllers turns OAuthClients and Users into Secrets, and keeps the
// token server's signing keys.
//
// For every object it owns two Secrets: a consumer Secret in the object's
// namespace with the plaintext credentials the application mounts, and a
// verifier Secret in the token server's namespace with only what the server
// needs (digests, an argon2id hash, settings). Kubernetes forbids owner
// references across namespaces, so verifiers are removed by a finalizer.
//
// Usernames, client ids and numeric ids are unique in the installation and go
// to whoever claimed them first, recorded in claim records (claims.go), never
// by age. Only Secrets tokensmith created carry an owner reference; an
// existing Secret is written to only when it may be adopted (adoptProblem).
//
// TokenPolicies bound what each namespace's objects may claim (policy.go,
// decided by internal/tenancy): an object no policy allows is judged before it
// claims anything, gets Ready=False, reason PolicyDenied, and its verifier is
// kept but marked policyDenied (the token server serves it as absent). The
// TokenPolicySnapshot reconciler copies every TokenPolicy into the one object
// the chart's admission policy reads.
//
// Rules every reconciler here follows:
//   - credentials are never regenerated: a Secret is created only after the API
//     server (not the cache) says it does not exist, and AlreadyExists means
//     "read it back";
//   - a reconcile that finds everything up to date writes nothing: documents are
//     encoded deterministically and compared before any Update;
//   - status is written once per reconcile, in a defer, only when it changed;
//   - no secret value ever reaches a log line, an event, a status or an error.
//
// Files are split by phase: lifecycle.go opens and closes every reconcile of
// an OAuthClient or User (get, finalize, finalizer, status written once);
// *_controller.go is each kind's work in between; claims.go holds the claim
// rules; *_secrets.go reads and writes Secrets; *_status.go computes the
// Ready condition. What the Secrets should hold is computed, without any API
// call, in internal/desired, where it is table-tested and fuzzed.
package controllers
