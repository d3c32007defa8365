package revocations

import (
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
)

const issuer = "https://auth.example.test"

func form(kv ...string) string { return st.Form(kv...) }

func basic(id, secret string) string { return st.Basic(id, secret) }
