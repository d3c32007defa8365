package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokensmith/tokensmith/internal/credstore"
)

// GrantType is a way an OAuthClient may obtain tokens.
// +kubebuilder:validation:Enum=client_credentials;password;refresh_token;session
type GrantType string

const (
	// GrantClientCredentials allows POST /v1/auth/token and grant_type=client_credentials on /oauth/token.
	GrantClientCredentials GrantType = credstore.GrantClientCredentials
	// GrantPassword allows grant_type=password on /oauth/token.
	GrantPassword GrantType = credstore.GrantPassword
	// GrantRefreshToken makes password logins return a refresh token and allows grant_type=refresh_token.
	GrantRefreshToken GrantType = credstore.GrantRefreshToken
	// GrantSession allows POST /api/auth/session/{numericID} with API_KEY and API_SECRET.
	GrantSession GrantType = credstore.GrantSession
)

// TokenFormat is the shape of the access tokens a client receives.
// +kubebuilder:validation:Enum=jwt;opaque
type TokenFormat string

const (
	// TokenFormatJWT issues signed JWTs that resource servers can verify with the JWKS.
	TokenFormatJWT TokenFormat = credstore.TokenFormatJWT
	// TokenFormatOpaque issues encrypted opaque tokens ("sk-..."), checked through introspection.
	TokenFormatOpaque TokenFormat = credstore.TokenFormatOpaque
)

// AuthenticationMethod is a way an OAuthClient proves who it is to the token server.
// +kubebuilder:validation:Enum=clientSecret;serviceAccountToken
type AuthenticationMethod string

const (
	// AuthClientSecret is the generated CLIENT_SECRET (HTTP Basic or the body; API_KEY/API_SECRET for sessions).
	AuthClientSecret AuthenticationMethod = "clientSecret"
	// AuthServiceAccountToken is a projected token of spec.serviceAccountName sent as an RFC 7523 client
	// assertion (client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer).
	AuthServiceAccountToken AuthenticationMethod = "serviceAccountToken"
)

// OAuthClientSpec describes a machine client and what it may do.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.clientID) || has(self.clientID) && self.clientID == oldSelf.clientID",message="clientID cannot be changed or removed once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.numericID) || has(self.numericID) && self.numericID == oldSelf.numericID",message="numericID cannot be changed or removed once set: create a new OAuthClient"
// +kubebuilder:validation:XValidation:rule="!has(self.grantTypes) || !self.grantTypes.exists(g, g == 'session') || has(self.numericID)",message="numericID is required when the session grant is enabled"
// +kubebuilder:validation:XValidation:rule="!has(self.authenticationMethods) || !self.authenticationMethods.exists(m, m == 'serviceAccountToken') || has(self.serviceAccountName)",message="the serviceAccountToken method needs spec.serviceAccountName"
// +kubebuilder:validation:XValidation:rule="!has(self.authenticationMethods) || self.authenticationMethods.exists(m, m == 'clientSecret') || !has(self.grantTypes) || !self.grantTypes.exists(g, g == 'session')",message="the session grant needs the clientSecret method (sessions authenticate with API_KEY and API_SECRET)"
// +kubebuilder:validation:XValidation:rule="!has(self.authenticationMethods) || self.authenticationMethods.exists(m, m == 'clientSecret') || !has(self.existingSecret) || !self.existingSecret",message="existingSecret needs the clientSecret method"
type OAuthClientSpec struct {
	// grantTypes lists the ways this client may obtain tokens.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	// +kubebuilder:default={client_credentials}
	// +optional
	GrantTypes []GrantType `json:"grantTypes,omitempty"`

	// scopes this client may request. Tokens carry the requested subset, or all of them when none is requested.
	// At most 64 scopes of at most 128 characters.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// audiences are the "aud" of this client's tokens: the resource servers they are meant for (for example
	// their URLs). Resource servers check it (introspection's "aud", /auth/verify?audience=). Defaults to the
	// token server's issuer URL.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^[\x21-\x7E]+$`
	// +listType=set
	// +optional
	Audiences []string `json:"audiences,omitempty"`

	// accessTokenTTL is the lifetime of access tokens, between 1m and 8784h (366 days).
	// Defaults to 1h for client_credentials and session tokens, and 8784h for password logins, as Passport does.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('8784h')",message="accessTokenTTL must be between 1m and 8784h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +optional
	AccessTokenTTL *metav1.Duration `json:"accessTokenTTL,omitempty"`

	// refreshTokenTTL is the lifetime of refresh tokens, between 1m and 8784h. Defaults to 8784h.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('8784h')",message="refreshTokenTTL must be between 1m and 8784h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +optional
	RefreshTokenTTL *metav1.Duration `json:"refreshTokenTTL,omitempty"`

	// numericID is the integer id used by the session API (POST /api/auth/session/{numericID}).
	// Unique within the installation: the first OAuthClient to claim it keeps it until it is deleted.
	// It may be added later, but never changed or removed once set.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9007199254740991
	// +optional
	NumericID *int64 `json:"numericID,omitempty"`

	// clientID fixes the client id, for migrations. When empty one is generated once and kept in status.
	// Unique within the installation: the first OAuthClient to claim it keeps it until it is deleted.
	// Cannot be changed or removed once set, and can be added later only with the value of status.clientID.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._~-]*$`
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// secretName is the consumer Secret in this namespace that holds the credentials.
	// Defaults to "<metadata.name>-credentials". An existing Secret's credentials are adopted, never replaced.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// existingSecret means the consumer Secret is provided by someone else: tokensmith never generates
	// credentials and waits (Ready=False, reason WaitingForSecret) until the Secret holds them.
	// +optional
	ExistingSecret bool `json:"existingSecret,omitempty"`

	// tokenFormat is the shape of access tokens: jwt (default) or opaque.
	// +kubebuilder:default=jwt
	// +optional
	TokenFormat TokenFormat `json:"tokenFormat,omitempty"`

	// serviceAccountName binds a ServiceAccount in this OAuthClient's own namespace (a name, never another
	// namespace's account): pods running as it authenticate as this client with their projected token as an
	// RFC 7523 client assertion, whose audience is the token server's (by default its issuer URL, published as
	// "service_account_token_audience" in /.well-known/oauth-authorization-server).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// authenticationMethods are the ways this client may authenticate: clientSecret (a generated CLIENT_SECRET)
	// and serviceAccountToken (the token of spec.serviceAccountName). When unset: clientSecret, plus
	// serviceAccountToken when spec.serviceAccountName is set. Without clientSecret no secret is generated and
	// the consumer Secret carries only CLIENT_ID and TOKEN_URL; listing both lets a client migrate from secrets
	// to ServiceAccount tokens.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	// +listType=set
	// +optional
	AuthenticationMethods []AuthenticationMethod `json:"authenticationMethods,omitempty"`
	// rotationGracePeriod is how long the previous secret keeps working after a rotation. Defaults to 24h; at most 720h.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('720h')",message="rotationGracePeriod must be between 0s and 720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +optional
	RotationGracePeriod *metav1.Duration `json:"rotationGracePeriod,omitempty"`
}

// OAuthClientStatus is what the controller observed and did.
type OAuthClientStatus struct {
	// clientID is the client id in use (spec.clientID or the generated one).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// secretName is the consumer Secret holding the credentials.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// observedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastRotationTime is when the secrets were last rotated.
	// +optional
	LastRotationTime *metav1.Time `json:"lastRotationTime,omitempty"`

	// previousSecretExpiresAt is when the secret replaced by the last rotation stops working.
	// +optional
	PreviousSecretExpiresAt *metav1.Time `json:"previousSecretExpiresAt,omitempty"`

	// conditions: Ready, with a reason from this package's Reason constants.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// OAuthClient is a machine client of the token server. The controller keeps its
// credentials in a consumer Secret in the same namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oc,categories=tokensmith
// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.clientID) || has(oldSelf.spec) && has(oldSelf.spec.clientID) || !has(oldSelf.status) || !has(oldSelf.status.clientID) || self.spec.clientID == oldSelf.status.clientID",message="spec.clientID can be added later only with the client id already issued (status.clientID)"
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the client.
	// +optional
	Spec OAuthClientSpec `json:"spec,omitempty"`
	// status is written by the controller.
	// +optional
	Status OAuthClientStatus `json:"status,omitempty"`
}

// OAuthClientList is a list of OAuthClients.
// +kubebuilder:object:root=true
type OAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthClient `json:"items"`
}

// EffectiveAuthenticationMethods is spec.authenticationMethods with its default applied: clientSecret, plus
// serviceAccountToken when spec.serviceAccountName is set.
func (s *OAuthClientSpec) EffectiveAuthenticationMethods() []AuthenticationMethod {
	if len(s.AuthenticationMethods) > 0 {
		return s.AuthenticationMethods
	}
	if s.ServiceAccountName != "" {
		return []AuthenticationMethod{AuthClientSecret, AuthServiceAccountToken}
	}
	return []AuthenticationMethod{AuthClientSecret}
}

// Allows reports whether the client may authenticate with m.
func (s *OAuthClientSpec) Allows(m AuthenticationMethod) bool {
	for _, x := range s.EffectiveAuthenticationMethods() {
		if x == m {
			return true
		}
	}
	return false
}
