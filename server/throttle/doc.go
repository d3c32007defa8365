// Package throttle owns the token server's rate limits: token buckets
// (golang.org/x/time/rate) keyed by source address (IPv6 by /64) and by the
// client id a request presents, with a bounded number of keys so that an
// attacker spraying addresses or client ids cannot grow memory without limit.
//
// It knows no HTTP and no dialect: the server decides what to limit and each
// dialect writes its own 429.
package throttle
