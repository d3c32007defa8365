// Package tlscert serves the token port's certificate from a kubernetes.io/tls
// Secret in the server's namespace. The Secret is watched by name, so a new
// certificate (the controller's rotation, cert-manager's renewal, an edit) is
// used for every handshake after it arrives, without a restart and without
// closing a connection: connections already open keep the certificate they
// were made with until they end.
//
// A Secret that cannot serve (no key, malformed, key and certificate not a
// pair, expired, not yet valid) never replaces a certificate that can: the
// server keeps the last good one and reports the problem (Problem, the log).
// With no good certificate at all the server is not ready (Ready), and it
// never falls back to plain HTTP.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Source holds the certificate the token port serves. Safe for concurrent use.
type Source struct {
	// Name is the Secret's namespace/name, for messages.
	Name string
	now  func() time.Time

	cert atomic.Pointer[tls.Certificate]

	mu      sync.Mutex
	problem error // why the last Secret seen could not serve; nil when it could
	loaded  chan struct{}
	once    sync.Once
}

// New returns a Source for the Secret called name (namespace/name), serving
// nothing until Update accepts a certificate. now is the clock; nil: time.Now.
func New(name string, now func() time.Time) *Source {
	if now == nil {
		now = time.Now
	}
	return &Source{Name: name, now: now, loaded: make(chan struct{}),
		problem: fmt.Errorf("secret %s not found", name)}
}

// Update takes the certificate of s, a kubernetes.io/tls Secret (tls.crt, the
// leaf first then its intermediates, and tls.key), or reports why it cannot
// serve and keeps the certificate it had. The message names keys and dates,
// never key material.
func (src *Source) Update(s *corev1.Secret) error {
	cert, err := parse(s, src.now())
	src.mu.Lock()
	defer src.mu.Unlock()
	src.problem = err
	if err != nil {
		return err
	}
	src.cert.Store(cert)
	src.once.Do(func() { close(src.loaded) })
	return nil
}

// Gone records that the Secret was deleted. The certificate in use keeps
// serving until it expires: a deleted Secret must not take the API down
// before whoever deleted it (or the controller, which writes it again)
// brings a new one.
func (src *Source) Gone() {
	src.mu.Lock()
	defer src.mu.Unlock()
	src.problem = fmt.Errorf("secret %s not found", src.Name)
}

// Loaded is closed once a certificate has been accepted.
func (src *Source) Loaded() <-chan struct{} { return src.loaded }

// Problem is why the Secret last seen cannot serve, nil when it can.
func (src *Source) Problem() error {
	src.mu.Lock()
	defer src.mu.Unlock()
	return src.problem
}

// Ready returns nil when the certificate in use is valid now, else why not.
func (src *Source) Ready() error {
	c := src.cert.Load()
	if c == nil {
		if p := src.Problem(); p != nil {
			return fmt.Errorf("no TLS certificate: %w", p)
		}
		return errors.New("no TLS certificate")
	}
	return validNow(c.Leaf, src.now())
}

// NotAfter is when the certificate in use expires; zero when there is none.
func (src *Source) NotAfter() time.Time {
	if c := src.cert.Load(); c != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// GetCertificate is tls.Config.GetCertificate: the certificate in use, read
// at each handshake.
func (src *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := src.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("tlscert: no certificate loaded")
}

// Config is the token port's TLS configuration: TLS 1.2 and 1.3, HTTP/2 and
// HTTP/1.1, and for TLS 1.2 only forward-secret AEAD suites (Mozilla's
// "intermediate" profile; TLS 1.3's suites are all of that kind and Go does
// not let them be chosen). ECDSA and RSA certificates both work.
func (src *Source) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: src.GetCertificate,
	}
}

// parse is the certificate of s if it can serve at now.
func parse(s *corev1.Secret, now time.Time) (*tls.Certificate, error) {
	name := s.Namespace + "/" + s.Name
	certPEM, keyPEM := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, fmt.Errorf("secret %s needs both %s and %s", name, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair's errors name what is wrong (no PEM block, a key that
		// does not match the certificate), never the key itself.
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("secret %s: %s: %w", name, corev1.TLSCertKey, err)
		}
	}
	if err := validNow(cert.Leaf, now); err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return &cert, nil
}

func validNow(leaf *x509.Certificate, now time.Time) error {
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
