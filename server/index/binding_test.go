package index

import (
	"testing"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/tokens"
)

func TestClientBindingIsComputedOnceAndTheSame(t *testing.T) {
	v := credstore.ClientVerifier{ClientID: "svc", ObjectRef: credstore.ObjectRef{UID: "c-uid"}}
	want := tokens.Binding("c-uid", "", false)
	if c := newClient(v); c.binding != want || Binding(c, nil) != want {
		t.Fatalf("index-built client: cached %q, Binding %q, want %q", c.binding, Binding(c, nil), want)
	}
	if got := Binding(&Client{ClientVerifier: v}, nil); got != want {
		t.Fatalf("a Client built elsewhere: %q, want %q", got, want)
	}
	if got := Binding(newClient(credstore.ClientVerifier{ClientID: "old"}), nil); got != "" {
		t.Fatalf("a verifier without a uid binds nothing, got %q", got)
	}
	u := &User{UserVerifier: credstore.UserVerifier{Username: "alice", ObjectRef: credstore.ObjectRef{UID: "u-uid"}}}
	if got := Binding(newClient(v), u); got != tokens.Binding("c-uid", "u-uid", true) {
		t.Fatalf("a user token's binding: %q", got)
	}
}
