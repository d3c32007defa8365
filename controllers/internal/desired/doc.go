// Package desired computes, from an OAuthClient's or a User's spec and what
// its Secrets hold, what tokensmith should write: the client id, the digests
// and verifier documents, the grace periods of replaced credentials and when
// to look again. It is pure: no API calls, no clock of its own (callers pass
// now), and randomness only for a new client id.
//
// It is a package of its own so that its fuzz targets build a small test
// binary: fuzzing instruments every package a test binary links, and the
// reconcilers in package controllers link client-go and controller-runtime.
// It imports api/v1alpha1 and internal/credstore only.
package desired
