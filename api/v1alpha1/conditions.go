package v1alpha1

// ConditionReady is the one condition both kinds report. It is True when the
// credentials exist, the verifier Secret the token server reads is up to
// date, and it has been for the controller's propagation allowance: long
// enough for every token server replica's watch to serve it (the README's
// "What Ready promises").
const ConditionReady = "Ready"

// Reasons of the Ready condition.
const (
	// ReasonIssued surfaces when the credentials exist and the verifier Secret
	// the token server reads is up to date.
	ReasonIssued = "Issued"

	// ReasonPropagating surfaces for the propagation allowance after the
	// verifier changed (the object was created, its spec or its Secret
	// changed, its secret was rotated): the token server replicas are loading
	// it. Nothing is wrong; Ready turns True by itself.
	ReasonPropagating = "Propagating"

	// ReasonWaitingForSecret surfaces when spec.existingSecret (or a User's
	// passwordSecretRef) names a Secret that does not exist yet, or lacks a key.
	// Nothing is generated; the object becomes Ready when the Secret appears.
	ReasonWaitingForSecret = "WaitingForSecret"

	// ReasonConflict surfaces when another object already holds the same
	// clientID, numericID or username. Whoever claimed it first keeps it until
	// it is deleted; the message never names the holder.
	ReasonConflict = "Conflict"

	// ReasonForeignSecret surfaces when the Secret an object's credentials
	// would go into (an OAuthClient's spec.secretName, a User's generated
	// "<name>-password") already exists and tokensmith may not write to it:
	// tokensmith did not create it, it does not carry AnnotationAdopt, and (for
	// an OAuthClient) it holds no CLIENT_SECRET, or another object controls it.
	// The Secret is left untouched.
	ReasonForeignSecret = "ForeignSecret"

	// ReasonInvalid surfaces when the spec passed API validation but cannot be
	// served, for example a Secret whose values are not usable credentials.
	ReasonInvalid = "Invalid"

	// ReasonDisabled surfaces when a User has spec.disabled set: its verifier is
	// kept so that every token it holds fails, and no new login succeeds.
	ReasonDisabled = "Disabled"

	// ReasonPolicyDenied surfaces when TokenPolicies exist and none that selects
	// the object's namespace allows all of its spec (the message names the rule).
	// The token server stops issuing for it; its credentials are kept, so that a
	// policy that allows it again restores it unchanged.
	ReasonPolicyDenied = "PolicyDenied"
)

// Annotations and labels that are part of the API.
const (
	// AnnotationRotate: set it to a new value (any string, e.g. a date) to
	// rotate an OAuthClient's secrets. The previous secret keeps working for
	// spec.rotationGracePeriod.
	AnnotationRotate = "auth.tokensmith.io/rotate"

	// AnnotationAdopt: set it to "true" on an existing Secret to let
	// tokensmith write credentials into it (fill in missing keys, rotate) when
	// an OAuthClient's spec.secretName, or a User's generated password Secret
	// name, points at it. tokensmith never deletes such a Secret and never
	// sets an owner reference on it.
	AnnotationAdopt = "auth.tokensmith.io/adopt"

	// LabelManagedBy marks every Secret tokensmith writes.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "tokensmith"
)
