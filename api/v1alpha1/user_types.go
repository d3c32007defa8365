package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretKeyRef names one key of a Secret in the User's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// key in the Secret's data. Defaults to "password".
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:default=password
	// +optional
	Key string `json:"key,omitempty"`
}

// UserSpec describes a person (or device owner) who logs in with a password.
type UserSpec struct {
	// username is the login name, unique in the installation: the first User to claim it keeps it until
	// it is deleted. It cannot be changed; create a new User instead.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="username cannot be changed: create a new User"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[^\s\x00-\x1f\x7f]+$`
	// +required
	Username string `json:"username"`

	// passwordSecretRef names the Secret key holding the password. When empty, a password is
	// generated once into the Secret "<metadata.name>-password" (key "password").
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`

	// scopes the user may be granted. A login asks for a subset; none asked means all.
	// At most 32 scopes of at most 128 characters.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// clients lists the client ids that may log this user in. Empty means every client with the password grant.
	// At most 16 client ids.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	Clients []string `json:"clients,omitempty"`

	// disabled refuses every login and ends every session of this user.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// sessionsNotBefore ends every session (access and refresh tokens) issued before this time: "log out everywhere".
	// +optional
	SessionsNotBefore *metav1.Time `json:"sessionsNotBefore,omitempty"`

	// deauthorizedDevices lists device-info values whose sessions are ended and whose logins are refused.
	// At most 16 devices.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=200
	// +listType=set
	// +optional
	DeauthorizedDevices []string `json:"deauthorizedDevices,omitempty"`
}

// DeviceStatus is a device this user has logged in from.
type DeviceStatus struct {
	// name is the device-info the client sent ("Unknown" when none).
	// +kubebuilder:validation:MaxLength=200
	Name string `json:"name"`
	// firstSeen is when a login from this device first succeeded.
	FirstSeen metav1.Time `json:"firstSeen"`
}

// UserStatus is what the controller and the token server observed.
type UserStatus struct {
	// observedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// passwordSecretName is the Secret the password is read from.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PasswordSecretName string `json:"passwordSecretName,omitempty"`

	// credentialGeneration changes whenever the password changes or the user is disabled;
	// refresh tokens of an older generation stop working.
	// +optional
	CredentialGeneration int64 `json:"credentialGeneration,omitempty"`

	// passwordChangedTime is when the controller last saw a new password.
	// +optional
	PasswordChangedTime *metav1.Time `json:"passwordChangedTime,omitempty"`

	// devices the user has logged in from through the device login API. Written by the token server,
	// once per new device; the first 16 are listed.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Devices []DeviceStatus `json:"devices,omitempty"`

	// lockedUntil is set by the token server after too many failed logins. Remove it to unlock:
	// kubectl patch user NAME --subresource=status --type=json -p '[{"op":"remove","path":"/status/lockedUntil"}]'
	// +optional
	LockedUntil *metav1.Time `json:"lockedUntil,omitempty"`

	// conditions: Ready, with a reason from this package's Reason constants.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// User is a person or device owner who logs in with a username and password.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=tokensmith
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.spec.username`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Locked Until",type=string,JSONPath=`.status.lockedUntil`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type User struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the user.
	// +required
	Spec UserSpec `json:"spec"`
	// status is written by the controller and the token server.
	// +optional
	Status UserStatus `json:"status,omitempty"`
}

// UserList is a list of Users.
// +kubebuilder:object:root=true
type UserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []User `json:"items"`
}
