// Package lockout is the token server's per-user brute-force protection: it
// implements login.Lockout for every endpoint that takes a password.
//
// Policy (the defaults; flags --lockout-threshold, --lockout-base, --lockout-max):
//   - Threshold (10) consecutive failed password checks lock the user for
//     Base (1m). Every later lock doubles, up to Max (1h). After a lock runs
//     out the next failure locks again at the next length: a nonstop attacker
//     gets Threshold tries, then one per lock. With the defaults that is 15
//     password checks that could succeed in the first hour and 1 an hour
//     afterwards, per replica (ASVS 2.2.1 asks for at most 100 an hour).
//   - A successful login forgets everything; so does a day without failures.
//   - While locked, every login fails exactly like a wrong password, and still
//     costs one argon2id verification (server/login).
//
// Counting is per replica, in memory (at most MaxEntries users, only users
// that exist: unknown usernames have nothing to lock). A lock is honoured at
// once by the replica that set it, and written off the request path into the
// User's status.lockedUntil (a merge patch on users/status: the server's RBAC
// has only "patch" there); the controller mirrors it into the user's verifier
// Secret, so every other replica honours it from its index within about a
// second. Removing status.lockedUntil (kubectl patch ... see the User type)
// unlocks the user on every replica, including the one that set the lock: a
// replica watches its index until its own lock shows there (WatchIndex), and
// drops all its state for the user once a lock it saw there is gone. (A lock
// cleared before the locking replica's index ever showed it, within about a
// second of being set, still runs out there at its own time.) A success that
// races a lock does not remove the lock from status.
package lockout
