package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// printLocalSummary tells the developer where everything is and gives a
// working curl per dialect. The curls read credentials from the Secrets with
// kubectl when they run: nothing secret is printed.
func printLocalSummary(ctx context.Context, c client.Client, w io.Writer, f localFlags, kubeconfig string, applied []appliedObject) {
	base := "http://" + f.listen
	fmt.Fprintf(w, "\ntokensmith is running: token server %s, metrics and probes http://%s\n\n", base, f.adminListen)
	fmt.Fprintf(w, "  export KUBECONFIG=%s\n", kubeconfig)
	fmt.Fprintln(w, `  secret() { kubectl get secret -n "${3:-default}" "$1" -o jsonpath="{.data.$2}" | base64 -d; }`)

	var clients []authv1alpha1.OAuthClient
	var users []authv1alpha1.User
	for _, a := range applied {
		key := client.ObjectKey{Namespace: a.Namespace, Name: a.Name}
		switch a.Kind {
		case "OAuthClient":
			var oc authv1alpha1.OAuthClient
			if c.Get(ctx, key, &oc) == nil {
				clients = append(clients, oc)
			}
		case "User":
			var u authv1alpha1.User
			if c.Get(ctx, key, &u) == nil {
				users = append(users, u)
			}
		}
	}
	for _, oc := range clients {
		s, ns := oc.Status.SecretName, oc.Namespace
		fmt.Fprintf(w, "\nOAuthClient %s/%s: credentials in Secret %s/%s\n", ns, oc.Name, ns, s)
		grants := oc.Spec.GrantTypes
		if slices.Contains(grants, authv1alpha1.GrantSession) && oc.Spec.NumericID != nil {
			fmt.Fprintf(w, "  # session API\n  curl -s -X POST %s/api/auth/session/%d -H 'Content-Type: application/json' \\\n"+
				"    -d \"{\\\"api_key\\\":\\\"$(secret %s API_KEY %s)\\\",\\\"secret\\\":\\\"$(secret %s API_SECRET %s)\\\"}\"\n",
				base, *oc.Spec.NumericID, s, ns, s, ns)
		}
		if slices.Contains(grants, authv1alpha1.GrantClientCredentials) && oc.Spec.Allows(authv1alpha1.AuthServiceAccountToken) {
			// The local issuer is the audience; kubectl mints the token as the kubelet would for a pod.
			fmt.Fprintf(w, "  # OAuth 2.0 client_credentials with a token of ServiceAccount %s (no secret)\n"+
				"  curl -s %s/oauth/token -d grant_type=client_credentials -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \\\n"+
				"    -d client_assertion=\"$(kubectl create token %s -n %s --audience %s)\"\n",
				oc.Spec.ServiceAccountName, base, oc.Spec.ServiceAccountName, ns, base)
		}
		if !oc.Spec.Allows(authv1alpha1.AuthClientSecret) {
			continue
		}
		if slices.Contains(grants, authv1alpha1.GrantClientCredentials) {
			fmt.Fprintf(w, "  # client-credentials v1\n  curl -s -X POST %s/v1/auth/token -d client_id=$(secret %s CLIENT_ID %s) -d client_secret=$(secret %s CLIENT_SECRET %s)\n",
				base, s, ns, s, ns)
			fmt.Fprintf(w, "  # OAuth 2.0 client_credentials\n  curl -s %s/oauth/token -d grant_type=client_credentials -u \"$(secret %s CLIENT_ID %s):$(secret %s CLIENT_SECRET %s)\"\n",
				base, s, ns, s, ns)
		}
		if slices.Contains(grants, authv1alpha1.GrantPassword) {
			for _, u := range users {
				fmt.Fprintf(w, "  # OAuth 2.0 password grant as %s\n  curl -s %s/oauth/token -d grant_type=password -d client_id=$(secret %s CLIENT_ID %s) -d client_secret=$(secret %s CLIENT_SECRET %s) \\\n"+
					"    -d username=%s --data-urlencode password=$(secret %s password %s) -d scope=\n",
					u.Spec.Username, base, s, ns, s, ns, u.Spec.Username, u.Status.PasswordSecretName, u.Namespace)
			}
		}
	}
	for _, u := range users {
		fmt.Fprintf(w, "\nUser %s/%s (%s): password in Secret %s/%s\n", u.Namespace, u.Name, u.Spec.Username, u.Namespace, u.Status.PasswordSecretName)
		fmt.Fprintf(w, "  # device login v1\n  curl -s -X POST '%s/v1/oauth/?username=%s&device-info=my-laptop' --data-urlencode password=$(secret %s password %s)\n",
			base, u.Spec.Username, u.Status.PasswordSecretName, u.Namespace)
	}
	fmt.Fprintln(w, "\nkubectl apply changes are served within a second. Ctrl-C stops everything.")
}
