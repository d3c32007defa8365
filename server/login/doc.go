// Package login is the user login shared by the device login dialect and the
// OAuth 2.0 password grant: find the user, verify the argon2id hash, and apply
// every user check (disabled, the user's client list, deauthorized devices).
//
// Every reason a login fails is answered alike (ErrInvalidCredentials), in the
// same time: an unknown user is verified against a dummy hash. Only the
// device dialect's development-mode debug output reads Reason.
//
// argon2id holds 19 MiB per verification, so a semaphore bounds how many run
// at once; a request that cannot get a slot within Options.MaxWait fails with
// ErrBusy, which each dialect answers as 503.
//
// Per-user lockout plugs in through the Lockout interface (server/lockout);
// without one, a lock recorded in the User's status is still honoured.
package login
