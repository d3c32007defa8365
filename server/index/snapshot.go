// Package index is the token server's in-memory view of the credentials: every
// verifier, the signing keys and the revocations, read from Secrets in the
// server's namespace and swapped atomically on change, so that the request
// path never calls the API server.
package index

import (
	"fmt"
	"slices"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/internal/password"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// Client is an OAuthClient's verifier, ready to use.
type Client struct {
	credstore.ClientVerifier
	// binding is the binding of the client's own tokens (Binding(c, nil)),
	// computed once when the index is built instead of a SHA-256 and an
	// encoding for every token.
	binding string
}

// newClient is v ready to use.
func newClient(v credstore.ClientVerifier) *Client {
	v.Namespace, v.TokenFormat = internString(v.Namespace), internString(v.TokenFormat)
	v.GrantTypes, v.Scopes, v.Audiences = internSlice(v.GrantTypes), internSlice(v.Scopes), internSlice(v.Audiences)
	return &Client{ClientVerifier: v, binding: tokens.Binding(v.UID, "", false)}
}

// Audience is the "aud" of the client's tokens: spec.audiences, or the
// issuer when it names none.
func (c *Client) Audience(issuer string) []string {
	if len(c.Audiences) == 0 {
		return []string{issuer}
	}
	return c.Audiences
}

// HasGrant reports whether the client may use grant.
func (c *Client) HasGrant(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// User is a User's verifier with its password hash parsed once. Its
// PasswordHash and PasswordSource are empty: Hash is the hash.
type User struct {
	credstore.UserVerifier
	// Hash is nil when the stored hash is malformed: every login then fails.
	Hash *password.Hashed
}

// UserRef names a User object: the key of every write the server makes to
// User status (server/userstatus).
type UserRef struct{ Namespace, Name string }

// Ref names the User object u was read from.
func (u *User) Ref() UserRef { return UserRef{Namespace: u.Namespace, Name: u.Name} }

// Snapshot is an immutable view of every credential at one moment. Handlers
// take one per request and never see a half-applied change.
type Snapshot struct {
	clients          map[string]*Client
	clientsByNumeric map[int64]*Client
	// clientsBySA: "namespace/name" of a ServiceAccount to the clients that
	// bind it (usually one). Slices are never changed in place: snapshots
	// share them.
	clientsBySA map[string][]*Client
	users       map[string]*User
	keyring     *tokens.Keyring
	revoked     map[string]time.Time
}

// NewSnapshot builds a snapshot from documents. Entries that collide on a
// client id, numeric id or username keep the first one (the controller already
// refuses conflicts; this is a second line). A nil keys gives a snapshot that
// cannot mint or verify tokens.
func NewSnapshot(clients []credstore.ClientVerifier, users []credstore.UserVerifier, keys *keyset.Set, revocations []credstore.Revocation) (*Snapshot, error) {
	s := &Snapshot{
		clients:          make(map[string]*Client, len(clients)),
		clientsByNumeric: make(map[int64]*Client),
		clientsBySA:      make(map[string][]*Client),
		users:            make(map[string]*User, len(users)),
		revoked:          make(map[string]time.Time, len(revocations)),
	}
	for i := range clients {
		c := newClient(clients[i])
		s.addClient(c)
	}
	for i := range users {
		s.addUser(newUser(users[i]))
	}
	for _, r := range revocations {
		s.revoked[r.ID] = r.ExpiresAt
	}
	if keys != nil {
		kr, err := tokens.NewKeyring(keys)
		if err != nil {
			return nil, fmt.Errorf("index: signing keys: %w", err)
		}
		s.keyring = kr
	}
	return s, nil
}

// withRevoked returns a copy of s that also holds the revocation of id until
// expiresAt. Only the revocation map is copied; entries are shared.
func (s *Snapshot) withRevoked(id string, expiresAt time.Time) *Snapshot {
	cp := *s
	cp.revoked = make(map[string]time.Time, len(s.revoked)+1)
	for k, v := range s.revoked {
		cp.revoked[k] = v
	}
	if old, ok := cp.revoked[id]; !ok || expiresAt.After(old) {
		cp.revoked[id] = expiresAt
	}
	return &cp
}

func newUser(v credstore.UserVerifier) *User {
	v.Namespace = internString(v.Namespace)
	v.Scopes, v.Clients = internSlice(v.Scopes), internSlice(v.Clients)
	u := &User{UserVerifier: v}
	if h, err := password.Parse(v.PasswordHash); err == nil {
		u.Hash = h
	}
	// Hash is what logins read; the PHC string and the controller's
	// PasswordSource are not read by the server, and were a fifth of a
	// parsed user.
	u.PasswordHash, u.PasswordSource = "", ""
	return u
}

func (s *Snapshot) addClient(c *Client) {
	if _, dup := s.clients[c.ClientID]; dup || c.ClientID == "" {
		return
	}
	s.clients[c.ClientID] = c
	if c.NumericID != 0 {
		if _, dup := s.clientsByNumeric[c.NumericID]; !dup {
			s.clientsByNumeric[c.NumericID] = c
		}
	}
	bindSA(s.clientsBySA, c)
}

// saKey is the clientsBySA key of c's ServiceAccount, "" when it binds none.
func saKey(c *Client) string {
	if c.ServiceAccountName == "" || c.Namespace == "" {
		return ""
	}
	return c.Namespace + "/" + c.ServiceAccountName
}

// bindSA adds c to m under its ServiceAccount, in a new slice.
func bindSA(m map[string][]*Client, c *Client) {
	if k := saKey(c); k != "" {
		m[k] = append(slices.Clip(m[k]), c)
	}
}

// unbindSA removes c from m, in a new slice.
func unbindSA(m map[string][]*Client, c *Client) {
	k := saKey(c)
	if k == "" {
		return
	}
	rest := slices.DeleteFunc(slices.Clone(m[k]), func(o *Client) bool { return o == c })
	if len(rest) == 0 {
		delete(m, k)
		return
	}
	m[k] = rest
}

func (s *Snapshot) addUser(u *User) {
	if _, dup := s.users[u.Username]; dup || u.Username == "" {
		return
	}
	s.users[u.Username] = u
}

// Client returns the client with this client id, or nil.
func (s *Snapshot) Client(clientID string) *Client { return s.clients[clientID] }

// ServiceAccountClients returns the clients that bind the ServiceAccount
// namespace/name (spec.serviceAccountName, allowed as a method), usually one.
// The slice must not be changed.
func (s *Snapshot) ServiceAccountClients(namespace, name string) []*Client {
	return s.clientsBySA[namespace+"/"+name]
}

// ClientByNumericID returns the client with this numericID, or nil.
func (s *Snapshot) ClientByNumericID(id int64) *Client { return s.clientsByNumeric[id] }

// User returns the user with this username, or nil.
func (s *Snapshot) User(username string) *User { return s.users[username] }

// Keyring returns the signing keys, or nil when none are known yet.
func (s *Snapshot) Keyring() *tokens.Keyring { return s.keyring }

// Revoked reports whether a token id (jti) or session id (sid) was revoked.
func (s *Snapshot) Revoked(id string) bool {
	_, ok := s.revoked[id]
	return ok && id != ""
}

// Counts returns how many clients and users the snapshot holds (for metrics).
func (s *Snapshot) Counts() (clients, users int) { return len(s.clients), len(s.users) }
