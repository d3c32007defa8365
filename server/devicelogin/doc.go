// Package devicelogin serves the device login v1 dialect:
// POST /v1/oauth/ (and /v1/oauth) with username, password, device-info and
// debug, from the query string as documented or from a form body, answering
// {"success":true,"data":{"access_token","expiry"}}.
//
// Every login is a device session: its opaque token carries a new session id
// and the device, so that the User's deauthorizedDevices and sessionsNotBefore
// end it. The tokens name one OAuthClient, the server's DeviceLoginClient,
// which must exist and have the password grant; the user checks are the
// password grant's (server/login). New devices are written to the User's
// status.devices through a DeviceRecorder (server/userstatus.Devices), once per
// device, off the request path.
//
// debug=1 adds the API document's (../shared/api-docs/002_8eca1d7ed3a6f808.txt) "debug" object only when the server runs in
// development mode; otherwise the parameter changes nothing.
package devicelogin
