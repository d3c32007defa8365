package resource

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/saauth"
)

// jwks publishes the ES256 public keys: the current one and every retired one
// that may still verify tokens. HS512 and AES keys are secret and never appear.
func (h *Handlers) jwks(w http.ResponseWriter, r *http.Request) {
	snap := h.snapshot()
	if snap == nil {
		writeError(w, errUnavailable)
		return
	}
	pub := snap.Keyring().PublicKeys()
	kids := make([]string, 0, len(pub))
	for kid := range pub {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(kids))}
	for _, kid := range kids {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub[kid], KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	// Short caching: verifiers refetch on an unknown kid anyway (keyfunc, go-jose's remote sets).
	writeCacheable(w, r, set, "public, max-age=300")
}

// Metadata is the RFC 8414 authorization server metadata document.
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	// The signing algorithms of client assertions (RFC 8414: required with private_key_jwt).
	TokenEndpointAuthSigningAlgs         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgs []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthSigningAlgs    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	// ServiceAccountTokenAudience is tokensmith's: the audience a pod's projected
	// ServiceAccount token must carry to serve as a client assertion.
	ServiceAccountTokenAudience string `json:"service_account_token_audience,omitempty"`
}

// authMethods are the client authentication methods of every endpoint.
// private_key_jwt is the RFC 7523 client assertion (a JWT signed with a
// private key); here the JWT is the pod's ServiceAccount token, signed by the
// cluster and checked by the API server, not a key registered with tokensmith:
// the closest registered name, and what client libraries send the same way.
func (h *Handlers) authMethods() []string {
	if h.o.Assertions == nil {
		return []string{"client_secret_basic", "client_secret_post"}
	}
	return []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
}

func (h *Handlers) metadata(w http.ResponseWriter, r *http.Request) {
	md := Metadata{
		Issuer:                h.o.Issuer,
		TokenEndpoint:         h.endpoint(PathToken),
		JWKSURI:               h.endpoint(PathJWKS),
		IntrospectionEndpoint: h.endpoint(PathIntrospect),
		RevocationEndpoint:    h.endpoint(PathRevoke),
		// There is no authorization endpoint, hence no response type: the list is empty, not absent.
		ResponseTypesSupported:                    []string{},
		GrantTypesSupported:                       []string{credstore.GrantClientCredentials, credstore.GrantPassword, credstore.GrantRefreshToken},
		TokenEndpointAuthMethodsSupported:         h.authMethods(),
		IntrospectionEndpointAuthMethodsSupported: h.authMethods(),
		RevocationEndpointAuthMethodsSupported:    h.authMethods(),
	}
	if h.o.Assertions != nil {
		md.TokenEndpointAuthSigningAlgs = saauth.SigningAlgs
		md.IntrospectionEndpointAuthSigningAlgs = saauth.SigningAlgs
		md.RevocationEndpointAuthSigningAlgs = saauth.SigningAlgs
		md.ServiceAccountTokenAudience = h.o.Assertions.Audience()
	}
	writeCacheable(w, r, md, "public, max-age=3600")
}

func writeCacheable(w http.ResponseWriter, r *http.Request, v any, cacheControl string) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, errServer)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cacheControl)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(b, '\n'))
	}
}
