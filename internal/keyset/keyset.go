// Package keyset is the signing-keys document the controller keeps in the
// token server's namespace: an ES256 key for JWTs, an HS512 key for clients
// whose resource servers verify with a shared key, and an AES-256-GCM key for
// opaque tokens, each with the previous keys that may still verify tokens.
package keyset

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Algorithm is what a key is for.
type Algorithm string

const (
	// ES256 keys sign JWTs that resource servers verify with the JWKS.
	ES256 Algorithm = "ES256"
	// HS512 keys sign JWTs for resource servers that verify with a shared key.
	HS512 Algorithm = "HS512"
	// AEAD keys encrypt opaque tokens with AES-256-GCM.
	AEAD Algorithm = "A256GCM"
)

// Algorithms lists every algorithm a complete set has a current key for.
var Algorithms = []Algorithm{ES256, HS512, AEAD}

// MinHMACKeyBytes is the shortest HS512 key accepted: keys shorter than the hash output are refused.
const MinHMACKeyBytes = 64

// Key is one key. Material is PKCS#8 DER for ES256 and raw bytes otherwise.
type Key struct {
	ID        string    `json:"kid"`
	Algorithm Algorithm `json:"alg"`
	Material  []byte    `json:"material"`
	CreatedAt time.Time `json:"createdAt"`
	// RetiredAt is set when a newer key of the same algorithm replaced this one.
	// A retired key still verifies; it is dropped once every token it signed has expired.
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
}

// Set is the whole document.
type Set struct {
	Keys []Key `json:"keys"`
}

// generate makes a new key of alg.
func generate(alg Algorithm, now time.Time) (Key, error) {
	var material []byte
	switch alg {
	case ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return Key{}, err
		}
		if material, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return Key{}, err
		}
	case HS512:
		material = make([]byte, MinHMACKeyBytes)
	case AEAD:
		material = make([]byte, 32)
	default:
		return Key{}, fmt.Errorf("keyset: unknown algorithm %q", alg)
	}
	if alg != ES256 {
		if _, err := rand.Read(material); err != nil {
			return Key{}, err
		}
	}
	sum := sha256.Sum256(material)
	return Key{
		// The kid is derived from the key, so it names the key and nothing else.
		ID:        string(alg) + "-" + base64.RawURLEncoding.EncodeToString(sum[:9]),
		Algorithm: alg,
		Material:  material,
		CreatedAt: now.UTC().Truncate(time.Second),
	}, nil
}

// Current returns the newest unretired key of alg, or nil.
func (s *Set) Current(alg Algorithm) *Key {
	var cur *Key
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.Algorithm == alg && k.RetiredAt == nil && (cur == nil || k.CreatedAt.After(cur.CreatedAt)) {
			cur = k
		}
	}
	return cur
}

// Reconcile brings the set up to date at now: it adds a key for every
// algorithm that has none, rotates keys older than rotateAfter, and drops
// retired keys once retainFor has passed since they were retired (retainFor
// must be at least the longest token lifetime). It reports whether it changed
// anything, so that a no-op reconcile writes nothing.
func (s *Set) Reconcile(now time.Time, rotateAfter, retainFor time.Duration) (bool, error) {
	changed := false
	kept := s.Keys[:0]
	for _, k := range s.Keys {
		if k.RetiredAt != nil && now.Sub(*k.RetiredAt) > retainFor {
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	s.Keys = kept
	for _, alg := range Algorithms {
		cur := s.Current(alg)
		if cur != nil && (rotateAfter <= 0 || now.Sub(cur.CreatedAt) < rotateAfter) {
			continue
		}
		if cur != nil {
			retired := now.UTC().Truncate(time.Second)
			cur.RetiredAt = &retired
		}
		k, err := generate(alg, now)
		if err != nil {
			return changed, err
		}
		s.Keys = append(s.Keys, k)
		changed = true
	}
	slices.SortStableFunc(s.Keys, func(a, b Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return changed, nil
}

// Validate checks every key can be used.
func (s *Set) Validate() error {
	for _, k := range s.Keys {
		switch k.Algorithm {
		case ES256:
			if _, err := k.ECDSA(); err != nil {
				return err
			}
		case HS512:
			if len(k.Material) < MinHMACKeyBytes {
				return fmt.Errorf("keyset: HS512 key %s is %d bytes, at least %d are required", k.ID, len(k.Material), MinHMACKeyBytes)
			}
		case AEAD:
			if len(k.Material) != 32 {
				return fmt.Errorf("keyset: A256GCM key %s must be 32 bytes", k.ID)
			}
		default:
			return fmt.Errorf("keyset: key %s has unknown algorithm %q", k.ID, k.Algorithm)
		}
	}
	return nil
}

// ECDSA parses an ES256 key's private key.
func (k *Key) ECDSA() (*ecdsa.PrivateKey, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(k.Material)
	if err != nil {
		return nil, fmt.Errorf("keyset: key %s: %w", k.ID, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("keyset: key " + k.ID + " is not a P-256 key")
	}
	return priv, nil
}
