package issuer

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// DefaultJWKSMaxAge is the Cache-Control max-age of the JWKS document when
// none is configured.
const DefaultJWKSMaxAge = 5 * time.Minute

// JWKSHandler returns an http.Handler serving the published public keys
// ([KeySet.JWKS]) as application/jwk-set+json with
// "Cache-Control: public, max-age=<maxAge>". maxAge 0 means
// [DefaultJWKSMaxAge]. A next key must be published at least maxAge before
// [KeySet.Rotate] so that caching resource servers know it in time. Only
// GET and HEAD are allowed. The handler is safe for concurrent use.
func (is *Issuer) JWKSHandler(maxAge time.Duration) http.Handler {
	if maxAge <= 0 {
		maxAge = DefaultJWKSMaxAge
	}
	cc := "public, max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(is.cfg.Keys.JWKS(is.now()))
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
