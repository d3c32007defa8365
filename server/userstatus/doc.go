// Package userstatus is every write the token server makes to User objects:
// the devices a user logged in from (status.devices, Devices) and lockouts
// (status.lockedUntil, Lockouts). Both patch users/status only, named by an
// index.UserRef, off the request path. The dialects and the lockout reach
// them through small interfaces (devicelogin.DeviceRecorder,
// lockout.Writer), so that they do not compile the Kubernetes client.
package userstatus

import authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"

// usersResource is the User custom resource.
var usersResource = authv1alpha1.GroupVersion.WithResource("users")
