package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
)

// startBaselines serves, on loopback, the trivial handler ("/trivial") and the
// bare handler ("/bare": one digest check and one ES256 signature per request).
func startBaselines(clients []clientCred) (string, func(), error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	digests := make(map[string]credstore.Digest, len(clients))
	for _, c := range clients {
		digests[c.ID] = credstore.DigestOf(credstore.PurposeClientSecret, c.Secret)
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT","kid":"bare"}`))
	mux := http.NewServeMux()
	mux.HandleFunc("/trivial", trivialHandler)
	mux.HandleFunc("POST /bare", func(w http.ResponseWriter, r *http.Request) {
		id, sec := r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		d, ok := digests[id]
		if !ok || !d.Equal(credstore.DigestOf(credstore.PurposeClientSecret, sec)) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		now := time.Now().Unix()
		jti, _ := credstore.RandomSecret(16)
		claims, _ := json.Marshal(map[string]any{"iss": "https://bench", "sub": id, "client_id": id, "scope": "read write",
			"iat": now, "exp": now + 3600, "jti": jti})
		signing := header + "." + base64.RawURLEncoding.EncodeToString(claims)
		sum := sha256.Sum256([]byte(signing))
		rr, ss, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			http.Error(w, "sign", http.StatusInternalServerError)
			return
		}
		sig := make([]byte, 64)
		rr.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		tok := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"access_token":"` + tok + `","token_type":"Bearer","expires_in":` + strconv.Itoa(3600) + `}`))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}
