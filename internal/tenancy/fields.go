package tenancy

// Field is one field of an OAuthClient's or a User's spec and what keeps a
// tenant's free use of it safe: the TokenPolicy rule that bounds it, or why it
// needs none. Fields is the only list of them; a test walks the generated CRD
// schemas and fails on a spec field that is not here, so a new field cannot
// arrive unbounded by accident. The chart's admission policy and the README's
// multi-tenant section are checked against it too.
type Field struct {
	// Kind is "OAuthClient" or "User".
	Kind string
	// Name is the field's JSON name under spec.
	Name string
	// Rule is the TokenPolicySpec field (its JSON name) that bounds it, the
	// rule named in a refusal; empty when Harmless says why none is needed.
	Rule string
	// Harmless says why a field without a rule cannot widen what a tenant's
	// tokens may do.
	Harmless string
}

// Fields lists every spec field of OAuthClient and User.
var Fields = []Field{
	{Kind: "OAuthClient", Name: "scopes", Rule: "scopes"},
	{Kind: "OAuthClient", Name: "audiences", Rule: "audiences"},
	{Kind: "OAuthClient", Name: "grantTypes", Rule: "grantTypes"},
	{Kind: "OAuthClient", Name: "tokenFormat", Rule: "tokenFormats"},
	{Kind: "OAuthClient", Name: "accessTokenTTL", Rule: "maxAccessTokenTTL"},
	{Kind: "OAuthClient", Name: "refreshTokenTTL", Rule: "maxRefreshTokenTTL"},
	{Kind: "OAuthClient", Name: "numericID", Rule: "numericIDs"},
	{Kind: "OAuthClient", Name: "serviceAccountName", Rule: "allowServiceAccountBinding"},
	{Kind: "OAuthClient", Name: "clientID", Harmless: "an identifier, unique in the installation (the first claim keeps it); " +
		"what a token may do is its aud and scope, both bounded, so a resource server shared by tenants must authorize on those, not on client_id"},
	{Kind: "OAuthClient", Name: "secretName", Harmless: "a Secret in the client's own namespace, the only one the controller writes for it"},
	{Kind: "OAuthClient", Name: "existingSecret", Harmless: "decides who writes the consumer Secret, not what the client may get"},
	{Kind: "OAuthClient", Name: "authenticationMethods", Harmless: "how the client proves who it is; serviceAccountToken needs serviceAccountName, " +
		"which allowServiceAccountBinding bounds"},
	{Kind: "OAuthClient", Name: "rotationGracePeriod", Harmless: "how long the client's own previous secret keeps working, at most 720h by the CRD"},

	{Kind: "User", Name: "scopes", Rule: "scopes"},
	{Kind: "User", Name: "username", Rule: "usernames"},
	{Kind: "User", Name: "passwordSecretRef", Harmless: "a Secret in the User's own namespace, the only one the controller reads for it"},
	{Kind: "User", Name: "clients", Harmless: "only narrows: the OAuthClients the user may log in through, each bounded itself"},
	{Kind: "User", Name: "disabled", Harmless: "only narrows: stops the user's logins and tokens"},
	{Kind: "User", Name: "sessionsNotBefore", Harmless: "only narrows: ends the user's earlier sessions"},
	{Kind: "User", Name: "deauthorizedDevices", Harmless: "only narrows: ends the sessions of the devices listed"},
}

// Rules returns the rules that bound kind's fields, in Fields' order.
func Rules(kind string) []string {
	var out []string
	for _, f := range Fields {
		if f.Kind == kind && f.Rule != "" {
			out = append(out, f.Rule)
		}
	}
	return out
}
