// Package saauth authenticates OAuth clients by their Kubernetes
// ServiceAccount token, sent as an RFC 7523 section 2.2 client assertion
// (client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer,
// client_assertion=<the projected token>). It owns the parser (FromForm,
// Parse: form only, no signature check, no client-go, fuzzed) and the
// Verifier (local checks, then the API server's verdict, cached). The
// TokenReview client is in saauth/tokenreview.
//
// # Order of checks
//
// Parse (size, JWS form, a ServiceAccount sub, aud, exp), then the caller
// finds the OAuthClient that binds the ServiceAccount in its own namespace
// (none: refused, no API call), then Verifier.Check (aud names this server,
// not expired, not issued in the future), then the verdict. Only tokens that
// pass everything local, for a bound ServiceAccount, ever reach the API
// server, and at most DefaultMaxReviews reviews run at once.
//
// # Why TokenReview and a verdict cache, not the issuer's keys
//
// Two designs meet "no API call per token request, yet a deleted pod or
// ServiceAccount is refused within 60 s":
//
//   - Keys: fetch the API server's service-account issuer keys (OIDC discovery,
//     /openid/v1/jwks), verify signatures locally, and watch ServiceAccounts
//     and pods to refuse tokens whose bound object is gone. Zero API calls per
//     token, but the token server would need list/watch on pods and
//     ServiceAccounts in every namespace (every pod's spec, labels and
//     node, in memory on every replica: megabytes in a large cluster) and
//     would re-implement the API server's token validation (key rotation,
//     external signers, issuer lists, Secret- and node-bound tokens, the
//     deletion leeway).
//   - TokenReview (chosen): the API server validates exactly as it does for
//     its own requests. RBAC is one verb, create tokenreviews, which reveals
//     nothing about other workloads. The cost is one review per distinct
//     token per MaxAge/2 while it is in use (refreshed in the background, so a
//     token in steady use never waits), about 2.5 ms each against a local API
//     server (TestReviewCost). A pod's projected token changes about hourly,
//     so a pod calling the token server at any rate costs the API server at
//     most one TokenReview per 15 s; a thousand such pods, 67 reviews/s.
//
// The bound: a verdict is used for at most MaxAge (DefaultMaxAge, 30 s), and
// kube-apiserver caches successful authentications for 10 s, so a token of a
// deleted ServiceAccount or pod is refused within 40 s of the deletion (a pod
// is deleted when it is gone from the API server, after its graceful
// termination; the API server itself tolerates one minute for an object
// that carries a deletionTimestamp).
//
// # When the API server is down
//
// A cached positive verdict keeps working whatever its age, until the token
// itself expires: nothing can be deleted while the API server is down, so the
// verdict is as true as the API server's data. A token with no verdict is
// refused with ReasonUnavailable (the endpoints answer 503 with a message
// that says the API server could not be reached, so clients retry rather
// than give up on their credential). After an unanswered review, requests do
// not wait on the API server for a second; then one review probes it again.
package saauth
