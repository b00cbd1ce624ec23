package keyfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrTooLarge is returned by [Get] for a body over its size cap.
var ErrTooLarge = errors.New("response too large")

// TTL returns how long a response with header h may be cached:
// Cache-Control max-age capped at maxTTL, zero for no-store or no-cache,
// def when neither is present.
func TTL(h http.Header, def, maxTTL time.Duration) time.Duration {
	ttl := def
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return 0
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
				if err == nil && n >= 0 {
					ttl = time.Duration(min(n, int64(maxTTL/time.Second))) * time.Second
				}
			}
		}
	}
	return min(ttl, maxTTL)
}

// Get fetches the JSON document at u with client: status 200, a JSON or
// JWK Set media type when a Content-Type is given, at most maxBytes. Error
// messages start with prefix and name the URL with any password redacted.
func Get(ctx context.Context, client *http.Client, u, prefix string, maxBytes int64) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", prefix, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error names the URL (its password redacted).
		return nil, nil, fmt.Errorf("%s: fetching keys: %w", prefix, err)
	}
	defer resp.Body.Close()
	// The URL is configuration or registration data, never request input;
	// errors name it so that the server log says what failed.
	where := req.URL.Redacted()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("%s: fetching keys from %s: HTTP status %d", prefix, where, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || mt == "application/jwk-set+json") {
			return nil, nil, fmt.Errorf("%s: fetching keys from %s: response is not JSON", prefix, where)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: fetching keys from %s: %w", prefix, where, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, nil, fmt.Errorf("%s: fetching keys from %s: %w", prefix, where, ErrTooLarge)
	}
	return body, resp.Header, nil
}
