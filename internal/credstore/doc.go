// Package credstore is the contract between the controller and the token
// server: the names, labels and JSON documents of the Secrets the controller
// writes into the token server's namespace, and the digests they hold.
//
// The token server watches only Secrets carrying LabelSecretType in its own
// namespace, so it never needs cluster-wide Secret access and never holds a
// plaintext client secret or password.
package credstore
