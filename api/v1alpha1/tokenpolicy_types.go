package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NamespacePlaceholder is "{namespace}": inside a scope or audience name or
// prefix or a username prefix or suffix of a TokenPolicy it stands for the namespace of the
// object checked, so that one policy can give every tenant namespace its own
// scopes and usernames.
const NamespacePlaceholder = "{namespace}"

// TokenPolicySpec bounds what the OAuthClients and Users of the namespaces it
// selects may ask for. A field left out permits anything there; a field set
// permits only what it lists.
//
// Semantics across policies (README "Multi-tenant clusters"): with no
// TokenPolicy at all, nothing is bounded (unless the installation denies by
// default). Once one exists, an object is allowed only if at least one policy
// selecting its namespace allows all of it: policies add up, they never
// tighten each other.
type TokenPolicySpec struct {
	// namespaceSelector selects the namespaces this policy applies to, by their labels
	// (kubernetes.io/metadata.name holds a namespace's name). {} selects every namespace.
	// +required
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

	// scopes bounds spec.scopes of OAuthClients and Users. Absent: any scope.
	// +optional
	Scopes *ScopeBounds `json:"scopes,omitempty"`

	// audiences bounds spec.audiences of OAuthClients. A client that lists none gets the token
	// server's issuer as "aud", shared by every client of the installation, and is always allowed;
	// an audience listed in spec, even the issuer's URL, must be allowed here. Absent: any audience.
	// +optional
	Audiences *AudienceBounds `json:"audiences,omitempty"`

	// grantTypes an OAuthClient may list. Absent: any grant.
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	// +optional
	GrantTypes []GrantType `json:"grantTypes,omitempty"`

	// tokenFormats an OAuthClient may use. Absent: any format.
	// +kubebuilder:validation:MaxItems=2
	// +listType=set
	// +optional
	TokenFormats []TokenFormat `json:"tokenFormats,omitempty"`

	// maxAccessTokenTTL is the longest spec.accessTokenTTL an OAuthClient may set. An OAuthClient that
	// leaves it unset counts with its default: 8784h with the password grant, 1h otherwise. Absent: no bound.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="maxAccessTokenTTL must be at least 1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +optional
	MaxAccessTokenTTL *metav1.Duration `json:"maxAccessTokenTTL,omitempty"`

	// maxRefreshTokenTTL is the longest spec.refreshTokenTTL an OAuthClient with the refresh_token grant
	// may set; unset counts as its default, 8784h. Absent: no bound.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="maxRefreshTokenTTL must be at least 1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +optional
	MaxRefreshTokenTTL *metav1.Duration `json:"maxRefreshTokenTTL,omitempty"`

	// usernames bounds spec.username of Users. Absent: any username.
	// +optional
	Usernames *UsernameBounds `json:"usernames,omitempty"`

	// numericIDs bounds spec.numericID of OAuthClients. A client without a numericID is not bounded.
	// Absent: any numericID.
	// +optional
	NumericIDs *NumericIDRange `json:"numericIDs,omitempty"`

	// allowServiceAccountBinding says whether OAuthClients may bind a ServiceAccount of their namespace
	// (spec.serviceAccountName). Absent or true: allowed.
	// +optional
	AllowServiceAccountBinding *bool `json:"allowServiceAccountBinding,omitempty"`
}

// ScopeBounds lists the scopes allowed: a scope is allowed when it equals one of names or starts
// with one of prefixes. "{namespace}" in either stands for the object's namespace. {} allows no scope.
type ScopeBounds struct {
	// names are scopes allowed exactly.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	Names []string `json:"names,omitempty"`

	// prefixes: any scope starting with one of these is allowed, e.g. "{namespace}:" or "orders.".
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	Prefixes []string `json:"prefixes,omitempty"`
}

// AudienceBounds lists the audiences allowed: an audience is allowed when it equals one of names
// or starts with one of prefixes. "{namespace}" in either stands for the OAuthClient's namespace.
// {} allows no audience but the issuer's default.
type AudienceBounds struct {
	// names are audiences allowed exactly, e.g. "https://orders.example.com".
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=set
	// +optional
	Names []string `json:"names,omitempty"`

	// prefixes: any audience starting with one of these is allowed, e.g. "https://{namespace}.example.com/".
	// A prefix that ends inside a host name ("https://shop") also allows "https://shop.evil.example":
	// end URL prefixes with "/" or ".".
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=set
	// +optional
	Prefixes []string `json:"prefixes,omitempty"`
}

// UsernameBounds lists the usernames allowed: a username is allowed when it starts with one of
// prefixes or ends with one of suffixes. "{namespace}" in either stands for the User's namespace.
// {} allows no username, so no User.
type UsernameBounds struct {
	// suffixes, e.g. "@team-a.example.com" or "@{namespace}.users.example.com".
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=254
	// +listType=set
	// +optional
	Suffixes []string `json:"suffixes,omitempty"`

	// prefixes, e.g. "{namespace}/".
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=254
	// +listType=set
	// +optional
	Prefixes []string `json:"prefixes,omitempty"`
}

// NumericIDRange is an inclusive range of numeric ids.
// +kubebuilder:validation:XValidation:rule="self.min <= self.max",message="numericIDs: min must not exceed max"
type NumericIDRange struct {
	// min is the smallest numericID allowed.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9007199254740991
	// +required
	Min int64 `json:"min"`
	// max is the largest numericID allowed.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9007199254740991
	// +required
	Max int64 `json:"max"`
}

// TokenPolicy bounds, per namespace, the scopes, audiences, grants, token formats, TTLs, usernames,
// numeric ids and ServiceAccount bindings OAuthClients and Users may claim. Cluster-scoped: it is the
// platform team's, not a tenant's.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tp,categories=tokensmith
// +kubebuilder:validation:XValidation:rule="!has(self.spec.namespaceSelector.matchExpressions) || self.spec.namespaceSelector.matchExpressions.all(e, e.operator in ['In', 'NotIn'] ? has(e.values) && size(e.values) > 0 : e.operator in ['Exists', 'DoesNotExist'] && (!has(e.values) || size(e.values) == 0))",message="spec.namespaceSelector.matchExpressions: operator must be In or NotIn with values, or Exists or DoesNotExist without"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TokenPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the policy.
	// +required
	Spec TokenPolicySpec `json:"spec"`
}

// TokenPolicyList is a list of TokenPolicies.
// +kubebuilder:object:root=true
type TokenPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TokenPolicy `json:"items"`
}

// NamedTokenPolicy is one TokenPolicy's spec under its name.
type NamedTokenPolicy struct {
	// name of the TokenPolicy.
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	TokenPolicySpec `json:",inline"`
}

// TokenPolicySnapshotSpec is every TokenPolicy, copied by the controller.
type TokenPolicySnapshotSpec struct {
	// policies: every TokenPolicy, sorted by name.
	// +kubebuilder:validation:MaxItems=256
	// +listType=map
	// +listMapKey=name
	// +optional
	Policies []NamedTokenPolicy `json:"policies,omitempty"`
}

// TokenPolicySnapshot is written by the controller only: one object, named after the installation,
// holding a copy of every TokenPolicy. It is the parameter of the chart's ValidatingAdmissionPolicy,
// which can then allow an object when ANY policy allows it (a policy binding with one parameter
// per TokenPolicy would require ALL of them to). Edits by anyone else are overwritten.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=tokensmith
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TokenPolicySnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the copy of every TokenPolicy.
	// +optional
	Spec TokenPolicySnapshotSpec `json:"spec,omitempty"`
}

// TokenPolicySnapshotList is a list of TokenPolicySnapshots.
// +kubebuilder:object:root=true
type TokenPolicySnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TokenPolicySnapshot `json:"items"`
}
