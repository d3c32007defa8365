package resource

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokensmith/tokensmith/internal/credstore"
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
}

// authMethods are the client authentication methods of every endpoint.
var authMethods = []string{"client_secret_basic", "client_secret_post"}

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
		TokenEndpointAuthMethodsSupported:         authMethods,
		IntrospectionEndpointAuthMethodsSupported: authMethods,
		RevocationEndpointAuthMethodsSupported:    authMethods,
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
