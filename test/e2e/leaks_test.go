package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// findLeaks looks for every credential and token the suite used in everything
// a person or a log pipeline can see: both processes' logs, every error
// response body, every Event, and the status of every OAuthClient and User. Secrets themselves are where
// credentials belong and are not searched.
func findLeaks(ctx context.Context) []string {
	var haystacks []struct{ where, text string }
	add := func(where, text string) { haystacks = append(haystacks, struct{ where, text string }{where, text}) }
	add("process logs", suite.logs.String())
	add("error response bodies", errorBodies.String())

	var events eventsv1.EventList
	if err := suite.k8s.List(ctx, &events); err == nil {
		b, _ := json.Marshal(events.Items)
		add("events.k8s.io Events", string(b))
	}
	var coreEvents corev1.EventList
	if err := suite.k8s.List(ctx, &coreEvents); err == nil {
		b, _ := json.Marshal(coreEvents.Items)
		add("core Events", string(b))
	}
	var clients authv1alpha1.OAuthClientList
	if err := suite.k8s.List(ctx, &clients); err == nil {
		for _, c := range clients.Items {
			b, _ := json.Marshal(c.Status)
			add("status of OAuthClient "+c.Name, string(b))
		}
	}
	var users authv1alpha1.UserList
	if err := suite.k8s.List(ctx, &users); err == nil {
		for _, u := range users.Items {
			b, _ := json.Marshal(u.Status)
			add("status of User "+u.Name, string(b))
		}
	}
	var leaks []string
	for secret := range secretsSeen {
		for _, h := range haystacks {
			if strings.Contains(h.text, secret) {
				leaks = append(leaks, fmt.Sprintf("a value of %d characters appears in %s", len(secret), h.where))
			}
		}
	}
	return leaks
}
