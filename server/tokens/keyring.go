package tokens

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"

	"github.com/tokensmith/tokensmith/internal/keyset"
)

// Keyring is a keyset.Set parsed once, ready for signing and verifying.
// It is immutable: a change of the signing-keys Secret builds a new one.
type Keyring struct {
	ecdsa   map[string]*ecdsa.PrivateKey
	hmac    map[string][]byte
	aead    map[[aeadKeyIDLen]byte]aeadKey
	current map[keyset.Algorithm]string // kid of the current key per algorithm
	set     *keyset.Set
	// headers are the encoded JWT header segments of every ES256 and HS512 key (jwtHeaders).
	headers map[string][2]string
	// macs hold reusable HMAC-SHA512 states per HS512 key: a new one costs
	// two SHA-512 states and the padded key for every token.
	macs map[string]*sync.Pool
}

type aeadKey struct {
	id   string
	aead cipher.AEAD
}

// aeadKeyIDLen is how many bytes of a key id's hash an opaque token carries to
// name its key.
const aeadKeyIDLen = 4

// ErrNoKeys means the keyring lacks a current key for an algorithm it was asked to use.
var ErrNoKeys = errors.New("tokens: no current signing key")

// NewKeyring parses every key of set. It refuses HS512 keys shorter than 64 bytes.
func NewKeyring(set *keyset.Set) (*Keyring, error) {
	if err := set.Validate(); err != nil {
		return nil, err
	}
	kr := &Keyring{
		ecdsa:   map[string]*ecdsa.PrivateKey{},
		hmac:    map[string][]byte{},
		aead:    map[[aeadKeyIDLen]byte]aeadKey{},
		current: map[keyset.Algorithm]string{},
		set:     set,
		headers: map[string][2]string{},
		macs:    map[string]*sync.Pool{},
	}
	for i := range set.Keys {
		k := &set.Keys[i]
		switch k.Algorithm {
		case keyset.ES256:
			priv, err := k.ECDSA()
			if err != nil {
				return nil, err
			}
			kr.ecdsa[k.ID] = priv
			if kr.headers[k.ID], err = jwtHeaders("ES256", k.ID); err != nil {
				return nil, err
			}
		case keyset.HS512:
			kr.hmac[k.ID] = k.Material
			var err error
			if kr.headers[k.ID], err = jwtHeaders("HS512", k.ID); err != nil {
				return nil, err
			}
			material := k.Material
			kr.macs[k.ID] = &sync.Pool{New: func() any { return hmac.New(sha512.New, material) }}
		case keyset.AEAD:
			block, err := aes.NewCipher(k.Material)
			if err != nil {
				return nil, fmt.Errorf("tokens: key %s: %w", k.ID, err)
			}
			gcm, err := cipher.NewGCM(block)
			if err != nil {
				return nil, err
			}
			kr.aead[aeadKeyID(k.ID)] = aeadKey{id: k.ID, aead: gcm}
		}
	}
	for _, alg := range keyset.Algorithms {
		if cur := set.Current(alg); cur != nil {
			kr.current[alg] = cur.ID
		}
	}
	return kr, nil
}

// Complete reports whether the keyring has a current key for every algorithm:
// the token server is ready only then.
func (kr *Keyring) Complete() bool {
	return kr != nil && len(kr.current) == len(keyset.Algorithms)
}

// Set returns the key set the keyring was built from (read-only).
func (kr *Keyring) Set() *keyset.Set { return kr.set }

// PublicKeys returns the ES256 public keys by kid, current and previous, for the JWKS.
func (kr *Keyring) PublicKeys() map[string]*ecdsa.PublicKey {
	out := make(map[string]*ecdsa.PublicKey, len(kr.ecdsa))
	for kid, priv := range kr.ecdsa {
		out[kid] = &priv.PublicKey
	}
	return out
}

func aeadKeyID(kid string) [aeadKeyIDLen]byte {
	sum := sha256.Sum256([]byte(kid))
	var id [aeadKeyIDLen]byte
	copy(id[:], sum[:])
	return id
}
